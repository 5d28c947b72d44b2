//! Behaviours and their cowns' values across processes: a sans-IO machine over
//! [`crate::cowns`]'s scheduler.
//!
//! The scheduler decides which behaviour may run; this machine decides where it runs, which
//! values must move there, and what the death of a process costs. The governor feeds it
//! events (a cown created, a behaviour scheduled, a value surrendered, a behaviour done, a
//! process gone, `wait()` asked or timed out) with the processes as [`Location`]s, and
//! carries out the [`Effect`]s it returns (ask for a value, send a behaviour, answer a
//! `wait()`). The rules:
//!
//! - A cown's value lives in the process that created it or last ran a behaviour on it. When
//!   a behaviour becomes runnable (it heads the queue of every cown it requested), it is
//!   placed ([`place`]: the main process if a cown is pinned, else the worker that holds most
//!   of its cowns), each other holder is asked to surrender its value, and once every value
//!   has arrived the behaviour is sent there with the values that moved. When it is done,
//!   all its cowns (its result cown included) are where it ran, and the behaviours behind it
//!   may run. `wait()` is answered when no behaviour is left.
//! - A behaviour's result cown is part of its request set, so behaviours chained on the
//!   result run after it, in order. A result cown has no value until its behaviour is done.
//! - While the pool still starts workers, a burst of runnable behaviours must not all pile
//!   onto the first ready one (CPU-bound work would then run one worker wide): once every
//!   ready worker is busy, the rest wait for the next worker to be ready
//!   ([`Boc::dispatch_waiting`]). Load counts behaviours still gathering their values too.
//! - A process that dies takes the values it held: those cowns are marked lost, and
//!   behaviours that need them get an error instead of a value; its running behaviours end
//!   with that error, and so do the behaviours gathering values to run there. A behaviour
//!   gathering elsewhere stops waiting for a value the dead process was to send: that cown
//!   is lost, and it runs. A value surrendered before the death is safe, on its way. Every
//!   loss is recorded before anything is dispatched, so no behaviour asks the dead process
//!   for a value. A behaviour that must run in a process that is gone is lost in the same way.
//! - `Cown.acquire()` in the main process is a behaviour placed there whatever its cowns
//!   (`at_main`): it "runs" from the moment its values arrive until `release()` says it is
//!   done, and its result cown is dropped then.
//! - A gated behaviour is sent flagged as such ([`Run::gated`]): the governor's gate decides,
//!   as it is sent, whether it runs or is refused; once it ends, [`Effect::GatedEnded`].
//! - Sending ahead ([`Boc::sending_ahead`]; the governor's choice): a behaviour scheduled behind
//!   behaviours already sent to one worker is sent there at once, if everything it needs will
//!   be there when they are done: on every cown it requested, the behaviour queued just before
//!   it was sent to that worker (and is neither gated nor an acquire), or the queue is empty and
//!   the value is there (or is a result not made yet); no cown is pinned or lost, and it is
//!   neither gated nor an acquire. The worker holds it until those behaviours are done there,
//!   in the order it was sent (see `rebeam.boc`'s local queue), so a chain of behaviours on one
//!   worker costs no round trip through the governor. For the scheduler it is still queued;
//!   when it becomes runnable it is started where it already is. It counts as running there
//!   (load, and the death of that worker: it is lost with it, like a behaviour gathering there).

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::cowns::{place, BehaviourId, CownError, CownId, Location, Scheduler};

/// The most behaviour codes a run keeps (defined once by the main process, sent to every
/// worker): a program defines one per `@when` site, so this bounds only a program that makes
/// code in a loop; past it, a behaviour carries its code itself.
pub const MAX_CODES: usize = 4096;

/// The request id of a `wait()`, as its process numbered it.
pub type ReqId = u64;

/// How a behaviour was scheduled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct How {
    /// `Cown.acquire()`: runs in the main process whatever its cowns.
    pub at_main: bool,
    /// `@requires_armed` (or every behaviour, under `--safety require-armed`).
    pub gated: bool,
}

/// Where behaviours may go, as it stands when the governor calls.
#[derive(Debug, Clone, Default)]
pub struct Pool {
    /// The ready workers that take behaviours (not spares), by raw process id, in order.
    pub workers: Vec<u64>,
    /// The pool is still starting workers.
    pub warming: bool,
    /// The main process is gone.
    pub main_gone: bool,
}

/// A request the machine refuses; nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BocError {
    #[error("Cown.acquire() is for the main process; a behaviour requests its cowns with @when")]
    AcquireOffMain,
    #[error(transparent)]
    Cown(#[from] CownError),
}

/// A behaviour sent to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run<T> {
    pub at: Location,
    pub behaviour: BehaviourId,
    pub cowns: Vec<CownId>,
    pub result: CownId,
    /// The values that moved to `at`.
    pub values: Vec<(CownId, T)>,
    /// Its cowns whose value died with a process.
    pub lost: Vec<CownId>,
    pub code: T,
    pub gated: bool,
}

