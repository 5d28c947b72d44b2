//! The frames themselves. Supervision specs carry `rebeam-core`'s enums (`Strategy`,
//! `Restart`): the sender parses the user's spellings ("one_for_all", "transient") and refuses
//! a bad one itself, so the governor never sees a string where a choice belongs.

use crate::{SafetyTransition, StatusReport};
use bytes::Bytes;
pub use rebeam_core::registry::Balance;
pub use rebeam_core::supervision::{Restart, Strategy};
use serde::{Deserialize, Serialize};

/// One incarnation of an actor or task, unique for the life of a governor.
pub type ActorId = u64;
/// Request id, chosen by the process that sends the request.
pub type ReqId = u64;
/// Id of one delivered call, chosen by the governor; the worker's reply carries it back.
pub type DeliveryId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Runs the user's script.
    Main,
    /// Hosts actors and tasks.
    Worker,
}

/// Whom a message is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    Name(String),
    Actor(ActorId),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(name) => write!(f, "'{name}'"),
            Target::Actor(id) => write!(f, "<{id}>"),
        }
    }
}

/// An actor's identity as the receiver sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRef {
    pub id: ActorId,
    pub name: Option<String>,
}

/// A Python value: a protocol-5 pickle and its out-of-band buffers.
///
/// `Bytes`, not `Vec<u8>`: serde's derive walks a `Vec<u8>` one element at a time, while `Bytes`
/// serializes as one length-prefixed block (a memcpy), and cloning one to forward it shares the
/// buffer instead of copying it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub data: Bytes,
    pub buffers: Vec<Bytes>,
}

impl Payload {
    pub fn len(&self) -> u64 {
        (self.data.len() + self.buffers.iter().map(Bytes::len).sum::<usize>()) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What kind of failure a caller is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// No live actor has that name or id.
    NoProcess,
    /// The actor died (its handler crashed elsewhere, it was stopped, or its worker died)
    /// before it answered.
    ActorDown,
    /// The handler raised; the error carries the exception and the remote traceback.
    Crashed,
    /// No answer within the caller's timeout.
    Timeout,
    /// A message over the size limit.
    TooLarge,
    /// An actor, task or tree could not be started.
    StartFailed,
    /// The request was malformed or not allowed.
    BadRequest,
    /// The system is shutting down.
    ShuttingDown,
    /// The target is a task, which has no mailbox.
    NoMailbox,
    /// Gated work refused or interrupted because the system is not armed.
    Safety,
    /// A publication on a topic closed to the publisher.
    Reserved,
    /// A bounded store is full: a message queue, or the noticeboard.
    Full,
    /// A tag got no message queue: every one is assigned to another tag (bocpy's `KeyError`).
    NoQueue,
}

/// A failure as reported to a caller or a supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub kind: ErrorKind,
    pub message: String,
    /// Python exception type, for errors raised by Python code.
    pub exc_type: Option<String>,
    /// Formatted Python traceback, for errors raised by Python code.
    pub traceback: Option<String>,
}

impl ErrorInfo {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), exc_type: None, traceback: None }
    }
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.exc_type {
            // A start failure's message already names the exception it wraps.
            Some(t) if self.kind != ErrorKind::StartFailed => write!(f, "{t}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Status a handler answered with (`response_ok` / `response_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Ok,
    Error,
}

/// The result of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Reply { status: Status, payload: Payload },
    Failed(ErrorInfo),
}

/// Which of an actor's handlers need the system armed (`@requires_armed`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gating {
    /// Subjects with a handler of their own (the rest go to the catch-all).
    pub handled: Vec<String>,
    /// Subjects whose handlers are gated.
    pub subjects: Vec<String>,
    /// Whether the catch-all handler is gated.
    pub catch_all: bool,
}

/// How many fds travel with a frame that hands over a channel end ([`Frame::fds_expected`]),
/// in this order: the segment, data bell and space bell of the ring this end sends on; the same
/// three of the ring it receives on; a pidfd of the process at the other end.
pub const CHANNEL_FDS: usize = 7;

