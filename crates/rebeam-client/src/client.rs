//! The connection: handshake, writing frames, and matching requests to their responses.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use rebeam_proto::{
    encode, encode_parts, read_frame, Command, DeliveryId, ErrorInfo, Event, Frame, ReqId, Request, Response, Role,
    Routed, Safety, FRAME_OVERHEAD_BYTES, PROTOCOL_VERSION,
};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use crate::backlog::Backlog;
use crate::batch::{Held, Pushed};
use crate::completions::{Completion, Completions, Tag};
use crate::direct::{Direct, Link, Way};
use crate::lent::{self, Lender};
use crate::role::{CommandRole, Commands};
use crate::{reader, reading, ClientError, HANDSHAKE_LIMIT_BYTES};

/// How long the client waits for the governor's answer to a request of its own (a route);
/// without one the message goes the governor's way.
const OWN_REQUEST_WAIT: Duration = Duration::from_secs(5);

/// What the governor told this process in its `Welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Welcome {
    /// This process's index (0 is the main process).
    pub index: u32,
    /// The run's limit on one message's payload.
    pub max_message_bytes: u64,
    /// How many workers the run has (not counting spares).
    pub workers: u32,
}

/// A poisoned lock only means another thread panicked while holding it; the maps it guards stay
/// consistent (each update is one insert or remove), so carry on rather than poison every caller.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks the id of a request sent with [`Client::send_quiet`]: its only answer is a refusal,
/// which needs no entry to be recognised (one per accepted request would never be removed).
const QUIET_REQ: ReqId = 1 << 62;

/// Who a request's response goes to.
pub(crate) enum Waiter {
    /// A thread waiting on a [`PendingResponse`].
    Reply(Sender<Response>),
    /// The completion queue, tagged with the request's id.
    Completion,
}

/// State shared by the callers and the reader thread.
pub(crate) struct Shared {
    pub(crate) writer: Mutex<UnixStream>,
    pub(crate) pending: Mutex<HashMap<ReqId, Waiter>>,
    pub(crate) completions: Completions,
    next_req: AtomicU64,
    pub(crate) closed: AtomicBool,
    /// The safety state as last broadcast by the governor.
    pub(crate) safety: AtomicU8,
    /// Requests sent without a waiter, and the refusals that came back for them.
    pub(crate) unawaited: Mutex<HashSet<ReqId>>,
    pub(crate) refused: Mutex<Vec<ErrorInfo>>,
    /// Commands queued so far (see [`Client::commands_received`]).
    pub(crate) commands_in: AtomicU64,
    /// Calls and casts straight to the actor's process (`direct.rs`).
    pub(crate) direct: Direct,
    /// The segments this process lends large buffers in (`lent.rs`).
    pub(crate) lender: Lender,
    /// Deliveries waiting here to be handled (`backlog.rs`).
    pub(crate) backlog: Arc<Backlog>,
    /// Frames held to go in one write (`held.rs`).
    pub(crate) held: Held,
}

impl Shared {
    fn write(&self, frame: Frame) -> Result<(), ClientError> {
        let encoded = encode_parts(frame).map_err(ClientError::Encode)?;
        encoded.write_to(&mut *self.writer()?).map_err(ClientError::Write)
    }

