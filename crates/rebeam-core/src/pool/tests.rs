use super::*;

fn w(id: u32, spare: bool, ready: bool, load: usize) -> Worker<u32> {
    Worker { id, spare, ready, load }
}

#[test]
fn actors_go_to_the_least_loaded_ready_worker_lowest_id_first() {
    assert_eq!(place([w(1, false, true, 2), w(2, false, true, 1), w(3, false, true, 1)]), Some(2));
    assert_eq!(place([w(1, false, true, 0), w(2, true, true, 0)]), Some(1), "never a spare");
    assert_eq!(place::<u32>([]), None);
}

#[test]
fn starts_wait_while_a_pool_worker_is_starting_but_not_for_a_spare() {
    assert!(warming([w(1, false, true, 0), w(2, false, false, 0)]));
    assert!(!warming([w(1, false, true, 0), w(2, true, false, 0)]));
    assert_eq!(place([w(1, false, false, 0)]), None, "a starting worker takes no actor");
}

#[test]
fn spares_start_once_the_pool_workers_are_ready() {
    assert_eq!(spares_due(1, true, [w(1, false, true, 0), w(2, false, false, 0)]), 0, "worker 2 is starting");
    assert_eq!(spares_due(2, true, [w(1, false, true, 0), w(2, false, true, 0)]), 2);
    assert_eq!(
        spares_due(1, true, [w(1, false, true, 0), w(3, true, false, 0)]),
        1,
        "a starting spare does not hold them"
    );
    assert_eq!(spares_due::<u32>(1, true, []), 1, "no pool workers: nothing to wait for");
    assert_eq!(spares_due(0, true, [w(1, false, true, 0)]), 0);
}

#[test]
fn spares_wait_until_the_start_up_has_settled() {
    let ready = [w(1, false, true, 0), w(2, false, true, 0)];
    assert_eq!(spares_due(1, false, ready), 0);
    assert_eq!(spares_due::<u32>(1, false, []), 0, "not even with no pool workers");
    assert!(settled(false, false, true, false), "the first actor started");
    assert!(settled(false, false, false, true), "no actor yet, but the hold is over");
    assert!(!settled(false, false, false, false), "the main process may be about to start one");
    assert!(!settled(true, false, true, true), "the main process is starting");
    assert!(!settled(false, true, true, true), "an actor is starting");
}

#[test]
fn the_hold_begins_once_all_but_the_first_start_has_settled() {
    assert!(begin_hold(false, false, false, false, false));
    assert!(!begin_hold(true, false, false, false, false), "the main process is starting");
    assert!(!begin_hold(false, true, false, false, false), "an actor is starting");
    assert!(!begin_hold(false, false, true, false, false), "a pool worker is starting");
    assert!(!begin_hold(false, false, false, true, false), "the first start is over: nothing to wait for");
    assert!(!begin_hold(false, false, false, false, true), "once");
}

#[test]
fn a_dead_worker_is_replaced_by_the_ready_spare_first_and_a_new_spare_starts() {
    let r = replace(false, [w(4, true, false, 0), w(5, true, true, 0), w(1, false, true, 3)]);
    assert_eq!(r, Replacement { promote: Some(5), spawn_worker: false, spawn_spare: true });
    let r = replace(false, [w(4, true, false, 0)]);
    assert_eq!(r.promote, Some(4), "a starting spare is better than none");
}

#[test]
fn with_no_spare_a_new_worker_starts_and_a_dead_spare_gets_a_new_spare() {
    let r = replace(false, [w(1, false, true, 0)]);
    assert_eq!(r, Replacement { promote: None, spawn_worker: true, spawn_spare: false });
    let r = replace(true, [w(1, false, true, 0), w(4, true, true, 0)]);
    assert_eq!(r, Replacement { promote: None, spawn_worker: false, spawn_spare: true });
}

#[test]
fn early_deaths_stop_the_run_only_in_a_row() {
    let mut d = EarlyDeaths::default();
    assert!(!d.died());
    assert!(!d.died());
    d.ready();
    assert!(!d.died());
    assert!(!d.died());
    assert!(d.died(), "the third in a row");
}
