//! The seam to the other nodes of a system: what the router hands to the transport (the
//! `rebeam-node` crate, on Zenoh) and what it takes from it. The governor never sees the
//! transport itself; the transport is one more source of inputs, as a process's socket is.
//!
//! The rules:
//! - A call by name from a process of this node goes to the other nodes when no actor or group
//!   here has that name ([`NodeOut::Call`]); its answer comes back as [`NodeIn::Answer`] and
//!   goes to the caller as a local answer would. A name here always wins: it is never asked for
//!   elsewhere.
//! - A call from another node ([`NodeIn::Call`]) is delivered here as a local one, with the
//!   transport as its caller ([`NODE_PEER`], a process id no table hands out): its answer, its
//!   refusal, or the `ActorDown` when the actor dies leave through [`NodeOut::Answer`]. A name
//!   that is not here is answered [`NodeOut::NotHere`], so that the caller's node can tell
//!   "not on that node" from an answer. Calls from other nodes are never sent on again, so no
//!   call goes round in circles.
//! - A cast by name from a process here goes the same way when no name here takes it
//!   ([`NodeOut::Cast`]), and its sender is answered once the receiver's node says whether it
//!   reached a live actor's mailbox ([`NodeIn::CastAnswer`]): a cast to a name on no node (or
//!   whose node is lost before it answers) is not delivered, and returns False, as a local cast
//!   to a dead actor does. But when the transport's [`CastWindow`] opens for it (it knows which
//!   node is up with that name, and has room in flight), its sender is answered "sent" (True)
//!   at once, as a cast into an actor's own ring is, and the cast goes out marked `sent`: its
//!   node's word then goes to no one (the transport counts the ones lost). So a sender's casts
//!   to another node follow each other without a round trip to that node, or to the
//!   transport. The transport sends casts in the order the router hands them over
//!   and the receiving node delivers them in the order they arrive, so casts from one sender
//!   to one actor stay in order across nodes (FIFO per pair). The router never waits for the
//!   other node: the answer is one more input.
//! - A cast from another node (a [`NodeIn::Call`] whose frame is a cast) is delivered here as
//!   a local one, and answered with a cast answer, or "not here" for a name that is not here.
//! - Remote calls and casts carry no sender: an actor id means nothing on another node.
//! - A process id of another node travels as the target name of `rebeam_proto::remote`
//!   (`#ID@NODE`, the node by its name), so local pids keep their wire form: such a name goes
//!   out as any name not here does, the transport sends it to its node alone, and there it is
//!   read back as the actor id (`pids`); a failure there (the actor ended) is the answer.
//! - A monitor on a name not here (or a pid of another node) is [`NodeOut::Monitor`]; its
//!   node sets it with the transport as the watcher ([`NODE_PEER`]), and the actor's end
//!   leaves as [`NodeOut::Down`] for the node that set it. Its end, its node's loss, or its
//!   failure to be set comes back as [`NodeIn::Down`] (`monitors`), whose notice names the
//!   actor's node (the ProcessID a watcher reads then names it). A demonitor here leaves as
//!   [`NodeOut::Demonitor`] and takes the monitor off its node ([`NodeIn::Demonitor`]), so
//!   no monitor outlives its watcher's interest there.
//! - A direct channel never goes to another node: a route to a name that is not here is
//!   refused, so the asker stays on the governor's path, which is the one that crosses nodes.
//! - Bus topics: a publication a Python process here makes, once this node took it (a
//!   reserved prefix refused unless opened here), also leaves as [`NodeOut::Publish`], in the
//!   order made; one from another node ([`NodeIn::Publication`]) reaches this node's
//!   subscribers by the rules a Python process here publishes under, so a reserved prefix is
//!   refused unless this node opened it too, and is never sent on. The governor's own
//!   publications (`safety.transition`, …) and a host program's stay on their node: every
//!   node publishes its own, and no node, the arming authority included, speaks for another's
//!   governor on the bus (the authority's word travels on its own key, see `Follow`).
//! - `whereis` of a name not here is [`NodeOut::Whereis`], asked as a call by name is (the
//!   node that answered for it last, else every other node), and answered with the actor and
//!   the node that has it ([`NodeIn::Found`]; Python's ProcessID then names that node), or
//!   None when no node has it. Names are not unique across the system, as there is no
//!   registry of it: a name here wins, else the first node to answer (the cached one first).
//!   Of a group's name, another node answers its first member present.
//! - [`NodeIn::Up`] is the set of nodes up (this one included), for `rebeam.nodes()`.
//! - Arming: one node is the system's arming authority ([`Authority::Here`]); its every
//!   change of safety state leaves as [`NodeOut::Safety`]. Any other node follows it: it
//!   arms and disarms on [`NodeIn::Follow`], with the ladder of a local disarm, and refuses
//!   `arm` on its own control socket with a message that names the authority (`disarm` and
//!   `force-disarm` stay allowed: stopping is always safe). Until the transport names this
//!   node's part, it is a follower of no known authority. (The rules of following, and of
//!   failing safe when the authority is lost, are the transport's: `rebeam-node`'s
//!   `authority` module.)
//!
//! - Placement on a named node ([`NodeOut::Spawn`], [`NodeIn::Spawn`], [`NodeOut::Stop`]):
//!   `spawn(..., node=)`, tree children placed on other nodes, and their restarts on the nodes
//!   that remain; the rules are in `node_placement.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rebeam_core::registry::ProcId;
use rebeam_proto::{
    ErrorInfo, ErrorKind, Frame, IntoEncoded, Kind, Outcome, ReqId, Request, Response, Routed, TargetRef,
};
use tokio::sync::mpsc;

