//! Who reads a channel's incoming ring, and when: a caller waiting for its reply, else the
//! channel's thread.
//!
//! The rules:
//! - **One reader at a time.** Whoever holds a link's `receiver` lock reads the ring. It takes
//!   every ready record in ring order and handles it as any reader does (`Direct::received`:
//!   a reply to the waiter of its request, a delivery into the command queue behind those
//!   queued before), and releases each record only once handled, so a drained ring still
//!   means every record is in the queue (the order rules of the `direct` module hold whoever
//!   reads). Only the holder sleeps on the ring's doorbell, so the ring's one "going to sleep"
//!   flag is true of the only sleeper.
//! - **A caller reads its own reply.** A thread waiting for the reply to a call it sent on a
//!   channel takes the lock if it is free, and reads until its reply is in: its reply reaches it
//!   with no other thread woken, and whatever else it finds goes where it always goes. It gives
//!   the lock up as soon as its reply is there, and wakes at least every [`READ_SLICE`] to look
//!   at its own waiter (which the connection's close, or the governor's answer to a call sent
//!   again its way after `NoProcess`, reach without the ring). Once its call is no longer in
//!   flight on the channel, its answer comes some other way: it stops reading and waits for it;
//!   so it does while the link holds records behind a reply that went the governor's way (the
//!   `held` module), which the channel thread reads on into.
//! - **A caller that finds the ring taken** waits on its own waiter, where the holder puts its
//!   reply, and on the ring's turn: whoever lets the lock go while callers wait for it wakes
//!   one of them, so a caller whose reply comes after the holder left reads it at once (no
//!   record waits on a timer).
//! - **The channel thread is the ring's backstop** (`rebeam_shm::backstop`). It never sleeps
//!   holding the ring: it sleeps on the ring's bell (edge-triggered) and its peer, and when
//!   woken reads the ring if nobody else holds it (callers and the idle command thread read
//!   what they find, as it would). Whoever stops reading leaves the ring announced, after
//!   reading what is ready, so the next record rings the bell and wakes the channel thread
//!   (and whoever else sleeps on the ring): no reader hands the ring to another with a signal,
//!   and a record that arrives just after the last reader left is taken at once.
//! - **The idle command thread reads too** (`idle_reader.rs`): marked as the thread on the
//!   ring (so a caller arriving rings it off), it reads as the channel thread would, and
//!   leaves a ring to any caller that comes.
//! - **A reader may spin briefly before it sleeps**, for up to [`SPIN_BUDGET`], and only while
//!   a core is free (`rebeam_shm::idle`): an answer that comes
//!   within it costs no wake-up, and a spin never takes a CPU another thread waits for. The
//!   ring is quiet while its reader spins (`Receiver::quiet`): the answer costs its sender no
//!   ring of the bell either.
//! - **The channel thread leaves casts in the ring** while the process's backlog of
//!   deliveries is over its bound, and sleeps until it falls; calls and answers pass (the
//!   rules are in `backlog.rs`);
//!   a caller reading its own reply reads on regardless, so replies are never held back.
//! - **Failures are the channel thread's.** A caller whose read fails (the peer died, the ring
//!   broke) stops reading and waits on its waiter; the channel thread takes the ring next, meets
//!   the failure, and fails every call in flight on it (`Direct::link_lost`), as before.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{select_biased, unbounded, Receiver as Replies, RecvTimeoutError, Sender, TryRecvError};
use rebeam_proto::{decode_inbound, Command, Frame, ReqId, Response, HEADER_BYTES};
use rebeam_shm::{Backstop, Doorbell, Receiver, ShmError};

use crate::backlog::PEER_LOOK;
use crate::client::{lock, Shared};
use crate::direct::{Link, COUNT_REPORT, PEER_WHY_WAIT};
use crate::ClientError;

/// How long a reader polls its ring before it sleeps on the doorbell, when a core is free: a
/// little over a trivial call's round trip with both sides spinning, so that a call answered
/// at once, or the next request of a caller in a loop, costs no wake-up on either side. By
/// measurement on two cores (an actor calling an actor in another worker, 20,000 calls, quiet
/// machine): p50 92-106 us without a spin; 36-37 us with 50 us spun only while a core is free;
/// 30-35 us spinning regardless (which would take a CPU from runnable threads under load).
pub(crate) const SPIN_BUDGET: Duration = Duration::from_micros(50);
/// How long a reading caller sleeps on the doorbell before it looks at its own waiter.
pub(crate) const READ_SLICE: Duration = Duration::from_millis(50);
/// How often the channel thread looks up from its ring to see whether the connection closed.
const CLOSED_POLL: Duration = Duration::from_millis(500);
/// How often the channel thread looks for the governor's word of why a peer died.
const PEER_WHY_POLL: Duration = Duration::from_millis(1);

