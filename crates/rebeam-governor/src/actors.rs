//! Actor lifecycle in the governor: create, place on a worker, start, stop, and end.
//!
//! An actor is one incarnation (one `ActorId`) of a child. When it ends, every caller still
//! waiting on it gets an error at once, its monitors get down notices, its name is freed, and its
//! supervisor (if any) decides what happens next. Stopping is polite first (the worker runs the
//! actor's stop after its current message); if it has not stopped when its shutdown timeout
//! passes, its worker is killed, because one Python thread cannot be killed safely on its own.

use std::time::Duration;

use rebeam_proto::{
    ActorId, ActorRef, ChildCode, ChildSpec, Command as Cmd, DeliveryId, ErrorInfo, ErrorKind, Exit, Frame, Gating,
    Outcome, ReqId, Response,
};

use crate::report;
use crate::router::{Input, ProcIdx, Router};
use crate::tree::TreeId;
use rebeam_core::registry::{JoinRefused, Named, Names};
use rebeam_core::supervision::FaultId;

pub struct Actor {
    pub name: Option<String>,
    /// Its place in a group, if it is a member (it then has no name of its own).
    pub group: Option<rebeam_proto::GroupSlot>,
    /// How logs and reports name it: `'counter'` or `Counter<12>`.
    pub label: String,
    code: ChildCode,
    pub started: bool,
    pub stopping: bool,
    pub parent: Option<(TreeId, usize)>,
    /// Deliveries that arrived before the actor had a worker, in arrival order.
    pub parked: Vec<(rebeam_proto::Routed, Vec<std::os::fd::OwnedFd>)>,
    /// Which of its handlers need the system armed (known once it started).
    pub gating: Gating,
    /// Messages routed to it so far (the status report's msg/s).
    pub delivered: u64,
    waiter: Option<StartWaiter>,
}

/// Who is told when the actor has started (or failed to).
pub enum StartWaiter {
    Spawn { proc: ProcIdx, req: ReqId },
    Tree { tree: TreeId, slot: usize },
}

impl Router {
    /// Creates an actor for `spec` and starts it on the least-loaded worker (or queues it).
    pub fn create_actor(
        &mut self,
        spec: &ChildSpec,
        parent: Option<(TreeId, usize)>,
        waiter: StartWaiter,
    ) -> Result<ActorId, ErrorInfo> {
        if matches!(spec.code, ChildCode::Tree(_) | ChildCode::Adopt { .. }) {
            return Err(ErrorInfo::new(ErrorKind::BadRequest, "a Supervisor is not an actor; nest it in a Supervisor"));
        }
        if let Some(name) = &spec.name {
            let taken = match self.names.resolve(name) {
                None => None,
                Some(Named::Actor(holder)) => Some(format!("registered to actor <{holder}>")),
                Some(Named::Group(_)) => Some("a group's name".to_string()),
            };
            if let Some(taken) = taken {
                return Err(ErrorInfo::new(
                    ErrorKind::StartFailed,
                    format!("the name '{name}' is already {taken}; pick another name or stop that actor first"),
                ));
            }
        }
        let id = self.next_id();
        if let Some(slot) = &spec.group {
            self.join_group(slot, id)?;
        }
        let label = match (&spec.name, &spec.group) {
            (Some(n), _) => format!("'{n}'"),
            (None, Some(slot)) => format!("'{}'[{}]", slot.name, slot.position),
            (None, None) => format!("{}<{id}>", spec.label),
        };
        if let Some(name) = &spec.name {
            self.names.register(name, id).expect("checked free above, in this same step");
        }
        self.actors.insert(
            id,
            Actor {
                name: spec.name.clone(),
                group: spec.group.clone(),
                label,
                code: spec.code.clone(),
                started: false,
                stopping: false,
                parent,
                parked: Vec::new(),
                gating: Gating::default(),
                delivered: 0,
                waiter: Some(waiter),
            },
        );
        self.queued_starts.push_back(id);
        self.dispatch_queued_starts();
        Ok(id)
    }

    /// Sends queued starts to ready workers. While a pool worker is still starting, starts
    /// wait for it: otherwise everything would pile onto the first worker to say Ready.
    pub fn dispatch_queued_starts(&mut self) {
        if self.pool_warming() {
            return;
        }
        while let Some(&id) = self.queued_starts.front() {
            let Some(worker) = self.place() else { return };
            self.queued_starts.pop_front();
            let Some(actor) = self.actors.get_mut(&id) else {
                continue;
            };
            let frame = Frame::Command(Cmd::Start {
                actor: id,
                name: actor.name.clone(),
                label: actor.label.clone(),
                code: actor.code.clone(),
            });
            let parked = std::mem::take(&mut actor.parked);
            self.actors.place(id, worker);
            self.send(worker, frame);
            for (message, fds) in parked {
                self.send_with_fds(worker, message, fds);
            }
        }
    }