/// One end of a direct channel between two processes, as the governor hands it out. Its
/// [`CHANNEL_FDS`] fds arrive with the frame that carries it (SCM_RIGHTS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelGrant {
    /// The channel's id, unique for the run.
    pub id: u64,
    /// The process at the other end.
    pub peer_pid: u32,
    /// Length of the segment this end sends on.
    pub send_len: u64,
    /// Length of the segment this end receives on.
    pub recv_len: u64,
}

/// Where an actor lives, as a process asks for it to send to it directly ([`Request::Route`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The actor now under that target (a restarted actor has a new id).
    pub actor: ActorRef,
    /// Its gated handlers: work for them stays on the governor's path.
    pub gating: Gating,
    /// The channel to the actor's process.
    pub channel: ChannelGrant,
    /// Whether the channel's fds come with this frame; else this process already holds it.
    pub fresh: bool,
}

/// Safety states, as the wire carries them (`rebeam-core` owns the machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Safety {
    Disarmed,
    Armed,
    Disarming,
    Error,
}

/// Why an actor or task ended, as its process saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exit {
    Normal,
    Shutdown,
    Crashed(ErrorInfo),
    Killed(String),
}

/// What a child runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildCode {
    /// A pickled `GenPy` instance.
    Actor { class_name: String, instance: Payload },
    /// A pickled callable run as a long-running task (a module child runs its `main`).
    Task { function: Payload },
    /// A script path: its `GenPy` class if it defines one, else the script run as a task.
    Script { path: String },
    /// A nested supervisor.
    Tree(TreeSpec),
    /// A tree the main process already started (Python builds the inner `Supervisor(...)` of a
    /// nested tree before the outer one): the new supervisor adopts it as this child.
    Adopt { tree: u64 },
}

/// One child of a supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSpec {
    /// Registered name, if any (names survive restarts).
    pub name: Option<String>,
    /// Human-readable label for logs and crash reports.
    pub label: String,
    /// When the child is started again after it ends.
    pub restart: Restart,
    /// Polite-stop timeout in milliseconds; `None` waits forever, `Some(0)` kills at once.
    pub shutdown_ms: Option<u64>,
    pub code: ChildCode,
    /// A group member (then `name` is `None`: the group's name is in the slot).
    pub group: Option<GroupSlot>,
    /// Which node it runs on (see [`Placement`]).
    pub node: Placement,
}

/// Which node a child or a spawned actor runs on, when the run is one node of several.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    /// The node that starts it (a tree's: its supervisor's), as on a single node.
    #[default]
    Here,
    /// The first of these nodes that is up, in this order (this node may be one of them).
    Nodes(Vec<String>),
    /// Any node up: the first up in name order.
    Any,
}

/// How a user spells [`Placement::Any`] (no node can have this name).
pub const ANY_NODE: &str = "*";

/// A group member's place: the group, its position there, and the group's size and balance
/// (`rebeam_core::registry::groups` has the rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSlot {
    pub name: String,
    pub position: u32,
    pub size: u32,
    pub balance: Balance,
}

/// A supervisor and its children, in start order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeSpec {
    pub name: Option<String>,
    /// Which siblings are restarted with a failed child.
    pub strategy: Strategy,
    pub max_restarts: u32,
    pub max_seconds_ms: u64,
    pub children: Vec<ChildSpec>,
}

/// Everything that travels on a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    Hello {
        version: u32,
        role: Role,
        token: String,
        pid: u32,
    },
    Welcome {
        index: u32,
        max_message_bytes: u64,
        /// How many workers the run has (not counting spares).
        workers: u32,
    },
    Ready,
    Request {
        req: ReqId,
        body: Request,
    },
    Response {
        req: ReqId,
        body: Response,
    },
    Command(Command),
    Event(Event),
    /// Host → governor, on the control socket only.
    Control(ControlRequest),
    /// Governor → host, answering a [`Frame::Control`].
    ControlReply(ControlResponse),
}

