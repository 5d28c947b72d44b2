//! Calls and casts straight to the actor's process, over the channels the governor hands out.
//!
//! The rules:
//! - **Resolved once.** The first call or cast to a target asks the governor for a route
//!   (`Request::Route`): the actor's id, its gated handlers, a channel to its process. The
//!   route is cached under the target; a refusal because the actor lives in this process, or
//!   is a task, is cached too (such messages stay on the governor's path, which answers them as
//!   before, except the casts `here.rs` queues here at once); any other refusal is not cached.
//! - **What goes direct:** an ordinary call or cast to a cached route whose subject is not
//!   gated. Gated subjects (every subject under `--safety require-armed`, which the governor
//!   says in the route) and everything else keep the governor's path, with its refusal and
//!   disarm ladder unchanged.
//! - **One order per sender → actor.** A record on a channel is a frame as the socket carries
//!   it (the routing header and its pieces): the `Command::Deliver` the governor would have
//!   made (the caller's request id as a call's delivery id, the sender's name as the caller
//!   knows it), or the answer to one. The actor's process learns of the channel on
//!   its socket behind every delivery the governor sent it before (see the governor's
//!   `channels` module), and its records are read only from then on (by its channel thread, or
//!   by a caller waiting for its reply there: the `reading` module), each record's delivery
//!   going into the same command queue as the socket's: so what this process sent the old
//!   way before it had the route is queued before anything it sends direct. A message too
//!   large for the ring goes the governor's way, but only once the ring is drained (every
//!   record sent is in the peer's queue), so it cannot overtake them; a gated message likewise.
//!   And nothing direct may overtake it in turn: once a message to an actor has gone the
//!   governor's way, later ones to it follow the same way (a fence) until the answer to the
//!   last of them that is a call comes from the actor itself, which says every earlier one
//!   reached its queue; then they go direct again.
//! - **A call never hangs.** Its waiter is the one the socket's answers use, with the caller's
//!   own deadline. When the peer dies (its pidfd), every call in flight on the channel fails
//!   with `ActorDown` and the routes over it are forgotten: at once when the governor's word of
//!   why arrives (`Command::ChannelClosed`, sent once it has reaped the process, so the words
//!   are those of the governor's path), after [`PEER_WHY_WAIT`] at the latest without it.
//!   Except the calls the dead peer never took off the ring (its reader releases a record only
//!   once it is queued, and the ring's released position says how far it got), and any
//!   message it died before the ring took: nothing of those was delivered, so they go again
//!   the governor's way, as after `NoProcess` (a restarted actor answers them). A call whose
//!   sender picked the route just before the link was lost, and was still writing it (or
//!   had not yet put it in flight) when the calls in flight were taken, is settled so by its
//!   sender (the link is marked dead before they are taken, and the sender looks once its
//!   write returns).
//! - **A restarted actor.** Its process answers a record for an id it does not host with
//!   `NoProcess`: nothing was delivered, so the call is sent again the governor's way, once,
//!   under its original target (the governor resolves it afresh), and its route is forgotten.
//!   Until that call is answered, later messages to the same target follow it the governor's
//!   way (a fence on the target: the restarted actor may be reached direct over another
//!   channel, which would overtake it).
//!   A cast for an id it does not host is lost (as one to an actor that ended is), and its
//!   answer tells the sender to forget the routes over that channel. Its sender was told
//!   `delivered` already: on the direct path that means "in the actor's process's ring", so a
//!   cast overtaken by its actor's end returns True and is lost, as one that reached a mailbox
//!   just before the actor ended is.
//! - **Casts don't wait.** A direct cast is answered `delivered` once it is in the ring. A
//!   full ring waits up to [`CAST_ROOM_WAIT`], then the cast is answered not delivered and
//!   counted in [`Client::direct_drops`](crate::Client::direct_drops).
//! - **A cast at once.** A cast whose route is cached, whose subject is not gated, with no
//!   fence on its actor and no call sent again the governor's way, goes onto its ring without
//!   a request id or a waiter ([`Client::try_cast`](crate::Client::try_cast)) if the ring is
//!   free (no other thread writing) and has room. Anything else hands it back untouched for
//!   the full path above, which may wait, so the fast path never blocks (a caller may hold
//!   the GIL across it) and changes no order: a sender's casts are sent one after another,
//!   whichever path each takes.
//! - **The host side** (records for actors here, and their replies) is in `direct/host.rs`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rebeam_proto::{
    encode_parts, ActorId, ActorRef, Command, DeliveryId, Encoded, ErrorInfo, ErrorKind, Frame, Gating, Outcome, ReqId,
    Request, Response, Route, Routed, Target,
};
use rebeam_shm::{Receiver, Sender, ShmError};