    pub fn on_started(&mut self, id: ActorId, result: Result<Gating, ErrorInfo>) {
        let Some(actor) = self.actors.get_mut(&id) else {
            return;
        };
        self.first_start_ended = true;
        let waiter = actor.waiter.take();
        match result {
            Ok(gating) => {
                actor.started = true;
                actor.gating = gating;
                tracing::debug!("actor {} started", actor.label);
                match waiter {
                    Some(StartWaiter::Spawn { proc, req }) => {
                        let r = ActorRef { id, name: actor.name.clone() };
                        self.send(proc, Frame::Response { req, body: Response::Spawned(Ok(r)) });
                    }
                    Some(StartWaiter::Tree { tree, slot }) => self.tree_child_started(tree, slot, id),
                    None => {}
                }
                // It may have been the last start the spares waited for (see pool.rs).
                self.start_due_spares();
            }
            Err(info) => {
                actor.waiter = waiter;
                self.actor_ended(id, Exit::Crashed(info));
            }
        }
    }

    /// The actor is gone (it exited, crashed, failed to start, or its worker died).
    pub fn actor_ended(&mut self, id: ActorId, exit: Exit) {
        self.actor_ended_in_fault(id, exit, None);
    }

    /// The actor's process (alive) says it ended, having taken deliveries in up to
    /// `taken_up_to`: later ones wait for that process's own answer (see `calls`).
    pub fn actor_exited(&mut self, id: ActorId, proc: ProcIdx, exit: Exit, taken_up_to: DeliveryId) {
        self.end_actor(id, exit, None, Some((proc, taken_up_to)));
    }

    /// Like [`Router::actor_ended`], for an actor ended by `fault` (its worker died): the
    /// supervisors count that fault once, however many of their children it took.
    pub fn actor_ended_in_fault(&mut self, id: ActorId, exit: Exit, fault: Option<FaultId>) {
        self.end_actor(id, exit, fault, None);
    }

    fn end_actor(&mut self, id: ActorId, exit: Exit, fault: Option<FaultId>, taken: Option<(ProcIdx, DeliveryId)>) {
        let Some(actor) = self.actors.remove(&id) else {
            return;
        };
        actor.release_names(id, &mut self.names);
        if !actor.started {
            self.first_start_ended = true; // it ended before it started: that start is over
        }
        self.queued_starts.retain(|&a| a != id);
        self.unsubscribe_actor(id);
        let why = describe_exit(&exit);
        let ended = self.calls.actor_ended(id, taken);
        for caller in ended.callers {
            let info =
                ErrorInfo::new(ErrorKind::ActorDown, format!("actor {} ended before it answered: {why}", actor.label));
            self.send(caller.proc, Frame::Response { req: caller.req, body: Response::Call(Outcome::Failed(info)) });
        }
        if ended.gated {
            self.gated_work_ended();
        }
        let down: Vec<u64> = self.monitors.iter().filter(|(_, m)| m.target == id).map(|(&k, _)| k).collect();
        for monitor in down {
            let Some(m) = self.monitors.remove(&monitor) else { continue };
            let frame = Frame::Command(Cmd::Down {
                monitor,
                watcher: m.watcher,
                actor: ActorRef { id, name: actor.name.clone() },
                node: None,
                reason: exit.clone(),
            });
            self.send(m.watcher_proc, frame);
        }
        // As in Erlang, the monitors this actor set end with it: nobody is left to notify, and
        // a watcher that restarts (and monitors again) would otherwise leak one per restart.
        self.monitors.retain(|_, m| m.watcher != Some(id));
        match (actor.waiter, actor.parent) {
            (Some(StartWaiter::Spawn { proc, req }), _) => {
                let info = start_failure(&actor.label, &exit);
                tracing::error!("{}", info.message);
                self.send(proc, Frame::Response { req, body: Response::Spawned(Err(info)) });
            }
            (Some(StartWaiter::Tree { tree, slot }), _) => {
                self.tree_child_start_failed(tree, slot, start_failure(&actor.label, &exit));
            }
            (None, Some((tree, slot))) => self.tree_child_ended_in_fault(tree, slot, exit, fault),
            (None, None) => {
                if matches!(exit, Exit::Crashed(_) | Exit::Killed(_)) && !self.is_shutting_down() {
                    tracing::error!("{}", report::unsupervised(&actor.label, &exit));
                }
            }
        }
        // An actor that ended before it started no longer holds the spares back.
        self.start_due_spares();
    }