use crate::router::{ProcIdx, Router};

#[path = "node_bus.rs"]
mod bus;
#[path = "node_casts.rs"]
mod casts;
#[path = "node_monitors.rs"]
mod monitors;
#[path = "node_names.rs"]
mod names;
#[path = "node_pids.rs"]
mod pids;
#[path = "node_placement.rs"]
mod placement;

/// The caller of every call that came from another node: a slot no process table reaches.
pub const NODE_PEER: ProcIdx = ProcId::from_raw(u64::MAX - 1);

/// Router → transport.
#[derive(Debug)]
pub enum NodeOut {
    /// A cast for `name`, which nothing here takes: `frame` as in `Call`. The transport sends
    /// casts in the order it is given them, and answers `NodeIn::CastAnswer { call, .. }`,
    /// unless `sent`: its sender was answered already, as its [`CastWindow`] opened for it.
    Cast { call: u64, name: String, frame: Vec<u8>, sent: bool },
    /// Ask the other nodes for `name`. `frame` is the call as a rebeam frame (length prefix
    /// included, no sender); the answer comes back as `NodeIn::Answer { call, .. }`.
    Call { call: u64, name: String, frame: Vec<u8>, timeout: Duration },
    /// The answer to `NodeIn::Call { query, .. }`: a `Response::Call` frame (length prefix
    /// included).
    Answer { query: u64, frame: Vec<u8> },
    /// `NodeIn::Call { query, .. }` named nothing here.
    NotHere { query: u64 },
    /// Monitor `name` on the node that has it: `frame` is a `Request::Monitor` frame (length
    /// prefix included). Its end comes back as `NodeIn::Down { monitor, .. }`.
    Monitor { monitor: u64, name: String, frame: Vec<u8> },
    /// A monitor another node set here ended: `frame` is its `Command::Down` (length prefix
    /// included), for the node that set it (the one whose query was answered `Monitored`).
    Down { monitor: u64, frame: Vec<u8> },
    /// The arming authority's safety state changed (sent only by the authority).
    Safety { state: rebeam_proto::Safety },
    /// Start an actor on `node`: `frame` is a `Request::Spawn` frame (length prefix included)
    /// whose placement is `Here`; `supervised`: for a supervisor here, so that `node` stops it
    /// when this node is lost. The answer comes back as `NodeIn::Spawned { call, .. }`.
    Spawn { call: u64, node: String, supervised: bool, frame: Vec<u8> },
    /// Stop actor `actor` of `node` (a tree child placed there), politely within `shutdown_ms`.
    Stop { node: String, actor: rebeam_proto::ActorId, shutdown_ms: Option<u64> },
    /// `NodeOut::Monitor { monitor, .. }` was demonitored here: take it off its node.
    Demonitor { monitor: u64 },
    /// A publication a Python process here made: `frame` is its `Request::Publish` (length
    /// prefix included), for every other node's subscribers, in the order given.
    Publish { frame: Vec<u8> },
    /// Where is `name` on the other nodes: `frame` is its `Request::Whereis` (length prefix
    /// included); the answer comes back as `NodeIn::Found { call, .. }`.
    Whereis { call: u64, name: String, frame: Vec<u8> },
}

/// This node's part in arming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// This node arms the system.
    Here,
    /// Another node does: its name, once known.
    Elsewhere(Option<String>),
}

