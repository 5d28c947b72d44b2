//! The router: the one task that owns the governor's state.
//!
//! Every input (a Hello, a frame, a lost connection, a reaped process, a timer, a signal) arrives
//! on one channel and is handled to completion before the next, so there are no locks and the
//! order in which one connection's frames arrive is the order in which they are forwarded: that
//! is what makes delivery FIFO per sender → receiver pair.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use rebeam_core::calls::InFlight;
use rebeam_core::registry::{Actors, Named, Names, ProcId, Procs};
use rebeam_proto::{
    ActorId, ActorRef, ControlRequest, ControlResponse, ErrorInfo, ErrorKind, Event, Frame, IntoEncoded, Outcome,
    ProtoError, ReqId, Request, Response, Role, Routed, FRAME_OVERHEAD_BYTES,
};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::listener::{spawn_acceptor, Hello};
use crate::process::{self, Os, ProcessExit, RealOs};
use crate::tree::Trees;
use crate::{Config, GovernorError, Program, READY_TIMEOUT};

/// A process of the run, as `Router::procs` names it: generational, so an id kept past its
/// process's removal (in a timer, a late frame) finds nothing rather than a newer process.
/// A dead process stays in the table (`Dead`) until it is reaped, so that its exit status and
/// its group's stragglers still find it; peers never name a `ProcIdx`.
pub type ProcIdx = ProcId;

/// Everything the router reacts to.
pub enum Input {
    Hello(Hello),
    Frame(ProcIdx, Frame),
    /// A call, cast or reply as read: routed from its fixed header (see `rebeam_proto::Routed`).
    Hot(ProcIdx, Routed),
    /// A call or cast that lends pieces, with the fds that came with it (see `lent.rs`).
    Lent(ProcIdx, Routed, Vec<std::os::fd::OwnedFd>),
    Lost(ProcIdx, ProtoError),
    Reaped(u32, ProcessExit),
    LostGrace(ProcIdx),
    ReadyDeadline(ProcIdx),
    StopDeadline(ActorId),
    ShutdownDeadline,
    Sweep,
    Control(rebeam_proto::ControlRequest, crate::control::Peer, crate::control::Reply),
    /// The grace period of one disarm (its number) is over.
    SafetyGrace(u64),
    KillConfirm(ProcIdx),
    BusFlush(u64),
    ParentGone,
    QuiesceDeadline(u64),
    ReceiveDeadline(u64),
    /// A tree's restart turn (`rebeam_core::trees::Effect::RestartTurn`).
    TreeRestart(crate::tree::TreeId),
    /// The first spares wait no longer for the first actor start (see pool.rs).
    SparesHold,
    /// From the other nodes of the system (see node.rs), as tests hand them in: a run's loop
    /// reads the transport's own channel (`node::next_input`).
    #[cfg(test)]
    Node(crate::node::NodeIn),
    /// From a zygote (its generation), or its end (see zygote.rs).
    Zygote(u32, crate::zygote::Event),
}

/// How long a lost connection waits for its process's exit status, to name the cause.
pub(crate) const LOST_GRACE: Duration = Duration::from_millis(200);
/// `Router::main` until `start_processes` names the main process (before any input): an id
/// no table hands out (slot `u32::MAX`), so it finds nothing.
const NO_MAIN_YET: ProcId = ProcId::from_raw(u64::MAX);
/// Late replies to calls whose callers gave up are forgotten after this much extra time.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Library mode: how often to check that our parent is alive (its closed connection usually
/// tells us first).
const PARENT_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Spawned,
    Connected,
    Ready,
    Dead,
}

pub struct Proc {
    pub role: Role,
    /// 0 for the main process, 1.. for workers.
    pub index: u32,
    pub pid: u32,
    pub(crate) token: String,
    pub state: ProcState,
    pub(crate) tx: Option<crate::outbox::Outbox>,
    pub spare: bool,
    pub(crate) lost: bool,
    /// Not our child (the library-mode main process): never signalled, never reaped.
    pub(crate) external: bool,
    /// Reaped: its pid, and the process group it led, may be someone else's now.
    pub(crate) reaped: bool,
}

impl Proc {
    pub fn describe(&self) -> String {
        match self.role {
            Role::Main => format!("main process (pid {})", self.pid),
            Role::Worker => format!("worker {} (pid {})", self.index, self.pid),
        }
    }
}

