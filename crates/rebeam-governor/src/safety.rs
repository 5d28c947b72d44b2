//! The safety gate in the governor: the I/O half of `rebeam_core::safety`.
//!
//! Gated work is a delivery to a handler marked `@requires_armed` (or any delivery, under
//! `--safety require-armed`). Before dispatch it is refused unless the system is armed. Every
//! gated delivery in flight is tracked; when the system leaves `armed`, the governor walks
//! the ladder, in order, without ever waiting on Python:
//!
//! 1. callers of in-flight gated work get a safety error at once, and anything that work later
//!    answers is discarded (its entry in `Router.calls` no longer names a caller);
//! 2. its worker is told to cancel it: `rebeam.cancelled()` turns true for that work and
//!    `SafetyInterrupt` is raised in exactly the thread running it;
//! 3. after the grace period (`--safety-grace`, counted from the disarm that cancelled the
//!    work: each disarm has its own timer), the worker of any gated work still running is
//!    killed; its actors are restarted by their supervisors, still disarmed;
//! 4. a killed worker not reaped within `KILL_CONFIRM_TIMEOUT` puts the state in `error`.
//!
//! When no gated work is left, `disarming` becomes `disarmed`.
//!
//! A running `@requires_armed` behaviour is gated work too, on the same ladder: it has no
//! caller to fail (its result cown gets the `SafetyInterrupt` it raises, or the worker's
//! death), so step 1 does not apply to it.
//!
//! # The main process is never killed by the ladder
//!
//! A behaviour on a `PinnedCown` runs in the main process, not in a worker. Step 3 does not
//! apply to it, in either mode: in library mode the main process is the user's own Python
//! (a REPL, a notebook, an application) and its process group, which rebeam did not start;
//! under `rebeam main.py` it is the user's script, which holds the program's state, its GUI
//! and its devices, and whose death ends the run. Killing either because one behaviour
//! ignored an interrupt would turn a safety stop into a crash of the host. Instead, main-side
//! gated work still running after the grace puts the state in `error` (step 4's state: gated
//! work that cannot be confirmed stopped), with a log line that names the process and tells
//! the host what to do. Nothing gated is dispatched in `error`; the host leaves it with
//! `rebeam ctl force-disarm` once it has seen to the behaviour.

use std::collections::HashMap;
use std::time::Instant;

use rebeam_core::calls::{Caller, Cancelled};
use rebeam_core::safety::{SafetyCommand, SafetyEvent, SafetyMachine, SafetyState, Transition};
use rebeam_proto::{
    ActorId, Command as Cmd, ErrorInfo, ErrorKind, Frame, Outcome, PickleValue, Response, Role, Safety,
    SafetyTransition,
};

use crate::router::{Input, ProcIdx, ProcState, Router};
use crate::{SafetyMode, KILL_CONFIRM_TIMEOUT};

/// A gated behaviour that has not finished: where it runs, and the disarm that cancelled it.
pub struct GatedBehaviour {
    pub proc: ProcIdx,
    pub cancelled: Option<u64>,
}

#[derive(Default)]
pub struct Gate {
    pub machine: SafetyMachine,
    pub behaviours: HashMap<u64, GatedBehaviour>,
    started: Option<Instant>,
    /// Disarms that cancelled work so far: each has its own grace period.
    disarms: u64,
}

pub fn wire(state: SafetyState) -> Safety {
    match state {
        SafetyState::Disarmed => Safety::Disarmed,
        SafetyState::Armed => Safety::Armed,
        SafetyState::Disarming => Safety::Disarming,
        SafetyState::Error => Safety::Error,
    }
}

impl Router {
    /// Whether a message for `actor` with `subject` is gated work.
    pub fn is_gated(&self, actor: ActorId, subject: &str) -> bool {
        if self.config.safety == SafetyMode::RequireArmed {
            return true;
        }
        let Some(a) = self.actors.get(&actor) else { return false };
        a.gating.subjects.iter().any(|s| s == subject) || (a.gating.catch_all && !a.handles(subject))
    }

    /// Refusal for gated work while not armed.
    pub fn safety_refusal(&self, target: &str, subject: &str) -> ErrorInfo {
        self.not_armed(&format!("{target} '{subject}'"))
    }

    pub fn behaviour_refusal(&self) -> ErrorInfo {
        self.not_armed("a @requires_armed behaviour")
    }

    fn not_armed(&self, what: &str) -> ErrorInfo {
        let state = self.gate.machine.state();
        let why = format!(
            "{what} requires the system to be armed (safety state: {state}); the host arms it with `rebeam ctl arm`"
        );
        ErrorInfo::new(ErrorKind::Safety, why)
    }

    pub fn is_armed(&self) -> bool {
        self.gate.machine.state() == SafetyState::Armed
    }

    fn gated_in_flight(&self) -> bool {
        self.calls.any_gated() || !self.gate.behaviours.is_empty()
    }

    pub fn track_gated_behaviour(&mut self, behaviour: u64, proc: ProcIdx) {
        self.gate.behaviours.insert(behaviour, GatedBehaviour { proc, cancelled: None });
    }

    /// A gated behaviour ended (done, or its worker died).
    pub fn gated_behaviour_done(&mut self, behaviour: u64) {
        if self.gate.behaviours.remove(&behaviour).is_some() && !self.gated_in_flight() {
            let _ = self.safety_event(SafetyEvent::Stopped);
        }
    }

