//! Monitors across nodes, the router's side (the rules are in node.rs's module doc).

use rebeam_proto::{
    ActorId, ActorRef, Command as Cmd, ErrorInfo, ErrorKind, Exit, Frame, IntoEncoded, Request, Response, Target,
};

use super::{NodeOut, NODE_PEER};
use crate::router::{Monitor, ProcIdx, Router};

/// A monitor set here on an actor of another node: who watches, and the actor as it was named
/// (and its node, when the name was a pid's).
pub(crate) struct Watch {
    proc: ProcIdx,
    watcher: Option<ActorId>,
    actor: ActorRef,
    node: Option<String>,
}

impl Router {
    /// A monitor on a name nothing here has (or a pid of another node): asked of the other
    /// nodes, and its reference; None when the target is this node's to resolve.
    pub(crate) fn monitor_elsewhere(
        &mut self,
        proc: ProcIdx,
        watcher: Option<ActorId>,
        target: &Target,
    ) -> Option<u64> {
        let Target::Name(name) = target else { return None };
        if self.node.is_none() || proc == NODE_PEER || self.names.resolve(name).is_some() {
            return None;
        }
        let request = Frame::Request { req: 0, body: Request::Monitor { watcher: None, target: target.clone() } };
        let frame = request.into_encoded().ok()?.to_vec();
        let (actor, node) = match rebeam_proto::remote::parse_pid_name(name) {
            Some((id, node)) => (ActorRef { id, name: None }, Some(node.to_string())),
            None => (ActorRef { id: 0, name: Some(name.clone()) }, None),
        };
        let monitor = self.next_id();
        let link = self.node.as_mut().expect("checked above");
        link.watches.insert(monitor, Watch { proc, watcher, actor, node });
        if link.out.send(NodeOut::Monitor { monitor, name: name.clone(), frame }).is_err() {
            let reason = Exit::Killed(format!("noproc: no actor named '{name}' here, and no link to the other nodes"));
            self.down_from_node(monitor, None, None, reason);
        }
        Some(monitor)
    }

    /// `demonitor` of a monitor set on another node's actor: forgotten here, and taken off
    /// its node too ([`NodeOut::Demonitor`]; a notice that crossed it reaches nobody).
    pub(crate) fn forget_watch(&mut self, monitor: u64) {
        let Some(link) = self.node.as_mut() else { return };
        if link.watches.remove(&monitor).is_some() {
            let _ = link.out.send(NodeOut::Demonitor { monitor });
        }
    }

    /// A monitor's end told by its node (the actor ended, the node was lost, or it could not
    /// be set): the watcher's down notice, naming the actor's node when it is known.
    pub(super) fn down_from_node(&mut self, monitor: u64, actor: Option<ActorRef>, node: Option<String>, reason: Exit) {
        let Some(watch) = self.node.as_mut().and_then(|l| l.watches.remove(&monitor)) else { return };
        let actor = actor.unwrap_or(watch.actor);
        let node = node.or(watch.node);
        self.send(watch.proc, Frame::Command(Cmd::Down { monitor, watcher: watch.watcher, actor, node, reason }));
    }

    /// Another node took off a monitor it had set here.
    pub(super) fn demonitor_from_node(&mut self, monitor: u64) {
        if self.monitors.get(&monitor).is_some_and(|m| m.watcher_proc == NODE_PEER) {
            self.monitors.remove(&monitor);
        }
    }

    /// Another node monitors an actor here: set with the transport as its watcher, and answered
    /// with its reference (or the reason it cannot be), or "not here" for a name not here.
    pub(super) fn monitor_from_node(&mut self, query: u64, target: Target) {
        let Target::Name(name) = target else {
            let info = ErrorInfo::new(ErrorKind::BadRequest, "monitors across nodes name their actor");
            return self.monitor_answered(query, Err(info));
        };
        let pid = self.pid_target(&name);
        if pid.is_none() && self.names.resolve(&name).is_none() {
            return self.node_out(NodeOut::NotHere { query });
        }
        let target = pid.map_or(Target::Name(name), Target::Actor);
        let result = self.resolve(target.as_target_ref()).map(|actor| {
            let monitor = self.next_id();
            self.monitors.insert(monitor, Monitor { watcher_proc: NODE_PEER, watcher: None, target: actor });
            monitor
        });
        self.monitor_answered(query, result);
    }

    fn monitor_answered(&self, query: u64, result: Result<u64, ErrorInfo>) {
        if let Ok(encoded) = (Frame::Response { req: query, body: Response::Monitored(result) }).into_encoded() {
            self.node_out(NodeOut::Answer { query, frame: encoded.to_vec() });
        }
    }
}

/// The monitor of an encoded down notice (length prefix included), for the transport to send
/// to the node that set it.
pub(super) fn down_monitor(frame: &[u8]) -> Option<u64> {
    let body = bytes::Bytes::copy_from_slice(frame.get(rebeam_proto::HEADER_BYTES..)?);
    match rebeam_proto::decode_frame(body).ok()? {
        Frame::Command(Cmd::Down { monitor, .. }) => Some(monitor),
        _ => None,
    }
}
