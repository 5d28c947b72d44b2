//! Calls and casts through the governor: resolving a target, delivering a message, and
//! carrying the worker's answer back to its caller.
//!
//! The rules:
//! - A call or cast is routed from its fixed header and subject (`Routed`): the payload pieces
//!   leave in the delivery as the very bytes read, never decoded or copied.
//! - A target is a name (an actor's, or a group's: each message then picks its member) or an
//!   actor id; a stopping actor is not a target. Gated work is refused here, before dispatch,
//!   when the system is not armed.
//! - Every delivery someone waits for (a call's caller, the gate for gated work) is in the
//!   in-flight index (`calls`), with the caller's deadline; a message for an actor that has
//!   no worker yet is parked and follows its Start.
//! - A call or cast that lends pieces must bring one fd per lent piece, or it is refused (a
//!   call fails with `BadRequest`, a cast is not delivered); its fds leave with its delivery
//!   (parked with it if need be) and close with it wherever it is refused or dropped. A reply
//!   that lends pieces is held to the same count, and its fds leave with the caller's answer.
//! - A delivered call names its caller's pid (none for a call from another node), the one
//!   process its reply may lend to.
//! - A reply to a direct call that does not fit its channel's ring comes this way, naming the
//!   channel and the caller's request id there: it goes to the channel's other end as that
//!   request's answer, with its fds, if the channel is the replier's own.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rebeam_core::calls::Caller;
use rebeam_proto::{
    ActorId, ActorRef, Command as Cmd, DeliveryId, ErrorInfo, ErrorKind, Frame, IntoEncoded, Kind, Outcome, ReqId,
    Response, Routed, Target, TargetRef,
};

use crate::router::{Monitor, ProcIdx, Router, SWEEP_INTERVAL};

impl Router {
    /// The fast path: a call or cast is routed from its fixed header and subject and leaves as
    /// a delivery carrying the very payload pieces read; a reply leaves as the caller's answer
    /// the same way. Nothing else of the frame is decoded.
    /// `fds` are those the frame brought (see `lent.rs`); they close here unless delivered.
    pub(crate) fn on_hot(&mut self, proc: ProcIdx, hot: Routed, fds: Vec<OwnedFd>) {
        if !self.is_live(proc) {
            return;
        }
        if hot.lent() != fds.len() {
            let why = format!(
                "a message lending {} shared-memory piece(s) came with {} fd(s); refused, and its fds closed",
                hot.lent(),
                fds.len()
            );
            tracing::warn!("{}: {why}", self.procs[proc].describe());
            let info = ErrorInfo::new(ErrorKind::BadRequest, why);
            return match hot.kind() {
                Kind::Call => self.respond(proc, hot.request(), Response::Call(Outcome::Failed(info))),
                Kind::Cast => drop(self.send(proc, Routed::cast_answer(hot.request(), false))),
                // Its caller gets the refusal in place of a reply it could not read.
                Kind::Replied => match hot.direct_reply() {
                    Some((channel, req)) => {
                        let failed = Frame::Response { req, body: Response::Call(Outcome::Failed(info)) };
                        self.direct_replied(proc, channel, failed, Vec::new())
                    }
                    None => self.replied(hot.delivery().unwrap_or_default(), false, Vec::new(), |req| {
                        Frame::Response { req, body: Response::Call(Outcome::Failed(info)) }
                    }),
                },
                _ => self.on_frame(proc, hot.into_frame()),
            };
        }
        match hot.kind() {
            Kind::Call => {
                let req = hot.request();
                if self.shutdown.is_some() {
                    let info = ErrorInfo::new(ErrorKind::ShuttingDown, "rebeam is shutting down");
                    return self.respond(proc, req, Response::Call(Outcome::Failed(info)));
                }
                let Some(hot) = self.send_elsewhere(proc, hot) else { return };
                let call = Some((req, hot.timeout_ms()));
                if let Err(info) = self.deliver(proc, call, hot, fds) {
                    self.respond(proc, req, Response::Call(Outcome::Failed(info)));
                }
            }
            Kind::Cast => {
                let req = hot.request();
                let Some(hot) = self.cast_elsewhere(proc, hot) else { return };
                let delivered = self.deliver(proc, None, hot, fds).is_ok();
                self.send(proc, Routed::cast_answer(req, delivered));
            }
            Kind::Replied => match hot.direct_reply() {
                Some((channel, req)) => self.direct_replied(proc, channel, hot.into_call_reply(req), fds),
                None => {
                    let delivery = hot.delivery().unwrap_or_default();
                    self.replied(delivery, false, fds, |req| hot.into_call_reply(req));
                }
            },
            // Deliveries and answers are the governor's to send: the frame path refuses them.
            Kind::Deliver | Kind::CallReply | Kind::CastAnswer | Kind::Bincode => self.on_frame(proc, hot.into_frame()),
        }
    }

