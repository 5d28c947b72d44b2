//! Cowns: behaviour-oriented concurrency (BoC), as in Verona and bocpy.
//!
//! This is the specification of rebeam's cown scheduler. A *cown* (concurrent owner) holds
//! a value; a *behaviour* (a `@when` function) requests a set of cowns and runs with
//! exclusive access to all of them. This module decides which behaviours may run and where
//! they should run; the governor dispatches them, moves values between processes, and
//! reports back. Nothing here runs code, reads a clock or starts a thread.
//!
//! # Cowns
//!
//! The governor creates a cown ([`Scheduler::create_cown`]) with its value at a
//! [`Location`]: the process that last used it, so that a value moves only when a behaviour
//! needs it elsewhere. A *pinned* cown (bocpy's `PinnedCown`) never leaves the main
//! process: it is created at `Main` and only behaviours run in `Main` may use it. Result
//! cowns, which chain behaviours, are ordinary cowns the governor creates before
//! scheduling the behaviour that fills them.
//!
//! # Scheduling ([`Scheduler::schedule`])
//!
//! - A request is a set: duplicates are removed, and the empty set is allowed.
//!   [`Scheduler::cowns_of`] returns it sorted.
//! - Each cown has a queue of the behaviours that requested it. Scheduling appends the
//!   behaviour to the queue of every cown it requested, all at once (the scheduler is
//!   single-threaded, so "at once" is trivially atomic). The order of the `schedule` calls
//!   is the *global order*, and every queue lists its behaviours in that order.
//!
//! # Running ([`Scheduler::start`], [`Scheduler::complete`])
//!
//! - A behaviour is *runnable* when it is at the head of the queue of every cown it
//!   requested; an empty request is runnable at once. The governor starts runnable
//!   behaviours ([`Scheduler::runnable`] lists them in global order); a started behaviour
//!   runs on all its cowns at once.
//! - When it completes (a failure is the same thing for the queues), it leaves the head of
//!   every queue, its cowns' values are where it ran, and the behaviours now at the heads
//!   may become runnable.
//!
//! Three properties follow:
//!
//! - *Exclusion*: two running behaviours never share a cown, since both would be at the
//!   head of its queue, and a queue has one head.
//! - *Causal order*: two behaviours sharing a cown run in the order they were scheduled;
//!   the second starts only after the first completed. Behaviours sharing no cown are
//!   independent and may run in parallel.
//! - *No deadlock*: while any behaviour is pending, one is runnable or running. Take the
//!   pending behaviour earliest in the global order: whatever was ahead of it in any queue
//!   was scheduled earlier, so it has completed and left; hence it is at every head.
//!
//! Each behaviour counts the queues it is not yet at the head of. Scheduling sets the
//! count; a completion decrements it for each new head; zero means runnable. So every
//! event costs O(cowns of the behaviour), whatever else is queued.
//!
//! # Dropping ([`Scheduler::drop_cown`])
//!
//! When the program drops its last handle to a cown, the cown is forgotten as soon as its
//! queue is empty: at once, or when the last behaviour queued on it completes. Until then
//! no new behaviour may request it (the program has no handle to name it with), and a
//! second drop notice is ignored. Once forgotten, its id is unknown and may be reused.
//!
//! # Placement ([`place`])
//!
//! A runnable behaviour runs in `Main` if any of its cowns is pinned. Otherwise it runs in
//! the available worker that holds the most of its cowns, so that the fewest values move;
//! ties go to the least loaded of them, then to the lowest index. A behaviour none of whose
//! cowns is in an available worker (values in `Main` or in a worker that is gone, or no
//! cowns at all) thus goes to the least loaded worker. With no worker available and no
//! pinned cown there is no place (`None`); the governor decides what to do.
//!
//! # Errors ([`CownError`])
//!
//! A call that is refused changes nothing. Ids are the governor's: creating an existing
//! cown or scheduling a pending behaviour id again is refused; a behaviour id may be reused
//! once it completed. Only a runnable behaviour that is not running may be started, and
//! only a running one may complete. A behaviour holding a pinned cown completes in `Main`.
//!
//! # Tables
//!
//! The tables here and in [`crate::boc`] are keyed by ids the processes of one run chose, and
//! touched several times per behaviour: they hash with foldhash (seeded per table), not std's
//! SipHash, whose resistance to chosen keys buys nothing against the run's own processes and
//! was a sixth of the governor's time per behaviour.

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};

