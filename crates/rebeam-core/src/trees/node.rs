//! One tree whole: its [`Sequence`] and, once it runs, its [`Supervisor`], joined so that the
//! supervisor's decisions become queued steps.
//!
//! The rules (beyond `Sequence`'s and `supervision`'s):
//!
//! - The supervisor exists only once every child is up ([`Node::mark_running`]); an exit that
//!   arrives while the tree is still starting is kept and handed back then, in arrival order.
//! - An exit the tree waited for (its own stop) is a stop, never a failure. An exit while the
//!   tree is stopping is noted by the supervisor and decides nothing.
//! - A restart queues its stops and starts and holds them for a restart turn; an escalation
//!   stops the running children in reverse and ends the tree with the reason built from
//!   [`crate::supervision::Intensity::escalation_reason`], for its parent to decide upon.
//! - A child that fails to start aborts a tree still starting (see `Sequence::abort_start`);
//!   in a running tree it is a crash of the child (so a child that can never start ends in
//!   escalation); in a stopping tree it is noted.
//! - A running tree whose children have all ended, with nothing queued, is finished.

use std::time::Instant;

use super::{Phase, Sequence, Step};
use crate::supervision::{Decision, ExitReason, FaultId, Intensity, Restart, Strategy, Supervisor};

/// How an exit of a child was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The tree had asked for it: the stop it waited for is done.
    Awaited,
    /// The tree is still starting: the exit is handed back by [`Node::mark_running`].
    Deferred,
    /// The tree is stopping: noted, nothing decided.
    Noted,
    /// The supervisor decided (the steps are queued).
    Decided(Decision),
}

/// How a failed start of a child was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// The tree was starting: it stops the children already up, in reverse, then exits.
    Aborted,
    /// The tree is stopping: noted, nothing decided.
    Noted,
    /// The tree runs: a restart that cannot start is a crash of the child, and the supervisor
    /// decided (the steps are queued).
    Decided(Decision),
}

/// An exit kept until the tree runs: slot, exit, fault.
pub type DeferredExit<X> = (usize, X, Option<FaultId>);

#[derive(Debug, Clone)]
pub struct Node<X, R> {
    seq: Sequence<X, R>,
    strategy: Strategy,
    intensity: Intensity,
    restarts: Vec<Restart>,
    logic: Option<Supervisor>,
    deferred: Vec<DeferredExit<X>>,
}

impl<X, R: Copy> Node<X, R> {
    pub fn new(strategy: Strategy, intensity: Intensity, restarts: Vec<Restart>) -> Self {
        Self { seq: Sequence::new(restarts.len()), strategy, intensity, restarts, logic: None, deferred: Vec::new() }
    }

    /// The next step to carry out (see [`Sequence::next_step`]).
    pub fn next_step(&mut self) -> Option<Step<X, R>> {
        self.seq.next_step()
    }

    pub fn phase(&self) -> Phase {
        self.seq.phase()
    }

    pub fn slots(&self) -> &[Option<R>] {
        self.seq.slots()
    }

    /// The slot whose start is in flight.
    pub fn starting(&self) -> Option<usize> {
        self.seq.starting()
    }

