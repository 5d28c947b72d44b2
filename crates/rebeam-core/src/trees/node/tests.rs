use std::time::{Duration, Instant};

use super::{Ended, Node};
use crate::supervision::{Decision, ExitReason, Intensity, Restart, Strategy};
use crate::trees::Step;

type N = Node<String, u32>;

fn crash() -> ExitReason {
    ExitReason::Crashed("boom".into())
}

fn escalated(reason: ExitReason) -> String {
    format!("escalated: {reason}")
}

/// A running tree of `n` permanent children, child `i` running as `100 + i`.
fn running(strategy: Strategy, max_restarts: u32, n: usize) -> N {
    let mut t = N::new(strategy, Intensity::new(max_restarts, Duration::from_secs(5)), vec![Restart::Permanent; n]);
    for i in 0..n {
        assert_eq!(t.seq.next_step(), Some(Step::Start(i)));
        t.child_up(i, 100 + i as u32);
    }
    assert_eq!(t.seq.next_step(), Some(Step::Started));
    assert!(t.mark_running().is_empty());
    t
}

/// Carries out the queued steps, bringing up every started child; returns them in order.
fn drain(t: &mut N) -> Vec<Step<String, u32>> {
    let mut steps = Vec::new();
    while let Some(step) = t.seq.next_step() {
        match &step {
            Step::Start(slot) => t.child_up(*slot, 100 + *slot as u32),
            Step::Stop(slot, _) => {
                assert_eq!(
                    t.child_ended(*slot, "shutdown".into(), &ExitReason::Shutdown, Instant::now(), None, escalated),
                    Ended::Awaited
                );
            }
            Step::Started | Step::Exit(_) => {}
        }
        let last = matches!(step, Step::Exit(_));
        steps.push(step);
        if last {
            break;
        }
    }
    steps
}

#[test]
fn one_for_all_stops_the_others_in_reverse_then_starts_all_in_order_on_the_restart_turn() {
    let mut t = running(Strategy::OneForAll, 3, 3);
    let now = Instant::now();
    let ended = t.child_ended(1, "crashed".into(), &crash(), now, None, escalated);
    assert_eq!(ended, Ended::Decided(Decision::Restart { stop: vec![2, 0], start: vec![0, 1, 2] }));
    assert!(drain(&mut t).is_empty(), "the restart waits for its turn");
    t.seq.release();
    assert_eq!(drain(&mut t), [Step::Stop(2, 102), Step::Stop(0, 100), Step::Start(0), Step::Start(1), Step::Start(2)]);
    assert_eq!(t.restarts_in_window(now), 1);
}

#[test]
fn exceeding_the_intensity_stops_every_child_in_reverse_and_ends_the_tree_for_its_parent() {
    let mut t = running(Strategy::OneForOne, 0, 3);
    let ended = t.child_ended(1, "crashed".into(), &crash(), Instant::now(), None, escalated);
    assert_eq!(ended, Ended::Decided(Decision::Escalate { stop: vec![2, 0] }));
    let steps = drain(&mut t);
    assert_eq!(steps[..2], [Step::Stop(2, 102), Step::Stop(0, 100)]);
    assert!(matches!(&steps[2], Step::Exit(why) if why.starts_with("escalated: ")), "{steps:?}");
}

#[test]
fn a_restart_that_cannot_start_counts_toward_intensity_until_it_escalates() {
    let mut t = running(Strategy::OneForOne, 1, 1);
    let now = Instant::now();
    t.child_ended(0, "crashed".into(), &crash(), now, None, escalated);
    t.seq.release();
    assert_eq!(t.seq.next_step(), Some(Step::Start(0)));
    let d = t.restart_failed(0, &crash(), now, escalated);
    assert_eq!(d, Decision::Escalate { stop: vec![] });
    assert!(matches!(t.seq.next_step(), Some(Step::Exit(_))));
}

#[test]
fn exits_while_starting_are_handed_back_once_the_tree_runs() {
    let mut t = N::new(Strategy::OneForOne, Intensity::new(3, Duration::from_secs(5)), vec![Restart::Permanent; 2]);
    assert_eq!(t.seq.next_step(), Some(Step::Start(0)));
    t.child_up(0, 100);
    assert_eq!(t.seq.next_step(), Some(Step::Start(1)));
    let ended = t.child_ended(0, "crashed".into(), &crash(), Instant::now(), None, escalated);
    assert_eq!(ended, Ended::Deferred);
    t.child_up(1, 101);
    assert_eq!(t.seq.next_step(), Some(Step::Started));
    assert_eq!(t.mark_running(), [(0, "crashed".to_string(), None)]);
}

#[test]
fn exits_while_stopping_decide_nothing_and_a_second_stop_is_moot() {
    let mut t = running(Strategy::OneForAll, 3, 2);
    assert!(t.stop("shutdown".into()));
    assert!(!t.stop("again".into()));
    assert_eq!(t.seq.next_step(), Some(Step::Stop(1, 101)));
    assert_eq!(t.child_ended(0, "crashed".into(), &crash(), Instant::now(), None, escalated), Ended::Noted);
    assert_eq!(
        t.child_ended(1, "shutdown".into(), &ExitReason::Shutdown, Instant::now(), None, escalated),
        Ended::Awaited
    );
    assert_eq!(t.seq.next_step(), Some(Step::Exit("shutdown".into())));
}

#[test]
fn a_tree_whose_children_all_ended_for_good_is_finished() {
    let mut t = N::new(Strategy::OneForOne, Intensity::new(3, Duration::from_secs(5)), vec![Restart::Transient]);
    assert_eq!(t.seq.next_step(), Some(Step::Start(0)));
    t.child_up(0, 100);
    assert_eq!(t.seq.next_step(), Some(Step::Started));
    t.mark_running();
    assert!(!t.finished());
    let ended = t.child_ended(0, "normal".into(), &ExitReason::Normal, Instant::now(), None, escalated);
    assert_eq!(ended, Ended::Decided(Decision::Ignore));
    assert!(t.finished());
}