    /// A worker's answer to `delivery`: ends its gated work, and goes to its caller, if one
    /// still waits, as `answer` for the caller's request, with `fds`, the segments a reply
    /// lends (they close here if no one waits, or the caller is on another node: the worker
    /// lends only to the pid the delivery named, which a call from another node does not).
    pub(crate) fn replied<A: IntoEncoded>(
        &mut self,
        delivery: DeliveryId,
        crashed: bool,
        fds: Vec<OwnedFd>,
        answer: impl FnOnce(ReqId) -> A,
    ) {
        let Some(replied) = self.calls.reply(delivery) else { return };
        if replied.gated {
            self.gated_work_ended();
        }
        if let Some(caller) = replied.caller {
            if let Some(actor) = self.actors.get(&replied.actor) {
                // Its handler raised, so it is ending (its Exited comes on its own
                // socket, maybe after the caller's next call): free its name (or its place in
                // its group) now, so that call gets NoProcess, as during the restart (or goes
                // to another member), not to a dying actor.
                if crashed {
                    actor.release_names(replied.actor, &mut self.names);
                }
            }
            if fds.is_empty() {
                self.send(caller.proc, answer(caller.req));
            } else if caller.proc == crate::node::NODE_PEER {
                let why = "a reply lending shared memory to a caller on another node; refused, and its fds closed";
                tracing::warn!("actor <{}>: {why}", replied.actor);
                let info = ErrorInfo::new(ErrorKind::BadRequest, why);
                self.respond(caller.proc, caller.req, Response::Call(Outcome::Failed(info)));
            } else {
                self.send_with_fds(caller.proc, answer(caller.req), fds);
            }
        }
    }

    /// A process's reply to a direct call it hosts that did not fit the ring: `answer` goes to
    /// the process at the other end of `channel`, one of the replier's own (else it is dropped,
    /// its fds closed: a process answers only on its own channels).
    fn direct_replied(&mut self, proc: ProcIdx, channel: u64, answer: impl IntoEncoded, fds: Vec<OwnedFd>) {
        match self.channels.of(proc).into_iter().find_map(|(id, other)| (id == channel).then_some(other)) {
            Some(other) => drop(self.send_with_fds(other, answer, fds)),
            None => tracing::warn!(
                "{}: a reply for channel {channel}, which is not one of its own; dropped",
                self.procs[proc].describe()
            ),
        }
    }