/// What a follower does on its authority's word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Arm,
    Disarm,
}

/// Transport → router.
#[derive(Debug)]
pub enum NodeIn {
    /// A call (or a cast) from another node: a rebeam frame (without its length prefix).
    Call { query: u64, frame: Bytes },
    /// The answer to `NodeOut::Call { call, .. }`.
    Answer { call: u64, outcome: Outcome },
    /// The nodes up now, this one included.
    Up(Vec<String>),
    /// This node's part in arming.
    Authority(Authority),
    /// A follower's order from its authority's state.
    Follow(Follow),
    /// Whether `NodeOut::Cast { call, .. }` reached a live actor's mailbox on its node.
    CastAnswer { call: u64, delivered: bool },
    /// Another node asks for an actor to start here: a `Request::Spawn` frame (without its
    /// length prefix); `supervisor`: the node whose supervisor it is for, if one is.
    Spawn { query: u64, supervisor: Option<String>, frame: Bytes },
    /// The answer to `NodeOut::Spawn { call, .. }`.
    Spawned { call: u64, result: Result<rebeam_proto::ActorRef, ErrorInfo> },
    /// Another node's supervisor stops its child `actor` here.
    Stop { actor: rebeam_proto::ActorId, shutdown_ms: Option<u64> },
    /// `NodeOut::Monitor { monitor, .. }` ended: its actor ended (`actor` as its node named
    /// it), its node was lost, or it could not be set (`actor` None); `node`: the actor's
    /// node, when known.
    Down { monitor: u64, actor: Option<rebeam_proto::ActorRef>, node: Option<String>, reason: rebeam_proto::Exit },
    /// The node that set monitor `monitor` here (a `NodeOut::Down` reference) took it off.
    Demonitor { monitor: u64 },
    /// A publication from node `from`: its `Request::Publish` frame (without its length prefix).
    Publication { from: String, frame: Bytes },
    /// The answer to `NodeOut::Whereis { call, .. }`: the actor and the node that has it, or
    /// None when no node does (or the one that did was lost before it answered).
    Found { call: u64, found: Option<(rebeam_proto::ActorRef, String)> },
}

/// Both ends of the seam, as the transport hands them to [`crate::run_node`].
pub struct Seam {
    pub out: mpsc::UnboundedSender<NodeOut>,
    pub inputs: mpsc::UnboundedReceiver<NodeIn>,
    /// This node's name.
    pub name: String,
    pub window: Arc<dyn CastWindow>,
    pub now: Arc<dyn Now>,
}

/// The transport's way to take an output on the router's own thread, without a hop through
/// `out`'s queue: the router offers it every output first, and queues only what it gives back.
/// A call's answer sent this way saves a task wake-up on each side of a cross-node call.
pub trait Now: Send + Sync {
    /// Handles `out` at once, or gives it back for the queue. The transport keeps the order
    /// the router gave them in: it handles one now only when every output given back before
    /// it has been handled, and it counts the ones it gives back (the router queues each).
    fn now(&self, out: NodeOut) -> Result<(), NodeOut>;
}

/// A transport that takes every output by the queue.
pub struct Queued;

impl Now for Queued {
    fn now(&self, out: NodeOut) -> Result<(), NodeOut> {
        Err(out)
    }
}

/// The router's way out to the transport: each output offered to the transport's [`Now`]
/// first, else queued.
pub(crate) struct Outlet {
    queue: mpsc::UnboundedSender<NodeOut>,
    now: Arc<dyn Now>,
}

impl Outlet {
    pub(crate) fn send(&self, out: NodeOut) -> Result<(), mpsc::error::SendError<NodeOut>> {
        match self.now.now(out) {
            Ok(()) => Ok(()),
            Err(out) => self.queue.send(out),
        }
    }
}

/// The transport's word, asked by the router as it hands a cast over, on whether the cast's
/// sender may be answered "sent" at once (see the module doc).
pub trait CastWindow: Send + Sync {
    /// True if a cast for `name` goes to a node that is up and known to have it, and the
    /// transport took a place in flight for it (given back when that node answers).
    fn open(&self, name: &str) -> bool;
}

/// A window that never opens: every cast's sender waits for its node's word.
pub struct Closed;

impl CastWindow for Closed {
    fn open(&self, _name: &str) -> bool {
        false
    }
}

