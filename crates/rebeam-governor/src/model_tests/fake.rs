//! The fake OS and the fake processes of the model test.
//!
//! SAFETY: the test runs as root on a shared machine. The fake OS only records what the router
//! asks for; nothing here calls into the kernel (the real `kill`/`killpg` are private to
//! `process.rs` and reached only through `RealOs`). As a second guard every fake pid is above
//! any possible `pid_max`, so even a real signal to one would find no process. The one
//! exception is a channel, when a directed test asks for real ones (`World::channels`): shared
//! memory and doorbells of the test's own, watching the test process itself, never a fake pid.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rebeam_proto::{
    decode_body, ActorId, Command as Cmd, DeliveryId, Frame, ReqId, Response, Role, Safety, HEADER_BYTES,
};

use crate::process::Os;
use crate::router::Input;

/// Fake pids start here: above `PID_MAX_LIMIT` (2^22), so no real process can have one.
pub const FAKE_PID_BASE: u32 = 0x3fff_0000;
/// The library-mode main process: the governor's "parent", never spawned by it.
pub const LIBRARY_PARENT: u32 = FAKE_PID_BASE + 0xfff0;

/// Everything the router asked of the outside world, for the harness to act on.
#[derive(Default)]
pub struct World {
    pub spawned: u32,
    /// (pid, signal, whole group), in the order the router sent them; drained by the harness.
    pub signals: Vec<(u32, i32, bool)>,
    /// Timers the router set (after how long), not yet collected by the harness.
    pub timers: Vec<(Duration, Input)>,
    /// Fail the next spawn (a machine out of processes).
    pub fail_next_spawn: bool,
    /// The virtual clock: milliseconds since `epoch`, moved on by the harness.
    pub now_ms: u64,
    pub epoch: Option<Instant>,
    /// Make real channels (both ends watch this test process); else opening one fails.
    pub channels: bool,
    /// Channels opened so far.
    pub channels_opened: u32,
    /// Give the router a zygote (see zygote.rs); the zygotes' ends of their sockets, in order.
    pub zygote: bool,
    pub zygotes: Vec<std::os::unix::net::UnixStream>,
}

#[derive(Clone, Default)]
pub struct FakeOs(pub Arc<Mutex<World>>);

impl FakeOs {
    pub fn world(&self) -> MutexGuard<'_, World> {
        // A panic in the router under test poisons nothing we care about.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Os for FakeOs {
    fn spawn(&self, _cmd: Command) -> io::Result<u32> {
        let mut w = self.world();
        if std::mem::take(&mut w.fail_next_spawn) {
            return Err(io::Error::other("fake spawn failure"));
        }
        w.spawned += 1;
        Ok(FAKE_PID_BASE + w.spawned)
    }

    fn kill(&self, pid: u32, sig: i32) {
        self.world().signals.push((pid, sig, false));
    }

    fn kill_group(&self, pgid: u32, sig: i32) {
        self.world().signals.push((pgid, sig, true));
    }

    fn after(&self, delay: Duration, input: Input) {
        self.world().timers.push((delay, input));
    }

    fn now(&self) -> Instant {
        let mut w = self.world();
        let epoch = *w.epoch.get_or_insert_with(Instant::now);
        epoch + Duration::from_millis(w.now_ms)
    }

    fn open_channel(&self, _a: u32, _b: u32) -> io::Result<(crate::channels::EndFds, crate::channels::EndFds)> {
        let mut w = self.world();
        if !w.channels {
            return Err(io::Error::other("the model has no shared memory"));
        }
        w.channels_opened += 1;
        let me = std::process::id();
        crate::channels::create(me, me, crate::channels::MIN_RING_BYTES)
    }

    fn start_zygote(&self, _cmd: Command, generation: u32) -> io::Result<Option<crate::zygote::Zygote>> {
        let mut w = self.world();
        if !w.zygote {
            return Ok(None);
        }
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        w.spawned += 1;
        w.zygotes.push(theirs);
        Ok(Some(crate::zygote::Zygote::new(FAKE_PID_BASE + w.spawned, generation, ours)))
    }
}

/// Ids the harness has learnt, to address requests to things that exist (or did).
#[derive(Default)]
pub struct Known {
    pub actors: Vec<ActorId>,
    pub trees: Vec<u64>,
    pub monitors: Vec<u64>,
    pub subs: Vec<u64>,
    pub cowns: Vec<u64>,
    pub behaviours: Vec<u64>,
    pub deliveries: Vec<DeliveryId>,
    pub next_id: u64,
    /// Actors alive in the router and their names, refreshed after every input (the
    /// generator may peek at the router: requests should mostly reach something).
    pub live_actors: Vec<ActorId>,
    pub live_names: Vec<String>,
    pub live_roots: Vec<u64>,
    /// Every tree in the router (top-level, nested, starting, stopping).
    pub live_trees: Vec<u64>,
    /// The router's id counter: the ids it hands out next (a new tree's among them).
    pub next_router_id: u64,
    /// How often each kind of frame reached a fake process: the run's coverage.
    pub seen: BTreeMap<String, u64>,
}

