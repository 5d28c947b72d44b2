//! The safety gate: which work is gated, what a refusal says, and the disarm ladder, as a
//! sans-IO machine over [`crate::safety`]'s state machine.
//!
//! The governor tells it what happens (a host command, gated work starting or ending, a
//! timer) and carries out the [`Effect`]s it returns. It holds the safety state and the gated
//! behaviours; gated deliveries live in the one index of deliveries in flight
//! ([`crate::calls::InFlight`]), which it reaches only through the narrow [`GatedWork`]
//! query. Nothing here sends, kills or reads a clock.
//!
//! # Gated work
//!
//! A delivery to a handler marked `@requires_armed` ([`marks`]), or any delivery under `--safety
//! require-armed` ([`Gate::gates`]); a `@requires_armed` behaviour, or under `require-armed`
//! any behaviour not run in the main process by `Cown.acquire()` ([`Gate::gates_behaviour`]).
//! Before dispatch it is refused unless the system is armed ([`Gate::check`]); the refusal
//! names the work, the state and the command that arms.
//!
//! # The disarm ladder
//!
//! When the state leaves `armed`, in order, never waiting on Python:
//!
//! 1. callers of in-flight gated deliveries get a safety error at once ([`Effect::FailCaller`]),
//!    and anything that work later answers is discarded (its entry no longer names a caller);
//! 2. its worker is told to cancel it ([`Effect::CancelDelivery`], [`Effect::CancelBehaviour`]):
//!    `rebeam.cancelled()` turns true for that work and `SafetyInterrupt` is raised in exactly
//!    the thread running it;
//! 3. after the grace period, counted from the disarm that cancelled the work (each disarm has
//!    its own timer, [`Effect::GraceTimer`]), the process of any gated work still running is
//!    killed ([`Effect::Kill`]) — unless it is the main process, which is never killed: then
//!    the state goes to `error` ([`Effect::CannotStop`] says why);
//! 4. a killed worker not confirmed dead in time puts the state in `error`
//!    ([`Gate::stop_failed`]).
//!
//! When no gated work is left, `disarming` becomes `disarmed`. A gated behaviour has no caller
//! to fail (its result cown gets the `SafetyInterrupt` it raises, or the worker's death), so
//! step 1 does not apply to it. Every change of state is announced ([`Effect::Announce`]),
//! with the time since the first one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::calls::{ActorId, Caller, Cancelled, DeliveryId, InFlight};
use crate::safety::{SafetyCommand, SafetyEvent, SafetyMachine, SafetyRefusal, SafetyState, Transition};

/// Identifies a behaviour (the main process numbers them).
pub type BehaviourId = u64;

/// What the gate needs to know of the deliveries in flight, and may do to them.
pub trait GatedWork<P> {
    /// Whether any gated delivery is in flight.
    fn any_gated(&self) -> bool;
    /// Disarm `disarm` cancels every gated delivery not cancelled before; their callers are
    /// taken off them (the gate answers them).
    fn cancel_gated(&mut self, disarm: u64) -> Vec<Cancelled<P>>;
    /// The actors still running gated deliveries that `disarm` cancelled, each once.
    fn cancelled_by(&self, disarm: u64) -> BTreeSet<ActorId>;
}

impl<P: Copy + Eq> GatedWork<P> for InFlight<P> {
    fn any_gated(&self) -> bool {
        InFlight::any_gated(self)
    }
    fn cancel_gated(&mut self, disarm: u64) -> Vec<Cancelled<P>> {
        InFlight::cancel_gated(self, disarm)
    }
    fn cancelled_by(&self, disarm: u64) -> BTreeSet<ActorId> {
        InFlight::cancelled_by(self, disarm)
    }
}

/// Whether an actor's declaration marks the handler of `subject` `@requires_armed`: the subject
/// is one of its marked `subjects`, or it has no handler of its own (not in `handled`) and
/// reaches a marked catch-all.
pub fn marks(subjects: &[String], catch_all: bool, handled: &[String], subject: &str) -> bool {
    subjects.iter().any(|s| s == subject) || (catch_all && !handled.iter().any(|s| s == subject))
}

/// Work the gate refuses or interrupts, for its messages.
#[derive(Debug, Clone, Copy)]
pub enum Work<'a> {
    /// A message with `subject` for the actor the caller named `target`.
    Message {
        target: &'a str,
        subject: &'a str,
    },
    Behaviour,
}