pub struct Monitor {
    pub watcher_proc: ProcIdx,
    pub watcher: Option<ActorId>,
    pub target: ActorId,
}

pub struct Router {
    pub(crate) config: Config,
    /// Processes, signals and timers: every effect outside this state goes through it.
    pub(crate) os: Box<dyn Os>,
    pub(crate) socket_path: PathBuf,
    pub(crate) procs: Procs<Proc>,
    pub(crate) main: ProcIdx,
    /// Every actor, where it is placed, and each process's actors.
    pub(crate) actors: Actors<crate::actors::Actor>,
    pub(crate) names: Names,
    /// Every delivery someone waits for: callers, and the safety gate for gated work.
    pub(crate) calls: InFlight<ProcIdx>,
    pub(crate) monitors: HashMap<u64, Monitor>,
    pub(crate) trees: Trees,
    pub(crate) gate: crate::safety::Gate,
    pub(crate) bus: crate::bus::Bus,
    pub(crate) boc: crate::boc::Boc,
    pub(crate) messages: crate::messages::Messages,
    pub(crate) notices: crate::notices::Notices,
    /// The direct channels handed out (`channels.rs`).
    pub(crate) channels: crate::channels::Channels,
    pub(crate) control_path: PathBuf,
    /// Actors waiting for a ready worker.
    pub(crate) queued_starts: VecDeque<ActorId>,
    pub(crate) next_id: u64,
    /// The highest process index given so far (0 is the main process): a new worker gets the
    /// next, so no two workers of a run share a number, even once one is removed.
    pub(crate) last_index: u32,
    pub(crate) early_deaths: rebeam_core::pool::EarlyDeaths,
    /// Spares not started yet: they start once the pool's workers are ready (see pool.rs).
    pub(crate) spares_pending: usize,
    /// An actor start has ended (started or failed); the hold on the first spares has begun,
    /// and is over: what the spares wait for besides (see pool.rs).
    pub(crate) first_start_ended: bool,
    pub(crate) spares_hold_begun: bool,
    pub(crate) spares_hold_over: bool,
    /// Ready workers whose Preload waits for the pool's other workers to be ready (pool.rs).
    pub(crate) preloads_pending: Vec<ProcIdx>,
    pub(crate) body_done: bool,
    /// The script's supervisor, under `--restart on-failure|always` (see main_restart.rs).
    pub(crate) main_sup: Option<crate::main_restart::MainSupervisor>,
    pub(crate) shutdown: Option<i32>,
    pub(crate) finished: bool,
    /// When the router was made: the origin of the status report's clock.
    pub(crate) started: std::time::Instant,
    /// The latest safety transitions, for the status report (bounded, oldest first).
    pub(crate) transitions: VecDeque<rebeam_proto::TimedTransition>,
    /// The seam to the other nodes, when this run is one node of several (node.rs).
    pub(crate) node: Option<crate::node::Link>,
    /// The zygote that forks workers, while there is a working one; how many were started;
    /// reaps of pids not known yet; whether the governor is its orphans' reaper (zygote.rs).
    pub(crate) zygote: Option<crate::zygote::Zygote>,
    pub(crate) zygote_starts: u32,
    pub(crate) unmatched_reaps: VecDeque<(u32, ProcessExit)>,
    pub(crate) subreaper: bool,
}