    /// The writer's lock, the held frames written first (`held.rs`).
    fn writer(&self) -> Result<MutexGuard<'_, UnixStream>, ClientError> {
        let mut writer = lock(&self.writer);
        self.held.write_to(&mut *writer).map_err(ClientError::Write)?;
        Ok(writer)
    }

    /// Writes the held frames now, if any: before a message goes elsewhere than the socket.
    pub(crate) fn flush_held(&self) -> Result<(), ClientError> {
        if self.held.any() {
            drop(self.writer()?);
        }
        Ok(())
    }

    /// Holds `frame` (see `held.rs`), or writes it after the held ones when it is too large to
    /// hold; true when the batch is full and the caller should [`Shared::flush_held`] (the
    /// write a caller holding a lock others wait for, Python's GIL, lets it go for).
    fn hold(&self, frame: Frame, wake: bool) -> Result<bool, ClientError> {
        let encoded = encode_parts(frame).map_err(ClientError::Encode)?;
        match self.held.push(&encoded, wake) {
            Pushed::Held => Ok(false),
            Pushed::Full => Ok(true),
            Pushed::Refused => encoded.write_to(&mut *self.writer()?).map(|()| false).map_err(ClientError::Write),
        }
    }

    /// Hands a response to whoever waits for request `req` (the socket's answers and the
    /// channels' alike).
    pub(crate) fn answer(&self, req: ReqId, body: Response) {
        if let Some(original) = self.lender.answered(req, &body) {
            // A loan the receiver could not map: nothing was delivered, so the call goes again
            // as bytes, under its target resolved afresh (its route was stale).
            self.direct.forget_target(&original);
            if self.write_request(req, original).is_ok() {
                return;
            }
        }
        self.direct.answered(req, &body);
        let waiter = lock(&self.pending).remove(&req);
        match waiter {
            Some(Waiter::Reply(tx)) => {
                let _ = tx.send(body);
            }
            Some(Waiter::Completion) => self.completions.push(Completion { tag: req, result: Ok(body) }),
            None => {
                if req & QUIET_REQ != 0 || lock(&self.unawaited).remove(&req) {
                    if let Response::Refused(info) = body {
                        lock(&self.refused).push(info);
                    }
                }
            }
        }
        // Only now: what its callee sent after a reply that came the governor's way follows it.
        self.direct.arrived(self, req);
    }

    /// Sends request `req` the governor's way.
    /// Writes `frame` only if that cannot block: no other thread is writing, and the socket
    /// polls writable, which a Unix stream socket says only while at most a quarter of its
    /// send buffer is taken (far more room than a small frame needs). Gives it back otherwise.
    fn try_write(&self, frame: Frame) -> Result<Option<Frame>, ClientError> {
        let Ok(mut writer) = self.writer.try_lock() else { return Ok(Some(frame)) };
        let mut fds = [PollFd::new(&*writer, PollFlags::OUT)];
        let now = Timespec { tv_sec: 0, tv_nsec: 0 };
        if !matches!(poll(&mut fds, Some(&now)), Ok(1)) || !fds[0].revents().contains(PollFlags::OUT) {
            return Ok(Some(frame));
        }
        let encoded = encode_parts(frame).map_err(ClientError::Encode)?;
        self.held.write_to(&mut *writer).map_err(ClientError::Write)?;
        encoded.write_to(&mut *writer).map_err(ClientError::Write)?;
        Ok(None)
    }

    pub(crate) fn write_event(&self, event: Event) -> Result<(), ClientError> {
        self.write(Frame::Event(event))
    }

    pub(crate) fn write_request(&self, req: ReqId, body: Request) -> Result<(), ClientError> {
        self.write(Frame::Request { req, body })
    }

    /// Sends request `req` direct if it may go so, else the governor's way, its large buffers
    /// lent if its receiver is known (`lent.rs`); the channel a call's reply will come on, if it
    /// went direct.
    fn send_request(&self, req: ReqId, body: Request) -> Result<Option<Arc<Link>>, ClientError> {
        self.flush_held()?;
        let body = match self.direct.send(self, req, body) {
            Way::Sent(link) => return Ok(link),
            Way::Governor(body) => body,
        };
        let receiver = match &body {
            Request::Call { target, payload, .. } | Request::Cast { target, payload, .. }
                if !payload.buffers.is_empty() =>
            {
                self.direct.peer_of(target)
            }
            _ => None,
        };
        let Some(receiver) = receiver else { return self.write_request(req, body).map(|()| None) };
        let is_call = matches!(body, Request::Call { .. });
        let original = is_call.then(|| body.clone());
        match self.lender.lend(Frame::Request { req, body }, &receiver) {
            Ok(frame) => {
                // Kept until answered: if the receiver cannot map the loan (the actor now lives
                // in another process), the call goes again as bytes (see `lent.rs`).
                if let Some(original) = original {
                    self.lender.lent_call(req, original);
                }
                let written = self.write_lent(frame);
                if written.is_err() {
                    self.lender.forget_call(req);
                }
                written.map(|()| None)
            }
            Err(Frame::Request { body, .. }) => self.write_request(req, body).map(|()| None),
            Err(_) => unreachable!("lend gives back the frame it was given"),
        }
    }

    /// Writes a lent frame, its fds on its first bytes; a failed write takes its loans back.
    fn write_lent(&self, frame: lent::LentFrame) -> Result<(), ClientError> {
        let written = match self.writer() {
            Ok(mut writer) => lent::write(&mut writer, &frame).map_err(ClientError::Write),
            Err(e) => Err(e),
        };
        if written.is_err() {
            self.lender.unsent(frame);
        }
        written
    }

    /// A reply to direct call `req` on `link` too large for its ring: the governor's way, as a
    /// reply naming the channel (the governor answers the call at its other end), its large
    /// buffers lent to that process (`lent.rs`).
    pub(crate) fn reply_the_governors_way(&self, link: &Link, req: ReqId, event: Event) -> Result<(), ClientError> {
        let direct = |routed: Routed| routed.into_direct_reply(link.id, req);
        let mut frame = Frame::Event(event);
        if let Some(receiver) = link.peer_watch() {
            match self.lender.lend_shaped(frame, &receiver, direct) {
                Ok(lent) => return self.write_lent(lent),
                Err(back) => frame = back,
            }
        }
        let routed = Routed::from_frame(frame).map_err(|_| ClientError::Closed)?;
        let encoded = direct(routed).encode().map_err(ClientError::Encode)?;
        encoded.write_to(&mut *self.writer()?).map_err(ClientError::Write)
    }

    /// Sends an event the governor's way: a reply with large buffers lent to its caller's
    /// process when the delivery named one (`lent.rs`).
    fn send_governor_event(&self, event: Event) -> Result<(), ClientError> {
        let Some(receiver) = self.lender.caller_of(&event) else { return self.write_event(event) };
        match self.lender.lend(Frame::Event(event), &receiver) {
            Ok(frame) => self.write_lent(frame),
            Err(frame) => self.write(frame),
        }
    }

    /// A request to the governor and its answer, for the client's own needs (a route); None
    /// if none came in [`OWN_REQUEST_WAIT`].
    pub(crate) fn roundtrip(&self, body: Request) -> Option<Response> {
        let req = self.open().ok()?;
        let (tx, rx) = bounded(1);
        lock(&self.pending).insert(req, Waiter::Reply(tx));
        let got = self.write_request(req, body).ok().and_then(|()| rx.recv_timeout(OWN_REQUEST_WAIT).ok());
        lock(&self.pending).remove(&req);
        got
    }

    fn open(&self) -> Result<ReqId, ClientError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(ClientError::Closed);
        }
        Ok(self.next_req.fetch_add(1, Ordering::Relaxed))
    }
}