use foldhash::{HashMap, HashMapExt};

pub type CownId = u64;
pub type BehaviourId = u64;

/// A behaviour's position in the global order: how many `schedule` calls came before it.
type Seq = u64;

/// Where a cown's value is: the process that last used it, so it moves only when a behaviour needs it elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Location {
    Main,
    Worker(u64),
}

/// A call the scheduler refuses; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CownError {
    #[error("unknown cown {0}: it was never created in this runtime (or it was dropped, or the runtime that made it has ended)")]
    UnknownCown(CownId),
    #[error("cown {0} already exists")]
    DuplicateCown(CownId),
    #[error("cown {0} was dropped: no new behaviour may request it")]
    DroppedCown(CownId),
    #[error("cown {0} is pinned: its value never leaves the main process")]
    PinnedOffMain(CownId),
    #[error("unknown behaviour {0}: it was never scheduled, or it has completed")]
    UnknownBehaviour(BehaviourId),
    #[error("behaviour {0} is already scheduled and has not completed")]
    DuplicateBehaviour(BehaviourId),
    #[error("behaviour {0} is not runnable: earlier behaviours still hold some of its cowns")]
    NotRunnable(BehaviourId),
    #[error("behaviour {0} is already running")]
    AlreadyRunning(BehaviourId),
    #[error("behaviour {0} is not running: only a started behaviour can complete")]
    NotRunning(BehaviourId),
}

#[derive(Debug, Clone)]
struct Cown {
    at: Location,
    pinned: bool,
    /// Pending behaviours that requested this cown, in global order; the head holds it, or
    /// will once started.
    queue: VecDeque<BehaviourId>,
    /// The program dropped its last handle: forget the cown once `queue` is empty.
    dropped: bool,
}

#[derive(Debug, Clone)]
struct Behaviour {
    seq: Seq,
    /// Deduplicated and sorted.
    cowns: Vec<CownId>,
    /// Queues this behaviour is not yet at the head of; runnable at zero.
    blocked: usize,
    running: bool,
}

/// The cowns of one program and the behaviours scheduled on them.
#[derive(Debug, Clone, Default)]
pub struct Scheduler {
    cowns: HashMap<CownId, Cown>,
    /// Pending behaviours: scheduled and not yet completed.
    behaviours: HashMap<BehaviourId, Behaviour>,
    /// Runnable behaviours not yet started, by position in the global order.
    ready: BTreeMap<Seq, BehaviourId>,
    next_seq: Seq,
}

impl Scheduler {
    pub fn new() -> Self {
        Scheduler::default()
    }

    /// A new cown, its value at `at`. A pinned cown must be created at `Main`.
    pub fn create_cown(&mut self, id: CownId, at: Location, pinned: bool) -> Result<(), CownError> {
        if self.cowns.contains_key(&id) {
            return Err(CownError::DuplicateCown(id));
        }
        if pinned && at != Location::Main {
            return Err(CownError::PinnedOffMain(id));
        }
        self.cowns.insert(id, Cown { at, pinned, queue: VecDeque::new(), dropped: false });
        Ok(())
    }

    /// The program dropped its last handle: forget the cown once no behaviour waits on it (returns whether it is gone now).
    pub fn drop_cown(&mut self, id: CownId) -> Result<bool, CownError> {
        let cown = self.cowns.get_mut(&id).ok_or(CownError::UnknownCown(id))?;
        if cown.queue.is_empty() {
            self.cowns.remove(&id);
            return Ok(true);
        }
        cown.dropped = true;
        Ok(false)
    }

    /// Enqueues `b` on all of `cowns` (deduplicated). Returns true if `b` is runnable at once.
    pub fn schedule(&mut self, b: BehaviourId, cowns: &[CownId]) -> Result<bool, CownError> {
        self.schedule_owned(b, cowns.to_vec())
    }

