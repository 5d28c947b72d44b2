//! Snapshots of `rebeam top`'s drawing: fixed reports (no clock, no pids of the machine) drawn
//! into a `TestBackend` and compared as text, line by line.

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use rebeam_proto::{
    ProcessStatus, ProcessUsage, SafetyTransition, Strategy, SubscriptionStatus, TimedTransition, STATUS_VERSION,
};

use super::*;

fn actor(name: Option<&str>, label: &str, running: Option<(u64, &str)>, delivered: u64) -> ChildStatus {
    ChildStatus::Actor {
        name: name.map(str::to_owned),
        label: label.into(),
        running: running.map(|(a, p)| (a, Some(p.to_owned()))),
        mailbox: if running.is_some() { 3 } else { 0 },
        delivered,
        restarts: if running.is_some() { 2 } else { 0 },
        last_crash: running.is_some().then(|| "Crashed: ZeroDivisionError: division by zero".to_owned()),
    }
}

fn process(describe: &str, pid: u32, spare: bool, cpu_ms: u64) -> ProcessStatus {
    let usage = Some(ProcessUsage { cpu_ms, rss_bytes: 48 * 1024 * 1024 });
    ProcessStatus {
        describe: describe.into(),
        spare,
        actors: if spare { 0 } else { 1 },
        index: 0,
        pid,
        cowns: 0,
        usage,
    }
}

/// A run 10 s old (or `uptime_ms`): one tree with a nested one, three processes, one
/// transition, one subscription; counters scaled by `k` so two samples give rates.
fn sample(uptime_ms: u64, k: u64) -> Sample {
    let inner = TreeStatus {
        label: "inner".into(),
        strategy: Strategy::OneForAll,
        restarts_used: 0,
        max_restarts: 1,
        max_seconds_ms: 2500,
        children: vec![actor(None, "Task", None, 0)],
    };
    let root = TreeStatus {
        label: "Supervisor<2>".into(),
        strategy: Strategy::OneForOne,
        restarts_used: 1,
        max_restarts: 3,
        max_seconds_ms: 5000,
        children: vec![
            actor(Some("counter"), "Counter", Some((7, "worker 1 (pid 11)")), 100 * k),
            ChildStatus::Tree(inner),
        ],
    };
    let transition = SafetyTransition { from: Safety::Disarmed, to: Safety::Armed, reason: "armed by the host".into() };
    let report = StatusReport {
        version: STATUS_VERSION,
        uptime_ms,
        program: ProgramStatus::Script("/srv/robot/main.py".into()),
        processes: vec![
            process("main process (pid 10)", 10, false, 500 * k),
            process("worker 1 (pid 11)", 11, false, 250 * k),
            process("worker 2 (pid 12)", 12, true, 0),
        ],
        trees: vec![root],
        transitions: vec![TimedTransition { at_ms: 4200, transition }],
        bus: vec![SubscriptionStatus {
            id: 9,
            pattern: "sensor.*".into(),
            owner: "'counter'".into(),
            queued: 2,
            capacity: 64,
            dropped: 5,
        }],
    };
    Sample { state: Safety::Armed, report }
}

fn drawn(width: u16, height: u16, now: &Sample, before: Option<&Sample>, note: Option<&str>) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test backend");
    terminal.draw(|frame| draw(frame, now, before, note)).expect("drawn");
    let buffer = terminal.backend().buffer();
    (0..height).map(|y| (0..width).map(|x| buffer[(x, y)].symbol()).collect::<String>().trim_end().to_owned()).collect()
}

#[test]
fn the_first_sample_draws_every_pane_with_unknown_rates() {
    let screen = drawn(100, 30, &sample(10_000, 1), None, None);
    let expected: Vec<&str> = include_str!("view_snapshots/first.txt").lines().collect();
    assert_eq!(screen, expected, "\n{}", screen.join("\n"));
}

#[test]
fn a_second_sample_draws_rates_from_the_first() {
    // Two seconds later: 100 more messages (50/s), 500 ms more CPU in the main process (25 %
    // of a core) and 250 ms in the worker (12.5 %).
    let screen = drawn(100, 30, &sample(12_000, 2), Some(&sample(10_000, 1)), Some("last refresh failed: gone"));
    let expected: Vec<&str> = include_str!("view_snapshots/second.txt").lines().collect();
    assert_eq!(screen, expected, "\n{}", screen.join("\n"));
}

#[test]
fn a_counter_that_went_down_or_no_time_between_gives_no_rate() {
    let (now, before) = (sample(12_000, 1), sample(10_000, 2));
    let rates = Rates::between(&now, Some(&before));
    assert_eq!(rates.messages(7, 100), None, "a new incarnation under an old id");
    assert_eq!(rates.messages(99, 100), None, "an actor the report before did not have");
    let same = Rates::between(&now, Some(&now));
    assert_eq!(same.cpu_percent(10, 500), None, "no time between the two");
    let rates = Rates::between(&sample(12_000, 2), Some(&sample(10_000, 1)));
    assert_eq!((rates.messages(7, 200), rates.cpu_percent(10, 1000)), (Some(50.0), Some(25.0)));
}

#[test]
fn a_small_terminal_clips_every_pane_and_still_shows_the_header() {
    for (w, h) in [(1, 1), (20, 6), (40, 12)] {
        let screen = drawn(w, h, &sample(10_000, 1), Some(&sample(9_000, 1)), None);
        assert_eq!(screen.len(), usize::from(h));
        assert!(screen[0].starts_with(&"rebeam top"[..usize::from(w).min(10)]), "{screen:?}");
    }
}
