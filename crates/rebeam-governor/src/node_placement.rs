//! Placement on a named node, the router's side: `spawn(..., node=)`, a tree child whose spec
//! names other nodes, and the actors this node runs for other nodes' supervisors.
//!
//! The rules:
//! - **Choosing.** A [`Placement`] is read when the actor is started (and again at each
//!   restart): `Here` is this node; `Nodes` is the first of its nodes that is up, in its order
//!   (this node among them if named); `Any` is the first node up in name order. None of them
//!   up is a start failure naming the nodes asked for; so is a placement on another node in a
//!   run that is not a node.
//! - **Spawning elsewhere.** The spawn goes to the chosen node's governor ([`NodeOut::Spawn`]),
//!   which starts it as an unsupervised actor there, never sending it on (its placement is read
//!   there as `Here`). Its answer ([`NodeIn::Spawned`]) goes to the caller as a local one does;
//!   a failure names the node. Registered names are that node's, so calls by name find them
//!   there.
//! - **A child elsewhere.** The supervisor stays on this node, and its machine stays pure: it
//!   sees an actor id of this node's counter (a proxy) for the child on the other node. Once the
//!   child has started there, this node monitors it there (by its pid's name); that monitor's
//!   end is the child's end, with its reason: its exit, "node lost: …" when its node is lost,
//!   or "noproc: …" when it ended before the monitor was set. The supervisor counts it as any
//!   child exit, and its restart reads the placement again, so a child whose node is lost
//!   restarts on a node that remains when its spec allows it (a list, or any); a child placed
//!   on one node that is lost fails to start, which the supervisor counts as a crash, and may
//!   give up by its intensity.
//! - **Stopping a child elsewhere** asks its node to stop it with its shutdown time
//!   ([`NodeOut::Stop`]); the child's end comes back through the monitor, as above.
//! - **Children run here for another node's supervisor** are stopped when that node is lost
//!   (seen to leave the nodes up): nothing would supervise them any more.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use rebeam_proto::{
    ActorId, ActorRef, ChildSpec, ErrorInfo, ErrorKind, Frame, IntoEncoded, Placement, ReqId, Request, Response, Target,
};

use super::{NodeOut, NODE_PEER};
use crate::actors::StartWaiter;
use crate::router::{ProcIdx, Router};
use crate::tree::TreeId;

/// This node's side of placements elsewhere.
#[derive(Default)]
pub(crate) struct Placements {
    /// Spawns sent to other nodes, by call number: who waits for each.
    spawning: HashMap<u64, Waiter>,
    /// Tree children running on other nodes, by their proxy id here.
    children: HashMap<ActorId, Elsewhere>,
    /// Those children's monitors there: monitor → proxy.
    monitors: HashMap<u64, ActorId>,
    /// Actors started here for another node's supervisor: actor → (that node, shutdown).
    for_others: HashMap<ActorId, (String, Option<u64>)>,
}

enum Waiter {
    Caller { proc: ProcIdx, req: ReqId, node: String },
    Child { tree: TreeId, slot: usize, node: String },
}

/// A tree child on another node.
struct Elsewhere {
    tree: TreeId,
    slot: usize,
    node: String,
    actor: ActorId,
}

impl Router {
    /// The node `placement` picks other than this one, None for this one, or why none can.
    pub(crate) fn placed_elsewhere(&self, placement: &Placement, what: &str) -> Result<Option<String>, ErrorInfo> {
        let Some(link) = self.node.as_ref() else {
            return match placement {
                Placement::Here | Placement::Any => Ok(None),
                Placement::Nodes(nodes) => Err(ErrorInfo::new(
                    ErrorKind::StartFailed,
                    format!(
                        "cannot start {what} on node {}: this run is not a node (start it with --node NAME and join the others)",
                        nodes.join(" or ")
                    ),
                )),
            };
        };
        let here = link.here.as_deref();
        let nodes = match placement {
            Placement::Here => return Ok(None),
            // This node is up too: `Any` always has a node, and this one when it is the first.
            Placement::Any => return Ok(link.up.iter().min().filter(|n| Some(n.as_str()) != here).cloned()),
            Placement::Nodes(nodes) => nodes,
        };
        match nodes.iter().find(|n| link.up.contains(n) || Some(n.as_str()) == here) {
            Some(node) if Some(node.as_str()) == here => Ok(None),
            Some(node) => Ok(Some(node.clone())),
            None => {
                let asked = match nodes.as_slice() {
                    [one] => format!("node {one} is not up"),
                    _ => format!("none of nodes {} is up", nodes.join(", ")),
                };
                Err(ErrorInfo::new(
                    ErrorKind::StartFailed,
                    format!("cannot start {what}: {asked} (nodes up: {})", link.up.join(", ")),
                ))
            }
        }
    }