    /// As [`Scheduler::schedule`], keeping `cowns` as the behaviour's own list (no copy).
    pub fn schedule_owned(&mut self, b: BehaviourId, mut cowns: Vec<CownId>) -> Result<bool, CownError> {
        if self.behaviours.contains_key(&b) {
            return Err(CownError::DuplicateBehaviour(b));
        }
        cowns.sort_unstable();
        cowns.dedup();
        // Check every cown before touching any queue: a refusal changes nothing.
        for &c in &cowns {
            match self.cowns.get(&c) {
                None => return Err(CownError::UnknownCown(c)),
                Some(cown) if cown.dropped => return Err(CownError::DroppedCown(c)),
                Some(_) => {}
            }
        }
        let mut blocked = 0;
        for &c in &cowns {
            let queue = &mut self.cown_mut(c).queue;
            blocked += usize::from(!queue.is_empty());
            queue.push_back(b);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.behaviours.insert(b, Behaviour { seq, cowns, blocked, running: false });
        if blocked == 0 {
            self.ready.insert(seq, b);
        }
        Ok(blocked == 0)
    }

    /// Marks a runnable behaviour as running (the governor dispatched it).
    pub fn start(&mut self, b: BehaviourId) -> Result<(), CownError> {
        let behaviour = self.behaviours.get_mut(&b).ok_or(CownError::UnknownBehaviour(b))?;
        if behaviour.running {
            return Err(CownError::AlreadyRunning(b));
        }
        if behaviour.blocked > 0 {
            return Err(CownError::NotRunnable(b));
        }
        behaviour.running = true;
        self.ready.remove(&behaviour.seq);
        Ok(())
    }

    /// `b` completed (or failed — same thing for the queues); its values are now at `at`. Returns the behaviours that became runnable, in scheduling order.
    pub fn complete(&mut self, b: BehaviourId, at: Location) -> Result<Vec<BehaviourId>, CownError> {
        self.complete_taking(b, at).map(|(woken, _)| woken)
    }

    /// As [`Scheduler::complete`], also handing back the cowns `b` requested (its own list,
    /// no copy): what became runnable, and those cowns.
    pub fn complete_taking(
        &mut self,
        b: BehaviourId,
        at: Location,
    ) -> Result<(Vec<BehaviourId>, Vec<CownId>), CownError> {
        let behaviour = self.behaviours.get(&b).ok_or(CownError::UnknownBehaviour(b))?;
        if !behaviour.running {
            return Err(CownError::NotRunning(b));
        }
        if at != Location::Main {
            if let Some(&pinned) = behaviour.cowns.iter().find(|&&c| self.is_pinned(c)) {
                return Err(CownError::PinnedOffMain(pinned));
            }
        }
        let behaviour = self.behaviours.remove(&b).expect("checked above");
        let mut woken = Vec::new();
        for &c in &behaviour.cowns {
            let cown = self.cown_mut(c);
            let head = cown.queue.pop_front();
            debug_assert_eq!(head, Some(b), "a running behaviour is at the head of each of its queues");
            cown.at = at;
            let next = cown.queue.front().copied();
            if next.is_none() && cown.dropped {
                self.cowns.remove(&c);
            }
            if let Some(next) = next {
                let waiting = self.behaviours.get_mut(&next).expect("queued behaviours are pending");
                waiting.blocked -= 1;
                if waiting.blocked == 0 {
                    self.ready.insert(waiting.seq, next);
                    woken.push((waiting.seq, next));
                }
            }
        }
        woken.sort_unstable();
        Ok((woken.into_iter().map(|(_, b)| b).collect(), behaviour.cowns))
    }

    /// The cowns a pending behaviour requested: deduplicated, sorted.
    pub fn cowns_of(&self, b: BehaviourId) -> Option<&[CownId]> {
        self.behaviours.get(&b).map(|behaviour| behaviour.cowns.as_slice())
    }

    /// The behaviour queued last on `c` (None: its queue is empty, or it is unknown).
    pub fn tail(&self, c: CownId) -> Option<BehaviourId> {
        self.cowns.get(&c).and_then(|cown| cown.queue.back().copied())
    }

    pub fn location(&self, c: CownId) -> Option<Location> {
        self.cowns.get(&c).map(|cown| cown.at)
    }

    /// The cowns whose value is at `at` (when a worker dies, these values die with it).
    pub fn cowns_at(&self, at: Location) -> Vec<CownId> {
        let mut found: Vec<CownId> = self.cowns.iter().filter(|(_, c)| c.at == at).map(|(&id, _)| id).collect();
        found.sort_unstable();
        found
    }

    /// False for an unknown cown.
    pub fn is_pinned(&self, c: CownId) -> bool {
        self.cowns.get(&c).is_some_and(|cown| cown.pinned)
    }

    /// Behaviours scheduled and not yet completed.
    pub fn pending(&self) -> usize {
        self.behaviours.len()
    }

    /// Cowns known: created and not yet forgotten.
    pub fn cown_count(&self) -> usize {
        self.cowns.len()
    }

    /// How many known cowns have their value at each location.
    pub fn counts_by_location(&self) -> HashMap<Location, usize> {
        let mut counts = HashMap::new();
        for cown in self.cowns.values() {
            *counts.entry(cown.at).or_default() += 1;
        }
        counts
    }

    /// Runnable behaviours not yet started, in scheduling order (for the governor's dispatch loop).
    pub fn runnable(&self) -> Vec<BehaviourId> {
        self.ready.values().copied().collect()
    }

    /// A cown that a pending behaviour requested, or that was just checked to exist.
    fn cown_mut(&mut self, c: CownId) -> &mut Cown {
        self.cowns.get_mut(&c).expect("cowns of pending behaviours are never forgotten")
    }
}

/// Where a runnable behaviour should run: `Main` if any of its cowns is pinned (PinnedCown values never leave the main process); otherwise the worker that holds the most of its cowns (ties → the least loaded among them, then the lowest index), or, if none of its cowns is in a worker, the least loaded worker. `load` gives the running behaviours per worker (index → count); `workers` lists the available worker indices. Pure.
///
/// `None` for an unknown behaviour, or when no worker is available and no cown is pinned.
pub fn place(sched: &Scheduler, b: BehaviourId, workers: &[u64], load: &dyn Fn(u64) -> usize) -> Option<Location> {
    let cowns = sched.cowns_of(b)?;
    if cowns.iter().any(|&c| sched.is_pinned(c)) {
        return Some(Location::Main);
    }
    let held = |w: u64| cowns.iter().filter(|&&c| sched.location(c) == Some(Location::Worker(w))).count();
    // One key says the whole rule: most cowns held, then least loaded, then lowest index.
    // With no cown in any worker every count is zero, and load decides.
    let best = workers.iter().copied().max_by_key(|&w| (held(w), Reverse(load(w)), Reverse(w)))?;
    Some(Location::Worker(best))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop, proptest};
    use std::collections::BTreeSet;
    use CownError::*;
    use Location::{Main, Worker};