/// Takes every record ready on the ring and handles it; with `bounded`, only while the
/// process's backlog is within its bound, or the record passes it (the channel thread's
/// reading: see `backlog.rs`). True if it left a record in the ring at the bound.
pub(crate) fn take_ready(
    shared: &Shared,
    link: &Arc<Link>,
    receiver: &mut Receiver,
    bounded: bool,
) -> Result<bool, ShmError> {
    loop {
        let Some(record) = receiver.try_recv()? else { return Ok(false) };
        let frame = record
            .get(HEADER_BYTES..)
            .map(Bytes::copy_from_slice)
            .and_then(|body| decode_inbound(body).ok())
            .map(rebeam_proto::Inbound::into_frame);
        if bounded && shared.backlog.over() && !passes_bound(&shared.backlog, frame.as_ref()) {
            record.unread();
            return Ok(true);
        }
        if let Some(frame) = frame {
            // Held behind a reply that went the governor's way, it is kept, in order (`held.rs`).
            shared.direct.read(shared, link, frame);
        }
        // Released only now: a drained ring means every record is in the queue.
        drop(record);
    }
}

/// Whether a record is taken past the delivery bound: an answer, or a call within
/// [`CALL_BOUND`](crate::backlog::CALL_BOUND) (see `backlog.rs`); one that does not decode is
/// dropped anyway.
fn passes_bound(backlog: &crate::backlog::Backlog, frame: Option<&Frame>) -> bool {
    match frame {
        Some(Frame::Command(Command::Deliver { delivery: Some(_), .. })) => !backlog.calls_over(),
        Some(Frame::Command(_)) => false,
        Some(_) | None => true,
    }
}

/// Whether the ring's peer is gone.
fn peer_gone(link: &Link) -> bool {
    link.turns.peer.as_ref().is_some_and(rebeam_shm::PeerWatch::gone)
}

pub(crate) fn try_lock<T>(m: &std::sync::Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        // As `lock`: a panic elsewhere leaves the ring as consistent as any reader leaves it.
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Who may read a link's ring, beside its `receiver` lock (see the module rules).
pub(crate) struct Turns {
    /// Callers waiting for a reply on this channel now (and the idle command thread).
    pub(crate) readers: AtomicUsize,
    /// The channel thread (or the idle command thread) holds the lock, asleep on the doorbell
    /// or about to be.
    pub(crate) thread_reads: AtomicBool,
    /// The ring's doorbell, rung by a caller to wake the idle command thread off the ring.
    bell: Option<Doorbell>,
    /// Where the channel thread sleeps behind whoever reads (None without fds for it: the
    /// channel is then given up at once, and its messages go the governor's way).
    pub(crate) backstop: Option<Backstop>,
    /// A watch on the peer (None without an fd for it: its death is met on the ring instead).
    peer: Option<rebeam_shm::PeerWatch>,
    /// Callers waiting for the lock, and where whoever lets it go wakes one of them.
    pub(crate) lock_waiters: AtomicUsize,
    pub(crate) freed: (Sender<()>, Replies<()>),
}

impl Turns {
    pub(crate) fn new(receiver: &Receiver) -> Turns {
        Turns {
            readers: AtomicUsize::new(0),
            thread_reads: AtomicBool::new(false),
            // Without a second handle on it (no fd to spare), a caller arriving waits for the
            // thread's next wake-up: a record, or CLOSED_POLL.
            bell: receiver.bell().ok(),
            backstop: receiver.backstop().ok(),
            peer: receiver.peer().try_clone().ok(),
            lock_waiters: AtomicUsize::new(0),
            freed: unbounded(),
        }
    }

    /// Whoever lets go of the lock calls this: a caller waiting for it takes it.
    pub(crate) fn let_go(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.lock_waiters.load(Ordering::SeqCst) > 0 {
            let _ = self.freed.0.send(());
        }
    }
}

/// Counts a caller among the link's readers for as long as it lives (the idle command thread
/// leaves the ring to it).
pub(crate) struct Registered<'a>(&'a Turns);