impl Known {
    /// Ids the fake processes choose (cowns, behaviours): far from the governor's own.
    pub fn fresh(&mut self) -> u64 {
        self.next_id += 1;
        1_000_000 + self.next_id
    }
}

/// One fake Python process: what it was told and still owes the governor.
pub struct Fake {
    pub pid: u32,
    pub role: Role,
    pub token: String,
    pub conn: Option<crate::outbox::Drain>,
    pub hello_refused: u32,
    pub ready: bool,
    /// Its connection is closed (an `Input::Lost` was delivered or queued): it sends nothing more.
    pub closed: bool,
    /// It was killed or exited: it sends nothing more, and is reaped once.
    pub gone: bool,
    pub body_done: bool,
    pub next_req: ReqId,
    /// Requests sent and not answered yet.
    pub outstanding: HashSet<ReqId>,
    /// Quiet schedules sent: answered only if refused, and then once.
    pub quiet: HashSet<ReqId>,
    /// Calls not answered yet, with the virtual time (ms) their caller gives up at.
    pub calls_due: HashMap<ReqId, u64>,
    /// Checks of the answers to some requests (a refusal that must come).
    pub expect: HashMap<ReqId, fn(&Response) -> bool>,
    /// It reads nothing until this virtual time (ms): a worker stuck in a long computation.
    pub stalled_until: u64,
    pub stalled: bool,
    pub starts: Vec<ActorId>,
    pub hosted: Vec<ActorId>,
    pub calls: Vec<(DeliveryId, ActorId)>,
    /// The highest delivery id it has taken in, which a crash's `Exited` reports.
    pub taken: DeliveryId,
    pub stops: Vec<ActorId>,
    pub surrenders: Vec<u64>,
    /// Behaviours it was asked to run.
    pub runs: Vec<u64>,
    pub shutdown_asked: bool,
    /// The safety state it was last told.
    pub safety: Option<Safety>,
}

impl Fake {
    pub fn new(pid: u32, role: Role, token: String) -> Fake {
        Fake {
            pid,
            role,
            token,
            conn: None,
            hello_refused: 0,
            ready: false,
            closed: false,
            gone: false,
            body_done: false,
            next_req: 0,
            outstanding: HashSet::new(),
            quiet: HashSet::new(),
            calls_due: HashMap::new(),
            expect: HashMap::new(),
            stalled_until: 0,
            stalled: false,
            starts: Vec::new(),
            hosted: Vec::new(),
            calls: Vec::new(),
            taken: 0,
            stops: Vec::new(),
            surrenders: Vec::new(),
            runs: Vec::new(),
            shutdown_asked: false,
            safety: None,
        }
    }

    /// Can send frames now (a stalled process sends nothing, as it reads nothing).
    pub fn talking(&self) -> bool {
        self.conn.is_some() && !self.closed && !self.gone && !self.stalled
    }

    pub fn owes(&self) -> bool {
        !(self.starts.is_empty()
            && self.calls.is_empty()
            && self.stops.is_empty()
            && self.surrenders.is_empty()
            && self.runs.is_empty())
    }

    /// Reads every frame the governor sent it. A frame that does not decode, a frame the
    /// governor may not send, or a response to no outstanding request is a violation.
    pub fn read(&mut self, known: &mut Known) -> Result<(), String> {
        if self.stalled {
            return Ok(());
        }
        let Some(rx) = self.conn.as_mut() else { return Ok(()) };
        let mut frames = Vec::new();
        while let Some(encoded) = rx.try_recv() {
            let bytes = encoded.to_vec();
            let len = bytes.get(..HEADER_BYTES).map(|h| u32::from_le_bytes(h.try_into().expect("4 bytes")));
            if len != Some((bytes.len() - HEADER_BYTES) as u32) {
                return Err(format!("a frame to pid {:#x} has a bad length prefix", self.pid));
            }
            frames.push(decode_body(&bytes[HEADER_BYTES..]).map_err(|e| format!("undecodable frame: {e}"))?);
        }
        for frame in frames {
            self.take(frame, known)?;
        }
        Ok(())
    }