    /// A scheduler with unpinned cowns `ids`, all at `Main`.
    fn with_cowns(ids: &[CownId]) -> Scheduler {
        let mut s = Scheduler::new();
        for &id in ids {
            s.create_cown(id, Main, false).unwrap();
        }
        s
    }

    fn run(s: &mut Scheduler, b: BehaviourId, at: Location) -> Vec<BehaviourId> {
        s.start(b).unwrap();
        s.complete(b, at).unwrap()
    }

    #[test]
    fn increments_on_one_cown_run_one_after_another_in_order() {
        const N: u64 = 500;
        let mut s = with_cowns(&[1]);
        for b in 0..N {
            assert_eq!(s.schedule(b, &[1]), Ok(b == 0));
        }
        let (mut counter, mut order) = (0, Vec::new());
        let mut next = s.runnable();
        while let [b] = next[..] {
            assert_eq!(s.runnable(), [b]);
            s.start(b).unwrap();
            // While it runs, nothing else on the cown may start.
            assert_eq!(s.runnable(), []);
            counter += 1;
            order.push(b);
            next = s.complete(b, Worker(0)).unwrap();
        }
        assert_eq!((counter, s.pending(), s.location(1)), (N, 0, Some(Worker(0))));
        assert_eq!(order, (0..N).collect::<Vec<_>>());
    }

