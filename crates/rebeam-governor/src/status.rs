//! The status report (`rebeam ctl status`, `rebeam top`): a snapshot of the router's state,
//! taken between two inputs, so it is consistent.
//!
//! The rules (see rebeam-proto's `status.rs` for the report's own):
//!
//! - Taking one is cheap and bounded: it walks what the router holds anyway and reads at most
//!   `USAGE_READS_PER_REPORT` `/proc` files (through the `Os`, so the model test reads none).
//! - The governor keeps only counters and bounded histories for it (messages delivered per
//!   actor, starts and last crash per child, the last `RECENT_TRANSITIONS` safety
//!   transitions); rates are the viewer's to compute.
//! - A crash reason is kept to its first line, at most `CRASH_LINE_CHARS` characters: the
//!   whole report (traceback included) is in the log.

use rebeam_proto::{
    Exit, ProcessStatus, ProgramStatus, SafetyTransition, StatusReport, SubscriptionStatus, TimedTransition,
    RECENT_TRANSITIONS, STATUS_VERSION,
};

use crate::router::{ProcState, Router};
use crate::usage::USAGE_READS_PER_REPORT;
use crate::Program;

/// The longest crash reason a report carries.
pub const CRASH_LINE_CHARS: usize = 200;

/// `exit`'s reason as the crash report says it, cut to its first line and `CRASH_LINE_CHARS`.
pub fn crash_line(exit: &Exit) -> String {
    let reason = crate::report::reason(exit);
    let first = reason.lines().next().unwrap_or_default();
    match first.char_indices().nth(CRASH_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &first[..cut]),
        None => first.to_owned(),
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Router {
    /// Milliseconds since the router was made, by the router's clock.
    fn uptime_ms(&self) -> u64 {
        let since = self.os.now().saturating_duration_since(self.started);
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }

    /// Keeps `t` among the recent transitions, forgetting the oldest past the bound.
    pub(crate) fn record_transition(&mut self, t: SafetyTransition) {
        if self.transitions.len() == RECENT_TRANSITIONS {
            self.transitions.pop_front();
        }
        let at_ms = self.uptime_ms();
        self.transitions.push_back(TimedTransition { at_ms, transition: t });
    }

    /// What `rebeam ctl status` shows after the state.
    pub(crate) fn status_report(&self) -> StatusReport {
        let program = match &self.config.program {
            Program::Script { script, .. } => ProgramStatus::Script(script.display().to_string()),
            library => ProgramStatus::Library(library.describe()),
        };
        let cowns = self.boc_cowns_by_proc();
        let processes = self
            .procs
            .iter()
            .filter(|(_, p)| p.state != ProcState::Dead)
            .enumerate()
            .map(|(n, (id, p))| ProcessStatus {
                describe: p.describe(),
                spare: p.spare,
                actors: saturating_u32(self.actors.count_on(id)),
                index: p.index,
                pid: p.pid,
                cowns: saturating_u32(cowns.get(&id).copied().unwrap_or(0)),
                usage: if n < USAGE_READS_PER_REPORT { self.os.usage(p.pid) } else { None },
            })
            .collect();
        StatusReport {
            version: STATUS_VERSION,
            uptime_ms: self.uptime_ms(),
            program,
            processes,
            trees: self.tree_status(),
            transitions: self.transitions.iter().cloned().collect(),
            bus: self.bus_status(),
        }
    }

    fn bus_status(&self) -> Vec<SubscriptionStatus> {
        self.bus
            .stats()
            .map(|s| {
                let owner = match s.owner.actor {
                    Some(a) => self.actors.get(&a).map_or_else(|| format!("<{a}>"), |actor| actor.label.clone()),
                    None => {
                        self.procs.get(s.owner.proc).map_or_else(|| "a process that is gone".into(), |p| p.describe())
                    }
                };
                SubscriptionStatus {
                    id: s.id,
                    pattern: s.pattern,
                    owner,
                    queued: saturating_u32(s.queued),
                    capacity: saturating_u32(s.capacity),
                    dropped: s.dropped,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebeam_proto::{ErrorInfo, ErrorKind};

    #[test]
    fn a_crash_line_is_the_first_line_cut_to_the_bound() {
        let short = Exit::Crashed(ErrorInfo::new(ErrorKind::Crashed, "ValueError: bad\nmore"));
        assert!(!crash_line(&short).contains('\n'), "{}", crash_line(&short));
        assert!(crash_line(&short).contains("ValueError: bad"), "{}", crash_line(&short));
        let long = Exit::Killed("é".repeat(CRASH_LINE_CHARS * 2));
        let line = crash_line(&long);
        assert_eq!(line.chars().count(), CRASH_LINE_CHARS + 1, "cut, with an ellipsis");
        assert!(line.starts_with("killed: ") && line.ends_with('…'));
    }
}