/// What the governor must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<T> {
    /// Ask the process at `from` to surrender `cown`'s value.
    Surrender {
        from: Location,
        cown: CownId,
    },
    Run(Run<T>),
    /// A gated behaviour is over (done, or lost with its process).
    GatedEnded(BehaviourId),
    /// `wait()` request `req` of the process at `to` is answered: nothing is pending.
    Quiesced {
        to: Location,
        req: ReqId,
    },
    /// `wait()` request `req` timed out with `pending` behaviours left.
    QuiesceTimedOut {
        to: Location,
        req: ReqId,
        pending: usize,
    },
    /// A behaviour was lost before it was sent: the process it needs is gone.
    LostBeforeDispatch(BehaviourId),
    /// The process at `at` may let the values of `cowns` go: nothing can reach them any more.
    Forget {
        at: Location,
        cowns: Vec<CownId>,
    },
    /// The scheduler refused a completion it should not have: for the log.
    Oddity(String),
}

struct Waiting<T> {
    target: Location,
    missing: HashSet<CownId>,
    values: Vec<(CownId, T)>,
}

/// Where a pending behaviour stands.
enum Stage<T> {
    /// Not runnable yet, or runnable with no place yet.
    Queued,
    /// Placed, its values on their way there.
    Gathering(Waiting<T>),
    /// Sent to `at`, not done. `ahead`: sent ahead and not runnable yet; `early`: such a one
    /// said it was done before it was runnable (it completes once it is).
    Running { at: Location, ahead: bool, early: bool },
}

impl<T> Stage<T> {
    /// The process it counts against (load, and the death of that process).
    fn placed(&self) -> Option<Location> {
        match self {
            Stage::Queued => None,
            Stage::Gathering(w) => Some(w.target),
            Stage::Running { at, .. } => Some(*at),
        }
    }
}

/// One record per behaviour from its scheduling until it is done or lost: one lookup finds
/// all that the machine keeps of it.
struct Pending<T> {
    how: How,
    code: T,
    result: CownId,
    stage: Stage<T>,
}

impl<T> Pending<T> {
    fn gathering(&self) -> Option<&Waiting<T>> {
        match &self.stage {
            Stage::Gathering(w) => Some(w),
            _ => None,
        }
    }
}

/// The behaviours of one run. `T` is a payload (code or a value), moved, never cloned but
/// for the code of a behaviour as it is sent.
pub struct Boc<T> {
    sched: Scheduler,
    pending: HashMap<BehaviourId, Pending<T>>,
    /// How many behaviours are placed at each process (gathering there, or sent there and not
    /// done): the load placement weighs, kept as they move, not counted per dispatch.
    load: HashMap<Location, usize>,
    /// Which behaviour asked for a cown's value.
    surrenders: HashMap<CownId, BehaviourId>,
    /// Result cowns whose behaviour has not finished: nothing to move yet.
    empty: HashSet<CownId>,
    /// Cowns whose value died with a process.
    lost: HashSet<CownId>,
    /// `wait()` calls: who, its request, and the token of its timer.
    quiesce: Vec<(Location, ReqId, u64)>,
    /// Behaviours each process has run.
    ran: HashMap<Location, u64>,
    /// Behaviours sent ahead and early that became runnable, with where they ran, to be
    /// completed now.
    early_ready: Vec<(BehaviourId, Location)>,
    send_ahead: bool,
    /// Forgotten cowns whose holder is not told yet, by holder (see `release`).
    forget: HashMap<Location, Vec<CownId>>,
    /// Shared cowns their maker released, freed once nothing is queued on them; and cowns a
    /// process keeps a handle to, never freed (see `release`).
    released: HashSet<CownId>,
    kept: HashSet<CownId>,
}

impl<T> Default for Boc<T> {
    fn default() -> Self {
        Boc {
            sched: Scheduler::default(),
            pending: HashMap::new(),
            load: HashMap::new(),
            surrenders: HashMap::new(),
            empty: HashSet::new(),
            lost: HashSet::new(),
            quiesce: Vec::new(),
            ran: HashMap::new(),
            early_ready: Vec::new(),
            send_ahead: false,
            forget: HashMap::new(),
            released: HashSet::new(),
            kept: HashSet::new(),
        }
    }
}

impl<T> Boc<T> {
    /// A machine that sends behaviours ahead (see the module doc); `default()` does not.
    pub fn sending_ahead() -> Self {
        Boc { send_ahead: true, ..Boc::default() }
    }
}

mod ahead;
mod events;
mod release;

pub use release::FORGET_BATCH;

/// What the governor's model test may see: where each running and each gathering behaviour
/// is placed, and who waits in `wait()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub running: Vec<(BehaviourId, Location)>,
    pub gathering: Vec<(BehaviourId, Location)>,
    pub quiesce: Vec<Location>,
}

