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
//!   flight on the channel, its answer comes some other way: it stops reading and waits for it.
//! - **A caller that finds the ring taken** waits on its own waiter, where the holder puts its
//!   reply, looking again every [`HANDOFF_POLL`] in case the holder left first.
//! - **The channel thread reads only when no caller does**: while any caller waits on the
//!   channel, or one has read within the last [`PARK`], it stays away and looks again after
//!   `PARK`; so a record arriving when no one reads waits about 2 × `PARK` at most. Otherwise
//!   it sleeps on the doorbell holding the lock, as the only reader; a caller arriving then
//!   gets its reply from the channel thread (one more hand-off), and the thread then steps aside.
//! - **A reader may spin briefly before it sleeps**, for up to [`SPIN_BUDGET`] (zero for now:
//!   see there), and only while a core is free (`rebeam_shm::idle`): an answer that comes
//!   within it costs no wake-up, and a spin never takes a CPU another thread waits for.
//! - **Failures are the channel thread's.** A caller whose read fails (the peer died, the ring
//!   broke) stops reading and waits on its waiter; the channel thread takes the ring next, meets
//!   the failure, and fails every call in flight on it (`Direct::link_lost`), as before.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver as Replies, RecvTimeoutError, TryRecvError};
use rebeam_proto::{decode_inbound, ReqId, Response, HEADER_BYTES};
use rebeam_shm::{Receiver, ShmError};

use crate::client::{lock, Shared};
use crate::direct::{Link, COUNT_REPORT, PEER_WHY_WAIT};
use crate::ClientError;

/// How long a reader polls its ring before it sleeps on the doorbell, when a core is free.
/// Zero, by measurement: on a two-core machine with caller and callee both busy a core is
/// seldom free, and asking (a read of the kernel's runnable count before each sleep) cost more
/// than the spins saved (call p50 49 -> 54 us against the same build without it). A machine
/// with idle cores can try a budget of about a trivial call's round trip (tens of µs).
pub(crate) const SPIN_BUDGET: Duration = Duration::ZERO;
/// How long a reading caller sleeps on the doorbell before it looks at its own waiter.
pub(crate) const READ_SLICE: Duration = Duration::from_millis(50);
/// How often a caller that found the ring taken looks whether it is free.
pub(crate) const HANDOFF_POLL: Duration = Duration::from_micros(500);
/// How long the channel thread stays away from a ring that callers read.
pub(crate) const PARK: Duration = Duration::from_millis(1);
/// How often the channel thread looks up from its ring to see whether the connection closed.
const CLOSED_POLL: Duration = Duration::from_millis(500);
/// How often the channel thread looks for the governor's word of why a peer died.
const PEER_WHY_POLL: Duration = Duration::from_millis(1);

/// Takes every record ready on the ring and handles it.
fn take_ready(shared: &Shared, link: &Arc<Link>, receiver: &mut Receiver) -> Result<(), ShmError> {
    while let Some(record) = receiver.try_recv()? {
        let frame = record
            .get(HEADER_BYTES..)
            .map(Bytes::copy_from_slice)
            .and_then(|body| decode_inbound(body).ok())
            .map(rebeam_proto::Inbound::into_frame);
        if let Some(frame) = frame {
            shared.direct.received(shared, link, frame);
        }
        // Released only now: a drained ring means every record is in the queue.
        drop(record);
    }
    Ok(())
}

fn try_lock<T>(m: &std::sync::Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        // As `lock`: a panic elsewhere leaves the ring as consistent as any reader leaves it.
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Counts a caller among the link's readers for as long as it lives.
struct Registered<'a>(&'a Link);

impl<'a> Registered<'a> {
    fn new(link: &'a Link) -> Registered<'a> {
        link.readers.fetch_add(1, Ordering::SeqCst);
        Registered(link)
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.readers.fetch_sub(1, Ordering::SeqCst);
    }
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
    let registered = Registered::new(link);
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
        let Some(mut receiver) = try_lock(&link.receiver) else {
            match replies.recv_timeout(slice.min(HANDOFF_POLL)) {
                Ok(response) => return Ok(response),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Err(ClientError::Gone),
            }
        };
        link.reads.fetch_add(1, Ordering::Relaxed);
        let read = take_ready(shared, link, &mut receiver).and_then(|()| {
            if !replies.is_empty() {
                return Ok(true);
            }
            if !lock(&link.inflight).contains_key(&req) {
                return Ok(false);
            }
            receiver.wait(slice).map(|()| true)
        });
        match read {
            Ok(true) | Err(ShmError::TimedOut) => {}
            // Not (or no longer) this ring's to answer: the channel thread takes over.
            Ok(false) | Err(_) => {
                drop(receiver);
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
        if let Some(why) = lock(&link.why).take() {
            return why;
        }
        if Instant::now() >= deadline || shared.closed.load(Ordering::SeqCst) {
            return format!("its process (pid {}) died", link.peer_pid());
        }
        std::thread::sleep(PEER_WHY_POLL);
    }
}

/// Reads one channel, whenever no caller does, until its peer dies or the connection closes.
pub(crate) fn channel_thread(shared: Arc<Shared>, link: Arc<Link>) {
    let mut seen_reads = link.reads.load(Ordering::Relaxed);
    let why = loop {
        if shared.closed.load(Ordering::SeqCst) {
            break "the connection to the governor closed".to_string();
        }
        let waiting = shared.direct.report_counts(&shared);
        let reads = link.reads.load(Ordering::Relaxed);
        if link.readers.load(Ordering::SeqCst) > 0 || reads != seen_reads {
            seen_reads = reads;
            std::thread::sleep(PARK);
            continue;
        }
        let mut receiver = lock(&link.receiver);
        let read = receiver
            .wait(if waiting { COUNT_REPORT } else { CLOSED_POLL })
            .and_then(|()| take_ready(&shared, &link, &mut receiver));
        match read {
            Ok(()) | Err(ShmError::TimedOut) => {}
            Err(ShmError::PeerGone) => break peer_why(&shared, &link),
            Err(e) => break format!("its channel broke ({e})"),
        }
    };
    shared.direct.link_lost(&shared, &link, &why);
}