pub async fn run(config: Config, node: Option<crate::node::Seam>) -> Result<i32, GovernorError> {
    let subreaper = process::become_subreaper();
    let dir = runtime_dir()?;
    let (socket_path, socket_dir) = crate::user::process_socket_path(&dir, config.python_user.as_ref())?;
    let _cleanup = crate::user::RemoveOnDrop(socket_dir);
    let _ = std::fs::remove_file(&socket_path);
    let listener = UnixListener::bind(&socket_path)
        .map_err(|source| GovernorError::Listen { path: socket_path.clone(), source })?;
    if let Some(user) = &config.python_user {
        crate::user::give_socket(&socket_path, user)?;
    }

    let (control, control_path) = crate::control::bind(&dir, config.control_socket.as_deref())?;
    process::guard_sockets(&[&socket_path, &control_path]);
    let bus = crate::bus::Bus::new(&config.allow_publish).map_err(|e| GovernorError::Pattern(e.to_string()))?;
    let (inputs, mut rx) = mpsc::unbounded_channel();
    let frame_limit = config.max_message_bytes.saturating_add(FRAME_OVERHEAD_BYTES);
    let (peers, mut peer_rx) = crate::listener::peer_inputs(crate::outbox::budget(frame_limit));
    let python_uid = config.python_user.as_ref().map(|u| u.uid);
    spawn_acceptor(listener, peers, frame_limit, python_uid);
    crate::control::spawn_acceptor(control, inputs.clone());
    if let Program::Library { parent, ready_fd, .. } = &config.program {
        if let Some(fd) = *ready_fd {
            use std::io::Write;
            use std::os::fd::FromRawFd;
            // SAFETY: the parent passed us this pipe's write end for exactly this; we own it.
            let mut pipe = unsafe { std::fs::File::from_raw_fd(fd) };
            let lines = format!("{}={}\n", rebeam_proto::env::SOCKET, socket_path.display());
            let _ = pipe.write_all(lines.as_bytes());
        }
        tokio::spawn(watch_parent(*parent, inputs.clone()));
    }
    let reaped = inputs.clone();
    process::start_reaper(move |pid, exit| {
        let _ = reaped.send(Input::Reaped(pid, exit));
    });
    let mut sigint = signal(SignalKind::interrupt()).map_err(GovernorError::Signals)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(GovernorError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(GovernorError::Signals)?;

    let os = Box::new(RealOs::new(inputs.clone()));
    let mut router = Router::new(config, os, socket_path.clone(), control_path.clone(), bus);
    let (link, mut node_inputs) = node.map(crate::node::attach).unzip();
    router.node = link;
    router.subreaper = subreaper;
    let started = router.start_processes();
    let code = match started {
        Err(e) => {
            router.kill_everything();
            let _ = std::fs::remove_file(&socket_path);
            let _ = std::fs::remove_file(&control_path);
            return Err(e);
        }
        Ok(()) => {
            tokio::spawn(sweeper(inputs.clone()));
            let mut interrupts = 0;
            while !router.finished {
                tokio::select! {
                    Some(input) = rx.recv() => router.handle(input),
                    Some(peer) = peer_rx.recv() => router.handle(peer.input),
                    input = crate::node::next_input(&mut node_inputs) => router.on_node(input),
                    _ = sigint.recv() => {
                        interrupts += 1;
                        router.on_interrupt(interrupts);
                    }
                    _ = sigterm.recv() => router.begin_shutdown(143, "received SIGTERM"),
                    _ = sighup.recv() => router.begin_shutdown(129, "received SIGHUP"),
                }
            }
            router.shutdown.unwrap_or(0)
        }
    };
    router.kill_everything();
    let _ = std::fs::remove_file(&socket_path);
    let _ = std::fs::remove_file(&control_path);
    Ok(code)
}

/// Library mode: the governor ends when the Python process that started it is gone.
async fn watch_parent(parent: u32, inputs: mpsc::UnboundedSender<Input>) {
    let mut tick = tokio::time::interval(PARENT_POLL);
    loop {
        tick.tick().await;
        let ppid = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32);
        if ppid != parent {
            let _ = inputs.send(Input::ParentGone);
            return;
        }
    }
}

async fn sweeper(inputs: mpsc::UnboundedSender<Input>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        if inputs.send(Input::Sweep).is_err() {
            return;
        }
    }
}

/// A private directory for sockets: `$XDG_RUNTIME_DIR/rebeam` or `/tmp/rebeam-<uid>`, mode 0700.
pub fn runtime_dir() -> Result<PathBuf, GovernorError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(base) => PathBuf::from(base).join("rebeam"),
        None => PathBuf::from(format!("/tmp/rebeam-{}", rustix::process::getuid().as_raw())),
    };
    let err = |source| GovernorError::RuntimeDir { path: dir.clone(), source };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(e)),
    }
    let meta = std::fs::metadata(&dir).map_err(err)?;
    if std::os::unix::fs::MetadataExt::uid(&meta) != rustix::process::getuid().as_raw() {
        return Err(err(std::io::Error::other("the directory belongs to another user")));
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    remove_stale_sockets(&dir);
    Ok(dir)
}