    #[test]
    fn two_cown_transfers_wake_exactly_the_new_heads() {
        let (a, b, c) = (1, 2, 3);
        let mut s = with_cowns(&[a, b, c]);
        assert_eq!(s.schedule(1, &[a, b]), Ok(true));
        assert_eq!(s.schedule(2, &[b, c]), Ok(false));
        assert_eq!(s.schedule(3, &[a]), Ok(false));
        assert_eq!(s.schedule(4, &[a, c]), Ok(false));
        assert_eq!(s.runnable(), [1]);
        assert_eq!(run(&mut s, 1, Worker(0)), [2, 3]);
        assert_eq!(s.runnable(), [2, 3]);
        // 4 waits for 3 on a and for 2 on c.
        assert_eq!(run(&mut s, 3, Worker(1)), []);
        assert_eq!(s.runnable(), [2]);
        assert_eq!(run(&mut s, 2, Worker(0)), [4]);
        assert_eq!(s.runnable(), [4]);
        assert_eq!(run(&mut s, 4, Worker(1)), []);
        assert_eq!((s.runnable(), s.pending()), (vec![], 0));
        assert_eq!([a, b, c].map(|x| s.location(x)), [Some(Worker(1)), Some(Worker(0)), Some(Worker(1))]);
    }

    #[test]
    fn empty_request_is_runnable_at_once() {
        let mut s = with_cowns(&[1]);
        assert_eq!(s.schedule(1, &[1]), Ok(true));
        s.start(1).unwrap();
        assert_eq!(s.schedule(2, &[]), Ok(true));
        assert_eq!(s.cowns_of(2), Some(&[][..]));
        assert_eq!(s.runnable(), [2]);
        assert_eq!(run(&mut s, 2, Worker(3)), []);
        assert_eq!(s.location(1), Some(Main));
    }

    #[test]
    fn duplicates_are_removed_and_the_request_sorted() {
        let mut s = with_cowns(&[1, 2, 3]);
        assert_eq!(s.schedule(1, &[3, 1, 3, 1, 1]), Ok(true));
        assert_eq!(s.cowns_of(1), Some(&[1, 3][..]));
        // Were a duplicate queued twice, 1 would wait on itself.
        assert_eq!(s.runnable(), [1]);
        assert_eq!(s.schedule(2, &[3, 3]), Ok(false));
        assert_eq!(run(&mut s, 1, Main), [2]);
        assert_eq!(run(&mut s, 2, Main), []);
        assert_eq!(s.cowns_of(2), None);
    }

    #[test]
    fn free_cowns_run_at_once_while_a_busy_one_waits() {
        let mut s = with_cowns(&[1, 2, 3]);
        assert_eq!(s.schedule(1, &[1]), Ok(true));
        s.start(1).unwrap();
        assert_eq!(s.schedule(2, &[1, 2]), Ok(false));
        assert_eq!(s.schedule(3, &[3]), Ok(true));
        // 2 holds nothing yet, but a later request for 2 still queues behind it.
        assert_eq!(s.schedule(4, &[2]), Ok(false));
        assert_eq!(s.runnable(), [3]);
        assert_eq!(s.pending(), 4);
        assert_eq!(s.complete(1, Main), Ok(vec![2]));
        assert_eq!(run(&mut s, 2, Main), [4]);
    }

    #[test]
    fn a_dropped_cown_stays_until_its_queue_empties() {
        let mut s = with_cowns(&[1, 2]);
        s.schedule(1, &[1]).unwrap();
        s.schedule(2, &[1, 2]).unwrap();
        assert_eq!(s.drop_cown(1), Ok(false));
        assert_eq!(s.drop_cown(1), Ok(false), "a second notice is ignored");
        assert_eq!(s.schedule(3, &[1]), Err(DroppedCown(1)));
        assert_eq!(run(&mut s, 1, Worker(2)), [2]);
        assert_eq!(s.location(1), Some(Worker(2)));
        assert_eq!(run(&mut s, 2, Worker(0)), []);
        assert_eq!(s.location(1), None);
        assert_eq!(s.drop_cown(1), Err(UnknownCown(1)));
        assert_eq!(s.drop_cown(2), Ok(true), "nothing queued: gone at once");
        assert_eq!(s.location(2), None);
        // A forgotten id may be created again.
        s.create_cown(1, Worker(1), false).unwrap();
        assert_eq!(s.location(1), Some(Worker(1)));
    }