/// The router's side of the seam.
pub(crate) struct Link {
    out: Outlet,
    /// Calls sent to other nodes, by call number: who waits for each.
    pending: HashMap<u64, (ProcIdx, ReqId)>,
    up: Vec<String>,
    authority: Authority,
    /// Monitors set here on other nodes' actors, by reference.
    watches: HashMap<u64, monitors::Watch>,
    /// This node's name (None in tests that give none).
    here: Option<String>,
    placements: placement::Placements,
    window: Arc<dyn CastWindow>,
}

/// The router's side of the seam, and the transport's inputs, which the router's loop reads
/// itself: a call from another node reaches the router with no task between them.
pub(crate) fn attach(seam: Seam) -> (Link, mpsc::UnboundedReceiver<NodeIn>) {
    let Seam { out, inputs, name, window, now } = seam;
    let link = Link {
        out: Outlet { queue: out, now },
        pending: HashMap::new(),
        up: Vec::new(),
        authority: Authority::Elsewhere(None),
        watches: HashMap::new(),
        here: Some(name),
        placements: placement::Placements::default(),
        window,
    };
    (link, inputs)
}

/// The transport's next input; never, when this run is not a node or the transport is gone.
pub(crate) async fn next_input(inputs: &mut Option<mpsc::UnboundedReceiver<NodeIn>>) -> NodeIn {
    if let Some(input) = inputs.as_mut() {
        if let Some(input) = input.recv().await {
            return input;
        }
    }
    std::future::pending().await
}

#[cfg(test)]
impl Link {
    /// A link whose inputs the test hands to the router itself.
    pub(crate) fn detached(out: mpsc::UnboundedSender<NodeOut>) -> Link {
        Link {
            out: Outlet { queue: out, now: Arc::new(Queued) },
            pending: HashMap::new(),
            up: Vec::new(),
            authority: Authority::Elsewhere(None),
            watches: HashMap::new(),
            here: None,
            placements: placement::Placements::default(),
            window: Arc::new(Closed),
        }
    }

    /// This link, with the transport's `window` on casts.
    pub(crate) fn with_window(self, window: Arc<dyn CastWindow>) -> Link {
        Link { window, ..self }
    }

    /// As `detached`, for node `name`.
    pub(crate) fn named(out: mpsc::UnboundedSender<NodeOut>, name: &str) -> Link {
        Link { here: Some(name.to_string()), ..Link::detached(out) }
    }

    /// Who waits for an answer from another node: each waiter's process and request.
    pub(crate) fn waiting(&self) -> impl Iterator<Item = (ProcIdx, ReqId)> + '_ {
        self.pending.values().copied()
    }
}

impl Router {
    /// A call from a process here that no name here takes: sent to the other nodes, and
    /// `None`; else the call back, to be delivered here.
    pub(crate) fn send_elsewhere(&mut self, proc: ProcIdx, hot: Routed) -> Option<Routed> {
        let TargetRef::Name(name) = hot.target() else { return Some(hot) };
        if self.node.is_none() || proc == NODE_PEER || self.names.resolve(name).is_some() {
            return Some(hot);
        }
        let name = name.to_string();
        let (req, timeout) = (hot.request(), Duration::from_millis(hot.timeout_ms()));
        let frame = match strip_sender(hot).into_encoded() {
            Ok(encoded) => encoded.to_vec(),
            Err(e) => {
                let info = ErrorInfo::new(ErrorKind::BadRequest, format!("cannot encode a call to '{name}': {e}"));
                self.respond(proc, req, Response::Call(Outcome::Failed(info)));
                return None;
            }
        };
        let call = self.next_id();
        let link = self.node.as_mut().expect("checked above");
        link.pending.insert(call, (proc, req));
        if link.out.send(NodeOut::Call { call, name: name.clone(), frame, timeout }).is_err() {
            link.pending.remove(&call);
            let info = ErrorInfo::new(
                ErrorKind::NoProcess,
                format!("no actor named '{name}' is running here, and this node has lost its link to the others"),
            );
            self.respond(proc, req, Response::Call(Outcome::Failed(info)));
        }
        None
    }

