//! Behaviour-oriented concurrency in the governor: the I/O half of `rebeam_core::boc`.
//!
//! The machine decides where a behaviour runs, which values move there and what a dead
//! process costs (see its module doc, over `rebeam_core::cowns`' scheduler); this file feeds
//! it the processes' events, with each process as a `Location` and the pool as it stands,
//! and carries out its effects: a holder is asked to surrender a value, a behaviour is sent
//! with the values that moved, a `wait()` is answered. A `@requires_armed` behaviour
//! (`gated`) is refused when scheduled unless the system is armed, and checked again as it
//! is sent: if the system left `armed` meanwhile, it is sent with `refused` set, so its
//! result cown gets the safety error and its cowns move on. Once running it is gated work
//! like a gated actor message: a disarm interrupts it (see `safety.rs`).
//!
//! Workers unpickle the values and code the main process sends, so they import as it does:
//! the main process reports its `sys.path` when it changes, and the governor passes it on to
//! every worker (and to each new one when it is ready). The code of a behaviour is sent once
//! in the same way (`DefineCode`), kept here for the workers to come, up to
//! [`rebeam_core::boc::MAX_CODES`] (the main process stops defining codes there, and sends
//! the rest with each behaviour); behaviours name it and carry only their captures.
//!
//! A process drops or releases only cowns it made ([`COWN_ID_MAKER_SHIFT`]); which cowns are
//! freed, and when, is the machine's rule (rebeam-core's `boc/release.rs`).

use rebeam_core::boc::{Effect, Pool, Run};
use rebeam_core::cowns::{BehaviourId, CownId, Location};
use rebeam_proto::{Command as Cmd, ErrorInfo, ErrorKind, Frame, Payload, ReqId, Response, Role};

use crate::router::{Input, ProcIdx, ProcState, Router};

pub use rebeam_core::boc::How;

/// A cown's id carries the index of the process that made it in its bits from here up
/// (`rebeam.boc`'s `new_id`): only that process may drop or release it.
pub const COWN_ID_MAKER_SHIFT: u32 = 40;

pub struct Boc {
    machine: rebeam_core::boc::Boc<Payload>,
    /// The main process's `sys.path`, as it last said (workers import as it does).
    sys_path: Option<Vec<String>>,
    /// The main process's behaviour code, by id, in the order it came.
    codes: Vec<(u64, Payload)>,
    /// The effects of a schedule or a done, carried out and kept empty for the next one (no
    /// buffer made per behaviour).
    effects: Vec<Effect<Payload>>,
}

impl Default for Boc {
    fn default() -> Self {
        // Chains of behaviours on one worker go there ahead (see `rebeam_core::boc`): the
        // worker keeps their order, and each costs no round trip through here.
        Boc { machine: rebeam_core::boc::Boc::sending_ahead(), sys_path: None, codes: Vec::new(), effects: Vec::new() }
    }
}

fn bad(e: impl std::fmt::Display) -> ErrorInfo {
    ErrorInfo::new(ErrorKind::BadRequest, e.to_string())
}

impl Router {
    fn location_of(&self, proc: ProcIdx) -> Location {
        if self.procs[proc].role == Role::Main {
            Location::Main
        } else {
            // The whole generational id: a cown left at a removed worker never appears to be at
            // the next process in its slot.
            Location::Worker(proc.to_raw())
        }
    }

    fn proc_at(&self, at: Location) -> ProcIdx {
        match at {
            Location::Main => self.main,
            Location::Worker(p) => ProcIdx::from_raw(p),
        }
    }

    /// Where behaviours may go now.
    fn boc_pool(&self) -> Pool {
        let workers = self
            .procs
            .iter()
            .filter(|(_, p)| p.role == Role::Worker && !p.spare && p.state == ProcState::Ready)
            .map(|(i, _)| i.to_raw())
            .collect();
        let main_gone = self.procs.get(self.main).is_none_or(|m| m.state == ProcState::Dead);
        Pool { workers, warming: self.pool_warming(), main_gone }
    }

    pub fn cown_created(&mut self, proc: ProcIdx, cown: CownId, pinned: bool) {
        let at = self.location_of(proc);
        if let Err(e) = self.boc.machine.create_cown(at, cown, pinned) {
            tracing::warn!("{} created a bad cown: {e}", self.procs[proc].describe());
        }
    }

    pub fn schedule(
        &mut self,
        proc: ProcIdx,
        behaviour: BehaviourId,
        cowns: Vec<CownId>,
        result: CownId,
        code: Payload,
        mut how: How,
    ) -> Result<(), ErrorInfo> {
        how.gated = self.gate.gates_behaviour(how.gated, how.at_main);
        if how.gated && !self.is_armed() {
            return Err(self.behaviour_refusal());
        }
        let (at, pool) = (self.location_of(proc), self.boc_pool());
        // Taken, not borrowed: carrying an effect out may schedule or finish another behaviour.
        let mut effects = std::mem::take(&mut self.boc.effects);
        let scheduled = self.boc.machine.schedule_into(at, behaviour, cowns, result, code, how, &pool, &mut effects);
        self.carry_out_boc_from(&mut effects);
        self.boc.effects = effects;
        scheduled.map_err(bad)
    }