    /// Gated deliveries left `calls` (answered, or their actor is gone).
    pub fn gated_work_ended(&mut self) {
        if !self.gated_in_flight() {
            // `Stopped` is never refused: it only completes a disarm, or is a late no-op.
            let _ = self.safety_event(SafetyEvent::Stopped);
        }
    }

    /// A command from the host. Returns the transitions it caused, or why it was refused.
    pub fn safety_command(&mut self, command: SafetyCommand) -> Result<Vec<SafetyTransition>, String> {
        self.safety_event(SafetyEvent::Command(command))
    }

    fn safety_event(&mut self, event: SafetyEvent) -> Result<Vec<SafetyTransition>, String> {
        let in_flight = self.gated_in_flight();
        let transitions = self.gate.machine.apply(event, in_flight).map_err(|r| r.to_string())?;
        let shown = transitions
            .iter()
            .map(|t| SafetyTransition { from: wire(t.from), to: wire(t.to), reason: t.reason.to_string() })
            .collect();
        for t in transitions {
            self.on_transition(t);
        }
        Ok(shown)
    }

    fn on_transition(&mut self, t: Transition) {
        tracing::info!("safety: {} → {} ({})", t.from, t.to, t.reason);
        let state = wire(t.to);
        for i in self.procs.ids() {
            if self.procs[i].state != ProcState::Dead {
                self.send(i, Frame::Command(Cmd::Safety { state }));
            }
        }
        let started = *self.gate.started.get_or_insert_with(Instant::now);
        let payload = rebeam_proto::pickle_map(&[
            ("from", PickleValue::Str(t.from.to_string())),
            ("to", PickleValue::Str(t.to.to_string())),
            ("reason", PickleValue::Str(t.reason.clone())),
            ("monotonic_ns", PickleValue::Int(started.elapsed().as_nanos() as i128)),
        ]);
        self.publish_as_host("safety.transition", rebeam_proto::Payload { data: payload.into(), buffers: vec![] });
        if t.from == SafetyState::Armed {
            self.interrupt_gated_work();
        }
    }

    /// Steps 1 and 2 of the ladder, then the grace timer for step 3.
    fn interrupt_gated_work(&mut self) {
        let disarm = self.gate.disarms + 1;
        let cancelled = self.calls.cancel_gated(disarm);
        let mut any = !cancelled.is_empty();
        for Cancelled { delivery: d, actor, caller } in cancelled {
            if let Some(Caller { proc, req, .. }) = caller {
                let label = self.actors.get(&actor).map(|a| a.label.clone()).unwrap_or_default();
                let info = ErrorInfo::new(
                    ErrorKind::Safety,
                    format!("interrupted: the system was disarmed while actor {label} ran gated work"),
                );
                self.send(proc, Frame::Response { req, body: Response::Call(Outcome::Failed(info)) });
            }
            if let Some(worker) = self.actors.proc_of(actor) {
                self.send(worker, Frame::Command(Cmd::Cancel { actor, delivery: d }));
            }
        }
        let mut cancels = Vec::new();
        for (&b, w) in self.gate.behaviours.iter_mut().filter(|(_, w)| w.cancelled.is_none()) {
            w.cancelled = Some(disarm);
            cancels.push((w.proc, b));
        }
        for (proc, behaviour) in cancels {
            any = true;
            self.send(proc, Frame::Command(Cmd::CancelBehaviour { behaviour }));
        }
        if any {
            self.gate.disarms = disarm;
            self.after(self.config.safety_grace, Input::SafetyGrace(disarm));
        }
    }

    /// Step 3: kill the workers of gated work that `disarm` cancelled and that is still
    /// running. Work cancelled by a later disarm has a grace period of its own.
    pub fn on_safety_grace(&mut self, disarm: u64) {
        let mut workers: Vec<ProcIdx> = self
            .calls
            .cancelled_by(disarm)
            .into_iter()
            .filter_map(|actor| self.actors.proc_of(actor))
            .chain(self.gate.behaviours.values().filter(|w| w.cancelled == Some(disarm)).map(|w| w.proc))
            .collect();
        workers.sort_unstable();
        workers.dedup();
        for proc in workers {
            let Some(p) = self.procs.get(proc) else { continue };
            if p.role == Role::Main || p.external {
                let why = format!(
                    "gated work in the {} did not stop within {:?} of the disarm, and rebeam never kills the \
                     main process; make the behaviour return when rebeam.cancelled() turns true (an interrupt \
                     cannot land in C code, and can be caught), then run `rebeam ctl force-disarm`",
                    p.describe(),
                    self.config.safety_grace
                );
                tracing::error!("safety: {why}");
                let _ = self.safety_event(SafetyEvent::StopFailed(why));
                continue;
            }
            tracing::warn!(
                "safety: gated work in {} did not stop within {:?} of the disarm; killing it",
                p.describe(),
                self.config.safety_grace
            );
            self.os.kill_group(p.pid, libc::SIGKILL);
            self.after(KILL_CONFIRM_TIMEOUT, Input::KillConfirm(proc));
        }
    }

    /// Step 4: a worker that was killed and is still not reaped.
    pub fn on_kill_confirm(&mut self, proc: ProcIdx) {
        // Removed means reaped: it is gone.
        if self.procs.get(proc).is_some_and(|p| p.state != ProcState::Dead) {
            let why = format!(
                "{} was killed for gated work that outlived the grace and was not reaped {KILL_CONFIRM_TIMEOUT:?} after SIGKILL",
                self.procs[proc].describe()
            );
            let _ = self.safety_event(SafetyEvent::StopFailed(why));
        }
    }

    pub fn safety_state(&self) -> Safety {
        wire(self.gate.machine.state())
    }
}