    pub(crate) fn on_node(&mut self, input: NodeIn) {
        match input {
            NodeIn::Up(up) => {
                if let Some(link) = self.node.as_mut() {
                    let before = std::mem::replace(&mut link.up, up);
                    self.orphans_after(&before);
                }
            }
            NodeIn::Spawn { query, supervisor, frame } => self.spawn_from_node(query, supervisor, frame),
            NodeIn::Spawned { call, result } => self.spawn_answered(call, result),
            NodeIn::Stop { actor, shutdown_ms } => self.stop_from_node(actor, shutdown_ms),
            NodeIn::Down { monitor, reason, .. } if self.child_down_elsewhere(monitor, &reason) => {}
            NodeIn::Answer { call, outcome } => {
                if let Some((proc, req)) = self.node.as_mut().and_then(|l| l.pending.remove(&call)) {
                    self.respond(proc, req, Response::Call(outcome));
                }
            }
            NodeIn::Call { query, frame } => self.call_from_node(query, frame),
            NodeIn::Down { monitor, actor, node, reason } => self.down_from_node(monitor, actor, node, reason),
            NodeIn::Demonitor { monitor } => self.demonitor_from_node(monitor),
            NodeIn::CastAnswer { call, delivered } => {
                if let Some((proc, req)) = self.node.as_mut().and_then(|l| l.pending.remove(&call)) {
                    self.send(proc, Routed::cast_answer(req, delivered));
                }
            }
            NodeIn::Authority(authority) => {
                let here = authority == Authority::Here;
                if let Some(link) = self.node.as_mut() {
                    link.authority = authority;
                }
                if here {
                    self.node_out(NodeOut::Safety { state: self.safety_state() });
                }
            }
            NodeIn::Follow(follow) => self.follow_authority(follow),
            NodeIn::Publication { from, frame } => self.publication_from_node(&from, frame),
            NodeIn::Found { call, found } => self.found(call, found),
        }
    }

    fn follow_authority(&mut self, follow: Follow) {
        if self.node.as_ref().is_none_or(|l| l.authority == Authority::Here) {
            return;
        }
        let command = match follow {
            Follow::Arm => rebeam_core::safety::SafetyCommand::Arm,
            Follow::Disarm => rebeam_core::safety::SafetyCommand::Disarm,
        };
        // A refusal (arming in `error`, disarming in `error`) leaves this node not armed:
        // what following asks for, or as safe as it.
        if let Err(why) = self.safety_command(command) {
            tracing::warn!("safety: this node cannot follow the arming authority's {follow:?}: {why}");
        }
    }

    /// Why the host may not arm on this node's control socket, if it may not.
    pub(crate) fn arm_refusal(&self) -> Option<String> {
        let link = self.node.as_ref()?;
        Some(match &link.authority {
            Authority::Here => return None,
            Authority::Elsewhere(Some(authority)) => format!(
                "cannot arm here: node {authority} is this system's arming authority, and every node follows it;                  run `rebeam ctl arm` on node {authority}'s control socket"
            ),
            Authority::Elsewhere(None) => "cannot arm here: this node is not the system's arming authority, and has                  heard from none (a system is armed only at the node started with --authority)"
                .to_string(),
        })
    }

    /// The authority's changes of state go to the other nodes.
    pub(crate) fn safety_changed(&self, state: rebeam_proto::Safety) {
        if self.node.as_ref().is_some_and(|l| l.authority == Authority::Here) {
            self.node_out(NodeOut::Safety { state });
        }
    }

    fn call_from_node(&mut self, query: u64, frame: Bytes) {
        let failed = |info: ErrorInfo| Frame::Response { req: query, body: Response::Call(Outcome::Failed(info)) };
        let hot = match rebeam_proto::decode_inbound(frame) {
            Ok(rebeam_proto::Inbound::Hot(hot)) if hot.kind() == Kind::Call => hot,
            Ok(rebeam_proto::Inbound::Hot(hot)) if hot.kind() == Kind::Cast => return self.cast_from_node(query, hot),
            Ok(rebeam_proto::Inbound::Frame(Frame::Request { body: Request::Monitor { target, .. }, .. })) => {
                return self.monitor_from_node(query, target)
            }
            Ok(rebeam_proto::Inbound::Frame(Frame::Request { body: Request::Whereis { name }, .. })) => {
                return self.whereis_from_node(query, name)
            }
            Ok(_) => {
                let info = ErrorInfo::new(ErrorKind::BadRequest, "another node sent something that is not a call");
                self.send(NODE_PEER, failed(info));
                return;
            }
            Err(e) => {
                self.send(NODE_PEER, failed(ErrorInfo::new(ErrorKind::BadRequest, format!("a malformed call: {e}"))));
                return;
            }
        };
        let TargetRef::Name(name) = hot.target() else {
            let info =
                ErrorInfo::new(ErrorKind::BadRequest, "calls across nodes name their actor by its registered name");
            self.send(NODE_PEER, failed(info));
            return;
        };
        if self.shutdown.is_some() {
            let info = ErrorInfo::new(ErrorKind::ShuttingDown, format!("the node that has '{name}' is shutting down"));
            self.send(NODE_PEER, failed(info));
            return;
        }
        // A pid of this node's is here or nowhere: its failure is the answer, never "not here".
        let pid = self.pid_target(name);
        let here = pid.is_some() || self.names.resolve(name).is_some();
        let hot = match pid {
            Some(id) => pids::to_actor(hot, id),
            None => hot,
        };
        let timeout_ms = hot.timeout_ms();
        match self.deliver(NODE_PEER, Some((query, timeout_ms)), strip_sender(hot), Vec::new()) {
            Ok(()) => {}
            Err(info) if info.kind == ErrorKind::NoProcess && !here => self.node_out(NodeOut::NotHere { query }),
            Err(info) => {
                self.send(NODE_PEER, failed(info));
            }
        }
    }