    /// `spawn(..., node=)` from a process here: to the node its placement picks, true; false
    /// when it starts here.
    pub(crate) fn spawn_elsewhere(&mut self, proc: ProcIdx, req: ReqId, child: &ChildSpec) -> bool {
        let node = match self.placed_elsewhere(&child.node, &format!("actor {}", child.label)) {
            Ok(Some(node)) => node,
            Ok(None) => return false,
            Err(info) => {
                self.respond(proc, req, Response::Spawned(Err(info)));
                return true;
            }
        };
        self.send_spawn(child, node.clone(), false, Waiter::Caller { proc, req, node });
        true
    }

    /// A tree child to start: on the node its placement picks (None: it is on its way there),
    /// else its spec back, to start here.
    pub(crate) fn start_child_elsewhere(&mut self, tree: TreeId, slot: usize, spec: ChildSpec) -> Option<ChildSpec> {
        let node = match self.placed_elsewhere(&spec.node, &format!("child {}", spec.label)) {
            Ok(Some(node)) => node,
            Ok(None) => return Some(spec),
            Err(info) => {
                self.tree_child_start_failed(tree, slot, info);
                return None;
            }
        };
        self.send_spawn(&spec, node.clone(), true, Waiter::Child { tree, slot, node });
        None
    }

    fn send_spawn(&mut self, child: &ChildSpec, node: String, supervised: bool, waiter: Waiter) {
        // Read there as placed here: a spawn from another node is never sent on.
        let child = ChildSpec { node: Placement::Here, ..child.clone() };
        let frame = match (Frame::Request { req: 0, body: Request::Spawn { child: Box::new(child) } }).into_encoded() {
            Ok(encoded) => encoded.to_vec(),
            Err(e) => {
                let info =
                    ErrorInfo::new(ErrorKind::StartFailed, format!("cannot encode a start for node {node}: {e}"));
                return self.spawned(waiter, Err(info));
            }
        };
        let call = self.next_id();
        let link = self.node.as_mut().expect("a placement elsewhere needs a node");
        link.placements.spawning.insert(call, waiter);
        if link.out.send(NodeOut::Spawn { call, node: node.clone(), supervised, frame }).is_err() {
            let waiter = link.placements.spawning.remove(&call).expect("inserted above");
            let info =
                ErrorInfo::new(ErrorKind::StartFailed, format!("cannot reach node {node}: no link to other nodes"));
            self.spawned(waiter, Err(info));
        }
    }

    /// The answer to `NodeOut::Spawn { call, .. }`.
    pub(super) fn spawn_answered(&mut self, call: u64, result: Result<ActorRef, ErrorInfo>) {
        let Some(waiter) = self.node.as_mut().and_then(|l| l.placements.spawning.remove(&call)) else { return };
        self.spawned(waiter, result);
    }

    fn spawned(&mut self, waiter: Waiter, result: Result<ActorRef, ErrorInfo>) {
        let named = |node: &str, mut info: ErrorInfo| {
            if !info.message.contains(&format!("node {node}")) {
                info.message = format!("on node {node}: {}", info.message);
            }
            info
        };
        match waiter {
            Waiter::Caller { proc, req, node } => {
                self.respond(proc, req, Response::Spawned(result.map_err(|info| named(&node, info))))
            }
            Waiter::Child { tree, slot, node } => match result {
                Ok(actor) => self.child_started_elsewhere(tree, slot, node, actor.id),
                Err(info) => self.tree_child_start_failed(tree, slot, named(&node, info)),
            },
        }
    }

    /// A tree child is up on `node`: the supervisor sees its proxy, and its end is a monitor's.
    fn child_started_elsewhere(&mut self, tree: TreeId, slot: usize, node: String, actor: ActorId) {
        let (proxy, monitor) = (self.next_id(), self.next_id());
        let name = rebeam_proto::remote::pid_name(actor, &node);
        let request =
            Frame::Request { req: 0, body: Request::Monitor { watcher: None, target: Target::Name(name.clone()) } };
        let frame = request.into_encoded().map(|e| e.to_vec()).unwrap_or_default();
        let link = self.node.as_mut().expect("a child elsewhere needs a node");
        link.placements.children.insert(proxy, Elsewhere { tree, slot, node, actor });
        link.placements.monitors.insert(monitor, proxy);
        let _ = link.out.send(NodeOut::Monitor { monitor, name, frame });
        self.tree_child_started(tree, slot, proxy);
    }