/// This process's connection to its governor. Shareable between threads (`&self` everywhere).
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    commands: Receiver<Command>,
    /// Which thread takes the commands (`role.rs`).
    role: Arc<CommandRole>,
    /// A command taken off the queue to end a batch (see [`Client::next_commands`]): the next
    /// one handed out.
    held: Mutex<Option<Command>>,
    /// The command thread, when idle, sleeps on the rings itself (`idle_reader.rs`).
    rings_when_idle: AtomicBool,
    welcome: Welcome,
}

impl Client {
    /// Connects to the governor's socket, introduces this process with its one-time token, and
    /// starts the reader thread.
    pub fn connect(socket: &Path, token: &str, role: Role) -> Result<Client, ClientError> {
        let mut stream = UnixStream::connect(socket)
            .map_err(|e| ClientError::Connect(format!("cannot connect to {}: {e}", socket.display())))?;
        let hello = Frame::Hello { version: PROTOCOL_VERSION, role, token: token.to_owned(), pid: std::process::id() };
        let bytes = encode(&hello).map_err(|e| ClientError::Connect(e.to_string()))?;
        stream.write_all(&bytes).map_err(|e| ClientError::Connect(e.to_string()))?;
        let welcome = match read_frame(&mut stream, HANDSHAKE_LIMIT_BYTES) {
            Ok(Frame::Welcome { index, max_message_bytes, workers }) => Welcome { index, max_message_bytes, workers },
            Ok(other) => {
                return Err(ClientError::Connect(format!("unexpected first frame from the governor: {other:?}")))
            }
            Err(e) => return Err(ClientError::Connect(format!("the governor refused this process ({e})"))),
        };
        let read_half = stream.try_clone().map_err(|e| ClientError::Connect(e.to_string()))?;
        let shared = Arc::new(Shared {
            writer: Mutex::new(stream),
            pending: Mutex::new(HashMap::new()),
            completions: Completions::new(),
            next_req: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            safety: AtomicU8::new(Safety::Disarmed as u8),
            unawaited: Mutex::new(HashSet::new()),
            refused: Mutex::new(Vec::new()),
            commands_in: AtomicU64::new(0),
            direct: Direct::default(),
            lender: Lender::new(),
            backlog: Arc::default(),
            held: Held::default(),
        });
        // Unbounded, as before: the reader must never block on a slow dispatcher, or responses
        // queued behind a command would stall every waiting caller.
        let (tx, commands) = unbounded();
        let role = Arc::new(CommandRole::default());
        let tx = Commands::new(tx, role.clone(), shared.backlog.clone());
        shared.direct.set_commands(tx.clone());
        let for_reader = shared.clone();
        let limit = welcome.max_message_bytes + FRAME_OVERHEAD_BYTES;
        std::thread::Builder::new()
            .name("rebeam-reader".into())
            .spawn(move || reader::run(read_half, for_reader, tx, limit))
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        Ok(Client { shared, commands, role, held: Mutex::new(None), rings_when_idle: AtomicBool::new(false), welcome })
    }