/// Sockets of governors that were killed (SIGKILL leaves no chance to clean up).
fn remove_stale_sockets(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) =
            name.strip_suffix(".sock").and_then(|n| n.rsplit('-').next()).and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Router {
    /// A router with no processes yet (`start_processes` starts them): `run` gives it the real
    /// OS and sockets; the model test gives it a recording fake.
    pub(crate) fn new(
        config: Config,
        os: Box<dyn Os>,
        socket_path: PathBuf,
        control_path: PathBuf,
        bus: crate::bus::Bus,
    ) -> Router {
        let gate = crate::safety::gate(&config);
        // Only a script's main process is ours to restart, and only when asked.
        let main_sup = (matches!(config.program, crate::Program::Script { .. })
            && config.main_restart.restart != rebeam_core::supervision::Restart::Temporary)
            .then(|| crate::main_restart::MainSupervisor::new(config.main_restart));
        let started = os.now();
        Router {
            config,
            os,
            socket_path,
            procs: Procs::default(),
            main: NO_MAIN_YET,
            actors: Actors::default(),
            names: Names::default(),
            calls: InFlight::default(),
            monitors: HashMap::new(),
            trees: Trees::default(),
            gate,
            bus,
            boc: crate::boc::Boc::default(),
            messages: crate::messages::Messages::default(),
            notices: crate::notices::Notices::default(),
            channels: crate::channels::Channels::default(),
            control_path,
            queued_starts: VecDeque::new(),
            next_id: 1,
            last_index: 0,
            early_deaths: rebeam_core::pool::EarlyDeaths::default(),
            spares_pending: 0,
            first_start_ended: false,
            spares_hold_begun: false,
            spares_hold_over: false,
            preloads_pending: Vec::new(),
            body_done: false,
            main_sup,
            shutdown: None,
            finished: false,
            started,
            transitions: VecDeque::new(),
            node: None,
            zygote: None,
            zygote_starts: 0,
            unmatched_reaps: VecDeque::new(),
            subreaper: false,
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends `input` to the router after `delay`.
    pub fn after(&self, delay: Duration, input: Input) {
        self.os.after(delay, input);
    }

    /// Sends a frame the protocol cannot lose (see `outbox.rs`); by value, so encoding moves its
    /// payloads out instead of cloning the frame. A routed frame goes out as it is.
    pub fn send(&self, proc: ProcIdx, frame: impl IntoEncoded) -> bool {
        self.send_with_fds(proc, frame, Vec::new())
    }

    /// As `send`, with fds that go with the frame (see `channels.rs`); they close here if the
    /// process is gone.
    pub fn send_with_fds(&self, proc: ProcIdx, frame: impl IntoEncoded, fds: Vec<std::os::fd::OwnedFd>) -> bool {
        if proc == crate::node::NODE_PEER {
            return self.send_to_node(frame);
        }
        let Some(tx) = self.procs.get(proc).and_then(|p| p.tx.as_ref()) else {
            return false;
        };
        match frame.into_encoded() {
            Ok(bytes) => tx.push_with_fds(bytes, fds, || self.os.now()),
            Err(e) => {
                tracing::error!("cannot encode a frame for {}: {e}", self.procs[proc].describe());
                false
            }
        }
    }

    pub(crate) fn respond(&self, proc: ProcIdx, req: ReqId, body: Response) {
        self.send(proc, Frame::Response { req, body });
    }

    pub(crate) fn handle(&mut self, input: Input) {
        match input {
            Input::Hello(hello) => self.on_hello(hello),
            Input::Frame(proc, frame) => match Routed::from_frame(frame) {
                // A hot frame made in memory (the model test's fake processes send these) takes
                // the path of one read from a socket.
                Ok(hot) => self.on_hot(proc, hot, Vec::new()),
                Err(frame) => self.on_frame(proc, frame),
            },
            Input::Hot(proc, hot) => self.on_hot(proc, hot, Vec::new()),
            Input::Lent(proc, hot, fds) => self.on_hot(proc, hot, fds),
            Input::Lost(proc, err) => self.on_lost(proc, err),
            Input::Reaped(pid, exit) => self.on_reaped(pid, exit),
            Input::LostGrace(proc) => {
                if self.procs.get(proc).is_some_and(|p| p.state != ProcState::Dead) {
                    self.kill_proc(proc);
                    self.proc_died(proc, "its connection to the governor was lost".into(), None);
                }
            }
            Input::SparesHold => self.on_spares_hold(),
            Input::ReadyDeadline(proc) => {
                // A removed process (reaped already) is past any deadline.
                if let Some(p) =
                    self.procs.get(proc).filter(|p| matches!(p.state, ProcState::Spawned | ProcState::Connected))
                {
                    tracing::error!("{} was not ready after {READY_TIMEOUT:?}; killing it", p.describe());
                    let unforked = p.pid == crate::zygote::NOT_FORKED_YET;
                    self.kill_proc(proc);
                    if unforked {
                        // Never forked: no reap will come (a late fork is killed, see zygote.rs).
                        self.proc_died(proc, "the zygote never forked it".into(), None);
                        self.procs.remove(proc);
                    }
                }
            }
            Input::StopDeadline(actor) => self.on_stop_deadline(actor),
            Input::ShutdownDeadline => {
                if self.shutdown.is_some() && !self.finished {
                    tracing::warn!(
                        "shutdown did not finish in {:?}; killing what is left",
                        self.config.shutdown_timeout
                    );
                    self.kill_everything();
                    self.answer_node_calls_at_exit();
                    self.finished = true;
                }
            }
            Input::Control(request, peer, reply) => {
                let refusal = self.control_refusal(&request, &peer);
                let _ = reply.send(refusal.map_or_else(|| self.on_control(request), ControlResponse::Refused));
            }
            Input::SafetyGrace(disarm) => self.on_safety_grace(disarm),
            Input::KillConfirm(proc) => self.on_kill_confirm(proc),
            Input::BusFlush(id) => self.flush(id),
            Input::QuiesceDeadline(token) => self.quiesce_deadline(token),
            Input::ReceiveDeadline(token) => self.receive_deadline(token),
            Input::TreeRestart(tree) => self.tree_restart(tree),
            #[cfg(test)]
            Input::Node(input) => self.on_node(input),
            Input::Zygote(generation, event) => self.on_zygote(generation, event),
            Input::ParentGone => self.begin_shutdown(0, "the Python process that started rebeam has exited"),
            Input::Sweep => {
                let now = self.os.now();
                self.calls.expire(now);
                self.kill_hung_workers(now);
            }
        }
        self.check_finished();
    }

    pub(crate) fn is_live(&self, proc: ProcIdx) -> bool {
        self.procs.get(proc).is_some_and(|p| p.state != ProcState::Dead)
    }

    pub(crate) fn on_frame(&mut self, proc: ProcIdx, frame: Frame) {
        if !self.is_live(proc) {
            return;
        }
        match frame {
            Frame::Ready => self.on_ready(proc),
            Frame::Request { req, body } => self.on_request(proc, req, body),
            Frame::Event(event) => self.on_event(proc, event),
            Frame::Control(request) => {
                // Only the host arms: Python processes have no business sending these.
                tracing::error!(
                    "refused a control request ({request:?}) from {}: only the host may arm or disarm, through the control socket",
                    self.procs[proc].describe()
                );
            }
            other => {
                let p = &self.procs[proc];
                tracing::warn!(
                    "{} sent a frame only the governor may send ({}); dropping it",
                    p.describe(),
                    frame_name(&other)
                );
                self.drop_peer(proc, "it broke the protocol");
            }
        }
    }

    fn on_request(&mut self, proc: ProcIdx, req: ReqId, body: Request) {
        if self.shutdown.is_some() {
            if let Request::Spawn { .. } | Request::StartTree { .. } = body {
                let info = ErrorInfo::new(ErrorKind::ShuttingDown, "rebeam is shutting down");
                return self.respond(proc, req, Response::Refused(info));
            }
        }
        match body {
            // `handle` turns every call and cast into a routed frame before it gets here.
            Request::Call { .. } | Request::Cast { .. } => {
                if let Ok(hot) = Routed::from_frame(Frame::Request { req, body }) {
                    self.on_hot(proc, hot, Vec::new());
                }
            }
            Request::Spawn { child } => {
                if !self.spawn_elsewhere(proc, req, &child) {
                    self.spawn_unsupervised(proc, req, *child);
                }
            }
            Request::StartTree { spec } => {
                if self.procs[proc].role != Role::Main {
                    let info = ErrorInfo::new(
                        ErrorKind::BadRequest,
                        "supervision trees are started from the main process (build the Supervisor in your script, or nest it in a tree)",
                    );
                    return self.respond(proc, req, Response::Refused(info));
                }
                self.start_top_level_tree(proc, req, spec);
            }
            Request::StopTree { tree } => {
                // Trees started by the main process are its to stop, top-level ones only: a
                // nested tree is its supervisor's.
                let body = if self.procs[proc].role != Role::Main || !self.trees.roots().contains(&tree) {
                    let info = ErrorInfo::new(
                        ErrorKind::BadRequest,
                        format!("no top-level supervision tree {tree} is running for the main process to stop"),
                    );
                    Response::Refused(info)
                } else {
                    self.stop_tree(tree);
                    Response::Done
                };
                self.respond(proc, req, body);
            }
            Request::Whereis { name } => {
                if self.whereis_elsewhere(proc, req, &name) {
                    return;
                }
                let body = match self.names.resolve(&name) {
                    Some(Named::Actor(id)) => Response::Whereis(Some(ActorRef { id, name: Some(name) })),
                    Some(Named::Group(group)) => Response::Group(
                        group.members().iter().map(|m| m.map(|id| ActorRef { id, name: None })).collect(),
                    ),
                    None => Response::Whereis(None),
                };
                self.respond(proc, req, body);
            }
            Request::Monitor { watcher, target } => {
                let result = self.monitor(proc, watcher, &target);
                self.respond(proc, req, Response::Monitored(result));
            }
            Request::Demonitor { monitor } => {
                self.monitors.remove(&monitor);
                self.forget_watch(monitor);
                self.respond(proc, req, Response::Done);
            }
            Request::Subscribe { actor, pattern, throttle_ms, queue } => {
                let result = self.subscribe(proc, actor, &pattern, throttle_ms, queue);
                self.respond(proc, req, Response::Subscribed(result));
            }
            Request::Unsubscribe { subscription } => {
                self.bus.unsubscribe(subscription);
                self.respond(proc, req, Response::Done);
            }
            Request::Publish { topic, payload } => {
                // A host program as the main process (`rebeam serve --host`) owns every topic.
                let host = proc == self.main && matches!(self.config.program, Program::Library { host: true, .. });
                let published =
                    if host { self.publish_from_host(&topic, payload) } else { self.publish(&topic, payload) };
                let body = match published {
                    Ok(()) => Response::Done,
                    Err(info) => Response::Refused(info),
                };
                self.respond(proc, req, body);
            }
            Request::Schedule { behaviour, cowns, result, code, at_main, gated, quiet } => {
                let how = crate::boc::How { at_main, gated };
                match self.schedule(proc, behaviour, cowns, result, code, how) {
                    Ok(()) if quiet => {}
                    Ok(()) => self.respond(proc, req, Response::Done),
                    Err(info) => self.respond(proc, req, Response::Refused(info)),
                }
            }
            Request::Quiesce { timeout_ms } => self.quiesce(proc, req, timeout_ms),
            Request::SendTagged { tag, payload } => {
                let body = match self.send_tagged(tag, payload) {
                    Ok(()) => Response::Done,
                    Err(info) => Response::Refused(info),
                };
                self.respond(proc, req, body);
            }
            Request::Receive { tags, timeout_ms } => self.receive_tagged(proc, req, tags, timeout_ms),
            Request::Drain { tags } => {
                self.drain_tagged(&tags);
                self.respond(proc, req, Response::Done);
            }
            Request::SetTags { tags } => {
                let body = self.set_tags(tags).map_or_else(Response::Refused, |()| Response::Done);
                self.respond(proc, req, body);
            }
            Request::NoticeSeed { key, payload } => {
                let body = self.notice_seed(&key, payload);
                self.respond(proc, req, body);
            }
            Request::NoticeUpdate { key, expected, payload } => {
                let body = self.notice_update(&key, expected, payload);
                self.respond(proc, req, body);
            }
            Request::BocStats => {
                let body = Response::BocStats(self.boc_stats());
                self.respond(proc, req, body);
            }
            Request::Notices { clear } => {
                let body = self.notices_snapshot(clear);
                self.respond(proc, req, body);
            }
            Request::Route { target } => self.route(proc, req, target.as_target_ref()),
            Request::Nodes => self.respond(proc, req, Response::Nodes(self.nodes_up())),
            Request::Shutdown { code } => {
                self.respond(proc, req, Response::Done);
                let who = self.procs[proc].describe();
                self.begin_shutdown(code, &format!("rebeam.shutdown({code}) called in the {who}"));
            }
        }
    }

    fn on_event(&mut self, proc: ProcIdx, event: Event) {
        match event {
            Event::Replied { delivery, outcome } => {
                let crashed = matches!(&outcome, Outcome::Failed(info) if info.kind == ErrorKind::Crashed);
                self.replied(delivery, crashed, Vec::new(), |req| Frame::Response {
                    req,
                    body: Response::Call(outcome),
                });
            }
            Event::Started { actor, result } => self.on_started(actor, result),
            Event::Exited { actor, reason, taken_up_to } => {
                if self.actors.proc_of(actor) == Some(proc) {
                    self.actor_exited(actor, proc, reason, taken_up_to);
                }
            }
            Event::CownCreated { cown, pinned } => self.cown_created(proc, cown, pinned),
            Event::CownValue { cown, payload } => self.cown_value(cown, payload),
            Event::BehaviourDone { behaviour } => self.behaviour_done(proc, behaviour),
            Event::Notice { key, payload } => self.notice(proc, &key, payload),
            Event::SysPath { paths } => self.sys_path(proc, paths),
            Event::DefineCode { id, code } => self.define_code(proc, id, code),
            Event::DropCowns { cowns } => self.drop_cowns(proc, &cowns),
            Event::ReleaseCowns { cowns } => self.release_cowns(proc, &cowns),
            Event::KeepCowns { cowns } => self.keep_cowns(&cowns),
            Event::DirectDeliveries { counts } => {
                // Only for actors that process hosts: a peer cannot inflate another's counts.
                for (id, n) in counts {
                    if self.actors.proc_of(id) == Some(proc) {
                        if let Some(a) = self.actors.get_mut(&id) {
                            a.delivered = a.delivered.saturating_add(n);
                        }
                    }
                }
            }
            Event::BodyDone { error, exit } => {
                self.body_done = true;
                match error {
                    // sys.exit(code): the program ends now, as `python main.py` would.
                    None if exit.is_some() => {
                        let code = exit.unwrap_or_default();
                        self.program_ended(code, &format!("the script exited with status {code}"));
                    }
                    Some(info) => {
                        tracing::debug!("the script ended with {info}");
                        self.program_ended(1, "the script raised an exception");
                    }
                    None if self.trees.roots().is_empty() => {
                        let code = if self.trees.root_failed() { 1 } else { 0 };
                        self.program_ended(code, "the script finished");
                    }
                    None => tracing::debug!("the script body finished; the supervision tree keeps running"),
                }
            }
        }
    }

    fn on_control(&mut self, request: ControlRequest) -> ControlResponse {
        use rebeam_core::safety::SafetyCommand;
        let command = match request {
            ControlRequest::Arm => SafetyCommand::Arm,
            ControlRequest::Disarm => SafetyCommand::Disarm,
            ControlRequest::ForceDisarm => SafetyCommand::ForceDisarm,
            ControlRequest::Status => {
                return ControlResponse::Status { state: self.safety_state(), report: self.status_report() };
            }
        };
        if let Some(message) = (command == SafetyCommand::Arm).then(|| self.arm_refusal()).flatten() {
            let kind = rebeam_proto::RefusalKind::SafetyState;
            return ControlResponse::Refused(rebeam_proto::ControlRefusal { kind, message });
        }
        match self.safety_command(command) {
            Ok(transitions) => ControlResponse::Safety { state: self.safety_state(), transitions },
            Err(message) => ControlResponse::Refused(rebeam_proto::ControlRefusal {
                kind: rebeam_proto::RefusalKind::SafetyState,
                message,
            }),
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    pub fn body_done(&self) -> bool {
        self.body_done
    }
}

fn frame_name(frame: &Frame) -> &'static str {
    match frame {
        Frame::Hello { .. } => "Hello",
        Frame::Welcome { .. } => "Welcome",
        Frame::Ready => "Ready",
        Frame::Request { .. } => "Request",
        Frame::Response { .. } => "Response",
        Frame::Command(_) => "Command",
        Frame::Event(_) => "Event",
        Frame::Control(_) => "Control",
        Frame::ControlReply(_) => "ControlReply",
    }
}