impl Frame {
    /// How many fds must arrive with this frame (see [`CHANNEL_FDS`]); fds with any other
    /// frame are stray, and a receiver closes them.
    pub fn fds_expected(&self) -> usize {
        match self {
            Frame::Response { body: Response::Route(Ok(route)), .. } if route.fresh => CHANNEL_FDS,
            Frame::Command(Command::ChannelOpened(_)) => CHANNEL_FDS,
            _ => 0,
        }
    }
}

/// What the host may ask on the control socket. Arriving on a process's socket, these are
/// refused: only the host arms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControlRequest {
    Arm,
    Disarm,
    ForceDisarm,
    Status,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControlResponse {
    /// The safety state after the request, and the transitions it caused.
    Safety {
        state: Safety,
        transitions: Vec<SafetyTransition>,
    },
    Refused(ControlRefusal),
    /// The safety state, the processes and the supervision trees (`rebeam ctl status`).
    Status {
        state: Safety,
        report: StatusReport,
    },
    Done,
}

/// Why a control request was refused, and the sentence a person reads (it says what to do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRefusal {
    pub kind: RefusalKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalKind {
    /// The peer runs as another user.
    OtherUser,
    /// The peer's line of parent processes could not be read, so it may be part of the run.
    Unverified,
    /// The peer is a process of the run, or was started by one: only the host changes safety.
    InsideTheRun,
    /// The safety machine does not allow the request in its current state.
    SafetyState,
}

/// Process → governor, answered by a [`Response`] with the same id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Call {
        target: Target,
        subject: String,
        sender: Option<ActorId>,
        payload: Payload,
        timeout_ms: u64,
    },
    Cast {
        target: Target,
        subject: String,
        sender: Option<ActorId>,
        payload: Payload,
    },
    Spawn {
        /// Boxed: the largest request by far, and a rare one, so every other request stays small.
        child: Box<ChildSpec>,
    },
    StartTree {
        spec: TreeSpec,
    },
    /// Stops a top-level tree (children in reverse start order); answered at once, with
    /// `Done`, before the children have stopped.
    StopTree {
        tree: u64,
    },
    Whereis {
        name: String,
    },
    Monitor {
        watcher: Option<ActorId>,
        target: Target,
    },
    Demonitor {
        monitor: u64,
    },
    Shutdown {
        code: i32,
    },
    /// Subscribe `actor` (or, when None, the requesting process) to topics matching `pattern`.
    Subscribe {
        actor: Option<ActorId>,
        pattern: String,
        throttle_ms: u64,
        queue: u32,
    },
    Unsubscribe {
        subscription: u64,
    },
    Publish {
        topic: String,
        payload: Payload,
    },
    /// Schedule a behaviour on `cowns` (its result goes to the new cown `result`); answered
    /// at once, before the behaviour runs (unless `quiet` and accepted).
    Schedule {
        behaviour: u64,
        cowns: Vec<u64>,
        result: u64,
        code: Payload,
        /// Run it in the main process even without a pinned cown: `Cown.acquire()` there.
        at_main: bool,
        /// `@requires_armed`: refused unless the system is armed when it is about to run.
        gated: bool,
        /// The sender does not wait: answered only if refused (the refusal is raised later),
        /// so a `@when` nobody awaits costs no answer.
        quiet: bool,
    },
    /// Answered when no scheduled behaviour is left (`wait()`), or after `timeout_ms`.
    Quiesce {
        timeout_ms: Option<u64>,
    },
    /// bocpy messaging: queue a message under `tag`.
    SendTagged {
        tag: String,
        payload: Payload,
    },
    /// The oldest message under any of `tags` (answered when one arrives, or `None` after
    /// `timeout_ms`).
    Receive {
        tags: Vec<String>,
        timeout_ms: Option<u64>,
    },
    /// Discards every queued message under `tags`.
    Drain {
        tags: Vec<String>,
    },
    /// bocpy's `set_tags`: these tags (at most `MAX_TAGS`) get the queues, empty; the
    /// others lose theirs. An empty list leaves every queue to be assigned on first use.
    SetTags {
        tags: Vec<String>,
    },
    /// Writes a noticeboard entry and answers once it is applied (`notice_seed`).
    NoticeSeed {
        key: String,
        payload: Payload,
    },
    /// Writes (or, with no payload, deletes) `key` only if its version is still `expected`
    /// (0: absent); answered with [`Response::Updated`].
    NoticeUpdate {
        key: String,
        expected: u64,
        payload: Option<Payload>,
    },
    /// How many behaviours each live process has run: answered with [`Response::BocStats`].
    BocStats,
    /// A snapshot of the noticeboard (`clear`: and empty it, as bocpy's `wait()` does).
    Notices {
        clear: bool,
    },
    /// Where `target` lives, with a channel to its process for direct calls and casts:
    /// answered with [`Response::Route`] (refused for an actor in the asking process itself,
    /// or one not started yet).
    Route {
        target: Target,
    },
    /// The nodes of the system that are up, this one included (none when the run is not a
    /// node): answered with [`Response::Nodes`].
    Nodes,
}

