//! The safety gate in the governor: the I/O half of `rebeam_core::gate`.
//!
//! The machine decides which work is gated, what a refusal says and each step of the disarm
//! ladder (see its module doc); this file feeds it what happens (host commands, gated work
//! starting and ending, the grace and kill-confirm timers) and carries out its effects: a
//! state change is sent to every process and published on `safety.transition`, interrupted
//! callers get their error, workers are told to cancel, timers are started, and workers whose
//! gated work outlived the grace are killed. Nothing here waits on Python.
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
//! `rebeam ctl force-disarm` once it has seen to the behaviour. A killed worker not reaped
//! within `KILL_CONFIRM_TIMEOUT` puts the state in `error` too.

use rebeam_core::gate::{Effect, GateError, Runner, Work};
use rebeam_core::safety::{SafetyCommand, SafetyState};
use rebeam_proto::{
    ActorId, Command as Cmd, ErrorInfo, ErrorKind, Frame, Outcome, PickleValue, Response, Role, Safety,
    SafetyTransition,
};

use crate::router::{Input, ProcIdx, ProcState, Router};
use crate::{SafetyMode, KILL_CONFIRM_TIMEOUT};

/// The gate machine, over the governor's process ids.
pub type Gate = rebeam_core::gate::Gate<ProcIdx>;

/// The gate a run's configuration asks for.
pub fn gate(config: &crate::Config) -> Gate {
    Gate::new(config.safety == SafetyMode::RequireArmed, config.safety_grace)
}

pub fn wire(state: SafetyState) -> Safety {
    match state {
        SafetyState::Disarmed => Safety::Disarmed,
        SafetyState::Armed => Safety::Armed,
        SafetyState::Disarming => Safety::Disarming,
        SafetyState::Error => Safety::Error,
    }
}

fn safety_error(e: GateError) -> ErrorInfo {
    ErrorInfo::new(ErrorKind::Safety, e.to_string())
}

impl Router {
    /// Whether a message for `actor` with `subject` is gated work.
    pub fn is_gated(&self, actor: ActorId, subject: &str) -> bool {
        let marked = self.actors.get(&actor).is_some_and(|a| {
            let g = &a.gating;
            rebeam_core::gate::marks(&g.subjects, g.catch_all, &g.handled, subject)
        });
        self.gate.gates(marked)
    }

    /// Refusal for gated work while not armed.
    pub fn safety_refusal(&self, target: &str, subject: &str) -> ErrorInfo {
        safety_error(self.gate.refusal(Work::Message { target, subject }))
    }

    pub fn behaviour_refusal(&self) -> ErrorInfo {
        safety_error(self.gate.refusal(Work::Behaviour))
    }

    pub fn is_armed(&self) -> bool {
        self.gate.state() == SafetyState::Armed
    }

    pub fn track_gated_behaviour(&mut self, behaviour: u64, proc: ProcIdx) {
        self.gate.behaviour_started(behaviour, proc);
    }

    /// A gated behaviour ended (done, or its worker died).
    pub fn gated_behaviour_done(&mut self, behaviour: u64) {
        let effects = self.gate.behaviour_ended(behaviour, &mut self.calls, self.os.now());
        self.carry_out_safety(effects);
    }

    /// Gated deliveries left `calls` (answered, or their actor is gone).
    pub fn gated_work_ended(&mut self) {
        let effects = self.gate.work_ended(&mut self.calls, self.os.now());
        self.carry_out_safety(effects);
    }