impl<T: Clone> Boc<T> {
    pub fn view(&self) -> View {
        let mut view = View { quiesce: self.quiesce.iter().map(|&(at, _, _)| at).collect(), ..View::default() };
        for (&b, p) in &self.pending {
            match &p.stage {
                Stage::Queued => {}
                Stage::Gathering(w) => view.gathering.push((b, w.target)),
                Stage::Running { at, .. } => view.running.push((b, *at)),
            }
        }
        // The load placement reads is kept as behaviours move: it must match a recount.
        let mut recount: HashMap<Location, usize> = HashMap::new();
        for &(_, at) in view.running.iter().chain(&view.gathering) {
            *recount.entry(at).or_default() += 1;
        }
        let kept: HashMap<Location, usize> =
            self.load.iter().filter(|(_, &n)| n > 0).map(|(&at, &n)| (at, n)).collect();
        assert_eq!(kept, recount, "the load kept per process drifted from what is placed there");
        view
    }

    /// How many behaviours the process at `at` has run.
    pub fn ran(&self, at: Location) -> u64 {
        self.ran.get(&at).copied().unwrap_or(0)
    }

    /// Behaviours scheduled and not yet complete.
    pub fn pending(&self) -> usize {
        self.sched.pending()
    }

    fn dispatch(&mut self, b: BehaviourId, pool: &Pool, effects: &mut Vec<Effect<T>>) {
        let Some(p) = self.pending.get_mut(&b) else { return };
        if let Stage::Running { at, ahead: ahead @ true, early } = &mut p.stage {
            // Already where it runs, waiting there behind what was sent before it.
            *ahead = false;
            let _ = self.sched.start(b);
            if std::mem::take(early) {
                self.early_ready.push((b, *at));
            }
            return;
        }
        let at_main = p.how.at_main;
        let placed_at = &self.load;
        let load = |w: u64| placed_at.get(&Location::Worker(w)).copied().unwrap_or(0);
        if pool.warming && !pool.workers.is_empty() && pool.workers.iter().all(|&w| load(w) > 0) {
            return;
        }
        let placed = if at_main { Some(Location::Main) } else { place(&self.sched, b, &pool.workers, &load) };
        // No worker is ready yet: try again when one is (`dispatch_waiting`).
        let Some(at) = placed else { return };
        // Placement picks a ready worker or the main process: only the latter can be gone.
        if at == Location::Main && pool.main_gone {
            return self.lost_before_dispatch(b, at, pool, effects);
        }
        let mut missing = HashSet::new();
        for &c in self.sched.cowns_of(b).expect("scheduled") {
            let here = self.sched.location(c) == Some(at);
            if here || self.empty.contains(&c) || self.lost.contains(&c) {
                continue;
            }
            let from = self.sched.location(c).expect("known");
            self.surrenders.insert(c, b);
            missing.insert(c);
            effects.push(Effect::Surrender { from, cown: c });
        }
        let _ = self.sched.start(b);
        if let Some(p) = self.pending.get_mut(&b) {
            p.stage = Stage::Gathering(Waiting { target: at, missing, values: Vec::new() });
            *self.load.entry(at).or_default() += 1;
        }
        self.maybe_run(b, effects);
    }

    fn lost_before_dispatch(&mut self, b: BehaviourId, at: Location, pool: &Pool, effects: &mut Vec<Effect<T>>) {
        effects.push(Effect::LostBeforeDispatch(b));
        if let Some(p) = self.pending.remove(&b) {
            self.empty.remove(&p.result);
        }
        self.lost.extend(self.sched.cowns_of(b).map(<[CownId]>::to_vec).unwrap_or_default());
        let _ = self.sched.start(b);
        match self.complete(b, at) {
            Ok(next) => next.into_iter().for_each(|n| self.dispatch(n, pool, effects)),
            Err(e) => {
                effects.push(Effect::Oddity(format!("behaviour {b}, lost before dispatch, completed oddly: {e}")))
            }
        }
        self.answer_quiesce(effects);
    }

    fn maybe_run(&mut self, b: BehaviourId, effects: &mut Vec<Effect<T>>) {
        let Some(p) = self.pending.get_mut(&b) else { return };
        let Stage::Gathering(w) = &p.stage else { return };
        if !w.missing.is_empty() {
            return;
        }
        let running = Stage::Running { at: w.target, ahead: false, early: false };
        let Stage::Gathering(w) = std::mem::replace(&mut p.stage, running) else { unreachable!("checked") };
        let cowns = self.sched.cowns_of(b).expect("scheduled").to_vec();
        let lost = cowns.iter().copied().filter(|c| self.lost.contains(c)).collect();
        let (code, result, gated) = (p.code.clone(), p.result, p.how.gated);
        let run = Run { at: w.target, behaviour: b, cowns, result, values: w.values, lost, code, gated };
        effects.push(Effect::Run(run));
    }

    /// A behaviour placed at `at` is done there, or lost.
    fn unload(&mut self, at: Location) {
        if let Some(n) = self.load.get_mut(&at) {
            *n = n.saturating_sub(1);
        }
    }

    fn answer_quiesce(&mut self, effects: &mut Vec<Effect<T>>) {
        self.flush_forgets(effects);
        if self.sched.pending() > 0 {
            return;
        }
        let answered = std::mem::take(&mut self.quiesce).into_iter();
        effects.extend(answered.map(|(to, req, _)| Effect::Quiesced { to, req }));
    }
}

#[cfg(test)]
mod tests;