    pub fn welcome(&self) -> Welcome {
        self.welcome
    }

    /// Shared memory for `len` bytes that a call or cast lends as it is, with no copy (see
    /// `lent.rs`); `None` when this process's pool is at its bound or the system has no
    /// memory for a segment.
    pub fn shared_block(&self, len: usize) -> Option<rebeam_shm::Block> {
        self.shared.lender.take(len)
    }

    /// Sends a one-way frame (`Ready`, an event).
    pub fn send(&self, frame: &Frame) -> Result<(), ClientError> {
        self.shared.write(frame.clone())
    }

    /// Sends an event; a reply to a direct call goes back on its channel instead.
    pub fn send_event(&self, event: Event) -> Result<(), ClientError> {
        self.shared.flush_held()?;
        if self.shared.direct.reply(&self.shared, &event) {
            return Ok(());
        }
        self.shared.direct.note_event(&event);
        self.shared.send_governor_event(event)
    }

    /// Sends a small event to the governor now if that cannot block (see `Shared::try_write`),
    /// so that a caller holding a lock others wait for (Python's GIL) need not let it go for
    /// the write; gives it back, unsent, otherwise (send it with [`Client::send_event`]). Only
    /// for events of the governor's alone (`BehaviourDone`, say): not a reply, a start or an
    /// exit, which the direct path must see.
    pub fn try_send_event(&self, event: Event) -> Result<Option<Event>, ClientError> {
        debug_assert!(!matches!(event, Event::Replied { .. } | Event::Started { .. } | Event::Exited { .. }));
        match self.shared.try_write(Frame::Event(event))? {
            None => Ok(None),
            Some(Frame::Event(event)) => Ok(Some(event)),
            Some(_) => unreachable!("try_write gives back the frame it was given"),
        }
    }