    /// Cowns 1..=4 at Worker(0), Worker(0), Worker(1), Main; cown 9 pinned.
    fn placed() -> Scheduler {
        let mut s = Scheduler::new();
        for (id, at) in [(1, Worker(0)), (2, Worker(0)), (3, Worker(1)), (4, Main)] {
            s.create_cown(id, at, false).unwrap();
        }
        s.create_cown(9, Main, true).unwrap();
        s
    }

    #[test]
    fn placement() {
        let mut s = placed();
        let requests: [&[CownId]; 8] = [&[1, 2, 3, 9], &[1, 2, 3], &[1, 3], &[4], &[], &[3, 4], &[1, 3], &[1, 2]];
        for (b, cowns) in (1..).zip(requests) {
            s.schedule(b, cowns).unwrap();
        }
        let idle = |_: u64| 0;
        let busy_zero = |w: u64| if w == 0 { 5 } else { 1 };
        let workers = [2, 1, 0];
        // (behaviour, load, expected); 2 holds no cown.
        type Load<'a> = &'a dyn Fn(u64) -> usize;
        let cases: [(BehaviourId, Load, Location); 9] = [
            (1, &idle, Main),                           // pinned wins over any majority
            (2, &busy_zero, Worker(0)),                 // majority wins over load
            (3, &idle, Worker(0)),                      // tie 1–1, equal load: lowest index
            (3, &busy_zero, Worker(1)),                 // tie 1–1: least loaded
            (4, &busy_zero, Worker(1)),                 // in Main only: least loaded worker
            (4, &idle, Worker(0)),                      // ... then lowest index
            (5, &|w| 3 - w as usize, Worker(2)),        // empty request: least loaded
            (6, &busy_zero, Worker(1)),                 // only 3 is in a worker
            (7, &|w| [9, 9, 0][w as usize], Worker(0)), // holding beats an idle worker
        ];
        for (b, load, expected) in cases {
            assert_eq!(place(&s, b, &workers, load), Some(expected), "behaviour {b}");
        }
        // Only available workers count: with Worker(0) gone, 8's cowns go to the least loaded,
        // and 2 goes where the rest of its cowns are.
        let one_busy = |w: u64| if w == 1 { 4 } else { 0 };
        assert_eq!(place(&s, 8, &[1, 2], &one_busy), Some(Worker(2)));
        assert_eq!(place(&s, 2, &[1, 2], &one_busy), Some(Worker(1)));
        assert_eq!(place(&s, 1, &[], &idle), Some(Main));
        assert_eq!(place(&s, 2, &[], &idle), None);
        assert_eq!(place(&s, 99, &workers, &idle), None);
    }

    #[test]
    fn every_refusal_changes_nothing() {
        let mut s = placed();
        assert_eq!(s.create_cown(1, Main, false), Err(DuplicateCown(1)));
        assert_eq!(s.create_cown(8, Worker(0), true), Err(PinnedOffMain(8)));
        assert_eq!(s.location(8), None);
        assert_eq!(s.drop_cown(7), Err(UnknownCown(7)));
        assert_eq!(s.schedule(1, &[1, 7]), Err(UnknownCown(7)));
        assert_eq!((s.pending(), s.cowns_of(1)), (0, None));
        assert_eq!(s.schedule(1, &[1]), Ok(true), "the refused request queued nothing on cown 1");
        assert_eq!(s.schedule(1, &[2]), Err(DuplicateBehaviour(1)));
        assert_eq!(s.schedule(2, &[1, 9]), Ok(false));
        assert_eq!(s.start(5), Err(UnknownBehaviour(5)));
        assert_eq!(s.complete(5, Main), Err(UnknownBehaviour(5)));
        assert_eq!(s.start(2), Err(NotRunnable(2)));
        assert_eq!(s.complete(2, Main), Err(NotRunning(2)));
        assert_eq!(s.complete(1, Main), Err(NotRunning(1)), "runnable is not running");
        s.start(1).unwrap();
        assert_eq!(s.start(1), Err(AlreadyRunning(1)));
        assert_eq!(s.complete(1, Worker(0)), Ok(vec![2]));
        s.start(2).unwrap();
        assert_eq!(s.complete(2, Worker(0)), Err(PinnedOffMain(9)));
        assert_eq!(s.location(1), Some(Worker(0)), "the refused completion moved nothing");
        assert_eq!(s.complete(2, Main), Ok(vec![]));
        assert_eq!(s.start(1), Err(UnknownBehaviour(1)), "completed behaviours are forgotten");
        assert_eq!(s.schedule(1, &[]), Ok(true), "and their ids may be reused");
        assert_eq!(s.drop_cown(9), Ok(true));
        assert_eq!(s.schedule(3, &[9]), Err(UnknownCown(9)));
        assert!(!s.is_pinned(9));
    }

