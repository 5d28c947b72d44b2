//! Behaviour-oriented concurrency in the governor: the I/O half of `rebeam_core::cowns`.
//!
//! A cown's value lives in the process that created it or last ran a behaviour on it. When a
//! behaviour becomes runnable (it heads the queue of every cown it requested), the governor
//! picks where it runs (`place`: the main process if a cown is pinned, else the worker that
//! holds most of its cowns), asks each other holder to surrender its value, and once every
//! value has arrived sends the behaviour there with the values that moved. When it is done,
//! all its cowns (its result cown included) are where it ran, and the behaviours behind it
//! may run. `wait()` is answered when no behaviour is left.
//!
//! A behaviour's result cown is part of its request set, so behaviours chained on the result
//! run after it, in order. A result cown has no value until its behaviour is done. A worker
//! that dies takes the values it held: those cowns are marked lost, and behaviours that need
//! them get an error instead of a value; its running behaviours end with that error, and so
//! do the behaviours gathering values to run there. A behaviour gathering elsewhere stops
//! waiting for a value the dead worker was to send: that cown is lost, and it runs.
//!
//! `Cown.acquire()` in the main process is a behaviour placed there whatever its cowns
//! (`at_main`): it "runs" from the moment its values arrive until `release()` says it is
//! done, and its result cown is dropped then. A `@requires_armed` behaviour (`gated`) is
//! refused when scheduled unless the system is armed, and checked again when it is about to
//! run: if the system left `armed` meanwhile, it is sent with `refused` set, so its result
//! cown gets the safety error and its cowns move on. Once running it is gated work like a
//! gated actor message: a disarm interrupts it (see `safety.rs`).
//!
//! Workers unpickle the values and code the main process sends, so they import as it does:
//! the main process reports its `sys.path` when it changes, and the governor passes it on to
//! every worker (and to each new one when it is ready).

use std::collections::{HashMap, HashSet};

use rebeam_core::cowns::{place, BehaviourId, CownId, Location, Scheduler};
use rebeam_proto::{Command as Cmd, ErrorInfo, ErrorKind, Frame, Payload, ReqId, Response, Role};

use crate::router::{Input, ProcIdx, ProcState, Router};

struct Waiting {
    target: ProcIdx,
    missing: HashSet<CownId>,
    values: Vec<(CownId, Payload)>,
}

/// How a behaviour was scheduled.
#[derive(Debug, Clone, Copy, Default)]
pub struct How {
    pub at_main: bool,
    pub gated: bool,
}

#[derive(Default)]
pub struct Boc {
    how: HashMap<BehaviourId, How>,
    sched: Scheduler,
    code: HashMap<BehaviourId, (Payload, CownId)>,
    gathering: HashMap<BehaviourId, Waiting>,
    /// Which behaviour asked for a cown's value.
    surrenders: HashMap<CownId, BehaviourId>,
    running: HashMap<BehaviourId, ProcIdx>,
    /// Result cowns whose behaviour has not finished: nothing to move yet.
    empty: HashSet<CownId>,
    /// Cowns whose value died with a worker.
    lost: HashSet<CownId>,
    quiesce: Vec<(ProcIdx, ReqId, u64)>,
    /// Behaviours each process has run.
    ran: HashMap<ProcIdx, u64>,
    /// The main process's `sys.path`, as it last said (workers import as it does).
    sys_path: Option<Vec<String>>,
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