/// Governor → process, answering a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Call(Outcome),
    Cast {
        delivered: bool,
    },
    Spawned(Result<ActorRef, ErrorInfo>),
    TreeStarted(Result<u64, ErrorInfo>),
    Whereis(Option<ActorRef>),
    /// [`Request::Whereis`] of a group's name: its members by position (`None` where one is
    /// restarting). Marked apart so that nobody caches a group's name as one actor's.
    Group(Vec<Option<ActorRef>>),
    Monitored(Result<u64, ErrorInfo>),
    Subscribed(Result<u64, ErrorInfo>),
    Received(Option<(String, Payload)>),
    /// Noticeboard entries: key, version, value.
    Notices(Vec<(String, u64, Payload)>),
    /// Per process: its index (0 is the main process), its pid, and behaviours it ran.
    BocStats(Vec<(u32, u32, u64)>),
    /// Whether a [`Request::NoticeUpdate`] applied.
    Updated(bool),
    /// The answer to a [`Request::Route`], with the channel's fds when `fresh`.
    Route(Result<Route, ErrorInfo>),
    Done,
    Refused(ErrorInfo),
    /// The answer to a [`Request::Nodes`]: names, sorted.
    Nodes(Vec<String>),
    /// [`Request::Whereis`] of a name another node has: its actor there, and that node.
    WhereisAt {
        actor: ActorRef,
        node: String,
    },
}

/// Governor → process, one-way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A message for an actor; `delivery` is set for calls, which must be answered.
    Deliver {
        delivery: Option<DeliveryId>,
        actor: ActorId,
        subject: String,
        sender: Option<ActorRef>,
        payload: Payload,
    },
    /// Start an actor or task (never a `ChildCode::Tree`: trees live in the governor).
    Start { actor: ActorId, name: Option<String>, label: String, code: ChildCode },
    /// Stop an actor politely: after its current message, run its stop hook, then exit.
    Stop { actor: ActorId },
    /// Import the user's script now, so the first start on this worker is fast.
    Preload,
    /// A monitored actor ended; `node` is the node it ran on when that is another node.
    Down { monitor: u64, watcher: Option<ActorId>, actor: ActorRef, node: Option<String>, reason: Exit },
    /// Leave: finish up and exit with this status.
    Shutdown { code: i32 },
    /// The safety state changed (sent to every process).
    Safety { state: Safety },
    /// The system was disarmed while this gated delivery ran: mark it cancelled and interrupt
    /// the thread running it (only if it still runs that very delivery).
    Cancel { actor: ActorId, delivery: DeliveryId },
    /// The system was disarmed while this gated behaviour ran: mark it cancelled and
    /// interrupt the thread running it (or, if it has not started, refuse it).
    CancelBehaviour { behaviour: u64 },
    /// Send the governor the value of this cown (and forget it): a behaviour needs it elsewhere.
    Surrender { cown: u64 },
    /// Run a behaviour here: `values` are the cowns that moved here for it; `lost` the cowns
    /// whose value died with a worker; the others are already in this process.
    RunBehaviour {
        behaviour: u64,
        cowns: Vec<u64>,
        result: u64,
        values: Vec<(u64, Payload)>,
        lost: Vec<u64>,
        code: Payload,
        /// Set when the behaviour must not run (`@requires_armed` while not armed): its
        /// result cown gets this error instead.
        refused: Option<ErrorInfo>,
        /// Gated work the governor tracks: a disarm may cancel it (`CancelBehaviour`), so the
        /// process keeps it where a cancel finds it; no other behaviour is ever cancelled.
        gated: bool,
    },
    /// A publication for a subscription; `dropped` counts what its bounded queue discarded.
    Publication { subscription: u64, actor: Option<ActorId>, topic: String, payload: Payload, dropped: u64 },
    /// The main process's `sys.path` (see `Event::SysPath`): import as it does.
    SysPath { paths: Vec<String> },
    /// A behaviour's code (see `Event::DefineCode`): keep it under `id` for the behaviours that name it.
    DefineCode { id: u64, code: Payload },
    /// Another process opened a direct channel to this one; its fds come with this frame.
    ChannelOpened(ChannelGrant),
    /// The process at the other end of a channel died, and why (the words its callers see).
    ChannelClosed { channel: u64, why: String },
    /// Let these cowns' values go: nothing can reach them any more (see `Event::DropCowns`).
    ForgetCowns { cowns: Vec<u64> },
}