    /// Sends a request; wait for its response on the returned handle.
    pub fn start_request(&self, body: Request) -> Result<PendingResponse<'_>, ClientError> {
        let req = self.shared.open()?;
        let (tx, rx) = bounded(1);
        lock(&self.shared.pending).insert(req, Waiter::Reply(tx));
        // Registered before it is written, so even an instant response finds its waiter.
        let mut pending = PendingResponse { shared: &self.shared, req, rx, link: None };
        pending.link = self.shared.send_request(req, body)?;
        Ok(pending)
    }

    /// Sends a cast onto its actor's ring at once if it can go there without waiting (see the
    /// `direct` module's rule "A cast at once"): it is then delivered, as
    /// `Response::Cast { delivered: true }` says on the full path, and None is returned.
    /// Otherwise the request comes back untouched, for [`Client::request`]. Never blocks.
    pub fn try_cast(&self, body: Request) -> Option<Request> {
        if self.closed() || self.shared.held.any() {
            return Some(body); // held frames go first, which may wait for the writer
        }
        self.shared.direct.try_cast(&self.shared, body)
    }

    /// Sends a request and waits for its response, up to `timeout` (None: for ever).
    pub fn request(&self, body: Request, timeout: Option<Duration>) -> Result<Response, ClientError> {
        self.start_request(body)?.wait(timeout)
    }

    /// Sends a request whose response goes to the completion queue under the returned tag
    /// (see [`Client::next_completion`]). If no response comes by `deadline` (None: no
    /// backstop), the completion is [`ClientError::Timeout`]. An `Ok` tag always gets exactly
    /// one completion; an error means none will come.
    pub fn start_completion(&self, body: Request, deadline: Option<Instant>) -> Result<Tag, ClientError> {
        let req = self.shared.open()?;
        // Registered before it is written, so even an instant response finds its entry.
        lock(&self.shared.pending).insert(req, Waiter::Completion);
        let written = self.shared.send_request(req, body).map(drop);
        // The reader may have closed the connection between `open` and the insert; it sets
        // `closed` before it empties the map, so an entry it missed is still there to take
        // back. An entry already gone has had its completion queued (`Gone`, at the close),
        // and the tag must stand so that it is not lost.
        if written.is_err() || self.closed() {
            if lock(&self.shared.pending).remove(&req).is_some() {
                return Err(written.err().unwrap_or(ClientError::Closed));
            }
            return Ok(req);
        }
        if let Some(deadline) = deadline {
            self.shared.completions.add_deadline(req, deadline);
        }
        Ok(req)
    }

    /// The oldest completion, waiting up to `timeout` (None: until there is one).
    /// [`ClientError::Timeout`] if none came in time; [`ClientError::Closed`] once the
    /// connection is closed and every completion has been taken (none will come again).
    pub fn next_completion(&self, timeout: Option<Duration>) -> Result<Completion, ClientError> {
        // Where a command thread reads the rings when idle, they are its (`completion_reader.rs`).
        let reads = !self.rings_when_idle.load(Ordering::Relaxed);
        self.shared.completions.next(&self.shared.pending, timeout, |until| {
            // With no completion outstanding, a caller here would only have to ring it off.
            if reads && lock(&self.shared.pending).values().any(|w| matches!(w, Waiter::Completion)) {
                crate::completion_reader::read_until_completed(&self.shared, until);
            }
        })
    }

    /// Forgets a request started with a completion: none is queued for it from now on (a late
    /// response is dropped). False if its completion was already queued (or the tag is unknown).
    pub fn forget(&self, tag: Tag) -> bool {
        let mut pending = lock(&self.shared.pending);
        if matches!(pending.get(&tag), Some(Waiter::Completion)) {
            pending.remove(&tag);
            return true;
        }
        false
    }

    /// Sends a request without waiting: a refusal is kept for [`Client::take_refused`].
    pub fn send_unawaited(&self, body: Request) -> Result<(), ClientError> {
        let req = self.shared.open()?;
        lock(&self.shared.unawaited).insert(req);
        self.shared.send_request(req, body).map(drop)
    }

    /// Sends a request the governor answers only if it refuses it (`Request::Schedule` with
    /// `quiet`): nothing is kept for it, and a refusal is kept for [`Client::take_refused`].
    pub fn send_quiet(&self, body: Request) -> Result<(), ClientError> {
        let req = self.shared.open()? | QUIET_REQ;
        self.shared.send_request(req, body).map(drop)
    }

    /// As [`Client::send_quiet`], but the request is held to go with the frames after it (the
    /// rules are in the `held` module); true when the batch is full: call
    /// [`Client::flush_held`] then. A request larger than [`HELD_FRAME_MAX_BYTES`] is written
    /// at once.
    ///
    /// [`HELD_FRAME_MAX_BYTES`]: crate::HELD_FRAME_MAX_BYTES
    pub fn hold_request(&self, body: Request) -> Result<bool, ClientError> {
        let req = self.shared.open()? | QUIET_REQ;
        self.shared.hold(Frame::Request { req, body }, true)
    }

    /// Sends an event of the governor's alone (as [`Client::try_send_event`] says), held to go
    /// with the frames after it (the `held` module); true when the batch is full, as for
    /// [`Client::hold_request`].
    pub fn hold_event(&self, event: Event) -> Result<bool, ClientError> {
        debug_assert!(!matches!(event, Event::Replied { .. } | Event::Started { .. } | Event::Exited { .. }));
        if self.closed() {
            return Err(ClientError::Closed);
        }
        self.shared.hold(Frame::Event(event), true)
    }

    /// As [`Client::hold_event`], without waking the flusher: for a holder that calls
    /// [`Client::flush_held`] itself when its burst ends (see the `batch` module).
    pub fn hold_event_unwoken(&self, event: Event) -> Result<bool, ClientError> {
        if self.closed() {
            return Err(ClientError::Closed);
        }
        self.shared.hold(Frame::Event(event), false)
    }

    /// Writes the held frames now (the burst that held them is over).
    pub fn flush_held(&self) -> Result<(), ClientError> {
        self.shared.flush_held()
    }

    /// Waits until frames are held, for a thread that flushes them once the burst is over;
    /// false once the connection is closed (no frame will be held again) or `stop` is set
    /// (and [`Client::wake_held`] called).
    pub fn wait_held(&self, stop: &AtomicBool) -> bool {
        self.shared.held.wait(|| self.closed() || stop.load(Ordering::SeqCst))
    }

    /// Wakes a thread in [`Client::wait_held`] to look at its `stop` again.
    pub fn wake_held(&self) {
        self.shared.held.wake();
    }

    /// The refusals of unawaited requests since the last call, oldest first.
    pub fn take_refused(&self) -> Vec<ErrorInfo> {
        std::mem::take(&mut *lock(&self.shared.refused))
    }

    /// A direct call's delivery (`LOCAL_DELIVERY` set) reached its actor's mailbox, alive: if
    /// the actor ends before it answers, the caller gets `ActorDown`. One Python never took
    /// into a mailbox is Python's to answer (`NoProcess`, the actor being gone); see `direct`.
    pub fn took(&self, delivery: DeliveryId) {
        self.shared.direct.taken(delivery);
    }

    /// The next command, or None after `timeout` (None: wait for ever). Once the connection is
    /// closed and the queue drained, always `Command::Shutdown { code: -1 }`.
    pub fn next_command(&self, timeout: Option<Duration>) -> Option<Command> {
        if let Some(command) = lock(&self.held).take() {
            self.handed_out(&command);
            return Some(command);
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        if self.rings_when_idle.load(Ordering::Relaxed) && self.commands.is_empty() {
            crate::idle_reader::read_until_queued(&self.shared, &self.role, &self.commands, || self.queued(), deadline);
        }
        let got = match deadline {
            Some(d) => self.commands.recv_deadline(d).ok(),
            None => self.commands.recv().ok(),
        };
        if let Some(command) = &got {
            self.handed_out(command);
        }
        match got {
            None if self.closed() && self.commands.is_empty() => Some(Command::Shutdown { code: -1 }),
            got => got,
        }
    }

    /// The next commands: the first as [`Client::next_command`] gives it, then, without
    /// waiting, the casts and behaviours queued right behind it, up to `max` in all, so that a
    /// burst of casts or of behaviours costs its consumer one wake-up. A batch ends before
    /// anything else (that is held for the next call), so a call only ever heads a batch (a
    /// direct one ends with its actor once Python puts it in the mailbox: [`Client::took`]).
    pub fn next_commands(&self, timeout: Option<Duration>, max: usize) -> Vec<Command> {
        let Some(first) = self.next_command(timeout) else { return Vec::new() };
        let mut batch = vec![first];
        while batch.len() < max {
            match self.commands.try_recv() {
                Ok(cmd @ (Command::Deliver { delivery: None, .. } | Command::RunBehaviour { .. })) => {
                    self.handed_out(&cmd);
                    batch.push(cmd);
                }
                Ok(other) => {
                    // Handed out when `next_command` takes it from `held`.
                    *lock(&self.held) = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        batch
    }

    fn handed_out(&self, command: &Command) {
        if matches!(command, Command::Deliver { .. }) {
            self.shared.backlog.handed_out(1);
        }
    }

    /// From now on the thread waiting in [`Client::next_command`] for a command sleeps on this
    /// process's rings itself, and reads them, while it would otherwise wait on an empty queue,
    /// so a message for an idle actor wakes only the thread that takes it (the rules are in
    /// the `idle_reader` module). For a consumer whose command thread runs what it takes.
    pub fn read_rings_when_idle(&self) {
        self.rings_when_idle.store(true, Ordering::Relaxed);
    }

    /// From now on a delivery taken off the command queue still counts against
    /// [`DELIVERY_BOUND`](crate::DELIVERY_BOUND) until [`Client::handled`] reports it (for a
    /// consumer that keeps mailboxes of its own: see the `backlog` module).
    pub fn count_handled(&self) {
        self.shared.backlog.count_by_consumer();
    }

    /// The consumer is done with `n` deliveries (handled, refused, or dropped with their actor).
    pub fn handled(&self, n: usize) {
        self.shared.backlog.done(n);
    }

    /// Deliveries waiting in this process now, as the backlog counts them.
    pub fn backlog(&self) -> usize {
        self.shared.backlog.waiting()
    }

    /// Gives up the command role, to run what was taken (see `role.rs`): until [`Client::resume`],
    /// a command that arrives goes to a thread in [`Client::standby`].
    pub fn step_aside(&self) {
        self.role.step_aside(|| self.queued());
    }

    /// Takes the command role back after [`Client::step_aside`]; false if a standby claimed it
    /// meanwhile (this thread may then wait in [`Client::standby`]).
    pub fn resume(&self) -> bool {
        self.role.resume()
    }

    /// Waits, up to `timeout` (None: for ever), until a command arrives while nobody holds the
    /// command role, and claims it: true if it did, and this thread then takes the commands.
    pub fn standby(&self, timeout: Option<Duration>) -> bool {
        self.role.standby(|| self.queued(), timeout)
    }

    /// Whether a command waits to be taken.
    fn queued(&self) -> bool {
        !self.commands.is_empty() || lock(&self.held).is_some()
    }

    /// Writes raw bytes on the socket, bypassing the codec (for tests of a governor's handling of
    /// malformed frames).
    pub fn send_raw(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut writer = lock(&self.shared.writer);
        self.shared.held.write_to(&mut *writer)?;
        writer.write_all(bytes)
    }

    /// The safety state, as last broadcast by the governor.
    pub fn safety(&self) -> Safety {
        match self.shared.safety.load(Ordering::SeqCst) {
            x if x == Safety::Armed as u8 => Safety::Armed,
            x if x == Safety::Disarming as u8 => Safety::Disarming,
            x if x == Safety::Error as u8 => Safety::Error,
            _ => Safety::Disarmed,
        }
    }

    /// Commands queued for [`Client::next_command`] so far. Read after a response, it counts
    /// every command the governor sent before that response (frames arrive in order).
    pub fn commands_received(&self) -> u64 {
        self.shared.commands_in.load(Ordering::SeqCst)
    }

    /// Whether channel `id` is open here: its end arrived (with the answer to a
    /// `Request::Route` that says `fresh`, or with a `Command::ChannelOpened`, both of which
    /// the reader handles before anyone sees them) and its peer has not died.
    pub fn has_channel(&self, id: u64) -> bool {
        self.shared.direct.has_channel(id)
    }

    /// Direct casts dropped because the actor's ring stayed full (see the `direct` module).
    pub fn direct_drops(&self) -> u64 {
        self.shared.direct.drops.load(Ordering::Relaxed)
    }

    /// Direct calls sent and not answered, over every channel (for tests of the bookkeeping).
    #[cfg(test)]
    pub(crate) fn direct_in_flight(&self) -> usize {
        self.shared.direct.in_flight()
    }

    /// Targets with a cached route (for tests of the bookkeeping).
    #[cfg(test)]
    pub(crate) fn direct_routes(&self) -> usize {
        self.shared.direct.routes()
    }

    /// Whether the connection to the governor is gone.
    pub fn closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }
}

/// A request on its way; dropping it forgets the request (a late response is then dropped).
pub struct PendingResponse<'a> {
    shared: &'a Shared,
    req: ReqId,
    rx: Receiver<Response>,
    /// The channel a direct call went on: its reply comes there, and the waiter reads it.
    link: Option<Arc<Link>>,
}

impl PendingResponse<'_> {
    /// Waits up to `timeout` (None: for ever). [`ClientError::Timeout`] leaves the request
    /// pending, so the caller may wait again.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Response, ClientError> {
        if let Some(link) = &self.link {
            return reading::wait_reply(self.shared, link, self.req, &self.rx, timeout);
        }
        reading::wait_plain(&self.rx, timeout.and_then(|t| Instant::now().checked_add(t)))
    }

    /// Waits until `deadline` (None: for ever).
    pub fn wait_until(&self, deadline: Option<Instant>) -> Result<Response, ClientError> {
        self.wait(deadline.map(|d| d.saturating_duration_since(Instant::now())))
    }
}

impl Drop for PendingResponse<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).remove(&self.req);
        // A direct call given up on: its entry on the channel goes too (a late reply is then
        // dropped), or a peer that never answers would keep every such call's request.
        if let Some(link) = &self.link {
            lock(&link.inflight).remove(&self.req);
        }
    }
}