/// What a caller of gated work is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("{what} requires the system to be armed (safety state: {state}); the host arms it with `rebeam ctl arm`")]
    NotArmed { what: String, state: SafetyState },
    #[error("interrupted: the system was disarmed while actor {actor} ran gated work")]
    Interrupted { actor: String },
}

/// A process that runs gated work, as the ladder needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    /// False for the main process (of either mode): the ladder never kills it.
    pub killable: bool,
    /// How logs name it ("worker 2 (pid 123)").
    pub describe: String,
}

/// A gated behaviour that has not finished: where it runs, and the disarm that cancelled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatedBehaviour<P> {
    pub proc: P,
    pub cancelled: Option<u64>,
}

/// What the governor must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<P> {
    /// The state changed: tell every process and publish it (`since_first`: the time since
    /// the first change of this run).
    Announce { transition: Transition, since_first: Duration },
    /// Answer this caller of `actor`'s gated work with [`GateError::Interrupted`].
    FailCaller { caller: Caller<P>, actor: ActorId },
    /// Tell `actor`'s worker to cancel this delivery.
    CancelDelivery { actor: ActorId, delivery: DeliveryId },
    /// Tell `proc` to cancel this behaviour.
    CancelBehaviour { proc: P, behaviour: BehaviourId },
    /// Call [`Gate::grace_over`] for `disarm` after `after`.
    GraceTimer { disarm: u64, after: Duration },
    /// Gated work that cannot be stopped, and why (the state goes to `error` next).
    CannotStop { why: String },
    /// Kill `proc` (its whole group), and report it if it is not reaped in time.
    Kill { proc: P },
}

/// The gate of one governor.
#[derive(Debug, Clone)]
pub struct Gate<P> {
    machine: SafetyMachine,
    require_armed: bool,
    grace: Duration,
    behaviours: BTreeMap<BehaviourId, GatedBehaviour<P>>,
    first_change: Option<Instant>,
    /// Disarms that cancelled work so far: each has its own grace period.
    disarms: u64,
}

impl<P: Copy + Ord> Gate<P> {
    /// A gate in `disarmed`. `require_armed`: every delivery is gated (`--safety
    /// require-armed`); `grace`: how long interrupted work has before it is killed.
    pub fn new(require_armed: bool, grace: Duration) -> Self {
        let (machine, behaviours) = (SafetyMachine::new(), BTreeMap::new());
        Gate { machine, require_armed, grace, behaviours, first_change: None, disarms: 0 }
    }

    pub fn state(&self) -> SafetyState {
        self.machine.state()
    }

    /// Whether a delivery is gated, given whether its handler is marked `@requires_armed`.
    pub fn gates(&self, marked: bool) -> bool {
        self.require_armed || marked
    }

    /// Whether a behaviour is gated: marked, or under `require-armed` unless it is a main-side
    /// `Cown.acquire()`, which runs the caller's own code in place.
    pub fn gates_behaviour(&self, marked: bool, at_main: bool) -> bool {
        marked || (self.require_armed && !at_main)
    }

    /// Ok if gated `work` may be dispatched now: only while armed.
    pub fn check(&self, work: Work<'_>) -> Result<(), GateError> {
        if self.machine.allows_gated() {
            return Ok(());
        }
        Err(self.refusal(work))
    }

    /// What refusing gated `work` in the current state says.
    pub fn refusal(&self, work: Work<'_>) -> GateError {
        let what = match work {
            Work::Message { target, subject } => format!("{target} '{subject}'"),
            Work::Behaviour => "a @requires_armed behaviour".to_owned(),
        };
        GateError::NotArmed { what, state: self.machine.state() }
    }

    /// A gated behaviour started running on `proc`.
    pub fn behaviour_started(&mut self, behaviour: BehaviourId, proc: P) {
        self.behaviours.insert(behaviour, GatedBehaviour { proc, cancelled: None });
    }

    /// A gated behaviour ended (done, or its process died).
    pub fn behaviour_ended(
        &mut self,
        behaviour: BehaviourId,
        calls: &mut impl GatedWork<P>,
        now: Instant,
    ) -> Vec<Effect<P>> {
        if self.behaviours.remove(&behaviour).is_none() {
            return Vec::new();
        }
        self.work_ended(calls, now)
    }

    /// Gated deliveries left the index (answered, or their actor is gone): a disarm may be complete.
    pub fn work_ended(&mut self, calls: &mut impl GatedWork<P>, now: Instant) -> Vec<Effect<P>> {
        if self.in_flight(calls) {
            return Vec::new();
        }
        // `Stopped` is never refused: it only completes a disarm, or is a late no-op.
        self.apply(SafetyEvent::Stopped, calls, now).unwrap_or_default()
    }