/// Process → governor, one-way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Replied {
        delivery: DeliveryId,
        outcome: Outcome,
    },
    Started {
        actor: ActorId,
        result: Result<Gating, ErrorInfo>,
    },
    Exited {
        actor: ActorId,
        reason: Exit,
        /// The highest governor delivery id this process had taken in (checked against the
        /// actor's liveness) when the actor died: the governor ends the actor's deliveries up
        /// to it, and waits for this process's own answer (`NoProcess`) to any later one.
        /// `DeliveryId::MAX` when the process cannot say (every delivery ends with the actor).
        taken_up_to: DeliveryId,
    },
    /// A cown was created in this process, holding its value.
    CownCreated {
        cown: u64,
        pinned: bool,
    },
    /// The value of a cown the governor asked for (see `Command::Surrender`).
    CownValue {
        cown: u64,
        payload: Payload,
    },
    /// A behaviour finished (its result, or its exception, is now in its result cown here).
    BehaviourDone {
        behaviour: u64,
    },
    /// Writes (or, with no payload, deletes) a noticeboard entry, fire-and-forget
    /// (`notice_write`, `notice_delete`).
    Notice {
        key: String,
        payload: Option<Payload>,
    },
    /// The main process finished the script body (`error` if it raised; `exit` if it called
    /// `sys.exit(code)`, which ends the run with that status whatever is still running).
    BodyDone {
        error: Option<ErrorInfo>,
        exit: Option<i32>,
    },
    /// The main process's `sys.path` changed. Workers unpickle what it sends, so they must
    /// resolve imports as it does; sent before the first frame that may need the new path.
    SysPath {
        paths: Vec<String>,
    },
    /// The main process's code for behaviours, sent once: behaviours name it by `id` and carry
    /// only their captures. Every worker gets it before any behaviour sent after it.
    DefineCode {
        id: u64,
        code: Payload,
    },
    /// Messages this process took off direct channels since its last report, per actor (the
    /// governor counts them for the status report; it never carries them).
    DirectDeliveries {
        counts: Vec<(ActorId, u64)>,
    },
    /// This process dropped its last handle to these cowns it made, none of which ever left it:
    /// once no pending behaviour names one, the governor forgets it (`Command::ForgetCowns`).
    DropCowns {
        cowns: Vec<u64>,
    },
    /// This process made these cowns and dropped its last handle to each, but a `@when` here
    /// requested each, so behaviours got handles to it: once no behaviour is queued on one and
    /// no process keeps a handle (`KeepCowns`), the governor forgets it.
    ReleaseCowns {
        cowns: Vec<u64>,
    },
    /// This process keeps handles to these cowns past the behaviour that gave them, or sent
    /// one away (pickled): they are never freed. Sent before that behaviour's done.
    KeepCowns {
        cowns: Vec<u64>,
    },
}