    /// Asks an actor to stop; kills its worker if it has not stopped within `timeout`
    /// (`None` waits forever, zero kills at once).
    pub fn stop_actor(&mut self, id: ActorId, timeout: Option<Duration>) {
        let Some(actor) = self.actors.get_mut(&id) else {
            return;
        };
        actor.stopping = true;
        let placed = actor.started || actor.waiter.is_some();
        let Some(worker) = self.actors.proc_of(id).filter(|_| placed) else {
            return self.actor_ended(id, Exit::Shutdown);
        };
        if !self.send(worker, Frame::Command(Cmd::Stop { actor: id })) {
            return self.actor_ended(id, Exit::Shutdown);
        }
        match timeout {
            Some(t) if t.is_zero() => self.on_stop_deadline(id),
            Some(t) => self.after(t, Input::StopDeadline(id)),
            None => {}
        }
    }

    pub fn on_stop_deadline(&mut self, id: ActorId) {
        let Some(actor) = self.actors.get(&id).filter(|a| a.stopping) else {
            return;
        };
        let Some(worker) = self.actors.proc_of(id) else { return };
        let Some(p) = self.procs.get(worker) else { return };
        tracing::warn!(
            "actor {} did not stop in time; killing {} and the {} actor(s) in it",
            actor.label,
            p.describe(),
            self.actors.count_on(worker)
        );
        self.os.kill_group(p.pid, libc::SIGKILL);
    }

    pub fn spawn_unsupervised(&mut self, proc: ProcIdx, req: ReqId, child: ChildSpec) {
        if let Err(info) = self.create_actor(&child, None, StartWaiter::Spawn { proc, req }) {
            self.send(proc, Frame::Response { req, body: Response::Spawned(Err(info)) });
        }
    }
}

impl Router {
    /// Puts a new member `id` in its group's position (see `rebeam_core::registry::groups`).
    fn join_group(&mut self, slot: &rebeam_proto::GroupSlot, id: ActorId) -> Result<(), ErrorInfo> {
        let joined = self.names.join(&slot.name, slot.position, slot.size, slot.balance, id);
        let why = match joined {
            Ok(()) => return Ok(()),
            Err(JoinRefused::NameTaken(holder)) => format!(
                "the name '{}' is already registered to actor <{holder}>; pick another name for the group",
                slot.name
            ),
            Err(JoinRefused::Size { size }) => format!(
                "a group named '{}' with {size} members is already running; pick another name or stop it first",
                slot.name
            ),
            Err(JoinRefused::Held(holder)) => format!(
                "member {} of the group '{}' is already running as actor <{holder}>; pick another name for the group",
                slot.position, slot.name
            ),
        };
        Err(ErrorInfo::new(ErrorKind::StartFailed, why))
    }
}

impl Actor {
    /// Frees what `id` (this actor) holds in `names`: its name, or its place in its group.
    pub fn release_names(&self, id: ActorId, names: &mut Names) {
        if let Some(name) = &self.name {
            names.release(name, id);
        }
        if let Some(slot) = &self.group {
            names.leave(&slot.name, slot.position, id);
        }
    }

    /// A function or module child: it runs, but takes no messages.
    pub fn is_task(&self) -> bool {
        matches!(self.code, ChildCode::Task { .. })
    }
}

pub fn describe_exit(exit: &Exit) -> String {
    match exit {
        Exit::Normal => "it exited normally".into(),
        Exit::Shutdown => "it was stopped".into(),
        Exit::Crashed(info) => format!("it crashed with {info}"),
        Exit::Killed(why) => format!("it was killed ({why})"),
    }
}

fn start_failure(label: &str, exit: &Exit) -> ErrorInfo {
    match exit {
        Exit::Crashed(info) => ErrorInfo {
            kind: ErrorKind::StartFailed,
            // The type is spelled out here, once: ErrorInfo's Display does not prefix it again.
            message: match &info.exc_type {
                Some(t) => format!("actor {label} failed to start: {t}: {}", info.message),
                None => format!("actor {label} failed to start: {}", info.message),
            },
            exc_type: info.exc_type.clone(),
            traceback: info.traceback.clone(),
        },
        other => {
            ErrorInfo::new(ErrorKind::StartFailed, format!("actor {label} failed to start: {}", describe_exit(other)))
        }
    }
}