    pub fn cown_created(&mut self, proc: ProcIdx, cown: CownId, pinned: bool) {
        let at = self.location_of(proc);
        if let Err(e) = self.boc.sched.create_cown(cown, at, pinned) {
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
        if how.at_main && self.procs[proc].role != Role::Main {
            return Err(bad("Cown.acquire() is for the main process; a behaviour requests its cowns with @when"));
        }
        let at = self.location_of(proc);
        self.boc.sched.create_cown(result, at, false).map_err(bad)?;
        self.boc.empty.insert(result);
        let mut request = cowns;
        request.push(result);
        let runnable = match self.boc.sched.schedule(behaviour, &request) {
            Ok(runnable) => runnable,
            Err(e) => {
                // Refused: the result cown made for it must not linger.
                let _ = self.boc.sched.drop_cown(result);
                self.boc.empty.remove(&result);
                return Err(bad(e));
            }
        };
        self.boc.code.insert(behaviour, (code, result));
        if how.at_main || how.gated {
            self.boc.how.insert(behaviour, how);
        }
        if runnable {
            self.dispatch_behaviour(behaviour);
        }
        Ok(())
    }

    fn dispatch_behaviour(&mut self, b: BehaviourId) {
        let workers: Vec<u64> = self
            .procs
            .iter()
            .filter(|(_, p)| p.role == Role::Worker && !p.spare && p.state == ProcState::Ready)
            .map(|(i, _)| i.to_raw())
            .collect();
        // Load counts behaviours still gathering their values too: they are on their way.
        let (running, gathering) = (&self.boc.running, &self.boc.gathering);
        let load = |w: u64| {
            let w = ProcIdx::from_raw(w);
            running.values().filter(|&&p| p == w).count() + gathering.values().filter(|g| g.target == w).count()
        };
        // While the pool still starts workers, a burst of runnable behaviours must not all pile
        // onto the first ready one (CPU-bound work would then run one worker wide): once every
        // ready worker is busy, the rest wait for the next worker to be ready.
        if self.pool_warming() && !workers.is_empty() && workers.iter().all(|&w| load(w) > 0) {
            return;
        }
        let at_main = self.boc.how.get(&b).is_some_and(|h| h.at_main);
        let placed = if at_main { Some(Location::Main) } else { place(&self.boc.sched, b, &workers, &load) };
        let Some(at) = placed else {
            // No worker is ready yet: try again when one is (see `dispatch_waiting_behaviours`).
            return;
        };
        let target = self.proc_at(at);
        if self.procs[target].state == ProcState::Dead {
            return self.lost_before_dispatch(b, at);
        }
        let cowns = self.boc.sched.cowns_of(b).expect("scheduled").to_vec();
        let mut missing = HashSet::new();
        for c in cowns {
            let here = self.boc.sched.location(c) == Some(at);
            if here || self.boc.empty.contains(&c) || self.boc.lost.contains(&c) {
                continue;
            }
            let holder = self.proc_at(self.boc.sched.location(c).expect("known"));
            self.boc.surrenders.insert(c, b);
            missing.insert(c);
            self.send(holder, Frame::Command(Cmd::Surrender { cown: c }));
        }
        let _ = self.boc.sched.start(b);
        self.boc.gathering.insert(b, Waiting { target, missing, values: Vec::new() });
        self.maybe_run(b);
    }

    /// A behaviour that must run in a process that is gone (the main process, for a pinned
    /// cown, once it has exited) is lost as one gathering there when it died would be: its
    /// cowns are marked lost, and the behaviours behind it go on.
    fn lost_before_dispatch(&mut self, b: BehaviourId, at: Location) {
        tracing::debug!("behaviour {b} needs a process that is gone; it is lost");
        self.boc.how.remove(&b);
        if let Some((_, result)) = self.boc.code.remove(&b) {
            self.boc.empty.remove(&result);
        }
        self.boc.lost.extend(self.boc.sched.cowns_of(b).map(<[CownId]>::to_vec).unwrap_or_default());
        let _ = self.boc.sched.start(b);
        match self.boc.sched.complete(b, at) {
            Ok(next) => next.into_iter().for_each(|n| self.dispatch_behaviour(n)),
            Err(e) => tracing::warn!("behaviour {b}, lost before dispatch, completed oddly: {e}"),
        }
        self.answer_quiesce();
    }

    /// Runnable behaviours that found no worker (at start-up) go once workers are ready.
    pub fn dispatch_waiting_behaviours(&mut self) {
        for b in self.boc.sched.runnable() {
            self.dispatch_behaviour(b);
        }
    }

    pub fn cown_value(&mut self, cown: CownId, payload: Payload) {
        let Some(b) = self.boc.surrenders.remove(&cown) else { return };
        if let Some(w) = self.boc.gathering.get_mut(&b) {
            w.missing.remove(&cown);
            w.values.push((cown, payload));
        }
        self.maybe_run(b);
    }

    fn maybe_run(&mut self, b: BehaviourId) {
        if !self.boc.gathering.get(&b).is_some_and(|w| w.missing.is_empty()) {
            return;
        }
        let w = self.boc.gathering.remove(&b).expect("checked");
        let (code, result) = self.boc.code.get(&b).cloned().expect("scheduled");
        let cowns = self.boc.sched.cowns_of(b).expect("scheduled").to_vec();
        let lost = cowns.iter().copied().filter(|c| self.boc.lost.contains(c)).collect();
        self.boc.running.insert(b, w.target);
        let gated = self.boc.how.get(&b).is_some_and(|h| h.gated);
        let refused = (gated && !self.is_armed()).then(|| self.behaviour_refusal());
        if gated && refused.is_none() {
            self.track_gated_behaviour(b, w.target);
        }
        let frame =
            Frame::Command(Cmd::RunBehaviour { behaviour: b, cowns, result, values: w.values, lost, code, refused });
        self.send(w.target, frame);
    }

    pub fn behaviour_done(&mut self, proc: ProcIdx, b: BehaviourId) {
        if self.boc.running.remove(&b).is_none() {
            return;
        }
        let at = self.location_of(proc);
        let result = self.boc.code.remove(&b).map(|(_, result)| result);
        if let Some(result) = result {
            self.boc.empty.remove(&result);
        }
        let how = self.boc.how.remove(&b).unwrap_or_default();
        if !how.at_main {
            *self.boc.ran.entry(proc).or_default() += 1;
        }
        // Lost cowns stay lost: a behaviour cannot write them (their value raises), so running
        // one does not bring a value back.
        let completed = self.boc.sched.complete(b, at);
        if how.gated {
            self.gated_behaviour_done(b);
        }
        if let (true, Some(result)) = (how.at_main, result) {
            // An acquire's result cown is never seen by the program.
            let _ = self.boc.sched.drop_cown(result);
        }
        match completed {
            Ok(next) => {
                for n in next {
                    self.dispatch_behaviour(n);
                }
            }
            Err(e) => tracing::warn!("behaviour {b} completed oddly: {e}"),
        }
        self.answer_quiesce();
    }

    /// A worker died: the values it held are lost, and so are the behaviours it ran and those
    /// gathering their values to run there (the values on their way die with their
    /// destination). Behaviours gathering elsewhere stop waiting for values it was to send:
    /// they run with those cowns marked lost. Every loss is recorded before anything is
    /// dispatched, so no behaviour asks the dead worker for a value.
    pub fn boc_proc_died(&mut self, proc: ProcIdx) {
        // Its own `wait()` calls: nobody is left to answer.
        self.boc.quiesce.retain(|&(p, _, _)| p != proc);
        let at = self.location_of(proc);
        let mut dead: Vec<BehaviourId> = self.boc.running.iter().filter(|(_, &p)| p == proc).map(|(&b, _)| b).collect();
        for &b in &dead {
            self.boc.running.remove(&b);
            if self.boc.how.get(&b).is_some_and(|h| h.gated) {
                self.gated_behaviour_done(b);
            }
        }
        let gathering_here: Vec<BehaviourId> =
            self.boc.gathering.iter().filter(|(_, w)| w.target == proc).map(|(&b, _)| b).collect();
        for b in gathering_here {
            if let Some(w) = self.boc.gathering.remove(&b) {
                for c in w.missing {
                    self.boc.surrenders.remove(&c);
                }
            }
            dead.push(b);
        }
        for &b in &dead {
            self.boc.how.remove(&b);
            if let Some((_, result)) = self.boc.code.remove(&b) {
                self.boc.empty.remove(&result);
            }
            let cowns = self.boc.sched.cowns_of(b).map(<[CownId]>::to_vec).unwrap_or_default();
            self.boc.lost.extend(cowns);
        }
        // A value it surrendered before dying is safe with the governor, on its way elsewhere.
        let in_transit: HashSet<CownId> =
            self.boc.gathering.values().flat_map(|w| w.values.iter().map(|(c, _)| *c)).collect();
        let held: Vec<CownId> = self.boc.sched.cowns_at(at).into_iter().filter(|c| !in_transit.contains(c)).collect();
        self.boc.lost.extend(held);
        let waiting: Vec<BehaviourId> = self.boc.gathering.keys().copied().collect();
        for b in waiting {
            let Some(w) = self.boc.gathering.get_mut(&b) else { continue };
            let gone: Vec<CownId> = w.missing.iter().copied().filter(|c| self.boc.lost.contains(c)).collect();
            for c in gone {
                w.missing.remove(&c);
                self.boc.surrenders.remove(&c);
            }
            self.maybe_run(b);
        }
        for b in dead {
            match self.boc.sched.complete(b, at) {
                Ok(next) => {
                    for n in next {
                        self.dispatch_behaviour(n);
                    }
                }
                Err(e) => {
                    tracing::warn!("behaviour {b} lost with {} completed oddly: {e}", self.procs[proc].describe())
                }
            }
        }
        // Behaviours deferred while the pool was warming go now, or when the next worker is ready.
        self.dispatch_waiting_behaviours();
        self.answer_quiesce();
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

    pub fn boc_stats(&self) -> Vec<(u32, u32, u64)> {
        let live = self.procs.iter().filter(|(_, p)| p.state != ProcState::Dead && !p.spare);
        live.map(|(i, p)| (p.index, p.pid, self.boc.ran.get(&i).copied().unwrap_or(0))).collect()
    }

    pub fn quiesce(&mut self, proc: ProcIdx, req: ReqId, timeout_ms: Option<u64>) {
        let token = self.next_id();
        self.boc.quiesce.push((proc, req, token));
        if let Some(ms) = timeout_ms {
            self.after(std::time::Duration::from_millis(ms), Input::QuiesceDeadline(token));
        }
        self.answer_quiesce();
    }

    pub fn quiesce_deadline(&mut self, token: u64) {
        if let Some(i) = self.boc.quiesce.iter().position(|&(_, _, t)| t == token) {
            let (proc, req, _) = self.boc.quiesce.remove(i);
            let info =
                ErrorInfo::new(ErrorKind::Timeout, format!("{} behaviour(s) still pending", self.boc.sched.pending()));
            self.send(proc, Frame::Response { req, body: Response::Refused(info) });
        }
    }

    fn answer_quiesce(&mut self) {
        if self.boc.sched.pending() > 0 {
            return;
        }
        for (proc, req, _) in std::mem::take(&mut self.boc.quiesce) {
            self.send(proc, Frame::Response { req, body: Response::Done });
        }
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
impl Boc {
    pub(crate) fn view(&self) -> BocView {
        BocView {
            running: self.running.iter().map(|(&b, &p)| (b, p)).collect(),
            gathering: self.gathering.iter().map(|(&b, w)| (b, w.target)).collect(),
            quiesce: self.quiesce.iter().map(|&(p, _, _)| p).collect(),
        }
    }
}