    #[test]
    fn refusals_say_what_happened() {
        let cases = [
            (UnknownCown(7), "unknown cown 7: it was never created in this runtime (or it was dropped, or the runtime that made it has ended)"),
            (DuplicateCown(7), "cown 7 already exists"),
            (DroppedCown(7), "cown 7 was dropped: no new behaviour may request it"),
            (PinnedOffMain(7), "cown 7 is pinned: its value never leaves the main process"),
            (UnknownBehaviour(3), "unknown behaviour 3: it was never scheduled, or it has completed"),
            (DuplicateBehaviour(3), "behaviour 3 is already scheduled and has not completed"),
            (NotRunnable(3), "behaviour 3 is not runnable: earlier behaviours still hold some of its cowns"),
            (AlreadyRunning(3), "behaviour 3 is already running"),
            (NotRunning(3), "behaviour 3 is not running: only a started behaviour can complete"),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    /// Cowns in the random cases.
    const COWNS: u64 = 5;

    /// The reference model: the rules written out directly, with no queues and no counts.
    #[derive(Default)]
    struct Model {
        /// Pending behaviours in global order: (id, cowns, started). Ids grow with the order.
        pending: Vec<(BehaviourId, Vec<CownId>, bool)>,
        dropped: Vec<CownId>,
        /// Per cown, the behaviours that started on it, in start order.
        ran_on: BTreeMap<CownId, Vec<BehaviourId>>,
        scheduled: usize,
        ran: usize,
    }

    impl Model {
        /// Not started, and no earlier pending behaviour shares a cown with it.
        fn runnable(&self) -> Vec<BehaviourId> {
            let shares = |x: &[CownId], y: &[CownId]| x.iter().any(|c| y.contains(c));
            let free = |i: usize| self.pending[..i].iter().all(|(_, earlier, _)| !shares(earlier, &self.pending[i].1));
            (0..self.pending.len()).filter(|&i| !self.pending[i].2 && free(i)).map(|i| self.pending[i].0).collect()
        }

        fn running(&self) -> Vec<BehaviourId> {
            self.pending.iter().filter(|(_, _, started)| *started).map(|(b, _, _)| *b).collect()
        }

        fn requested(&self, c: CownId) -> bool {
            self.pending.iter().any(|(_, cowns, _)| cowns.contains(&c))
        }

        fn start(&mut self, s: &mut Scheduler, b: BehaviourId) {
            let i = self.pending.iter().position(|p| p.0 == b).unwrap();
            // (1) Exclusion: no running behaviour shares a cown with the one starting.
            for (other, cowns, started) in &self.pending {
                let shared = cowns.iter().any(|c| self.pending[i].1.contains(c));
                assert!(!(*started && shared), "{b} would run beside {other}");
            }
            s.start(b).unwrap();
            self.pending[i].2 = true;
            for &c in &self.pending[i].1 {
                self.ran_on.entry(c).or_default().push(b);
            }
            self.ran += 1;
        }

        fn complete(&mut self, s: &mut Scheduler, b: BehaviourId, at: Location) {
            let before = self.runnable();
            self.pending.retain(|p| p.0 != b);
            let woken: Vec<_> = self.runnable().into_iter().filter(|x| !before.contains(x)).collect();
            assert_eq!(s.complete(b, at).unwrap(), woken);
        }

        /// The scheduler agrees with the model, and something can always happen.
        fn check(&self, s: &Scheduler) {
            let runnable = self.runnable();
            // (4) The same runnable set, in the same order.
            assert_eq!(s.runnable(), runnable);
            assert_eq!(s.pending(), self.pending.len());
            // (3) No deadlock: with nothing running, something pending is runnable.
            if self.running().is_empty() {
                assert!(self.pending.is_empty() || !runnable.is_empty());
            }
            for c in 0..COWNS {
                let alive = !self.dropped.contains(&c) || self.requested(c);
                assert_eq!(s.location(c).is_some(), alive, "cown {c}");
            }
        }
    }

    /// One random step: (kind, request, pick).
    type Step = (u8, Vec<CownId>, usize);

    fn run_case(steps: Vec<Step>) {
        let mut s = Scheduler::new();
        let mut m = Model::default();
        for c in 0..COWNS {
            s.create_cown(c, Main, false).unwrap();
        }
        for (kind, request, pick) in steps {
            match kind {
                0 | 1 => {
                    let request: Vec<CownId> = request.into_iter().filter(|c| !m.dropped.contains(c)).collect();
                    let b = m.scheduled as BehaviourId;
                    let cowns: BTreeSet<CownId> = request.iter().copied().collect();
                    m.pending.push((b, cowns.into_iter().collect(), false));
                    m.scheduled += 1;
                    assert_eq!(s.schedule(b, &request).unwrap(), m.runnable().contains(&b));
                }
                2 => {
                    let runnable = m.runnable();
                    if !runnable.is_empty() {
                        m.start(&mut s, runnable[pick % runnable.len()]);
                    }
                }
                3 => {
                    let running = m.running();
                    if !running.is_empty() {
                        let at = if pick % 3 == 0 { Main } else { Worker(pick as u64 % 3) };
                        m.complete(&mut s, running[pick % running.len()], at);
                    }
                }
                _ => {
                    let c = pick as CownId % COWNS;
                    if !m.dropped.contains(&c) {
                        m.dropped.push(c);
                        assert_eq!(s.drop_cown(c).unwrap(), !m.requested(c));
                    }
                }
            }
            m.check(&s);
        }
        // Drive to the end: start everything runnable, complete the oldest running, repeat.
        loop {
            for b in m.runnable() {
                m.start(&mut s, b);
            }
            m.check(&s);
            let Some(&b) = m.running().first() else { break };
            m.complete(&mut s, b, Worker(0));
            m.check(&s);
        }
        assert_eq!((s.pending(), m.ran), (0, m.scheduled), "every scheduled behaviour ran");
        // (2) Causal order: on every cown, behaviours ran in scheduling order.
        for (c, ran) in &m.ran_on {
            assert!(ran.windows(2).all(|w| w[0] < w[1]), "cown {c}: {ran:?}");
        }
    }

    proptest! {
        #[test]
        fn random_runs_match_the_reference_model(
            steps in prop::collection::vec((0u8..5, prop::collection::vec(0..COWNS, 0..4), 0usize..64), 0..80),
        ) {
            run_case(steps);
        }
    }

    #[test]
    fn the_owned_forms_keep_and_hand_back_the_behaviours_own_list() {
        let mut s = with_cowns(&[1, 2, 3]);
        assert_eq!(s.schedule_owned(7, vec![3, 1, 3, 2]), Ok(true));
        assert_eq!(s.cowns_of(7), Some(&[1, 2, 3][..]), "deduplicated and sorted, as by schedule");
        assert_eq!(s.schedule_owned(8, vec![2]), Ok(false));
        assert_eq!(s.schedule_owned(7, vec![1]), Err(DuplicateBehaviour(7)));
        assert_eq!(s.complete_taking(7, Worker(1)), Err(NotRunning(7)));
        s.start(7).unwrap();
        assert_eq!(s.complete_taking(7, Worker(1)), Ok((vec![8], vec![1, 2, 3])));
        assert_eq!((s.location(1), s.cowns_of(7)), (Some(Worker(1)), None));
    }

    #[test]
    fn cowns_at_lists_what_a_location_holds() {
        let mut s = Scheduler::new();
        s.create_cown(1, Location::Worker(2), false).unwrap();
        s.create_cown(2, Location::Main, false).unwrap();
        s.create_cown(3, Location::Worker(2), false).unwrap();
        assert_eq!(s.cowns_at(Location::Worker(2)), vec![1, 3]);
        assert_eq!(s.cowns_at(Location::Main), vec![2]);
        assert!(s.cowns_at(Location::Worker(9)).is_empty());
    }
}