    /// A command from the host. Returns the transitions it caused, or why it was refused.
    pub fn safety_command(&mut self, command: SafetyCommand) -> Result<Vec<SafetyTransition>, String> {
        let effects = self.gate.command(command, &mut self.calls, self.os.now()).map_err(|r| r.to_string())?;
        let shown = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Announce { transition: t, .. } => {
                    Some(SafetyTransition { from: wire(t.from), to: wire(t.to), reason: t.reason.clone() })
                }
                _ => None,
            })
            .collect();
        self.carry_out_safety(effects);
        Ok(shown)
    }

    /// Step 3: the grace of `disarm` is over.
    pub fn on_safety_grace(&mut self, disarm: u64) {
        let (actors, procs) = (&self.actors, &self.procs);
        let runner = |proc: ProcIdx| {
            let p = procs.get(proc)?;
            Some(Runner { killable: p.role != Role::Main && !p.external, describe: p.describe() })
        };
        let effects =
            self.gate.grace_over(disarm, &mut self.calls, |actor| actors.proc_of(actor), runner, self.os.now());
        self.carry_out_safety(effects);
    }

    /// Step 4: a worker that was killed and is still not reaped.
    pub fn on_kill_confirm(&mut self, proc: ProcIdx) {
        // Removed means reaped: it is gone.
        if self.procs.get(proc).is_some_and(|p| p.state != ProcState::Dead) {
            let why = format!(
                "{} was killed for gated work that outlived the grace and was not reaped {KILL_CONFIRM_TIMEOUT:?} after SIGKILL",
                self.procs[proc].describe()
            );
            let effects = self.gate.stop_failed(why, &mut self.calls, self.os.now());
            self.carry_out_safety(effects);
        }
    }

    pub fn safety_state(&self) -> Safety {
        wire(self.gate.state())
    }

    fn carry_out_safety(&mut self, effects: Vec<Effect<ProcIdx>>) {
        for effect in effects {
            match effect {
                Effect::Announce { transition: t, since_first } => {
                    tracing::info!("safety: {} → {} ({})", t.from, t.to, t.reason);
                    self.record_transition(SafetyTransition {
                        from: wire(t.from),
                        to: wire(t.to),
                        reason: t.reason.clone(),
                    });
                    let state = wire(t.to);
                    self.safety_changed(state);
                    for i in self.procs.ids() {
                        if self.procs[i].state != ProcState::Dead {
                            self.send(i, Frame::Command(Cmd::Safety { state }));
                        }
                    }
                    let payload = rebeam_proto::pickle_map(&[
                        ("from", PickleValue::Str(t.from.to_string())),
                        ("to", PickleValue::Str(t.to.to_string())),
                        ("reason", PickleValue::Str(t.reason)),
                        ("monotonic_ns", PickleValue::Int(since_first.as_nanos() as i128)),
                    ]);
                    let payload = rebeam_proto::Payload { data: payload.into(), buffers: vec![] };
                    self.publish_as_host("safety.transition", payload);
                }
                Effect::FailCaller { caller, actor } => {
                    let actor = self.actors.get(&actor).map(|a| a.label.clone()).unwrap_or_default();
                    let info = safety_error(GateError::Interrupted { actor });
                    let body = Response::Call(Outcome::Failed(info));
                    self.send(caller.proc, Frame::Response { req: caller.req, body });
                }
                Effect::CancelDelivery { actor, delivery } => {
                    if let Some(worker) = self.actors.proc_of(actor) {
                        self.send(worker, Frame::Command(Cmd::Cancel { actor, delivery }));
                    }
                }
                Effect::CancelBehaviour { proc, behaviour } => {
                    self.send(proc, Frame::Command(Cmd::CancelBehaviour { behaviour }));
                }
                Effect::GraceTimer { disarm, after } => self.after(after, Input::SafetyGrace(disarm)),
                Effect::CannotStop { why } => tracing::error!("safety: {why}"),
                Effect::Kill { proc } => {
                    let Some(p) = self.procs.get(proc) else { continue };
                    tracing::warn!(
                        "safety: gated work in {} did not stop within {:?} of the disarm; killing it",
                        p.describe(),
                        self.config.safety_grace
                    );
                    self.os.kill_group(p.pid, libc::SIGKILL);
                    self.after(KILL_CONFIRM_TIMEOUT, Input::KillConfirm(proc));
                }
            }
        }
    }
}