use crate::channel::ChannelEnd;
use crate::client::{lock, Shared};
use crate::held::Held;
use crate::role::Commands;

mod host;

/// A call's place in its ring before its record is in (see `Link::inflight`).
const NOT_WRITTEN: u64 = u64::MAX;

/// The direct path's maps, keyed by this process's own ids and names and looked up several
/// times per message: a fast hasher, not one hardened against chosen keys.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Parts of a direct cast's ring record (its head, its pickle, its buffers) gathered on the
/// stack; a cast with more buffers gathers them in a `Vec`.
const STACK_PARTS: usize = 8;

thread_local! {
    /// A direct cast's head, written here afresh for each cast: the buffer is kept, so a cast
    /// allocates nothing for it.
    static CAST_HEAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
/// On a channel, the answer to a call that says its reply comes the governor's way: a cast's
/// answer there never names a request, and says only `delivered: false`.
const AWAY: Response = Response::Cast { delivered: true };
/// Delivery ids this process gives the direct calls it hosts: the governor's never reach it.
pub const LOCAL_DELIVERY: u64 = 1 << 63;
/// How long a cast waits for room in a full ring before it is counted as dropped.
pub const CAST_ROOM_WAIT: Duration = Duration::from_millis(100);
/// How long a reply waits for room in a full ring (the caller reads its replies promptly;
/// a caller that does not has already given up on them).
const REPLY_ROOM_WAIT: Duration = Duration::from_secs(1);
/// How long direct deliveries wait, counted, before the count goes to the governor (for its
/// status report): one frame per this interval at most, however busy the channels.
pub(crate) const COUNT_REPORT: Duration = Duration::from_millis(100);
/// How often a large message looks again whether the ring it must not overtake is drained.
const DRAIN_POLL: Duration = Duration::from_micros(50);
/// Once a peer has died, how long its calls in flight wait for the governor to say why (it
/// does once it has reaped the process, at once in practice) before they fail without it.
pub(crate) const PEER_WHY_WAIT: Duration = Duration::from_secs(1);

/// One channel to a peer process, as both its users see it.
pub(crate) struct Link {
    pub(crate) id: u64,
    sender: Mutex<Sender>,
    /// The ring from the peer. Whoever holds the lock reads it: a caller waiting for its
    /// reply, else the channel thread (the rules are in the `reading` module).
    pub(crate) receiver: Mutex<Receiver>,
    /// Who may read the ring besides the lock's holder (the `reading` module).
    pub(crate) turns: crate::reading::Turns,
    /// Calls sent on it and not answered yet, each with the request to send the governor's
    /// way if the peer answers `NoProcess`.
    /// Calls sent on the channel and not answered: each request and where its record ends in
    /// the ring ([`NOT_WRITTEN`] until it is in).
    pub(crate) inflight: Mutex<HashMap<ReqId, (Request, u64)>>,
    pub(crate) dead: AtomicBool,
    /// Why the peer died, as the governor said (`Command::ChannelClosed`).
    pub(crate) why: Mutex<Option<String>>,
    /// Actors of the peer that messages of ours reach the governor's way for now: the number
    /// of the last such message to each (see the module doc's rule on order).
    fences: Mutex<HashMap<ActorId, u64>>,
    /// Records from the peer held behind its replies that went the governor's way (`held.rs`).
    pub(crate) held: Held,
}

impl Link {
    /// A watch on the peer's process (a loan names it).
    pub(crate) fn peer_watch(&self) -> Option<rebeam_shm::PeerWatch> {
        lock(&self.sender).peer().try_clone().ok()
    }

    /// The peer's pid, for messages.
    pub(crate) fn peer_pid(&self) -> u32 {
        lock(&self.sender).peer().pid()
    }
}

/// A direct call hosted here: the channel its reply goes back on, its request id there, and
/// the actor it is for.
struct Hosted {
    link: Arc<Link>,
    req: ReqId,
    actor: ActorId,
    /// Python put it in the live actor's mailbox ([`Client::took`](crate::Client::took)): it
    /// is queued or running, and ends with the actor. One not taken is answered by Python
    /// itself (`NoProcess`, once it finds the actor gone), so the actor's end leaves it be.
    taken: bool,
}

/// The fence a call sent the governor's way may lift: its link and actor, and its number.
struct Fence {
    link: Arc<Link>,
    actor: ActorId,
    seq: u64,
}

/// What is known about sending to a target.
#[derive(Clone)]
pub(crate) enum Cached {
    Direct {
        actor: ActorId,
        gating: Gating,
        link: Arc<Link>,
    },
    /// The actor lives in this process: the governor's path, its large buffers lent to this
    /// process (`lent.rs`); a cast to an actor with a mailbox (its id here) may be queued
    /// here at once instead (`here.rs`).
    Here(Option<ActorId>),
    /// A task, or no channel to be had: the governor's path.
    Governor,
}

/// The direct path's state, shared by callers, the socket's reader and the channel threads.
#[derive(Default)]
pub(crate) struct Direct {
    pub(crate) routes: Mutex<HashMap<Target, Cached>>,
    links: Mutex<HashMap<u64, Arc<Link>>>,
    /// Direct calls this process hosts, not yet answered: where the reply goes.
    hosted: Mutex<HashMap<DeliveryId, Hosted>>,
    /// Actors started here and not exited, with their gated handlers: a record for any other
    /// id is answered `NoProcess`.
    pub(crate) live: Mutex<HashMap<ActorId, Gating>>,
    /// The names of the actors here, as their `Start` said: a direct message names its sender
    /// as the governor would.
    pub(crate) names: Mutex<HashMap<ActorId, String>>,
    next_delivery: AtomicU64,
    /// Numbers the messages sent the governor's way to routed actors (fences).
    next_fence: AtomicU64,
    /// Calls sent the governor's way behind a fence: the fence their answer may lift.
    fence_calls: Mutex<HashMap<ReqId, Fence>>,
    /// Calls of ours whose reply comes the governor's way while their links hold what follows
    /// it (`held.rs`).
    away: Mutex<HashMap<ReqId, Arc<Link>>>,
    /// Calls sent again the governor's way after `NoProcess`, not answered yet, and their
    /// targets: messages to those go the governor's way meanwhile (see the module doc).
    retried: Mutex<HashMap<ReqId, Target>>,
    /// The command queue, set once at connect: read without a lock by every ring's reader.
    commands: OnceLock<Commands>,
    pub(crate) drops: AtomicU64,
    /// Calls and casts sent the governor's way, not answered yet (`here.rs`).
    pub(crate) unanswered: Mutex<crate::here::Unanswered>,
    /// Messages taken off channels per actor since the last report, and when that was.
    counted: Mutex<(HashMap<ActorId, u64>, Option<std::time::Instant>)>,
}

/// Where a request goes.
pub(crate) enum Way {
    /// Sent on a channel (a cast's answer is already given); a call's reply comes on the link
    /// given, where its caller may read it itself.
    Sent(Option<Arc<Link>>),
    /// The governor's way, as it is.
    Governor(Request),
}

impl Direct {
    pub(crate) fn set_commands(&self, commands: Commands) {
        let _ = self.commands.set(commands);
    }

    /// Starts using a channel end that just arrived (on the socket reader's thread, so that the
    /// host side queues its records behind every command read before).
    pub(crate) fn adopt(&self, shared: &Arc<Shared>, end: ChannelEnd) {
        let ChannelEnd { id, sender, mut receiver } = end;
        receiver.set_spin_when_idle(crate::reading::SPIN_BUDGET);
        let turns = crate::reading::Turns::new(&receiver);
        let link = Arc::new(Link {
            id,
            sender: Mutex::new(sender),
            receiver: Mutex::new(receiver),
            turns,
            inflight: Mutex::new(HashMap::default()),
            dead: AtomicBool::new(false),
            why: Mutex::new(None),
            fences: Mutex::new(HashMap::default()),
            held: Held::default(),
        });
        lock(&self.links).insert(id, link.clone());
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("rebeam-channel-{id}"))
            .spawn(move || crate::reading::channel_thread(shared, link));
        if spawned.is_err() {
            lock(&self.links).remove(&id);
        }
    }

    /// The governor's word that the peer of channel `id` died, and why.
    pub(crate) fn peer_closed(&self, id: u64, why: String) {
        if let Some(link) = lock(&self.links).get(&id) {
            *lock(&link.why) = Some(why);
        }
    }

    /// Direct calls sent and not answered, over every channel.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.links).values().map(|l| lock(&l.inflight).len()).sum()
    }

    /// Targets with a cached route.
    #[cfg(test)]
    pub(crate) fn routes(&self) -> usize {
        lock(&self.routes).len()
    }

    /// Every channel in use here now.
    pub(crate) fn links(&self) -> Vec<Arc<Link>> {
        lock(&self.links).values().cloned().collect()
    }

    /// Whether channel `id` is in use here.
    pub(crate) fn has_channel(&self, id: u64) -> bool {
        lock(&self.links).contains_key(&id)
    }

    /// Sends request `req` on a channel if it may go direct (see the module doc), else hands
    /// it back for the governor, noting a call or cast so handed back as unanswered
    /// (`here.rs`).
    pub(crate) fn send(&self, shared: &Shared, req: ReqId, body: Request) -> Way {
        let way = self.send_somewhere(shared, req, body);
        if let Way::Governor(Request::Call { sender, .. } | Request::Cast { sender, .. }) = &way {
            lock(&self.unanswered).sent(req, *sender);
        }
        way
    }

    fn send_somewhere(&self, shared: &Shared, req: ReqId, body: Request) -> Way {
        let (target, subject) = match &body {
            Request::Call { target, subject, .. } | Request::Cast { target, subject, .. } => (target, subject),
            _ => return Way::Governor(body),
        };
        let Some((actor, gated, link)) = self.route(shared, target, subject) else {
            return Way::Governor(body);
        };
        self.send_on(shared, req, body, actor, gated, link)
    }

    /// Sends request `req` to `actor` on `link`, the route picked for it (which another thread
    /// may be losing meanwhile), or hands it back for the governor.
    pub(crate) fn send_on(
        &self,
        shared: &Shared,
        req: ReqId,
        body: Request,
        actor: ActorId,
        gated: bool,
        link: Arc<Link>,
    ) -> Way {
        let target = match &body {
            Request::Call { target, .. } | Request::Cast { target, .. } => target,
            _ => return Way::Governor(body),
        };
        let (is_call, wait) = match &body {
            Request::Call { timeout_ms, .. } => (true, Duration::from_millis(*timeout_ms)),
            _ => (false, CAST_ROOM_WAIT),
        };
        if gated || lock(&link.fences).contains_key(&actor) {
            // Behind what went on the ring before: a peer dead or not reading answers it on
            // the governor's path as it would have anyway.
            let _ = drain(&link, wait);
            self.fence(&link, actor, req, is_call);
            return Way::Governor(body);
        }
        // On the ring, the delivery the governor would have made: the caller's request id as
        // its delivery id (a call's; a cast has none), and the sender's name as it knows it.
        let direct = match body.clone() {
            Request::Call { subject, sender, payload, .. } | Request::Cast { subject, sender, payload, .. } => {
                let sender = sender.map(|id| ActorRef { id, name: lock(&self.names).get(&id).cloned() });
                let delivery = is_call.then_some(req);
                Command::Deliver { delivery, actor, subject, sender, payload }
            }
            _ => unreachable!("matched above"),
        };
        let Ok(encoded) = encode_parts(Frame::Command(direct)) else {
            return Way::Governor(body);
        };
        if is_call {
            // Before the write: the answer may come before `send` returns.
            lock(&link.inflight).insert(req, (body.clone(), NOT_WRITTEN));
        }
        match write(&link, &encoded, wait) {
            Ok(Some(end)) => {
                if !is_call {
                    shared.answer(req, Response::Cast { delivered: true });
                    return Way::Sent(None);
                }
                // The peer may have been lost while this call went in, and `link_lost` took
                // the calls in flight before this one was among them (it marks the link dead
                // first, and leaves calls still being written): then it is this thread's to
                // settle, as `link_lost` would.
                let stranded = {
                    let mut inflight = lock(&link.inflight);
                    if let Some(entry) = inflight.get_mut(&req) {
                        entry.1 = end;
                    }
                    if link.dead.load(Ordering::SeqCst) {
                        inflight.remove(&req)
                    } else {
                        None
                    }
                };
                if let Some((original, end)) = stranded {
                    let why = lock(&link.why)
                        .clone()
                        .unwrap_or_else(|| format!("its process (pid {}) died", link.peer_pid()));
                    let released = released_if_gone(&link);
                    self.settle_lost(shared, req, original, end, released, &why);
                    return Way::Sent(None);
                }
                Way::Sent(Some(link))
            }
            Ok(None) => {
                lock(&link.inflight).remove(&req);
                self.fence(&link, actor, req, is_call);
                Way::Governor(body)
            }
            Err(ShmError::PeerGone) => {
                // The peer died before the record went in: nothing was delivered, so the
                // message goes the governor's way, which resolves its target afresh.
                lock(&link.inflight).remove(&req);
                self.forget_link_routes(&link);
                Way::Governor(body)
            }
            Err(e) => {
                lock(&link.inflight).remove(&req);
                if is_call {
                    shared.answer(req, Response::Call(Outcome::Failed(ring_failure(target, &e))));
                } else {
                    self.drops.fetch_add(1, Ordering::Relaxed);
                    shared.answer(req, Response::Cast { delivered: false });
                }
                Way::Sent(None)
            }
        }
    }

    /// The process hosting `target`, if a live route to it is cached, or it is this one (a
    /// loan names it).
    pub(crate) fn peer_of(&self, target: &Target) -> Option<rebeam_shm::PeerWatch> {
        match lock(&self.routes).get(target)? {
            Cached::Direct { link, .. } if !link.dead.load(Ordering::SeqCst) => {
                lock(&link.sender).peer().try_clone().ok()
            }
            Cached::Here(_) => rebeam_shm::PeerWatch::new(std::process::id()).ok(),
            _ => None,
        }
    }

    /// Whether `target` names an actor started in this process and not exited (as the
    /// governor's refusal of a route to it says).
    pub(crate) fn hosts(&self, target: &Target) -> bool {
        let live = lock(&self.live);
        match target {
            Target::Actor(id) => live.contains_key(id),
            Target::Name(name) => lock(&self.names).iter().any(|(id, n)| n == name && live.contains_key(id)),
        }
    }

    /// The actor and channel for a direct message to `target` with `subject`, resolving the
    /// target on first use; None for the governor's path.
    fn route(&self, shared: &Shared, target: &Target, subject: &str) -> Option<(ActorId, bool, Arc<Link>)> {
        {
            let retried = lock(&self.retried);
            if !retried.is_empty() && retried.values().any(|t| t == target) {
                return None;
            }
        }
        // Looked at in place: a clone of the route would copy its gating's lists every message.
        if let Some(cached) = lock(&self.routes).get(target) {
            return pick(cached, subject);
        }
        pick(&self.resolve(shared, target)?, subject)
    }

    /// Sends cast `body` on its ring if it can go there at once (see the module doc's rule
    /// "A cast at once"); else hands it back untouched, for [`Direct::send`]. Never waits.
    pub(crate) fn try_cast(&self, shared: &Shared, body: Request) -> Option<Request> {
        let Request::Cast { target, subject, sender, payload } = &body else { return Some(body) };
        // Any call sent again the governor's way: the full path decides what waits behind it.
        if !lock(&self.retried).is_empty() {
            return Some(body);
        }
        let routed = {
            let routes = lock(&self.routes);
            match routes.get(target) {
                Some(Cached::Here(Some(actor))) => Err(*actor),
                cached => Ok(cached.and_then(|cached| pick(cached, subject))),
            }
        };
        let routed = match routed {
            Ok(routed) => routed,
            Err(actor) => return self.cast_here(shared, actor, body),
        };
        let Some((actor, false, link)) = routed else { return Some(body) };
        if lock(&link.fences).contains_key(&actor) {
            return Some(body);
        }
        // The head is written from the borrowed request into this thread's buffer, and the
        // payload's pieces go from the request itself: the request is kept whole, to be
        // handed back if the ring has no room, at no copy of its strings or handles.
        let sent = CAST_HEAD.with_borrow_mut(|head| {
            head.clear();
            let written = match sender {
                Some(id) => {
                    let names = lock(&self.names);
                    let sender = Some((*id, names.get(id).map(String::as_str)));
                    Routed::write_cast_delivery(head, actor, subject, sender, payload)
                }
                None => Routed::write_cast_delivery(head, actor, subject, None, payload),
            };
            if written.is_err() {
                return false;
            }
            // Another thread writing, or waiting for room, holds the ring: waiting for it is
            // the full path's business.
            let Ok(mut ring) = link.sender.try_lock() else { return false };
            if head.len() + payload.len() as usize > ring.max_record() {
                return false;
            }
            let pieces = std::iter::once(&payload.data).chain(&payload.buffers).map(|p| &p[..]);
            let mut on_stack: [&[u8]; STACK_PARTS] = [&[]; STACK_PARTS];
            let parts = 1 + 1 + payload.buffers.len();
            if parts <= STACK_PARTS {
                on_stack[0] = head;
                on_stack[1..parts].iter_mut().zip(pieces).for_each(|(slot, piece)| *slot = piece);
                ring.try_send(&on_stack[..parts]).is_ok()
            } else {
                let parts: Vec<&[u8]> = std::iter::once(&head[..]).chain(pieces).collect();
                ring.try_send(&parts).is_ok()
            }
        });
        // Full, or the peer gone: the full path waits for room, or finds the governor's way.
        (!sent).then_some(body)
    }

    /// Message `req` to `actor` goes the governor's way: later ones follow it there until the
    /// answer to a call sent so, the last one, comes from the actor (see the module doc).
    fn fence(&self, link: &Arc<Link>, actor: ActorId, req: ReqId, is_call: bool) {
        let seq = self.next_fence.fetch_add(1, Ordering::Relaxed);
        lock(&link.fences).insert(actor, seq);
        if is_call {
            lock(&self.fence_calls).insert(req, Fence { link: link.clone(), actor, seq });
        }
    }

    /// An answer from the governor's way: lifts the fence it may end (before its waiter sees it,
    /// so the caller's next message may go direct).
    pub(crate) fn answered(&self, req: ReqId, body: &Response) {
        lock(&self.unanswered).answered(req);
        {
            let mut retried = lock(&self.retried);
            if !retried.is_empty() {
                retried.remove(&req);
            }
        }
        let Some(Fence { link, actor, seq }) = lock(&self.fence_calls).remove(&req) else { return };
        // Only the actor's own answer says every earlier message reached it; the governor's
        // refusals (safety, timeouts, a dead actor) say nothing about the host's queue.
        let from_actor = match body {
            Response::Call(Outcome::Reply { .. }) => true,
            Response::Call(Outcome::Failed(info)) => info.kind == ErrorKind::Crashed,
            _ => false,
        };
        let mut fences = lock(&link.fences);
        if from_actor && fences.get(&actor) == Some(&seq) {
            fences.remove(&actor);
        }
    }

    fn resolve(&self, shared: &Shared, target: &Target) -> Option<Cached> {
        let cached = match shared.roundtrip(Request::Route { target: target.clone() }) {
            Some(Response::Route(Ok(Route { actor, gating, channel, .. }))) => {
                let link = lock(&self.links).get(&channel.id).cloned()?;
                Cached::Direct { actor: actor.id, gating, link }
            }
            // The actor is here, or a task: the governor's path, which says so to each message
            // (but casts to an actor here, with a mailbox, may be queued here: `here.rs`).
            Some(Response::Route(Err(info))) if matches!(info.kind, ErrorKind::BadRequest | ErrorKind::NoMailbox) => {
                if self.hosts(target) {
                    Cached::Here(self.hosted_id(target).filter(|_| info.kind == ErrorKind::BadRequest))
                } else {
                    Cached::Governor
                }
            }
            _ => return None,
        };
        lock(&self.routes).insert(target.clone(), cached.clone());
        Some(cached)
    }

    fn forget_link_routes(&self, link: &Arc<Link>) {
        lock(&self.routes).retain(|_, c| !matches!(c, Cached::Direct { link: l, .. } if Arc::ptr_eq(l, link)));
    }

    pub(crate) fn forget_target(&self, original: &Request) {
        if let Request::Call { target, .. } | Request::Cast { target, .. } = original {
            lock(&self.routes).remove(target);
        }
    }

    /// The peer died or the channel broke: fail its calls in flight and forget its routes.
    /// A call that was not delivered (`NoProcess`, or never read off the ring of a peer that
    /// died) goes again the governor's way, once, under its original target, which the
    /// governor resolves afresh; later messages to that target wait behind it (`retried`).
    /// False if it could not be sent (the caller is then answered as it would have been).
    fn send_again(&self, shared: &Shared, req: ReqId, original: Request) -> bool {
        self.forget_target(&original);
        if let Request::Call { target, .. } = &original {
            lock(&self.retried).insert(req, target.clone());
        }
        if shared.write_request(req, original).is_ok() {
            return true;
        }
        lock(&self.retried).remove(&req);
        false
    }

    pub(crate) fn link_lost(&self, shared: &Shared, link: &Arc<Link>, why: &str) {
        // What the peer sent before it died is handed on first, replies to calls in flight
        // among it (the governor forwards a reply sent its way before it says the peer died).
        self.expire_holds(shared, link, None);
        link.dead.store(true, Ordering::SeqCst);
        lock(&self.links).remove(&link.id);
        self.forget_link_routes(link);
        lock(&self.hosted).retain(|_, h| !Arc::ptr_eq(&h.link, link));
        // A call whose record the dead peer never released never reached its actor's queue
        // (a reader releases a record only once it is queued): it was not delivered, so it
        // goes again the governor's way, as after NoProcess, in the order it was sent. Only
        // when the peer is gone: a live peer might still read it.
        let released = released_if_gone(link);
        // A call still being written is its sender's to settle once the write returns (it
        // looks then whether the link was lost): whether it reached the ring is known only there.
        let mut inflight: Vec<_> = lock(&link.inflight).extract_if(|_, (_, end)| *end != NOT_WRITTEN).collect();
        inflight.sort_unstable_by_key(|(_, (_, end))| *end);
        for (req, (original, end)) in inflight {
            self.settle_lost(shared, req, original, end, released, why);
        }
    }

    /// Answers call `req`, in flight on a lost link: sent again the governor's way if the dead
    /// peer never released its record (it ends at `end`; `released` is how far the peer got,
    /// if it is gone), else failed with `ActorDown` for `why`.
    fn settle_lost(&self, shared: &Shared, req: ReqId, original: Request, end: u64, released: Option<u64>, why: &str) {
        let unread = released.is_some_and(|r| end != NOT_WRITTEN && end > r);
        if unread && matches!(original, Request::Call { .. }) && self.send_again(shared, req, original.clone()) {
            return;
        }
        let target = match &original {
            Request::Call { target, .. } => target.to_string(),
            _ => "the actor".into(),
        };
        let info = ErrorInfo::new(ErrorKind::ActorDown, format!("actor {target} ended before it answered: {why}"));
        shared.answer(req, Response::Call(Outcome::Failed(info)));
    }
}