impl<'a> Registered<'a> {
    pub(crate) fn new(turns: &'a Turns) -> Registered<'a> {
        turns.readers.fetch_add(1, Ordering::SeqCst);
        if turns.thread_reads.load(Ordering::SeqCst) {
            if let Some(bell) = &turns.bell {
                let _ = bell.ring();
            }
        }
        Registered(turns)
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.readers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Lets go of the ring, leaving it to the channel thread's backstop (see the module rules):
/// what is ready is read first (with `bounded`, as `take_ready` reads at the bound; a record
/// left at the bound wakes the channel thread, which waits for the backlog to fall). True if
/// it left a record at the bound.
pub(crate) fn leave(shared: &Shared, link: &Arc<Link>, mut receiver: MutexGuard<'_, Receiver>, bounded: bool) -> bool {
    let mut left_records = false;
    // A failed read is left to the channel thread, which meets it next.
    while let Ok(true) = receiver.announce() {
        match take_ready(shared, link, &mut receiver, bounded) {
            Ok(false) => {}
            Ok(true) => {
                left_records = true;
                break;
            }
            Err(_) => break,
        }
    }
    if let Some(backstop) = &link.turns.backstop {
        let _ = backstop.resume();
    }
    drop(receiver);
    link.turns.let_go();
    if let Some(backstop) = &link.turns.backstop {
        let _ = if left_records { backstop.wake() } else { backstop.left() };
    }
    left_records
}

/// A reader that will sleep on the ring itself took it: the channel thread, behind it, is not
/// woken for its records meanwhile (`leave` undoes this).
pub(crate) fn hold(link: &Link) {
    if let Some(backstop) = &link.turns.backstop {
        let _ = backstop.pause();
    }
}

/// What a caller waiting for the ring's lock got.
enum Turn<'a> {
    /// The lock: it reads.
    Got(MutexGuard<'a, Receiver>),
    /// Its reply, put in its waiter by whoever reads.
    Answered(Response),
    /// Neither yet (the lock was let go to another, or the slice passed): it looks again.
    Again,
}

/// The ring's lock for a caller: at once if free, else once whoever holds it lets go, unless
/// its reply comes first or `slice` passes.
fn take_turn<'a>(link: &'a Link, replies: &Replies<Response>, slice: Duration) -> Result<Turn<'a>, ClientError> {
    if let Some(guard) = try_lock(&link.receiver) {
        return Ok(Turn::Got(guard));
    }
    let turns = &link.turns;
    turns.lock_waiters.fetch_add(1, Ordering::SeqCst);
    // Pairs with the fence in `let_go`: either the holder sees a waiter, or this sees the lock free.
    std::sync::atomic::fence(Ordering::SeqCst);
    let got = match try_lock(&link.receiver) {
        Some(guard) => Ok(Turn::Got(guard)),
        None => select_biased! {
            recv(replies) -> r => r.map(Turn::Answered).map_err(|_| ClientError::Gone),
            recv(turns.freed.1) -> _ => Ok(Turn::Again),
            default(slice) => Ok(Turn::Again),
        },
    };
    turns.lock_waiters.fetch_sub(1, Ordering::SeqCst);
    got
}

/// Waits up to `timeout` (None: for ever) for the reply to call `req`, sent on `link`, reading
/// the ring itself when it may (see the module rules).
pub(crate) fn wait_reply(
    shared: &Shared,
    link: &Arc<Link>,
    req: ReqId,
    replies: &Replies<Response>,
    timeout: Option<Duration>,
) -> Result<Response, ClientError> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let registered = Registered::new(&link.turns);
    loop {
        match replies.try_recv() {
            Ok(response) => return Ok(response),
            Err(TryRecvError::Disconnected) => return Err(ClientError::Gone),
            Err(TryRecvError::Empty) => {}
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Err(ClientError::Timeout);
        }
        let slice = left.map_or(READ_SLICE, |l| l.min(READ_SLICE));
        let mut receiver = match take_turn(link, replies, slice)? {
            Turn::Got(receiver) => receiver,
            Turn::Answered(response) => return Ok(response),
            Turn::Again => continue,
        };
        let read = take_ready(shared, link, &mut receiver, false).and_then(|_| {
            if !replies.is_empty() {
                return Ok(true);
            }
            // Held behind a reply that went the governor's way, a reply here waits until it is in
            // (`held.rs`): the channel thread reads on meanwhile.
            if !lock(&link.inflight).contains_key(&req) || link.held.holding() {
                return Ok(false);
            }
            // While it spins for its reply, the reply costs its sender no ring of the bell, and
            // the channel thread behind it is paused only if it sleeps (one system call less).
            receiver.quiet();
            receiver.wait_then(slice, || false, || hold(link)).map(|()| true)
        });
        leave(shared, link, receiver, false);
        match read {
            Ok(true) | Err(ShmError::TimedOut) => {}
            // Not (or no longer) this ring's to answer: the channel thread takes over.
            Ok(false) | Err(_) => {
                drop(registered);
                return wait_plain(replies, deadline);
            }
        }
    }
}

