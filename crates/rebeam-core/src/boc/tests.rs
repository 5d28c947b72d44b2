use super::*;

const MAIN: Location = Location::Main;
const W1: Location = Location::Worker(1);
const W2: Location = Location::Worker(2);

type TestBoc = Boc<&'static str>;

fn pool(workers: &[u64]) -> Pool {
    Pool { workers: workers.to_vec(), warming: false, main_gone: false }
}

fn plain() -> How {
    How::default()
}

/// A behaviour sent: its id, where, the values that moved there, and its lost cowns.
type Sent = (BehaviourId, Location, Vec<(CownId, &'static str)>, Vec<CownId>);

fn runs(effects: &[Effect<&'static str>]) -> Vec<Sent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Run(r) => Some((r.behaviour, r.at, r.values.clone(), r.lost.clone())),
            _ => None,
        })
        .collect()
}

fn surrenders(effects: &[Effect<&'static str>]) -> Vec<(Location, CownId)> {
    effects
        .iter()
        .filter_map(|e| match *e {
            Effect::Surrender { from, cown } => Some((from, cown)),
            _ => None,
        })
        .collect()
}

/// Cowns 1 and 2 on worker 1, cown 3 on worker 2.
fn with_cowns() -> TestBoc {
    let mut boc = TestBoc::default();
    boc.create_cown(W1, 1, false).unwrap();
    boc.create_cown(W1, 2, false).unwrap();
    boc.create_cown(W2, 3, false).unwrap();
    boc
}

#[test]
fn a_behaviour_runs_where_most_of_its_cowns_are_once_the_others_arrive() {
    let mut boc = with_cowns();
    let effects = boc.schedule(MAIN, 10, vec![1, 2, 3], 100, "code", plain(), &pool(&[1, 2])).unwrap();
    assert_eq!((surrenders(&effects), runs(&effects)), (vec![(W2, 3)], vec![]));
    assert!(boc.cown_value(99, "stray").is_empty(), "a value nobody asked for");
    let ran = boc.cown_value(3, "three");
    assert_eq!(runs(&ran), vec![(10, W1, vec![(3, "three")], vec![])]);
    let Effect::Run(run) = &ran[0] else { panic!("{ran:?}") };
    assert_eq!((run.cowns.clone(), run.result, run.code, run.gated), (vec![1, 2, 3, 100], 100, "code", false));
    assert_eq!(boc.view().running, vec![(10, W1)]);
    assert!(boc.behaviour_done(W1, 10, &pool(&[1, 2])).is_empty());
    assert_eq!((boc.ran(W1), boc.pending()), (1, 0));
    // Its cowns are where it ran now: the next behaviour on cown 3 asks nobody for it.
    let next = boc.schedule(MAIN, 11, vec![3], 101, "c", plain(), &pool(&[1, 2])).unwrap();
    assert_eq!(runs(&next), vec![(11, W1, vec![], vec![])]);
}

#[test]
fn behaviours_sharing_a_cown_run_in_order_and_wait_answers_when_none_is_left() {
    let mut boc = with_cowns();
    let first = boc.schedule(MAIN, 10, vec![1], 100, "a", plain(), &pool(&[1])).unwrap();
    assert_eq!(runs(&first).len(), 1);
    // Chained on the first's result cown: it waits, as does wait().
    assert!(boc.schedule(MAIN, 11, vec![100], 101, "b", plain(), &pool(&[1])).unwrap().is_empty());
    assert!(boc.quiesce(MAIN, 7, 1).is_empty());
    let second = boc.behaviour_done(W1, 10, &pool(&[1]));
    assert_eq!(runs(&second), vec![(11, W1, vec![], vec![])]);
    let done = boc.behaviour_done(W1, 11, &pool(&[1]));
    assert_eq!(done, vec![Effect::Quiesced { to: MAIN, req: 7 }]);
    assert!(boc.behaviour_done(W1, 11, &pool(&[1])).is_empty(), "a late notice");
    assert_eq!(boc.quiesce(W2, 8, 2), vec![Effect::Quiesced { to: W2, req: 8 }]);
}

#[test]
fn a_wait_times_out_and_a_dead_process_stops_waiting() {
    let mut boc = with_cowns();
    boc.schedule(MAIN, 10, vec![1], 100, "a", plain(), &pool(&[1])).unwrap();
    assert!(boc.quiesce(MAIN, 7, 1).is_empty());
    assert!(boc.quiesce(W2, 8, 2).is_empty());
    assert_eq!(boc.quiesce_deadline(1), vec![Effect::QuiesceTimedOut { to: MAIN, req: 7, pending: 1 }]);
    assert!(boc.quiesce_deadline(1).is_empty());
    boc.proc_died(W2, "worker 2", &pool(&[1]));
    assert!(boc.view().quiesce.is_empty());
}

#[test]
fn while_the_pool_warms_a_burst_waits_for_the_next_ready_worker() {
    let mut boc = TestBoc::default();
    let warming = Pool { workers: vec![1], warming: true, main_gone: false };
    let first = boc.schedule(MAIN, 10, vec![], 100, "a", plain(), &warming).unwrap();
    assert_eq!(runs(&first), vec![(10, W1, vec![], vec![])]);
    assert!(boc.schedule(MAIN, 11, vec![], 101, "b", plain(), &warming).unwrap().is_empty());
    assert!(boc.dispatch_waiting(&warming).is_empty());
    assert!(boc.dispatch_waiting(&Pool::default()).is_empty(), "no worker ready: no place");
    let ready = boc.dispatch_waiting(&Pool { workers: vec![1, 2], warming: true, main_gone: false });
    assert_eq!(runs(&ready), vec![(11, W2, vec![], vec![])]);
}

#[test]
fn pinned_and_acquired_behaviours_run_in_the_main_process() {
    let mut boc = TestBoc::default();
    boc.create_cown(MAIN, 1, true).unwrap();
    assert_eq!(boc.create_cown(W1, 2, true), Err(CownError::PinnedOffMain(2)));
    let pinned = boc.schedule(W1, 10, vec![1], 100, "a", plain(), &pool(&[1])).unwrap();
    assert_eq!(runs(&pinned), vec![(10, MAIN, vec![], vec![])]);
    boc.behaviour_done(MAIN, 10, &pool(&[1]));
    let acquire = How { at_main: true, gated: false };
    assert_eq!(boc.schedule(W1, 11, vec![], 101, "b", acquire, &pool(&[1])), Err(BocError::AcquireOffMain));
    let acquired = boc.schedule(MAIN, 11, vec![100], 101, "b", acquire, &pool(&[1])).unwrap();
    assert_eq!(runs(&acquired), vec![(11, MAIN, vec![], vec![])]);
    boc.behaviour_done(MAIN, 11, &pool(&[1]));
    // An acquire counts as no behaviour run, and its result cown is gone with it.
    assert_eq!(boc.ran(MAIN), 1);
    let unknown = boc.schedule(MAIN, 12, vec![101], 102, "c", plain(), &pool(&[1]));
    assert_eq!(unknown, Err(BocError::Cown(CownError::UnknownCown(101))));
    // A refused request leaves nothing: its result cown id is free again.
    assert!(boc.schedule(MAIN, 12, vec![], 102, "c", plain(), &pool(&[1])).is_ok());
}

#[test]
fn a_behaviour_that_needs_a_main_process_that_is_gone_is_lost_and_the_next_goes_on() {
    let mut boc = TestBoc::default();
    boc.create_cown(MAIN, 1, true).unwrap();
    let gone = Pool { workers: vec![1], warming: false, main_gone: true };
    let lost = boc.schedule(MAIN, 10, vec![1], 100, "a", plain(), &gone).unwrap();
    assert_eq!(lost, vec![Effect::LostBeforeDispatch(10)]);
    let next = boc.schedule(MAIN, 11, vec![100], 101, "b", plain(), &gone).unwrap();
    assert_eq!(runs(&next), vec![(11, W1, vec![], vec![100])]);
}

#[test]
fn a_dead_worker_takes_its_values_and_its_behaviours_with_it() {
    let mut boc = with_cowns();
    let gated = How { at_main: false, gated: true };
    // 10 runs on worker 2 (cown 3); 11 gathers on worker 1, waiting for cown 3 from worker 2.
    let running = boc.schedule(MAIN, 10, vec![3], 100, "a", gated, &pool(&[1, 2])).unwrap();
    assert!(matches!(&running[..], [Effect::Run(Run { at: W2, gated: true, .. })]));
    let waiting = boc.schedule(MAIN, 11, vec![1, 2, 3], 101, "b", plain(), &pool(&[1, 2])).unwrap();
    assert!(waiting.is_empty(), "cown 3 is busy: {waiting:?}");
    let effects = boc.proc_died(W2, "worker 2", &pool(&[1]));
    // The gated behaviour ended first; then 11 runs on worker 1 with cown 3 lost.
    assert_eq!(effects[0], Effect::GatedEnded(10));
    assert_eq!(runs(&effects[1..]), vec![(11, W1, vec![], vec![3])]);
    assert!(boc.view().running.iter().all(|&(_, at)| at == W1));
}

#[test]
fn a_worker_that_dies_while_others_gather_from_it_leaves_them_to_run_without_its_values() {
    let mut boc = with_cowns();
    // 10 gathers on worker 1: cown 3 must come from worker 2.
    let effects = boc.schedule(MAIN, 10, vec![1, 3], 100, "a", plain(), &pool(&[1, 2])).unwrap();
    assert_eq!(surrenders(&effects), vec![(W2, 3)]);
    let after = boc.proc_died(W2, "worker 2", &pool(&[1]));
    assert_eq!(runs(&after), vec![(10, W1, vec![], vec![3])]);
    // A value surrendered before the death is safe, on its way: 11 gathers on worker 1 from
    // workers 2 and 3, and worker 2 dies once it has sent cown 3.
    let mut boc = with_cowns();
    boc.create_cown(Location::Worker(3), 5, false).unwrap();
    let eleven = boc.schedule(MAIN, 11, vec![1, 2, 3, 5], 101, "b", plain(), &pool(&[1, 2, 3])).unwrap();
    assert_eq!(surrenders(&eleven), vec![(W2, 3), (Location::Worker(3), 5)]);
    assert!(boc.cown_value(3, "three").is_empty());
    assert!(runs(&boc.proc_died(W2, "worker 2", &pool(&[1, 3]))).is_empty());
    let ran = boc.cown_value(5, "five");
    assert_eq!(runs(&ran), vec![(11, W1, vec![(3, "three"), (5, "five")], vec![])]);
    // Worker 1, running 11, dies: the next behaviour on cown 3 finds it lost.
    assert!(boc.schedule(MAIN, 12, vec![3], 102, "c", plain(), &pool(&[1, 3])).unwrap().is_empty());
    let died = boc.proc_died(W1, "worker 1", &pool(&[3]));
    assert_eq!(runs(&died), vec![(12, Location::Worker(3), vec![], vec![3])]);
}

/// Sends ahead, with cowns 1 and 2 on worker 1 and cown 3 on worker 2.
fn ahead_with_cowns() -> TestBoc {
    let mut boc = TestBoc::sending_ahead();
    boc.create_cown(W1, 1, false).unwrap();
    boc.create_cown(W1, 2, false).unwrap();
    boc.create_cown(W2, 3, false).unwrap();
    boc
}

#[test]
fn a_chain_on_one_worker_is_sent_ahead_and_costs_no_dispatch_when_each_is_done() {
    let mut boc = ahead_with_cowns();
    let p = pool(&[1, 2]);
    assert_eq!(runs(&boc.schedule(MAIN, 10, vec![1], 100, "a", plain(), &p).unwrap()), vec![(10, W1, vec![], vec![])]);
    // Behind 10 on cown 1, and behind 10 on its result cown, and with cown 2 already there.
    let b = boc.schedule(MAIN, 11, vec![1, 2], 101, "b", plain(), &p).unwrap();
    assert_eq!(runs(&b), vec![(11, W1, vec![], vec![])]);
    let c = boc.schedule(MAIN, 12, vec![100, 101], 102, "c", plain(), &p).unwrap();
    assert_eq!(runs(&c), vec![(12, W1, vec![], vec![])]);
    assert!(boc.quiesce(MAIN, 7, 1).is_empty());
    assert!(boc.behaviour_done(W1, 10, &p).is_empty(), "11 already waits in worker 1");
    assert!(boc.behaviour_done(W1, 11, &p).is_empty());
    assert_eq!(boc.behaviour_done(W1, 12, &p), vec![Effect::Quiesced { to: MAIN, req: 7 }]);
    assert_eq!((boc.ran(W1), boc.pending()), (3, 0));
}

#[test]
fn a_behaviour_that_needs_a_value_from_elsewhere_or_follows_one_not_sent_yet_waits() {
    let mut boc = ahead_with_cowns();
    let p = pool(&[1, 2]);
    boc.schedule(MAIN, 10, vec![1], 100, "a", plain(), &p).unwrap();
    // Cown 3 must come from worker 2: dispatched when 10 is done, as without sending ahead.
    assert!(boc.schedule(MAIN, 11, vec![1, 3], 101, "b", plain(), &p).unwrap().is_empty());
    let next = boc.behaviour_done(W1, 10, &p);
    assert_eq!(surrenders(&next), vec![(W2, 3)]);
    // 12 follows 11, which is still gathering: not sent before it.
    assert!(boc.schedule(MAIN, 12, vec![1], 102, "c", plain(), &p).unwrap().is_empty());
    assert_eq!(runs(&boc.cown_value(3, "three")), vec![(11, W1, vec![(3, "three")], vec![])]);
    assert_eq!(runs(&boc.behaviour_done(W1, 11, &p)), vec![(12, W1, vec![], vec![])]);
    // Behind behaviours sent to two different workers: not sent ahead.
    boc.create_cown(W2, 4, false).unwrap();
    assert_eq!(runs(&boc.schedule(MAIN, 13, vec![1, 2], 103, "d", plain(), &p).unwrap()).len(), 1, "ahead");
    assert_eq!(runs(&boc.schedule(MAIN, 14, vec![4], 104, "e", plain(), &p).unwrap()), vec![(14, W2, vec![], vec![])]);
    assert!(boc.schedule(MAIN, 15, vec![2, 4], 105, "f", plain(), &p).unwrap().is_empty());
}

#[test]
fn gated_pinned_and_acquiring_behaviours_are_never_sent_ahead_nor_followed_ahead() {
    let mut boc = ahead_with_cowns();
    let p = pool(&[1, 2]);
    let gated = How { at_main: false, gated: true };
    boc.schedule(MAIN, 10, vec![1], 100, "a", plain(), &p).unwrap();
    assert!(boc.schedule(MAIN, 11, vec![1], 101, "b", gated, &p).unwrap().is_empty());
    assert_eq!(runs(&boc.behaviour_done(W1, 10, &p)), vec![(11, W1, vec![], vec![])]);
    assert!(boc.schedule(MAIN, 12, vec![1], 102, "c", plain(), &p).unwrap().is_empty(), "behind a gated one");
    boc.create_cown(MAIN, 9, true).unwrap();
    let acquire = How { at_main: true, gated: false };
    assert!(boc.schedule(MAIN, 13, vec![1, 9], 103, "d", plain(), &p).unwrap().is_empty());
    assert!(boc.schedule(MAIN, 14, vec![1], 104, "e", acquire, &p).unwrap().is_empty());
    // A worker no longer in the pool takes nothing ahead.
    boc.schedule(MAIN, 15, vec![3], 105, "f", plain(), &p).unwrap();
    assert!(boc.schedule(MAIN, 16, vec![3], 106, "g", plain(), &pool(&[1])).unwrap().is_empty());
}

#[test]
fn a_worker_that_dies_takes_the_behaviours_sent_ahead_to_it_and_the_rest_goes_on() {
    let mut boc = ahead_with_cowns();
    let p = pool(&[1, 2]);
    boc.schedule(MAIN, 10, vec![1], 100, "a", plain(), &p).unwrap();
    assert_eq!(runs(&boc.schedule(MAIN, 11, vec![1], 101, "b", plain(), &p).unwrap()).len(), 1);
    assert_eq!(runs(&boc.schedule(MAIN, 12, vec![101], 102, "c", plain(), &p).unwrap()).len(), 1);
    // 13 needs cown 3 from worker 2 too: it waits for 11 in the governor.
    assert!(boc.schedule(MAIN, 13, vec![1, 3], 103, "d", plain(), &p).unwrap().is_empty());
    assert!(boc.quiesce(W2, 8, 2).is_empty());
    let died = boc.proc_died(W1, "worker 1", &pool(&[2]));
    assert!(!died.iter().any(|e| matches!(e, Effect::Oddity(_))), "{died:?}");
    assert_eq!(runs(&died), vec![(13, W2, vec![], vec![1])]);
    assert_eq!(boc.view().running, vec![(13, W2)]);
    assert_eq!(boc.behaviour_done(W2, 13, &pool(&[2])), vec![Effect::Quiesced { to: W2, req: 8 }]);
    // The chain's result cowns died with it.
    let after = boc.schedule(MAIN, 14, vec![102], 104, "e", plain(), &pool(&[2])).unwrap();
    assert_eq!(runs(&after), vec![(14, W2, vec![], vec![102])]);
}

#[test]
fn a_behaviour_sent_ahead_and_said_done_too_early_counts_once_the_one_before_it_is_done() {
    let mut boc = ahead_with_cowns();
    let p = pool(&[1, 2]);
    boc.schedule(MAIN, 10, vec![1], 100, "a", plain(), &p).unwrap();
    boc.schedule(MAIN, 11, vec![1], 101, "b", plain(), &p).unwrap();
    boc.schedule(MAIN, 12, vec![1], 102, "c", plain(), &p).unwrap();
    assert!(boc.quiesce(MAIN, 7, 1).is_empty());
    assert!(boc.behaviour_done(W2, 12, &p).is_empty(), "from a worker it was not sent to: ignored");
    assert!(boc.behaviour_done(W1, 12, &p).is_empty());
    assert!(boc.behaviour_done(W1, 11, &p).is_empty());
    assert_eq!(boc.pending(), 3);
    assert_eq!(boc.behaviour_done(W1, 10, &p), vec![Effect::Quiesced { to: MAIN, req: 7 }]);
    assert_eq!((boc.ran(W1), boc.pending()), (3, 0));
}
