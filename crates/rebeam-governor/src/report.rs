//! Crash reports: what a person reads when something fails.

use rebeam_core::supervision::{Decision, Intensity, Strategy};
use rebeam_proto::Exit;

pub struct CrashReport<'a> {
    pub supervisor: &'a str,
    pub strategy: Strategy,
    pub child: &'a str,
    pub name: Option<&'a str>,
    pub exit: &'a Exit,
    pub restarts: u32,
    pub intensity: Intensity,
    pub decision: &'a Decision,
}

impl CrashReport<'_> {
    pub fn render(&self) -> String {
        let who = match self.name {
            Some(n) => format!("'{n}' ({})", self.child),
            None => self.child.to_string(),
        };
        let action = match self.decision {
            Decision::Ignore => "not restarted (its restart kind says so)".to_string(),
            Decision::Restart { stop, start } if stop.is_empty() => {
                format!("restarting it ({} child(ren))", start.len())
            }
            Decision::Restart { stop, start } => {
                format!("stopping {} sibling(s) and restarting {} child(ren)", stop.len(), start.len())
            }
            Decision::Escalate { .. } => {
                "giving up: too many restarts; the supervisor stops and fails upward".to_string()
            }
        };
        let mut out = format!(
            "CRASH REPORT\n  supervisor: {} ({})\n  child:      {who}\n  reason:     {}\n  restarts:   {} of {} allowed in {}s\n  action:     {action}",
            self.supervisor,
            self.strategy,
            reason(self.exit),
            self.restarts,
            self.intensity.max_restarts,
            self.intensity.max_seconds.as_secs_f64(),
        );
        push_traceback(&mut out, self.exit);
        out
    }
}

pub fn unsupervised(label: &str, exit: &Exit) -> String {
    let mut out =
        format!("CRASH REPORT\n  actor:      {label} (not supervised; it is gone)\n  reason:     {}", reason(exit));
    push_traceback(&mut out, exit);
    out
}

pub(crate) fn reason(exit: &Exit) -> String {
    match exit {
        Exit::Normal => "normal".into(),
        Exit::Shutdown => "shutdown".into(),
        Exit::Crashed(info) => info.to_string(),
        Exit::Killed(why) => format!("killed: {why}"),
    }
}

fn push_traceback(out: &mut String, exit: &Exit) {
    if let Exit::Crashed(info) = exit {
        if let Some(tb) = &info.traceback {
            out.push_str("\n  traceback:\n");
            for line in tb.trim_end().lines() {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
            out.pop();
        }
    }
}
