//! Releasing cowns nothing can reach any more, and telling their holders to let the values go.
//!
//! The rules:
//!
//! - The main process says when it dropped its last handle to a cown (a result cown of a
//!   `@when`, or a `Cown` it made) that never left it ([`Boc::drop_cowns`]). The scheduler
//!   forgets the cown once no pending behaviour names it: at once if its queue is empty, else
//!   when the last behaviour queued on it completes (see [`crate::cowns`]' "Dropping"). A
//!   cown a pending behaviour names is never freed under it.
//! - A forgotten cown's value is where its last behaviour ran (or where it was made): that
//!   process is told to let the value go ([`Effect::Forget`]). A lost value is nowhere, so
//!   nobody is told. Drops of unknown cowns (an earlier runtime's, or one already forgotten)
//!   are ignored.
//! - A cown a `@when` requested is *shared*: the behaviour that got it holds handles to it, and
//!   may schedule on it again (bocpy's dining philosophers do) after its maker let go. Its maker
//!   releases it instead ([`Boc::release_cowns`]): it is freed once no behaviour is queued on it
//!   (at once, or when the last one queued completes), unless a process said it keeps a
//!   handle past its behaviour ([`Boc::keep_cowns`]; such a cown is never freed). A released
//!   cown is not dropped: behaviours still queued on it may schedule on it again.
//! - A process says it keeps a handle before it says the behaviour that gave it is done, so a
//!   keep always arrives while a behaviour is queued on the cown, before it could be freed.
//! - The tellings are batched per process: a process is told once [`FORGET_BATCH`] of its
//!   cowns are forgotten, and every process is told whatever is left once no behaviour is
//!   pending (so after `wait()` the tables are back to what the program still holds). What
//!   was to be told to a process that died is dropped with it.

use super::{Boc, Effect};
use crate::cowns::{BehaviourId, CownError, CownId, Location};

/// How many forgotten cowns a process is told about in one go while behaviours are pending:
/// one frame per batch, not one per behaviour, and a bound on what a worker keeps for nothing.
pub const FORGET_BATCH: usize = 256;

impl<T: Clone> Boc<T> {
    /// The main process dropped its last handle to each of `cowns`.
    pub fn drop_cowns(&mut self, cowns: &[CownId]) -> Vec<Effect<T>> {
        let mut effects = Vec::new();
        for &c in cowns {
            let Some(at) = self.sched.location(c) else { continue };
            if let Ok(true) = self.sched.drop_cown(c) {
                self.forgotten(c, at);
            }
        }
        self.flush_forgets(&mut effects);
        effects
    }

    /// The maker of each of `cowns` dropped its handle, but behaviours were given handles to
    /// them (see the module's rules on shared cowns).
    pub fn release_cowns(&mut self, cowns: &[CownId]) -> Vec<Effect<T>> {
        let mut effects = Vec::new();
        for &c in cowns {
            if self.kept.contains(&c) {
                continue;
            }
            let Some(at) = self.sched.location(c) else { continue };
            if self.sched.tail(c).is_some() {
                self.released.insert(c);
            } else if let Ok(true) = self.sched.drop_cown(c) {
                self.forgotten(c, at);
            }
        }
        self.flush_forgets(&mut effects);
        effects
    }

    /// A process keeps handles to `cowns` past the behaviour that gave them (or sent one away):
    /// they are never freed.
    pub fn keep_cowns(&mut self, cowns: &[CownId]) {
        for &c in cowns {
            if self.sched.location(c).is_some() {
                self.kept.insert(c);
                self.released.remove(&c);
            }
        }
    }

    /// Cowns the scheduler knows: created and not yet freed.
    pub fn cown_count(&self) -> usize {
        self.sched.cown_count()
    }

    /// How many known cowns have their value at each location (for the status report).
    pub fn cowns_by_location(&self) -> foldhash::HashMap<Location, usize> {
        self.sched.counts_by_location()
    }

    /// Completes `b` at `at`, noting the dropped cowns it was the last to name.
    pub(super) fn complete(&mut self, b: BehaviourId, at: Location) -> Result<Vec<BehaviourId>, CownError> {
        let (next, cowns) = self.sched.complete_taking(b, at)?;
        for c in cowns {
            if self.sched.location(c).is_none() {
                self.forgotten(c, at);
            } else if self.released.contains(&c) && self.sched.tail(c).is_none() {
                // Its maker let go, and the last behaviour queued on it is over.
                let held_at = self.sched.location(c).unwrap_or(at);
                if let Ok(true) = self.sched.drop_cown(c) {
                    self.forgotten(c, held_at);
                }
            }
        }
        Ok(next)
    }

    fn forgotten(&mut self, c: CownId, at: Location) {
        self.released.remove(&c);
        self.kept.remove(&c);
        if !self.lost.remove(&c) {
            self.forget.entry(at).or_default().push(c);
        }
    }

    /// A dead process is told nothing.
    pub(super) fn forget_dead(&mut self, at: Location) {
        self.forget.remove(&at);
    }

    /// Tells each process whose batch is full, or every process once nothing is pending.
    pub(super) fn flush_forgets(&mut self, effects: &mut Vec<Effect<T>>) {
        let all = self.sched.pending() == 0;
        let due: Vec<Location> =
            self.forget.iter().filter(|(_, cs)| all || cs.len() >= FORGET_BATCH).map(|(&at, _)| at).collect();
        for at in due {
            let cowns = self.forget.remove(&at).unwrap_or_default();
            effects.push(Effect::Forget { at, cowns });
        }
    }
}

#[cfg(test)]
mod tests;