/// Waits for a reply that some other thread hands over.
pub(crate) fn wait_plain(replies: &Replies<Response>, deadline: Option<Instant>) -> Result<Response, ClientError> {
    let got = match deadline {
        Some(d) => replies.recv_deadline(d),
        None => replies.recv().map_err(|_| RecvTimeoutError::Disconnected),
    };
    got.map_err(|e| match e {
        RecvTimeoutError::Timeout => ClientError::Timeout,
        RecvTimeoutError::Disconnected => ClientError::Gone,
    })
}

/// Why the peer died: the governor's words, waited for a moment (see [`PEER_WHY_WAIT`]).
fn peer_why(shared: &Shared, link: &Link) -> String {
    let deadline = Instant::now() + PEER_WHY_WAIT;
    loop {
        if let Some(why) = lock(&link.why).clone() {
            return why;
        }
        if Instant::now() >= deadline || shared.closed.load(Ordering::SeqCst) {
            return format!("its process (pid {}) died", link.peer_pid());
        }
        std::thread::sleep(PEER_WHY_POLL);
    }
}

/// Reads one channel, behind whoever else reads it, until its peer dies or the connection
/// closes (see the module rules).
pub(crate) fn channel_thread(shared: Arc<Shared>, link: Arc<Link>) {
    let why = match &link.turns.backstop {
        Some(backstop) => read_behind(&shared, &link, backstop),
        None => "its channel has no reader (no file descriptor to spare)".to_string(),
    };
    shared.direct.link_lost(&shared, &link, &why);
}

/// The channel thread's reading: why it stopped.
fn read_behind(shared: &Shared, link: &Arc<Link>, backstop: &Backstop) -> String {
    // The last read left a record in the ring at the delivery bound.
    let mut stopped = false;
    loop {
        if shared.closed.load(Ordering::SeqCst) {
            return "the connection to the governor closed".to_string();
        }
        let waiting = shared.direct.report_counts(shared);
        // This thread wakes for a hold's end even while others read the ring (it sleeps on
        // the backstop, not the ring): whoever reads, a hold past its time is let go here.
        shared.direct.expire_holds(shared, link, Some(Instant::now()));
        let poll = if waiting { COUNT_REPORT } else { CLOSED_POLL };
        let timeout = link.held.next_end().map_or(poll, |end| poll.min(end.saturating_duration_since(Instant::now())));
        if stopped && shared.backlog.over() && !peer_gone(link) {
            // A cast stays in the ring (its sender meets a full ring) until the backlog falls.
            shared.backlog.wait_below(PEER_LOOK);
            continue;
        }
        // A dead peer's ring is this thread's to finish: whoever holds it lets go at once,
        // having met the death too.
        let dead = peer_gone(link);
        let held = if dead { Some(lock(&link.receiver)) } else { try_lock(&link.receiver) };
        if let Some(mut receiver) = held {
            receiver.drain_bell();
            // A dead peer's ring is read on whatever the backlog: none can follow its records.
            if let Err(e) = take_ready(shared, link, &mut receiver, !dead) {
                return format!("its channel broke ({e})");
            }
            if dead {
                drop(receiver);
                link.turns.let_go();
                return peer_why(shared, link);
            }
            // Leaving reads on (the ring is announced first), so its word is the last.
            stopped = leave(shared, link, receiver, true);
        }
        match backstop.wait(timeout) {
            Ok(()) | Err(ShmError::TimedOut) => {}
            Err(e) => return format!("its channel broke ({e})"),
        }
    }
}
