use std::time::Duration;

use proptest::prelude::*;

use super::*;

type Proc = usize;

fn caller(proc: Proc, req: ReqId, deadline: Option<Instant>) -> Option<Caller<Proc>> {
    Some(Caller { proc, req, deadline })
}

#[test]
fn a_reply_goes_to_its_caller_once() {
    let mut f = InFlight::default();
    f.deliver(10, 7, caller(1, 100, None), false);
    let r = f.reply(10).expect("in flight");
    assert_eq!((r.actor, r.caller.map(|c| (c.proc, c.req)), r.gated), (7, Some((1, 100)), false));
    assert_eq!(f.reply(10), None, "a second reply to the same delivery is dropped");
    assert!(f.is_empty());
}

#[test]
fn a_cast_that_is_not_gated_is_not_tracked() {
    let mut f = InFlight::<Proc>::default();
    f.deliver(10, 7, None, false);
    assert!(f.is_empty());
    assert_eq!(f.reply(10), None);
}

#[test]
fn a_timed_out_call_leaves_nothing_behind() {
    let now = Instant::now();
    let mut f = InFlight::default();
    f.deliver(10, 7, caller(1, 1, Some(now - Duration::from_millis(1))), false);
    f.deliver(11, 7, caller(1, 2, Some(now + Duration::from_secs(60))), false);
    f.deliver(12, 7, caller(1, 3, None), false);
    assert_eq!(f.expire(now), 1);
    assert_eq!(f.iter().map(|(d, _)| d).collect::<BTreeSet<_>>(), BTreeSet::from([11, 12]));
    assert_eq!(f.of_actor(7).collect::<Vec<_>>(), vec![11, 12], "the actor's list forgets it too");
    assert_eq!(f.reply(10), None, "a late reply to it is dropped");
    // The actor ending later owes the expired caller nothing.
    let ended = f.actor_ended(7, None);
    assert_eq!(ended.callers.iter().map(|c| c.req).collect::<Vec<_>>(), vec![2, 3]);
    assert!(f.is_empty() && f.of_actor(7).next().is_none());
}

#[test]
fn timed_out_gated_work_stays_until_it_ends() {
    let now = Instant::now();
    let mut f = InFlight::default();
    f.deliver(10, 7, caller(1, 1, Some(now)), true);
    assert_eq!(f.expire(now), 1);
    assert!(f.any_gated(), "the work itself has not stopped");
    assert_eq!(f.get(10).and_then(|d| d.caller), None);
    let r = f.reply(10).expect("still tracked");
    assert!(r.gated && r.caller.is_none());
    assert!(!f.any_gated());
}

#[test]
fn the_end_of_a_dying_workers_actor_answers_every_caller() {
    let mut f = InFlight::default();
    f.deliver(10, 7, caller(1, 1, None), false);
    f.deliver(11, 7, caller(2, 5, None), true);
    f.deliver(12, 7, None, true);
    f.deliver(13, 8, caller(1, 2, None), false);
    let ended = f.actor_ended(7, None);
    let mut who: Vec<(Proc, ReqId)> = ended.callers.iter().map(|c| (c.proc, c.req)).collect();
    who.sort_unstable();
    assert_eq!(who, vec![(1, 1), (2, 5)]);
    assert!(ended.gated);
    assert!(!f.any_gated());
    assert_eq!(f.iter().map(|(d, _)| d).collect::<Vec<_>>(), vec![13], "another actor's call is untouched");
    assert_eq!(f.actor_ended(7, None), Ended::default(), "ending twice owes nothing");
}

#[test]
fn deliveries_its_process_took_in_after_the_actor_died_wait_for_its_own_answer() {
    let mut f = InFlight::default();
    f.deliver(10, 7, caller(1, 1, None), false);
    f.deliver(12, 7, caller(1, 2, None), true);
    f.deliver(14, 7, caller(2, 3, None), false);
    // The worker (process 9) had taken deliveries in up to 12 when actor 7 died.
    let ended = f.actor_ended(7, Some((9, 12)));
    assert_eq!(ended.callers.iter().map(|c| c.req).collect::<Vec<_>>(), vec![1, 2]);
    assert!(ended.gated);
    assert_eq!(f.get(14).and_then(|d| d.awaiting), Some(9), "14 waits for the worker's NoProcess");
    let r = f.reply(14).expect("still tracked");
    assert_eq!(r.caller.map(|c| c.req), Some(3));
    assert!(f.is_empty() && f.of_actor(7).next().is_none());
    // Had the worker died before answering, 14 would have ended with it.
    f.deliver(16, 8, caller(2, 4, None), false);
    f.deliver(17, 8, caller(2, 5, None), false);
    assert!(f.actor_ended(8, Some((9, 15))).callers.is_empty());
    assert_eq!(f.worker_died(3), Ended::default(), "another process owes nothing");
    assert_eq!(f.worker_died(9).callers.iter().map(|c| c.req).collect::<Vec<_>>(), vec![4, 5]);
    assert!(f.is_empty());
}