    /// A command of the host; refused as the state machine says.
    pub fn command(
        &mut self,
        command: SafetyCommand,
        calls: &mut impl GatedWork<P>,
        now: Instant,
    ) -> Result<Vec<Effect<P>>, SafetyRefusal> {
        self.apply(SafetyEvent::Command(command), calls, now)
    }

    /// Step 4, or any gated work that cannot be confirmed stopped: the state goes to `error`.
    pub fn stop_failed(&mut self, why: String, calls: &mut impl GatedWork<P>, now: Instant) -> Vec<Effect<P>> {
        self.apply(SafetyEvent::StopFailed(why), calls, now).unwrap_or_default()
    }

    /// Step 3: the grace of `disarm` is over. The processes still running gated work it
    /// cancelled are killed, each once, in order; `place` says where an actor runs, `runner`
    /// what a process is (`None`: it is gone already). Work cancelled by a later disarm has a
    /// grace period of its own.
    pub fn grace_over(
        &mut self,
        disarm: u64,
        calls: &mut impl GatedWork<P>,
        place: impl Fn(ActorId) -> Option<P>,
        runner: impl Fn(P) -> Option<Runner>,
        now: Instant,
    ) -> Vec<Effect<P>> {
        let delivered = calls.cancelled_by(disarm).into_iter().filter_map(place);
        let behaviours = self.behaviours.values().filter(|b| b.cancelled == Some(disarm)).map(|b| b.proc);
        let procs: BTreeSet<P> = delivered.chain(behaviours).collect();
        let mut effects = Vec::new();
        for proc in procs {
            let Some(Runner { killable, describe }) = runner(proc) else { continue };
            if killable {
                effects.push(Effect::Kill { proc });
                continue;
            }
            let why = format!(
                "gated work in the {describe} did not stop within {:?} of the disarm, and rebeam never kills the \
                 main process; make the behaviour return when rebeam.cancelled() turns true (an interrupt \
                 cannot land in C code, and can be caught), then run `rebeam ctl force-disarm`",
                self.grace
            );
            effects.push(Effect::CannotStop { why: why.clone() });
            effects.extend(self.stop_failed(why, calls, now));
        }
        effects
    }

    /// The gated behaviours running, and the disarm that cancelled each, if one did.
    pub fn behaviours(&self) -> impl Iterator<Item = (BehaviourId, GatedBehaviour<P>)> + '_ {
        self.behaviours.iter().map(|(&b, &g)| (b, g))
    }

    fn in_flight(&self, calls: &impl GatedWork<P>) -> bool {
        calls.any_gated() || !self.behaviours.is_empty()
    }

    fn apply(
        &mut self,
        event: SafetyEvent,
        calls: &mut impl GatedWork<P>,
        now: Instant,
    ) -> Result<Vec<Effect<P>>, SafetyRefusal> {
        let in_flight = self.in_flight(calls);
        let transitions = self.machine.apply(event, in_flight)?;
        let mut effects = Vec::new();
        for transition in transitions {
            let first = *self.first_change.get_or_insert(now);
            let left_armed = transition.from == SafetyState::Armed;
            effects.push(Effect::Announce { transition, since_first: now.saturating_duration_since(first) });
            if left_armed {
                self.interrupt(calls, &mut effects);
            }
        }
        Ok(effects)
    }

    /// Steps 1 and 2, then the grace timer for step 3.
    fn interrupt(&mut self, calls: &mut impl GatedWork<P>, effects: &mut Vec<Effect<P>>) {
        let disarm = self.disarms + 1;
        let cancelled = calls.cancel_gated(disarm);
        let mut any = !cancelled.is_empty();
        for Cancelled { delivery, actor, caller } in cancelled {
            effects.extend(caller.map(|caller| Effect::FailCaller { caller, actor }));
            effects.push(Effect::CancelDelivery { actor, delivery });
        }
        for (&behaviour, b) in self.behaviours.iter_mut().filter(|(_, b)| b.cancelled.is_none()) {
            b.cancelled = Some(disarm);
            any = true;
            effects.push(Effect::CancelBehaviour { proc: b.proc, behaviour });
        }
        if any {
            self.disarms = disarm;
            effects.push(Effect::GraceTimer { disarm, after: self.grace });
        }
    }
}

#[cfg(test)]
mod tests;