    /// Runnable behaviours that found no worker (at start-up) go once workers are ready.
    pub fn dispatch_waiting_behaviours(&mut self) {
        let pool = self.boc_pool();
        let effects = self.boc.machine.dispatch_waiting(&pool);
        self.carry_out_boc(effects);
    }

    pub fn cown_value(&mut self, cown: CownId, payload: Payload) {
        let effects = self.boc.machine.cown_value(cown, payload);
        self.carry_out_boc(effects);
    }

    pub fn behaviour_done(&mut self, proc: ProcIdx, b: BehaviourId) {
        let (at, pool) = (self.location_of(proc), self.boc_pool());
        let mut effects = std::mem::take(&mut self.boc.effects);
        self.boc.machine.behaviour_done_into(at, b, &pool, &mut effects);
        self.carry_out_boc_from(&mut effects);
        self.boc.effects = effects;
    }

    /// A process dropped its last handles to cowns it made, none of which ever left it (see
    /// `rebeam.boc`). Only its own count: the others are ignored, with a warning.
    pub fn drop_cowns(&mut self, proc: ProcIdx, cowns: &[CownId]) {
        let Some(cowns) = self.made_by(proc, cowns, "dropped") else { return };
        let effects = self.boc.machine.drop_cowns(&cowns);
        self.carry_out_boc(effects);
    }

    /// A process released cowns it made that behaviours got handles to (rebeam-core's
    /// `release`); only its own count.
    pub fn release_cowns(&mut self, proc: ProcIdx, cowns: &[CownId]) {
        let Some(cowns) = self.made_by(proc, cowns, "released") else { return };
        let effects = self.boc.machine.release_cowns(&cowns);
        self.carry_out_boc(effects);
    }

    /// A process keeps handles to `cowns`: they are never freed.
    pub fn keep_cowns(&mut self, cowns: &[CownId]) {
        self.boc.machine.keep_cowns(cowns);
    }

    /// Those of `cowns` that `proc` made (its index is in their ids' high bits), or None if
    /// none; a warning names the others.
    fn made_by(&self, proc: ProcIdx, cowns: &[CownId], what: &str) -> Option<Vec<CownId>> {
        let index = u64::from(self.procs[proc].index);
        let (own, others): (Vec<CownId>, Vec<CownId>) = cowns.iter().partition(|&&c| c >> COWN_ID_MAKER_SHIFT == index);
        if !others.is_empty() {
            tracing::warn!(
                "{} {what} {} cown(s) another process made; only a cown's maker may, ignored",
                self.procs[proc].describe(),
                others.len()
            );
        }
        (!own.is_empty()).then_some(own)
    }

    /// How many known cowns have their value at each process (for the status report).
    pub(crate) fn boc_cowns_by_proc(&self) -> std::collections::HashMap<ProcIdx, usize> {
        let counts = self.boc.machine.cowns_by_location();
        counts.into_iter().map(|(at, n)| (self.proc_at(at), n)).collect()
    }

    /// A process died: the values it held and the behaviours it ran or was to run are lost
    /// (see `rebeam_core::boc`).
    pub fn boc_proc_died(&mut self, proc: ProcIdx) {
        let (at, pool) = (self.location_of(proc), self.boc_pool());
        let effects = self.boc.machine.proc_died(at, &self.procs[proc].describe(), &pool);
        self.carry_out_boc(effects);
    }

    fn carry_out_boc(&mut self, mut effects: Vec<Effect<Payload>>) {
        self.carry_out_boc_from(&mut effects);
    }

    /// Carries out `effects` in order, leaving the buffer empty.
    fn carry_out_boc_from(&mut self, effects: &mut Vec<Effect<Payload>>) {
        for effect in effects.drain(..) {
            match effect {
                Effect::Surrender { from, cown } => {
                    self.send(self.proc_at(from), Frame::Command(Cmd::Surrender { cown }));
                }
                Effect::Run(Run { at, behaviour, cowns, result, values, lost, code, gated }) => {
                    let target = self.proc_at(at);
                    let refused = (gated && !self.is_armed()).then(|| self.behaviour_refusal());
                    let tracked = gated && refused.is_none();
                    if tracked {
                        self.track_gated_behaviour(behaviour, target);
                    }
                    let run =
                        Cmd::RunBehaviour { behaviour, cowns, result, values, lost, code, refused, gated: tracked };
                    self.send(target, Frame::Command(run));
                }
                Effect::GatedEnded(b) => self.gated_behaviour_done(b),
                Effect::Quiesced { to, req } => {
                    self.send(self.proc_at(to), Frame::Response { req, body: Response::Done });
                }
                Effect::QuiesceTimedOut { to, req, pending } => {
                    let info = ErrorInfo::new(ErrorKind::Timeout, format!("{pending} behaviour(s) still pending"));
                    self.send(self.proc_at(to), Frame::Response { req, body: Response::Refused(info) });
                }
                Effect::LostBeforeDispatch(b) => {
                    tracing::debug!("behaviour {b} needs a process that is gone; it is lost")
                }
                Effect::Forget { at, cowns } => {
                    self.send(self.proc_at(at), Frame::Command(Cmd::ForgetCowns { cowns }));
                }
                Effect::Oddity(what) => tracing::warn!("{what}"),
            }
        }
    }