    /// The restart turn: a held restart may run.
    pub fn release(&mut self) {
        self.seq.release();
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn intensity(&self) -> Intensity {
        self.intensity
    }

    /// Restarts recorded within the intensity window (none before the tree runs).
    pub fn restarts_in_window(&self, now: Instant) -> u32 {
        self.logic.as_ref().map_or(0, |l| l.restarts_in_window(now))
    }

    /// Every child is up: the supervisor takes over. Returns the exits that arrived meanwhile.
    pub fn mark_running(&mut self) -> Vec<DeferredExit<X>> {
        self.seq.mark_running();
        self.logic = Some(Supervisor::new(self.strategy, self.intensity, self.restarts.clone()));
        std::mem::take(&mut self.deferred)
    }

    pub fn child_up(&mut self, slot: usize, running: R) {
        self.seq.child_up(slot, running);
        if let Some(logic) = self.logic.as_mut() {
            logic.child_started(slot);
        }
    }

    /// The child in `slot` failed to start; `exit` is the tree's own exit should that abort
    /// its initial start, `reason` the failure's supervision reading.
    pub fn start_failed(
        &mut self,
        slot: usize,
        exit: X,
        reason: &ExitReason,
        now: Instant,
        escalation: impl FnOnce(ExitReason) -> X,
    ) -> Failed {
        match self.seq.phase() {
            Phase::Starting => {
                self.seq.start_failed(slot);
                self.seq.abort_start(slot, exit);
                Failed::Aborted
            }
            Phase::Running => Failed::Decided(self.restart_failed(slot, reason, now, escalation)),
            Phase::Stopping => {
                self.seq.start_failed(slot);
                Failed::Noted
            }
        }
    }

    /// A restart of `slot` failed to start, in a running tree: that is a crash of the child
    /// (it counts toward intensity, so a child that can never start ends in escalation).
    fn restart_failed(
        &mut self,
        slot: usize,
        reason: &ExitReason,
        now: Instant,
        escalation: impl FnOnce(ExitReason) -> X,
    ) -> Decision {
        self.seq.start_failed(slot);
        let logic = self.logic.as_mut().expect("a running tree has its supervisor (set in mark_running)");
        logic.child_started(slot);
        self.decide(slot, reason, now, None, escalation)
    }

    /// The child in `slot` ended with `exit` (`reason` is its supervision reading).
    pub fn child_ended(
        &mut self,
        slot: usize,
        exit: X,
        reason: &ExitReason,
        now: Instant,
        fault: Option<FaultId>,
        escalation: impl FnOnce(ExitReason) -> X,
    ) -> Ended {
        if self.seq.child_down(slot) {
            if let Some(logic) = self.logic.as_mut() {
                logic.child_stopped(slot);
            }
            return Ended::Awaited;
        }
        match self.seq.phase() {
            Phase::Starting => {
                self.deferred.push((slot, exit, fault));
                Ended::Deferred
            }
            Phase::Stopping => {
                if let Some(logic) = self.logic.as_mut() {
                    logic.child_exited(slot, reason, now);
                }
                Ended::Noted
            }
            Phase::Running => Ended::Decided(self.decide(slot, reason, now, fault, escalation)),
        }
    }

    fn decide(
        &mut self,
        slot: usize,
        reason: &ExitReason,
        now: Instant,
        fault: Option<FaultId>,
        escalation: impl FnOnce(ExitReason) -> X,
    ) -> Decision {
        let logic = self.logic.as_mut().expect("only a running tree decides, and it has its supervisor");
        let decision = logic.child_exited_in_fault(slot, reason, now, fault);
        match &decision {
            Decision::Ignore => {}
            Decision::Restart { stop, start } => self.seq.restart(stop.clone(), start.clone()),
            Decision::Escalate { stop } => {
                self.seq.escalate(stop.clone(), escalation(self.intensity.escalation_reason()))
            }
        }
        decision
    }

    /// Stops the tree: its running children in reverse start order, then exit with `exit`.
    /// False (nothing changes) if it is already on its way out.
    pub fn stop(&mut self, exit: X) -> bool {
        if self.seq.exit_queued() {
            return false;
        }
        let order: Vec<usize> = match self.logic.as_mut() {
            Some(logic) => logic.begin_shutdown(),
            None => (0..self.seq.slots().len()).rev().collect(),
        };
        self.seq.stop(order, exit)
    }

    /// A running tree with nothing queued whose children have all ended.
    pub fn finished(&self) -> bool {
        self.seq.phase() == Phase::Running && self.seq.idle() && self.logic.as_ref().is_some_and(Supervisor::finished)
    }
}

#[cfg(test)]
mod tests;
