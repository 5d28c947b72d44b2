use super::{Phase, Sequence, Step};

type Seq = Sequence<&'static str, u32>;

/// Starts every child of a fresh tree, child `i` running as `100 + i`.
fn started(n: usize) -> Seq {
    let mut s = Seq::new(n);
    for i in 0..n {
        assert_eq!(s.next_step(), Some(Step::Start(i)));
        s.child_up(i, 100 + i as u32);
    }
    assert_eq!(s.next_step(), Some(Step::Started));
    s.mark_running();
    s
}

/// Carries out stops until the next step that is not a stop; returns the stopped slots.
fn stops(s: &mut Seq) -> (Vec<usize>, Option<Step<&'static str, u32>>) {
    let mut stopped = Vec::new();
    loop {
        match s.next_step() {
            Some(Step::Stop(slot, running)) => {
                assert_eq!(running, 100 + slot as u32);
                stopped.push(slot);
                assert!(s.child_down(slot));
            }
            other => return (stopped, other),
        }
    }
}

#[test]
fn children_start_in_order_one_at_a_time() {
    let mut s = Seq::new(3);
    assert_eq!(s.next_step(), Some(Step::Start(0)));
    assert_eq!(s.next_step(), None, "the start of 0 is in flight");
    s.child_up(0, 100);
    assert_eq!(s.next_step(), Some(Step::Start(1)));
    s.child_up(1, 101);
    assert_eq!(s.next_step(), Some(Step::Start(2)));
    s.child_up(2, 102);
    assert_eq!(s.next_step(), Some(Step::Started));
    assert_eq!(s.phase(), Phase::Starting);
    s.mark_running();
    assert!(s.idle());
    assert_eq!(s.slots(), [Some(100), Some(101), Some(102)]);
}

#[test]
fn a_stop_runs_in_the_given_order_then_exits() {
    let mut s = started(3);
    assert!(s.stop(vec![2, 1, 0], "shutdown"));
    assert_eq!(s.phase(), Phase::Stopping);
    assert_eq!(stops(&mut s), (vec![2, 1, 0], Some(Step::Exit("shutdown"))));
    assert_eq!(s.slots(), [None, None, None]);
}

#[test]
fn a_second_stop_changes_nothing_once_the_exit_is_queued() {
    let mut s = started(2);
    assert!(s.stop(vec![1, 0], "normal"));
    assert!(!s.stop(vec![1, 0], "shutdown"));
    assert_eq!(stops(&mut s), (vec![1, 0], Some(Step::Exit("normal"))));
}

#[test]
fn a_failed_initial_start_stops_the_started_children_in_reverse() {
    let mut s = Seq::new(4);
    for i in 0..2 {
        assert_eq!(s.next_step(), Some(Step::Start(i)));
        s.child_up(i, 100 + i as u32);
    }
    assert_eq!(s.next_step(), Some(Step::Start(2)));
    s.start_failed(2);
    s.abort_start(2, "crashed");
    assert_eq!(stops(&mut s), (vec![1, 0], Some(Step::Exit("crashed"))));
}

#[test]
fn a_restart_waits_for_its_turn_then_stops_before_it_starts() {
    let mut s = started(3);
    // rest_for_one: 1 ended; stop 2, then start 1 and 2.
    assert!(!s.child_down(1), "an exit nobody asked for");
    s.restart(vec![2], vec![1, 2]);
    assert_eq!(s.next_step(), None, "held until the restart turn");
    s.release();
    assert_eq!(stops(&mut s), (vec![2], Some(Step::Start(1))));
    s.child_up(1, 101);
    assert_eq!(s.next_step(), Some(Step::Start(2)));
    s.child_up(2, 102);
    assert_eq!(s.next_step(), None);
    assert!(s.idle());
}

#[test]
fn a_child_that_ends_as_it_starts_restarts_on_a_later_turn() {
    let mut s = started(1);
    for _ in 0..3 {
        s.child_down(0);
        s.restart(vec![], vec![0]);
        assert_eq!(s.next_step(), None, "no restart within the end");
        s.release();
        assert_eq!(s.next_step(), Some(Step::Start(0)));
        s.child_up(0, 100);
    }
}

#[test]
fn a_restart_that_includes_the_child_starting_stops_it_when_up_and_starts_it_again() {
    let mut s = started(3);
    // one_for_all: 0 ended, 1 and 2 restart; 2's restart is still in flight when 1 ends.
    s.child_down(0);
    s.restart(vec![2, 1], vec![0, 1, 2]);
    s.release();
    assert_eq!(stops(&mut s), (vec![2, 1], Some(Step::Start(0))));
    s.child_up(0, 100);
    assert_eq!(s.next_step(), Some(Step::Start(1)));
    s.child_up(1, 101);
    assert_eq!(s.next_step(), Some(Step::Start(2)));
    s.child_down(1);
    s.restart(vec![0], vec![0, 1, 2]);
    s.release();
    assert_eq!(s.next_step(), None, "2's start is in flight");
    s.child_up(2, 102);
    assert_eq!(stops(&mut s), (vec![2, 0], Some(Step::Start(0))));
    for i in 0..3 {
        if i > 0 {
            assert_eq!(s.next_step(), Some(Step::Start(i)));
        }
        s.child_up(i, 100 + i as u32);
    }
    assert!(s.idle());
}

#[test]
fn an_escalation_stops_the_child_still_starting_in_its_place() {
    let mut s = started(3);
    s.child_down(1);
    s.restart(vec![], vec![1]);
    s.release();
    assert_eq!(s.next_step(), Some(Step::Start(1)));
    s.child_down(2);
    s.escalate(vec![0], "too many restarts");
    s.child_up(1, 101);
    assert_eq!(stops(&mut s), (vec![1, 0], Some(Step::Exit("too many restarts"))));
}

#[test]
fn a_stop_makes_a_held_restart_moot_and_skips_its_starts() {
    let mut s = started(2);
    s.child_down(1);
    s.restart(vec![], vec![1]);
    assert!(s.stop(vec![0], "shutdown"));
    assert_eq!(stops(&mut s), (vec![0], Some(Step::Exit("shutdown"))));
}

#[test]
fn a_stop_while_starting_stops_the_child_in_flight_once_up() {
    let mut s = Seq::new(3);
    assert_eq!(s.next_step(), Some(Step::Start(0)));
    s.child_up(0, 100);
    assert_eq!(s.next_step(), Some(Step::Start(1)));
    assert!(s.stop(vec![2, 1, 0], "shutdown"));
    s.child_up(1, 101);
    // 1 was not up when the stop was queued: its own stop comes after (empty slots are skipped).
    assert_eq!(stops(&mut s), (vec![1, 0], Some(Step::Exit("shutdown"))));
}

#[test]
fn starts_of_occupied_slots_are_skipped() {
    let mut s = started(2);
    s.restart(vec![], vec![0, 1]);
    s.release();
    assert_eq!(s.next_step(), None);
    assert!(s.idle());
}