    /// The run ends now (its shutdown's deadline passed, or a second Ctrl-C) with calls from
    /// other nodes still in flight, e.g. parked for an actor that never got a worker: each is
    /// answered here, so that no caller on another node is left waiting on a node that is gone.
    pub(crate) fn answer_node_calls_at_exit(&mut self) {
        if self.node.is_none() {
            return;
        }
        let mut owed: Vec<_> = self
            .calls
            .iter()
            .filter_map(|(delivery, d)| d.caller.filter(|c| c.proc == NODE_PEER).map(|c| (delivery, c.req)))
            .collect();
        owed.sort_unstable(); // the answers go out in a deterministic order
        let here = self.node.as_ref().and_then(|l| l.here.clone()).unwrap_or_else(|| "this node".to_string());
        for (delivery, req) in owed {
            if self.calls.reply(delivery).is_some_and(|r| r.gated) {
                self.gated_work_ended();
            }
            let info =
                ErrorInfo::new(ErrorKind::ShuttingDown, format!("node {here} shut down before the call was answered"));
            self.send(NODE_PEER, Frame::Response { req, body: Response::Call(Outcome::Failed(info)) });
        }
    }

    /// A frame the router sends to [`NODE_PEER`]: the answer to a call from another node.
    pub(crate) fn send_to_node(&self, frame: impl IntoEncoded) -> bool {
        let Ok(encoded) = frame.into_encoded() else { return false };
        let frame = encoded.to_vec();
        // The answer's request id is the transport's query number (see `call_from_node`).
        let Some(query) = answer_query(&frame) else {
            // Else the end of a monitor another node set here.
            let Some(monitor) = monitors::down_monitor(&frame) else { return false };
            self.node_out(NodeOut::Down { monitor, frame });
            return true;
        };
        self.node_out(NodeOut::Answer { query, frame });
        true
    }

    fn node_out(&self, out: NodeOut) {
        if let Some(link) = &self.node {
            let _ = link.out.send(out);
        }
    }

    /// `rebeam.nodes()`: the nodes up, this one included; none when this run is not a node.
    pub(crate) fn nodes_up(&self) -> Vec<String> {
        self.node.as_ref().map(|l| l.up.clone()).unwrap_or_default()
    }

    /// Whether calls to `name` cross to other nodes (it names nothing here).
    pub(crate) fn is_elsewhere(&self, name: &str) -> bool {
        self.node.is_some() && self.names.resolve(name).is_none()
    }
}

/// The call or cast as it goes to another node: no sender, since its actor id means nothing there.
fn strip_sender(hot: Routed) -> Routed {
    match hot.into_frame() {
        Frame::Request { req, body: Request::Call { target, subject, payload, timeout_ms, .. } } => {
            let body = Request::Call { target, subject, sender: None, payload, timeout_ms };
            Routed::from_frame(Frame::Request { req, body }).expect("a call is a hot frame")
        }
        Frame::Request { req, body: Request::Cast { target, subject, payload, .. } } => {
            let body = Request::Cast { target, subject, sender: None, payload };
            Routed::from_frame(Frame::Request { req, body }).expect("a cast is a hot frame")
        }
        other => Routed::from_frame(other).expect("it was a hot frame"),
    }
}

/// The request id of an encoded `Response` frame (length prefix included).
fn answer_query(frame: &[u8]) -> Option<u64> {
    let body = Bytes::copy_from_slice(frame.get(rebeam_proto::HEADER_BYTES..)?);
    match rebeam_proto::decode_frame(body).ok()? {
        Frame::Response { req, .. } => Some(req),
        _ => None,
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
