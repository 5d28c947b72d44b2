//! The worker pool's rules, free of processes: where an actor goes, when starts wait, how a
//! dead worker is replaced, and when early deaths mean the run cannot work.
//!
//! The rules this module implements:
//!
//! - An actor is placed on the ready, non-spare worker with the fewest actors (ties: the
//!   lowest id). Starts wait while a non-spare worker is still starting ([`warming`]), so the
//!   first tree is spread over the whole pool rather than piled onto the first worker to say
//!   Ready.
//! - Spares start only once no non-spare worker is still starting and the run's start-up has
//!   settled ([`spares_due`], [`settled`]): the main process is no longer starting, no actor
//!   start is queued or in flight, and the run's first actor start has ended (or, for a run
//!   that starts no actor soon, [`SPARES_HOLD`] has passed since all else had settled: the
//!   main process says Ready before its script's first line, so the first start comes after).
//!   On a machine with few cores, interpreters that start together slow each other down, and
//!   the first reply needs the pool's workers, the main process and the first actors, not
//!   the spares. Ready workers' preloads (warming what every start needs) wait only for the
//!   pool's workers.
//! - A dead non-spare worker is replaced by the spare (a ready one first, so restarts do not
//!   wait for Python to start), and a new spare is started; with no spare, a new non-spare
//!   worker is started instead (and no spare). A dead spare is replaced by a new spare.
//! - A worker that dies before it was ever ready is an early death; [`MAX_EARLY_WORKER_DEATHS`]
//!   of them in a row (a worker becoming ready resets the count) stop the run: its interpreter
//!   cannot start a worker.
//!
//! The governor keeps each process's state; it hands these functions a view of its workers.

/// Consecutive workers that may die before saying Ready before the run is declared broken.
pub const MAX_EARLY_WORKER_DEATHS: u32 = 3;

/// The longest the first spares wait for the run's first actor start once the pool's workers
/// and the main process are ready: a script that starts its first actor later (a long import
/// first, or none at all) gets its spares then. Longer than a script's way from its first
/// line to its first `Supervisor` (milliseconds), short enough that a worker dying early in a
/// run without actors rarely finds no spare.
pub const SPARES_HOLD: std::time::Duration = std::time::Duration::from_millis(250);

/// What the pool needs to know of one live worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker<P> {
    pub id: P,
    pub spare: bool,
    /// It said Ready (else it is still starting).
    pub ready: bool,
    /// Actors placed on it.
    pub load: usize,
}

/// Where the next actor goes: `None` if no non-spare worker is ready.
pub fn place<P: Copy + Ord>(workers: impl IntoIterator<Item = Worker<P>>) -> Option<P> {
    workers.into_iter().filter(|w| !w.spare && w.ready).min_by_key(|w| (w.load, w.id)).map(|w| w.id)
}

/// Whether a non-spare worker is still starting (starts wait for it).
pub fn warming<P>(workers: impl IntoIterator<Item = Worker<P>>) -> bool {
    workers.into_iter().any(|w| !w.spare && !w.ready)
}

/// Whether the run's start-up has settled, for the spares: the main process is not starting,
/// no actor is, and the first actor start has ended or the hold is over.
pub fn settled(main_starting: bool, actor_starting: bool, first_start_ended: bool, hold_over: bool) -> bool {
    !main_starting && !actor_starting && (first_start_ended || hold_over)
}

/// Whether to begin the hold ([`SPARES_HOLD`]) now: everything but the first actor start has
/// settled (the pool's workers are ready: `warming` is false) and it has not begun yet.
pub fn begin_hold(
    main_starting: bool,
    actor_starting: bool,
    warming: bool,
    first_start_ended: bool,
    begun: bool,
) -> bool {
    !main_starting && !actor_starting && !warming && !first_start_ended && !begun
}

/// How many of the `pending` spares (not started yet) to start now: all of them once no
/// non-spare worker is still starting and the start-up has `settled`, else none.
pub fn spares_due<P>(pending: usize, settled: bool, workers: impl IntoIterator<Item = Worker<P>>) -> usize {
    if !settled || warming(workers) {
        0
    } else {
        pending
    }
}

/// How to replace a dead worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replacement<P> {
    /// The spare that joins the pool in its place, if any.
    pub promote: Option<P>,
    /// Start a new non-spare worker (there was no spare to promote).
    pub spawn_worker: bool,
    /// Start a new spare.
    pub spawn_spare: bool,
}

/// What replaces a dead worker (`dead_was_spare`), given the live workers left.
pub fn replace<P: Copy>(dead_was_spare: bool, workers: impl IntoIterator<Item = Worker<P>>) -> Replacement<P> {
    if dead_was_spare {
        return Replacement { promote: None, spawn_worker: false, spawn_spare: true };
    }
    let spares: Vec<Worker<P>> = workers.into_iter().filter(|w| w.spare).collect();
    let promote = spares.iter().find(|w| w.ready).or_else(|| spares.first()).map(|w| w.id);
    match promote {
        Some(_) => Replacement { promote, spawn_worker: false, spawn_spare: true },
        None => Replacement { promote: None, spawn_worker: true, spawn_spare: false },
    }
}

/// Consecutive workers that died before they were ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EarlyDeaths(u32);

impl EarlyDeaths {
    /// A worker became ready: the interpreter can start workers.
    pub fn ready(&mut self) {
        self.0 = 0;
    }

    /// A worker died before it was ready; true if the run should stop.
    pub fn died(&mut self) -> bool {
        self.0 += 1;
        self.0 >= MAX_EARLY_WORKER_DEATHS
    }
}

#[cfg(test)]
mod tests;