    /// Routes a call (`call` is `Some((req, timeout_ms))`) or a cast to its actor, from the
    /// frame's fixed header and subject; it leaves with its payload pieces as they were read,
    /// and with `fds`, the segments it lends.
    pub(crate) fn deliver(
        &mut self,
        caller: ProcIdx,
        call: Option<(ReqId, u64)>,
        hot: Routed,
        fds: Vec<OwnedFd>,
    ) -> Result<(), ErrorInfo> {
        let target = hot.target();
        if hot.payload_len() > self.config.max_message_bytes {
            return Err(ErrorInfo::new(
                ErrorKind::TooLarge,
                format!(
                    "a message of {} bytes for {target} exceeds the limit of {} bytes (--max-message-bytes)",
                    hot.payload_len(),
                    self.config.max_message_bytes
                ),
            ));
        }
        let id = self.resolve(target)?;
        let Some(actor) = self.actors.get(&id) else {
            return Err(ErrorInfo::new(ErrorKind::NoProcess, format!("{target} is not alive")));
        };
        if actor.is_task() {
            return Err(ErrorInfo::new(
                ErrorKind::NoMailbox,
                format!("{target} is a task (a function or module child); tasks take no messages"),
            ));
        }
        let gated = self.is_gated(id, hot.subject());
        if gated && !self.is_armed() {
            return Err(self.safety_refusal(&target.to_string(), hot.subject()));
        }
        // Gated casts get a delivery id too: the worker's answer tells when the work ended.
        let delivery = (call.is_some() || gated).then(|| self.next_id());
        let label = hot.target_label();
        let sender = hot.sender().and_then(|s| self.actors.get(&s)).and_then(|a| a.name.as_deref());
        // A call names its caller's process, so that a large reply can be lent to it; one from
        // another node names none (fds do not cross nodes).
        let caller_pid = call.and_then(|_| self.procs.get(caller)).map_or(0, |p| p.pid);
        let frame = hot.into_delivery(id, delivery, sender).with_caller_pid(caller_pid);
        match self.actors.proc_of(id) {
            Some(worker) => {
                if let Err(refusal) = self.offer_with_fds(worker, frame, fds) {
                    return Err(self.refusal_info(worker, &label.to_string(), refusal));
                }
            }
            // Registered but not yet placed (its worker is still starting): hold the message;
            // it follows the actor's Start, in order, once a worker takes it.
            None => self
                .actors
                .get_mut(&id)
                .expect("resolve() found it and nothing ended it since")
                .parked
                .push((frame, fds)),
        }
        if let Some(a) = self.actors.get_mut(&id) {
            a.delivered = a.delivered.saturating_add(1);
        }
        if let Some(d) = delivery {
            let now = self.os.now();
            let caller = call.map(|(req, timeout_ms)| Caller {
                proc: caller,
                req,
                // A peer can ask for any timeout: one past what an Instant can hold never expires.
                deadline: now.checked_add(Duration::from_millis(timeout_ms) + SWEEP_INTERVAL),
            });
            self.calls.deliver(d, id, caller, gated);
        }
        Ok(())
    }

    /// The actor `target` names now: a group's name picks one member (so resolving mutates the
    /// group's turn), busy meaning calls in flight to it.
    pub fn resolve(&mut self, target: TargetRef<'_>) -> Result<ActorId, ErrorInfo> {
        let id = match target {
            TargetRef::Name(name) => {
                let (calls, actors, procs) = (&self.calls, &self.actors, &self.procs);
                // A member whose worker's connection is gone would refuse the message: its
                // death is only not processed yet. One waiting for a worker takes it later.
                let load = |a| match actors.proc_of(a) {
                    Some(p) if procs.get(p).is_none_or(|p| p.tx.is_none()) => None,
                    _ => Some(calls.of_actor(a).count()),
                };
                match self.names.lookup(name) {
                    Some(id) => id,
                    None => self.names.pick(name, load).ok_or_else(|| {
                        ErrorInfo::new(ErrorKind::NoProcess, format!("no actor named '{name}' is running"))
                    })?,
                }
            }
            TargetRef::Actor(id) => id,
        };
        match self.actors.get(&id) {
            Some(a) if !a.stopping => Ok(id),
            Some(a) => Err(ErrorInfo::new(ErrorKind::NoProcess, format!("actor {} is stopping", a.label))),
            None => Err(ErrorInfo::new(
                ErrorKind::NoProcess,
                format!("actor <{id}> is not alive (a restarted actor gets a new id; address it by name)"),
            )),
        }
    }

    pub(crate) fn monitor(
        &mut self,
        proc: ProcIdx,
        watcher: Option<ActorId>,
        target: &Target,
    ) -> Result<u64, ErrorInfo> {
        if let Some(id) = self.monitor_elsewhere(proc, watcher, target) {
            return Ok(id);
        }
        let id = self.next_id();
        match self.resolve(target.as_target_ref()) {
            Ok(actor) => {
                self.monitors.insert(id, Monitor { watcher_proc: proc, watcher, target: actor });
            }
            Err(info) => {
                // As in Erlang: monitoring something already dead gives an immediate down notice.
                let actor = match target {
                    Target::Actor(a) => ActorRef { id: *a, name: None },
                    Target::Name(n) => ActorRef { id: 0, name: Some(n.clone()) },
                };
                let reason = rebeam_proto::Exit::Killed(format!("noproc: {}", info.message));
                self.send(proc, Frame::Command(Cmd::Down { monitor: id, watcher, actor, node: None, reason }));
            }
        }
        Ok(id)
    }
}