    fn take(&mut self, frame: Frame, known: &mut Known) -> Result<(), String> {
        *known.seen.entry(kind(&frame)).or_default() += 1;
        match frame {
            Frame::Welcome { .. } => {}
            Frame::Response { req, body } if self.quiet.contains(&req) => {
                self.quiet.remove(&req);
                if !matches!(body, Response::Refused(_)) {
                    return Err(format!(
                        "pid {:#x}'s quiet schedule {req} was answered although accepted: {body:?}",
                        self.pid
                    ));
                }
            }
            Frame::Response { req, body } => {
                if !self.outstanding.remove(&req) {
                    return Err(format!("pid {:#x} got a response to request {req}, which it never sent or which was already answered: {body:?}", self.pid));
                }
                self.calls_due.remove(&req);
                if self.expect.remove(&req).is_some_and(|ok| !ok(&body)) {
                    return Err(format!("pid {:#x}'s request {req} was answered wrongly: {body:?}", self.pid));
                }
                match body {
                    Response::Spawned(Ok(r)) => known.actors.push(r.id),
                    Response::TreeStarted(Ok(t)) => known.trees.push(t),
                    Response::Monitored(Ok(m)) => known.monitors.push(m),
                    Response::Subscribed(Ok(s)) => known.subs.push(s),
                    _ => {}
                }
            }
            Frame::Command(cmd) => match cmd {
                Cmd::Start { actor, .. } => {
                    known.actors.push(actor);
                    self.starts.push(actor);
                }
                Cmd::Deliver { delivery, actor, .. } => {
                    if let Some(d) = delivery {
                        self.calls.push((d, actor));
                        self.taken = self.taken.max(d);
                        known.deliveries.push(d);
                    }
                }
                Cmd::Stop { actor } => self.stops.push(actor),
                Cmd::Shutdown { .. } => self.shutdown_asked = true,
                Cmd::Surrender { cown } => self.surrenders.push(cown),
                Cmd::RunBehaviour { behaviour, .. } => self.runs.push(behaviour),
                Cmd::Safety { state } => self.safety = Some(state),
                Cmd::Preload
                | Cmd::Down { .. }
                | Cmd::Cancel { .. }
                | Cmd::CancelBehaviour { .. }
                | Cmd::Publication { .. }
                | Cmd::SysPath { .. }
                | Cmd::DefineCode { .. }
                | Cmd::ChannelOpened(_)
                | Cmd::ChannelClosed { .. }
                | Cmd::ForgetCowns { .. } => {}
            },
            other => {
                return Err(format!("the governor sent pid {:#x} a frame only a process sends: {other:?}", self.pid))
            }
        }
        Ok(())
    }
}

/// A frame's kind for the coverage counts: `Response::Spawned(Ok)`, `Command::Start`.
fn kind(frame: &Frame) -> String {
    let full = format!("{frame:?}");
    let cut = |s: &str, n: usize| s.split(|c: char| !c.is_alphanumeric()).take(n).collect::<Vec<_>>().join("::");
    match frame {
        Frame::Response { body, .. } => {
            let b = format!("{body:?}");
            let err = b.split_once("kind: ").map(|(_, k)| cut(k, 1));
            format!("Response::{}::{}", cut(&b, 1), err.as_deref().unwrap_or("ok"))
        }
        Frame::Command(c) => format!("Command::{}", cut(&format!("{c:?}"), 1)),
        _ => cut(&full, 1),
    }
}

/// A copy of a timer input, to fire it again.
pub fn again(input: &Input) -> Option<Input> {
    Some(match *input {
        Input::LostGrace(p) => Input::LostGrace(p),
        Input::ReadyDeadline(p) => Input::ReadyDeadline(p),
        Input::StopDeadline(a) => Input::StopDeadline(a),
        Input::ShutdownDeadline => Input::ShutdownDeadline,
        Input::SafetyGrace(d) => Input::SafetyGrace(d),
        Input::KillConfirm(p) => Input::KillConfirm(p),
        Input::BusFlush(s) => Input::BusFlush(s),
        Input::QuiesceDeadline(t) => Input::QuiesceDeadline(t),
        Input::ReceiveDeadline(t) => Input::ReceiveDeadline(t),
        Input::TreeRestart(t) => Input::TreeRestart(t),
        Input::SparesHold => Input::SparesHold,
        _ => return None,
    })
}

pub fn describe(input: &Input) -> String {
    match input {
        Input::Hello(h) => format!("Hello(role {:?}, pid {:#x}, version {})", h.role, h.pid, h.version),
        Input::Frame(p, f) => format!("Frame({p}, {f:?})"),
        Input::Hot(p, h) => format!("Hot({p}, {:?})", h.clone().into_frame()),
        Input::Lent(p, h, fds) => format!("Lent({p}, {:?}, {} fds)", h.clone().into_frame(), fds.len()),
        Input::Lost(p, e) => format!("Lost({p}, {e})"),
        Input::Reaped(pid, exit) => format!("Reaped({pid:#x}, {exit})"),
        Input::LostGrace(p) => format!("LostGrace({p})"),
        Input::ReadyDeadline(p) => format!("ReadyDeadline({p})"),
        Input::StopDeadline(a) => format!("StopDeadline({a})"),
        Input::ShutdownDeadline => "ShutdownDeadline".into(),
        Input::Sweep => "Sweep".into(),
        Input::Control(r, _, _) => format!("Control({r:?})"),
        Input::SafetyGrace(d) => format!("SafetyGrace({d})"),
        Input::KillConfirm(p) => format!("KillConfirm({p})"),
        Input::BusFlush(s) => format!("BusFlush({s})"),
        Input::ParentGone => "ParentGone".into(),
        Input::QuiesceDeadline(t) => format!("QuiesceDeadline({t})"),
        Input::ReceiveDeadline(t) => format!("ReceiveDeadline({t})"),
        Input::TreeRestart(t) => format!("TreeRestart({t})"),
        Input::SparesHold => "SparesHold".into(),
        Input::Node(n) => format!("Node({n:?})"),
        Input::Zygote(g, e) => format!("Zygote({g}, {e:?})"),
    }
}