    /// A down notice for one of this node's monitors: a child elsewhere ended (true), else not
    /// one of those.
    pub(super) fn child_down_elsewhere(&mut self, monitor: u64, reason: &rebeam_proto::Exit) -> bool {
        let Some(link) = self.node.as_mut() else { return false };
        let Some(proxy) = link.placements.monitors.remove(&monitor) else { return false };
        let Some(child) = link.placements.children.remove(&proxy) else { return true };
        tracing::debug!("child <{}> on node {} ended: {reason:?}", child.actor, child.node);
        self.tree_child_ended_in_fault(child.tree, child.slot, reason.clone(), None);
        true
    }

    /// Stops a tree child if it runs on another node (true): its end comes back as its monitor's.
    pub(crate) fn stop_child_elsewhere(&mut self, proxy: ActorId, shutdown: Option<Duration>) -> bool {
        let Some(link) = self.node.as_ref() else { return false };
        let Some(child) = link.placements.children.get(&proxy) else { return false };
        let shutdown_ms = shutdown.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let _ = link.out.send(NodeOut::Stop { node: child.node.clone(), actor: child.actor, shutdown_ms });
        true
    }

    /// Where a tree child elsewhere runs: its node and its id there.
    pub(crate) fn child_elsewhere(&self, proxy: ActorId) -> Option<(&str, ActorId)> {
        let child = self.node.as_ref()?.placements.children.get(&proxy)?;
        Some((child.node.as_str(), child.actor))
    }

    /// Another node asks this one to start an actor (`supervisor`: for its supervisor).
    pub(super) fn spawn_from_node(&mut self, query: u64, supervisor: Option<String>, frame: Bytes) {
        let child = match rebeam_proto::decode_frame(frame) {
            Ok(Frame::Request { body: Request::Spawn { child }, .. }) => *child,
            _ => {
                let info = ErrorInfo::new(ErrorKind::BadRequest, "another node sent a start that is not one");
                return self.respond(NODE_PEER, query, Response::Spawned(Err(info)));
            }
        };
        let here = self.node.as_ref().and_then(|l| l.here.clone()).unwrap_or_default();
        if self.shutdown.is_some() {
            let info = ErrorInfo::new(ErrorKind::ShuttingDown, format!("node {here} is shutting down"));
            return self.respond(NODE_PEER, query, Response::Spawned(Err(info)));
        }
        let child = ChildSpec { node: Placement::Here, ..child };
        match self.create_actor(&child, None, StartWaiter::Spawn { proc: NODE_PEER, req: query }) {
            Ok(id) => {
                if let (Some(node), Some(link)) = (supervisor, self.node.as_mut()) {
                    link.placements.for_others.insert(id, (node, child.shutdown_ms));
                }
            }
            Err(info) => self.respond(NODE_PEER, query, Response::Spawned(Err(info))),
        }
    }

    /// Another node's supervisor stops its child here.
    pub(super) fn stop_from_node(&mut self, actor: ActorId, shutdown_ms: Option<u64>) {
        if let Some(link) = self.node.as_mut() {
            link.placements.for_others.remove(&actor);
        }
        self.stop_actor(actor, shutdown_ms.map(Duration::from_millis));
    }

    /// The nodes up changed from `before`: children run here for a supervisor on a node that
    /// left are stopped, and the ones that ended are forgotten.
    pub(super) fn orphans_after(&mut self, before: &[String]) {
        let Some(link) = self.node.as_mut() else { return };
        let gone: Vec<String> = before.iter().filter(|n| !link.up.contains(n)).cloned().collect();
        let mut for_others = std::mem::take(&mut link.placements.for_others);
        for_others.retain(|id, _| self.actors.get(id).is_some());
        let orphans: Vec<(ActorId, Option<u64>)> =
            for_others.iter().filter(|(_, (n, _))| gone.contains(n)).map(|(id, (_, ms))| (*id, *ms)).collect();
        for (id, _) in &orphans {
            for_others.remove(id);
        }
        if let Some(link) = self.node.as_mut() {
            link.placements.for_others = for_others;
        }
        for (id, shutdown_ms) in orphans {
            tracing::warn!("stopping actor <{id}>: its supervisor's node was lost");
            self.stop_actor(id, shutdown_ms.map(Duration::from_millis));
        }
    }
}