    /// The main process's `sys.path` changed: every worker, spares too, imports as it does
    /// from now on. Frames from one process are handled in order, so a worker has the new
    /// path before any behaviour, value or message the main process sent after the change.
    pub fn sys_path(&mut self, proc: ProcIdx, paths: Vec<String>) {
        if self.procs[proc].role != Role::Main {
            tracing::warn!(
                "{} sent its sys.path; only the main process's is shared, ignored",
                self.procs[proc].describe()
            );
            return;
        }
        let frame = Frame::Command(Cmd::SysPath { paths: paths.clone() });
        self.boc.sys_path = Some(paths);
        for i in self.procs.ids() {
            let p = &self.procs[i];
            if p.role == Role::Worker && p.state == ProcState::Ready {
                self.send(i, frame.clone());
            }
        }
    }

    /// A worker that just became ready gets the main process's `sys.path`, if it set one.
    pub fn send_sys_path(&mut self, proc: ProcIdx) {
        if let Some(paths) = &self.boc.sys_path {
            let frame = Frame::Command(Cmd::SysPath { paths: paths.clone() });
            self.send(proc, frame);
        }
    }

    /// The main process defined a behaviour's code: every worker, spares too, keeps it from
    /// now on (frames are handled in order, so before any behaviour that names it).
    pub fn define_code(&mut self, proc: ProcIdx, id: u64, code: Payload) {
        if self.procs[proc].role != Role::Main {
            tracing::warn!(
                "{} defined behaviour code; only the main process's is shared, ignored",
                self.procs[proc].describe()
            );
            return;
        }
        if self.boc.codes.len() >= rebeam_core::boc::MAX_CODES {
            tracing::warn!(
                "the main process defined more than {} behaviour codes; ignored",
                rebeam_core::boc::MAX_CODES
            );
            return;
        }
        let frame = Frame::Command(Cmd::DefineCode { id, code: code.clone() });
        self.boc.codes.push((id, code));
        for i in self.procs.ids() {
            let p = &self.procs[i];
            if p.role == Role::Worker && p.state == ProcState::Ready {
                self.send(i, frame.clone());
            }
        }
    }

    /// A worker that just became ready gets every behaviour code defined so far.
    pub fn send_codes(&mut self, proc: ProcIdx) {
        let frames: Vec<Frame> = self
            .boc
            .codes
            .iter()
            .map(|(id, code)| Frame::Command(Cmd::DefineCode { id: *id, code: code.clone() }))
            .collect();
        for frame in frames {
            self.send(proc, frame);
        }
    }

    pub fn boc_stats(&self) -> Vec<(u32, u32, u64)> {
        let live = self.procs.iter().filter(|(_, p)| p.state != ProcState::Dead && !p.spare);
        live.map(|(i, p)| (p.index, p.pid, self.boc.machine.ran(self.location_of(i)))).collect()
    }

    pub fn quiesce(&mut self, proc: ProcIdx, req: ReqId, timeout_ms: Option<u64>) {
        let token = self.next_id();
        let at = self.location_of(proc);
        if let Some(ms) = timeout_ms {
            self.after(std::time::Duration::from_millis(ms), Input::QuiesceDeadline(token));
        }
        let effects = self.boc.machine.quiesce(at, req, token);
        self.carry_out_boc(effects);
    }

    pub fn quiesce_deadline(&mut self, token: u64) {
        let effects = self.boc.machine.quiesce_deadline(token);
        self.carry_out_boc(effects);
    }
}

/// What the model test may see of the scheduler's bookkeeping: where each running and each
/// gathering behaviour is placed, and who waits in `wait()`.
#[cfg(test)]
pub(crate) struct BocView {
    pub running: Vec<(BehaviourId, ProcIdx)>,
    pub gathering: Vec<(BehaviourId, ProcIdx)>,
    pub quiesce: Vec<ProcIdx>,
}

#[cfg(test)]
impl Router {
    pub(crate) fn boc_view(&self) -> BocView {
        let view = self.boc.machine.view();
        let placed =
            |list: Vec<(BehaviourId, Location)>| list.into_iter().map(|(b, at)| (b, self.proc_at(at))).collect();
        BocView {
            running: placed(view.running),
            gathering: placed(view.gathering),
            quiesce: view.quiesce.into_iter().map(|at| self.proc_at(at)).collect(),
        }
    }
}