#[test]
fn a_dead_callers_calls_are_forgotten_but_its_gated_work_is_not() {
    let mut f = InFlight::default();
    f.deliver(10, 7, caller(3, 1, None), false);
    f.deliver(11, 7, caller(3, 2, None), true);
    f.deliver(12, 7, caller(4, 1, None), false);
    assert_eq!(f.proc_died(3), 2);
    assert_eq!(f.get(10), None);
    assert_eq!(f.get(11).map(|d| (d.gated, d.caller)), Some((true, None)));
    assert_eq!(f.get(12).and_then(|d| d.caller).map(|c| c.proc), Some(4));
}

#[test]
fn a_disarm_cancels_gated_work_once_and_answers_its_callers() {
    let mut f = InFlight::default();
    f.deliver(10, 7, caller(1, 1, None), true);
    f.deliver(11, 8, None, true);
    f.deliver(12, 7, caller(1, 2, None), false);
    let first = f.cancel_gated(1);
    assert_eq!(
        first.iter().map(|c| (c.delivery, c.actor, c.caller.map(|c| c.req))).collect::<Vec<_>>(),
        vec![(10, 7, Some(1)), (11, 8, None)]
    );
    assert_eq!(f.reply(10).map(|r| r.caller), Some(None), "its caller was answered by the disarm");
    f.deliver(13, 8, None, true);
    let second = f.cancel_gated(2);
    assert_eq!(second.iter().map(|c| c.delivery).collect::<Vec<_>>(), vec![13], "work cancelled before is not again");
    assert_eq!(f.cancelled_by(1), BTreeSet::from([8]));
    assert_eq!(f.cancelled_by(2), BTreeSet::from([8]));
    assert_eq!(f.get(12).and_then(|d| d.caller).map(|c| c.req), Some(2), "ungated calls are not touched");
}

#[derive(Debug, Clone)]
enum Op {
    Deliver {
        actor: u64,
        proc: usize,
        call: bool,
        gated: bool,
        deadline: u64,
    },
    Reply(u64),
    /// Its worker (a process number) and up to which delivery it had taken them in.
    ActorEnded(u64, usize, u64),
    WorkerDied(usize),
    Expire(u64),
    ProcDied(usize),
    Disarm,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4u64, 0..3usize, any::<bool>(), any::<bool>(), 0..10u64)
            .prop_map(|(actor, proc, call, gated, deadline)| Op::Deliver { actor, proc, call, gated, deadline }),
        (0..40u64).prop_map(Op::Reply),
        (0..4u64, 0..3usize, prop_oneof![0..40u64, Just(DeliveryId::MAX)])
            .prop_map(|(a, w, upto)| Op::ActorEnded(a, w, upto)),
        (0..3usize).prop_map(Op::WorkerDied),
        (0..10u64).prop_map(Op::Expire),
        (0..3usize).prop_map(Op::ProcDied),
        Just(Op::Disarm),
    ]
}

proptest! {
    /// Whatever happens, the index by actor lists exactly the deliveries, every caller is
    /// answered at most once, and nothing is tracked that nobody waits for.
    #[test]
    fn the_index_stays_consistent(ops in proptest::collection::vec(op(), 0..200)) {
        let base = Instant::now();
        let mut f = InFlight::default();
        let (mut next, mut disarms) = (0u64, 0u64);
        let mut answered = BTreeSet::new();
        let mut answer = |c: Caller<usize>| -> Result<(), TestCaseError> {
            prop_assert!(answered.insert(c.req), "req {} answered twice", c.req);
            Ok(())
        };
        for op in ops {
            match op {
                Op::Deliver { actor, proc, call, gated, deadline } => {
                    next += 1;
                    let at = base + Duration::from_secs(deadline);
                    f.deliver(next, actor, call.then_some(Caller { proc, req: next, deadline: Some(at) }), gated);
                }
                Op::Reply(d) => {
                    if let Some(c) = f.reply(d).and_then(|r| r.caller) { answer(c)? }
                }
                Op::ActorEnded(a, w, upto) => for c in f.actor_ended(a, Some((w, upto))).callers { answer(c)? },
                Op::WorkerDied(w) => for c in f.worker_died(w).callers { answer(c)? },
                Op::Expire(t) => { f.expire(base + Duration::from_secs(t)); }
                Op::ProcDied(p) => { f.proc_died(p); }
                Op::Disarm => {
                    disarms += 1;
                    for c in f.cancel_gated(disarms).into_iter().filter_map(|c| c.caller) { answer(c)? }
                }
            }
            let mut listed = 0;
            for (&actor, set) in &f.by_actor {
                prop_assert!(!set.is_empty());
                for d in set {
                    prop_assert_eq!(f.get(*d).map(|d| d.actor), Some(actor));
                    listed += 1;
                }
            }
            prop_assert_eq!(listed, f.len());
            for (_, d) in f.iter() {
                prop_assert!(d.caller.is_some() || d.gated, "a delivery nobody waits for is kept");
                prop_assert!(d.gated || d.cancelled.is_none());
            }
        }
    }
}