/// How far the peer of `link` released what it read, if it is gone (a live peer might still
/// read on: None).
fn released_if_gone(link: &Link) -> Option<u64> {
    let mut sender = lock(&link.sender);
    if sender.peer().gone() {
        sender.released().ok()
    } else {
        None
    }
}

/// The actor, whether `subject` is gated for it, and the channel, for a direct message along
/// a cached route; None for the governor's path (the actor is here, or its peer died).
fn pick(cached: &Cached, subject: &str) -> Option<(ActorId, bool, Arc<Link>)> {
    match cached {
        Cached::Direct { actor, gating, link } => {
            let gated = rebeam_core::gate::marks(&gating.subjects, gating.catch_all, &gating.handled, subject);
            (!link.dead.load(Ordering::SeqCst)).then(|| (*actor, gated, link.clone()))
        }
        Cached::Here(_) | Cached::Governor => None,
    }
}

/// Writes one frame on the link: where its record ends in the ring once it is in, None if
/// it must go the governor's way (too large for the ring, and the ring is drained so it
/// cannot overtake).
fn write(link: &Link, encoded: &Encoded, wait: Duration) -> Result<Option<u64>, ShmError> {
    let slices = encoded.slices_after(0);
    let parts: Vec<&[u8]> = slices.iter().map(|s| &**s).collect();
    let mut sender = lock(&link.sender);
    if encoded.len() <= sender.max_record() {
        return sender.send(&parts, wait).map(|()| Some(sender.position()));
    }
    drop(sender);
    drain(link, wait).map(|()| None)
}

/// Waits until the peer has taken every record sent on `link` (each is in its queue then).
fn drain(link: &Link, wait: Duration) -> Result<(), ShmError> {
    let deadline = Instant::now() + wait;
    loop {
        let mut sender = lock(&link.sender);
        if sender.drained()? {
            return Ok(());
        }
        if sender.peer().gone() {
            return Err(ShmError::PeerGone);
        }
        drop(sender);
        if Instant::now() >= deadline {
            return Err(ShmError::TimedOut);
        }
        std::thread::sleep(DRAIN_POLL);
    }
}

/// Writes an answer on the link; false if it is too large for the ring (nothing written).
fn answer_on(link: &Link, req: ReqId, body: Response) -> bool {
    let Ok(encoded) = encode_parts(Frame::Response { req, body }) else { return false };
    if encoded.len() > lock(&link.sender).max_record() {
        return false;
    }
    // A caller that is gone or does not read has given up on the answer.
    let _ = write(link, &encoded, REPLY_ROOM_WAIT);
    true
}

fn ring_failure(target: &Target, e: &ShmError) -> ErrorInfo {
    ErrorInfo::new(
        ErrorKind::Full,
        format!("actor {target} cannot take the message: its process is not reading ({e}); try again later"),
    )
}
