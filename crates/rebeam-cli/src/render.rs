//! How `rebeam ctl` prints the governor's answers: the control socket sends data
//! (rebeam-proto's `StatusReport`, `SafetyTransition`), and this is its one rendering for a
//! person, and `status_json` its one form for scripts. Tests in tests/integration/test_safety.py
//! read this text, and tests/integration/test_top.py the JSON; keep both stable.

use std::fmt::Write;
use std::time::Duration;

use rebeam_proto::{ChildStatus, ControlRefusal, ProgramStatus, Safety, SafetyTransition, StatusReport, TreeStatus};

pub fn state_name(state: Safety) -> &'static str {
    match state {
        Safety::Disarmed => "disarmed",
        Safety::Armed => "armed",
        Safety::Disarming => "disarming",
        Safety::Error => "error",
    }
}

/// "from → to: reason".
pub fn transition(t: &SafetyTransition) -> String {
    format!("{} → {}: {}", state_name(t.from), state_name(t.to), t.reason)
}

/// "refused: message": the message says why and what to do, so a person reads it alone; the
/// kind is for programs that act on a refusal.
pub fn refusal(r: &ControlRefusal) -> String {
    format!("refused: {}", r.message)
}

/// `rebeam ctl status --json`: one object, the safety state by its name ("safety") and then the
/// report's own fields, whose names are the report's (rebeam-proto `status.rs`).
pub fn status_json(state: Safety, report: &StatusReport) -> Result<String, serde_json::Error> {
    #[derive(serde::Serialize)]
    struct Status<'a> {
        safety: &'static str,
        #[serde(flatten)]
        report: &'a StatusReport,
    }
    serde_json::to_string_pretty(&Status { safety: state_name(state), report })
}

/// What `rebeam ctl status` prints after the state line: the program, processes, then trees.
pub fn status(report: &StatusReport) -> String {
    let mut out = match &report.program {
        ProgramStatus::Script(script) => format!("script:  {script}\n"),
        ProgramStatus::Library(program) => format!("program: {program}\n"),
    };
    for p in &report.processes {
        let role = if p.spare { " (spare)" } else { "" };
        let _ = writeln!(out, "process: {}{role}, {} actor(s)", p.describe, p.actors);
    }
    for tree in &report.trees {
        render_tree(tree, 0, &mut out);
    }
    if report.trees.is_empty() {
        out.push_str("no supervision tree is running\n");
    }
    out
}

fn render_tree(t: &TreeStatus, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let _ = writeln!(
        out,
        "{pad}supervisor {} ({}): {} of {} restarts used in the last {}s",
        t.label,
        t.strategy,
        t.restarts_used,
        t.max_restarts,
        Duration::from_millis(t.max_seconds_ms).as_secs_f64()
    );
    for child in &t.children {
        match child {
            ChildStatus::Tree(sub) => render_tree(sub, depth + 1, out),
            ChildStatus::Actor { name, label, running, .. } => {
                let name = name.as_deref().map_or(label.clone(), |n| format!("'{n}' ({label})"));
                match running {
                    Some((actor, place)) => {
                        let place = place.as_deref().unwrap_or("waiting for a worker");
                        let _ = writeln!(out, "{pad}  {name}: running as <{actor}> on {place}");
                    }
                    None => {
                        let _ = writeln!(out, "{pad}  {name}: not running");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebeam_proto::{ProcessStatus, Strategy};

    fn actor(name: Option<&str>, label: &str, running: Option<(u64, Option<&str>)>) -> ChildStatus {
        ChildStatus::Actor {
            name: name.map(str::to_owned),
            label: label.into(),
            running: running.map(|(a, p)| (a, p.map(str::to_owned))),
            mailbox: 0,
            delivered: 0,
            restarts: 0,
            last_crash: None,
        }
    }

    fn process(describe: &str, spare: bool, actors: u32) -> ProcessStatus {
        ProcessStatus { describe: describe.into(), spare, actors, index: 0, pid: 0, cowns: 0, usage: None }
    }

    fn report(program: ProgramStatus, processes: Vec<ProcessStatus>, trees: Vec<TreeStatus>) -> StatusReport {
        let (transitions, bus) = (vec![], vec![]);
        StatusReport {
            version: rebeam_proto::STATUS_VERSION,
            uptime_ms: 0,
            program,
            processes,
            trees,
            transitions,
            bus,
        }
    }

    #[test]
    fn a_refusal_renders_its_message() {
        let message = "cannot arm: the safety state is error".to_string();
        let r = ControlRefusal { kind: rebeam_proto::RefusalKind::SafetyState, message };
        assert_eq!(refusal(&r), "refused: cannot arm: the safety state is error");
    }

    #[test]
    fn a_status_renders_as_the_governor_rendered_it() {
        let inner = TreeStatus {
            label: "inner".into(),
            strategy: Strategy::OneForAll,
            restarts_used: 0,
            max_restarts: 1,
            max_seconds_ms: 2500,
            children: vec![actor(None, "Task", None)],
        };
        let report = report(
            ProgramStatus::Script("/tmp/main.py".into()),
            vec![process("main process (pid 10)", false, 0), process("worker 1 (pid 11)", true, 2)],
            vec![TreeStatus {
                label: "Supervisor".into(),
                strategy: Strategy::OneForOne,
                restarts_used: 1,
                max_restarts: 3,
                max_seconds_ms: 5000,
                children: vec![
                    actor(Some("counter"), "Counter", Some((7, Some("worker 1 (pid 11)")))),
                    ChildStatus::Tree(inner),
                    actor(None, "Lonely", Some((8, None))),
                ],
            }],
        );
        assert_eq!(
            status(&report),
            "script:  /tmp/main.py\n\
             process: main process (pid 10), 0 actor(s)\n\
             process: worker 1 (pid 11) (spare), 2 actor(s)\n\
             supervisor Supervisor (one_for_one): 1 of 3 restarts used in the last 5s\n  \
             'counter' (Counter): running as <7> on worker 1 (pid 11)\n  \
             supervisor inner (one_for_all): 0 of 1 restarts used in the last 2.5s\n    \
             Task: not running\n  \
             Lonely: running as <8> on waiting for a worker\n"
        );
    }

    #[test]
    fn no_tree_says_so() {
        let report = report(ProgramStatus::Library("library mode for pid 5".into()), vec![], vec![]);
        assert_eq!(status(&report), "program: library mode for pid 5\nno supervision tree is running\n");
    }

    #[test]
    fn the_json_form_is_the_safety_state_then_the_reports_own_fields() {
        let report =
            report(ProgramStatus::Library("library mode for pid 5".into()), vec![process("main", true, 1)], vec![]);
        let json: serde_json::Value =
            serde_json::from_str(&status_json(Safety::Disarming, &report).expect("serialisable")).expect("JSON");
        assert_eq!(json["safety"], "disarming");
        assert_eq!(json["version"], rebeam_proto::STATUS_VERSION);
        assert_eq!(json["program"]["Library"], "library mode for pid 5");
        assert_eq!(json["processes"][0]["spare"], true);
        let mut keys: Vec<&str> = json.as_object().expect("an object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["bus", "processes", "program", "safety", "transitions", "trees", "uptime_ms", "version"]);
    }

    #[test]
    fn a_transition_reads_from_to_and_why() {
        let t = SafetyTransition { from: Safety::Disarmed, to: Safety::Armed, reason: "armed by the host".into() };
        assert_eq!(transition(&t), "disarmed → armed: armed by the host");
    }
}
