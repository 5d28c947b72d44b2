use super::FORGET_BATCH;
use crate::boc::{Boc, Effect, How, Pool};
use crate::cowns::{CownId, Location};

const MAIN: Location = Location::Main;
const W1: Location = Location::Worker(1);
const W2: Location = Location::Worker(2);

type TestBoc = Boc<&'static str>;

fn pool() -> Pool {
    Pool { workers: vec![1, 2], warming: false, main_gone: false }
}

/// The cowns each process is told to let go, sorted.
fn forgets(effects: &[Effect<&'static str>]) -> Vec<(Location, Vec<CownId>)> {
    let mut told: Vec<(Location, Vec<CownId>)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Forget { at, cowns } => {
                let mut cowns = cowns.clone();
                cowns.sort_unstable();
                Some((*at, cowns))
            }
            _ => None,
        })
        .collect();
    told.sort_unstable_by_key(|(at, _)| format!("{at:?}"));
    told
}

/// Cown 1 on worker 1.
fn one_cown() -> TestBoc {
    let mut boc = TestBoc::sending_ahead();
    boc.create_cown(W1, 1, false).unwrap();
    boc
}

#[test]
fn a_dropped_result_cown_is_freed_only_once_its_behaviour_ends() {
    let mut boc = one_cown();
    boc.schedule(MAIN, 10, vec![1], 100, "a", How::default(), &pool()).unwrap();
    assert!(boc.drop_cowns(&[100]).is_empty(), "its behaviour still names it");
    assert_eq!(boc.cown_count(), 2);
    assert!(boc.drop_cowns(&[100]).is_empty(), "a second drop changes nothing");
    let done = boc.behaviour_done(W1, 10, &pool());
    assert_eq!(forgets(&done), vec![(W1, vec![100])]);
    assert_eq!(boc.cown_count(), 1);
    assert!(boc.drop_cowns(&[100, 555]).is_empty(), "unknown cowns are ignored");
}

#[test]
fn a_result_chained_on_stays_until_the_last_behaviour_naming_it_ends() {
    let mut boc = one_cown();
    boc.schedule(MAIN, 10, vec![1], 100, "a", How::default(), &pool()).unwrap();
    boc.schedule(MAIN, 11, vec![100], 101, "b", How::default(), &pool()).unwrap();
    assert!(boc.drop_cowns(&[100, 101]).is_empty());
    assert!(forgets(&boc.behaviour_done(W1, 10, &pool())).is_empty(), "11 still names 100");
    assert_eq!(boc.cown_count(), 3);
    // A new behaviour may not name a dropped cown (the program has no handle for it).
    assert!(boc.schedule(MAIN, 12, vec![100], 102, "c", How::default(), &pool()).is_err());
    assert_eq!(forgets(&boc.behaviour_done(W1, 11, &pool())), vec![(W1, vec![100, 101])]);
    assert_eq!(boc.cown_count(), 1);
}

#[test]
fn an_idle_cown_is_freed_at_once_and_holders_are_told_in_batches_while_work_is_pending() {
    let mut boc = one_cown();
    let many: Vec<CownId> = (1000..1000 + FORGET_BATCH as u64).collect();
    for &c in &many {
        boc.create_cown(W2, c, false).unwrap();
    }
    // Something pending: the holder is told only once its batch is full.
    boc.schedule(MAIN, 10, vec![1], 100, "a", How::default(), &pool()).unwrap();
    let (last, first) = many.split_last().unwrap();
    assert!(boc.drop_cowns(first).is_empty());
    assert_eq!(boc.cown_count(), 3, "forgotten already, only not told");
    assert_eq!(forgets(&boc.drop_cowns(&[*last])), vec![(W2, many.clone())]);
    // Nothing pending: told at once.
    boc.behaviour_done(W1, 10, &pool());
    assert_eq!(forgets(&boc.drop_cowns(&[1])), vec![(W1, vec![1])]);
}

#[test]
fn a_lost_value_is_nobody_s_to_let_go_and_a_dead_holder_is_told_nothing() {
    let mut boc = one_cown();
    boc.create_cown(W2, 2, false).unwrap();
    boc.create_cown(W2, 3, false).unwrap();
    boc.schedule(MAIN, 10, vec![1], 100, "a", How::default(), &pool()).unwrap();
    assert!(boc.drop_cowns(&[2]).is_empty(), "pending: not told yet");
    let died = boc.proc_died(W2, "worker 2", &Pool { workers: vec![1], ..pool() });
    assert!(forgets(&died).is_empty(), "{died:?}");
    let pool1 = Pool { workers: vec![1], ..pool() };
    boc.behaviour_done(W1, 10, &pool1);
    // Cown 3's value died with worker 2: dropping it frees it and tells nobody.
    assert!(forgets(&boc.drop_cowns(&[3])).is_empty());
    assert_eq!(boc.cown_count(), 2);
}

/// Cown 1 (its value on worker 1), requested by behaviour 10, which runs there with handles.
fn shared_cown() -> TestBoc {
    let mut boc = TestBoc::sending_ahead();
    boc.create_cown(W1, 1, false).unwrap();
    boc.schedule(MAIN, 10, vec![1], 100, "a", How::default(), &pool()).unwrap();
    boc
}

#[test]
fn a_released_cown_may_be_scheduled_on_again_and_is_freed_when_nothing_is_queued_on_it() {
    let mut boc = shared_cown();
    assert!(boc.release_cowns(&[1]).is_empty(), "10 is queued on it");
    // The behaviour holding it schedules on it again (as the dining philosophers do).
    boc.schedule(W1, 11, vec![1], 101, "b", How::default(), &pool()).unwrap();
    assert!(forgets(&boc.behaviour_done(W1, 10, &pool())).is_empty(), "11 is queued on it");
    assert_eq!(boc.cown_count(), 3);
    let done = boc.behaviour_done(W1, 11, &pool());
    assert!(forgets(&done).iter().any(|(at, cs)| *at == W1 && cs.contains(&1)), "{done:?}");
    assert_eq!(boc.cown_count(), 2, "the two result cowns are their makers' to drop");
    assert!(boc.release_cowns(&[1]).is_empty(), "a second release changes nothing");
}

#[test]
fn an_idle_released_cown_is_freed_at_once() {
    let mut boc = shared_cown();
    boc.behaviour_done(W1, 10, &pool());
    assert_eq!(forgets(&boc.release_cowns(&[1, 555])), vec![(W1, vec![1])]);
    assert_eq!(boc.cown_count(), 1);
}

#[test]
fn a_kept_cown_is_never_freed() {
    let mut boc = shared_cown();
    boc.keep_cowns(&[1, 555]);
    boc.release_cowns(&[1]);
    assert!(forgets(&boc.behaviour_done(W1, 10, &pool())).is_empty());
    assert!(boc.release_cowns(&[1]).is_empty());
    assert_eq!(boc.cown_count(), 2, "cown 1 and the result cown");
    // Kept after its release (the behaviour kept a handle and said so before it was done).
    let mut boc = shared_cown();
    boc.release_cowns(&[1]);
    boc.keep_cowns(&[1]);
    assert!(forgets(&boc.behaviour_done(W1, 10, &pool())).is_empty());
    assert_eq!(boc.cown_count(), 2);
}
