//! The host side of direct channels: records for actors of this process, and their replies.
//!
//! The rules:
//! - A record for an actor here becomes a `Command::Deliver`; a call's gets a delivery id of
//!   this process's own ([`LOCAL_DELIVERY`] set), and its reply goes back on the channel, not
//!   to the governor. A record for an actor not alive here is answered `NoProcess` (a call) or
//!   lost with a word to its sender (a cast), as the parent module's rules say.
//! - A reply too large for the ring goes the governor's way (a reply naming the channel and
//!   the caller's request id, its large buffers lent, `lent.rs`), written before a small
//!   record on the ring ([`AWAY`]) that takes the call off the caller's list for the channel,
//!   so its caller waits for the governor's answer; what its process writes on the ring after
//!   that is held in the caller's process until the reply is in, so it cannot overtake it
//!   (`held.rs`).
//! - A failure too large for the ring (a huge exception message or traceback) has no
//!   governor's way (the governor routes payloads, and a failure is words): it is cut to fit,
//!   saying so (`fit.rs`).
//! - When an actor here exits, the direct calls it had not answered are answered `ActorDown`,
//!   as the governor does for its own.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rebeam_proto::{
    encode_parts, ActorId, ActorRef, Command, DeliveryId, ErrorInfo, ErrorKind, Event, Frame, Outcome, ReqId, Request,
    Response,
};

use super::{answer_on, Direct, Hosted, Link, AWAY, COUNT_REPORT, LOCAL_DELIVERY};
use crate::client::{lock, Shared};

impl Direct {
    /// Takes a reply for a direct call hosted here; false for the governor's deliveries. A
    /// reply too large for the ring goes the governor's way, its large buffers lent, and
    /// [`AWAY`] on the ring tells the caller to wait for it there; a failure too large for it
    /// is cut to fit, saying so (see the module doc).
    pub(crate) fn reply(&self, shared: &Shared, event: &Event) -> bool {
        let Event::Replied { delivery, outcome } = event else { return false };
        if delivery & LOCAL_DELIVERY == 0 {
            return false;
        }
        // Out of the map before the answer is written: the write may wake the caller onto this
        // CPU (or wait for room), and the next call's delivery must not wait for this lock.
        let hosted = lock(&self.hosted).remove(delivery);
        if let Some(hosted) = hosted {
            let (link, req) = (&hosted.link, hosted.req);
            if answer_on(link, req, Response::Call(outcome.clone())) {
                return true;
            }
            match outcome {
                Outcome::Reply { .. } => {
                    if shared.reply_the_governors_way(link, req, event.clone()).is_ok() {
                        answer_on(link, req, AWAY);
                    }
                }
                Outcome::Failed(info) => {
                    let room = lock(&link.sender).max_record();
                    let fits = |info: &ErrorInfo| {
                        let body = Response::Call(Outcome::Failed(info.clone()));
                        encode_parts(Frame::Response { req, body }).is_ok_and(|e| e.len() <= room)
                    };
                    if let Some(cut) = crate::fit::fit(info, fits) {
                        answer_on(link, req, Response::Call(Outcome::Failed(cut)));
                    }
                }
            }
        }
        true
    }

    /// Notes the name of an actor started here (from the socket's reader, before the command
    /// is queued).
    pub(crate) fn note_command(&self, command: &Command) {
        if let Command::Start { actor, name: Some(name), .. } = command {
            lock(&self.names).insert(*actor, name.clone());
        }
    }

    /// A direct call hosted here was handed to Python.
    pub(crate) fn taken(&self, delivery: DeliveryId) {
        if delivery & LOCAL_DELIVERY != 0 {
            if let Some(h) = lock(&self.hosted).get_mut(&delivery) {
                h.taken = true;
            }
        }
    }

    /// Keeps the set of actors hosted here, as this process reports them to the governor.
    pub(crate) fn note_event(&self, event: &Event) {
        match event {
            Event::Started { actor, result: Ok(gating) } => {
                lock(&self.live).insert(*actor, gating.clone());
            }
            Event::Exited { actor, .. } => {
                lock(&self.live).remove(actor);
                lock(&self.names).remove(actor);
                // Only the calls Python took (its mailbox was cleared, or one was running):
                // one still queued for Python is answered NoProcess when Python finds the actor
                // gone, as the governor answers a call to an actor being restarted.
                let gone: Vec<Hosted> = {
                    let mut hosted = lock(&self.hosted);
                    let ids: Vec<_> =
                        hosted.iter().filter(|(_, h)| h.actor == *actor && h.taken).map(|(d, _)| *d).collect();
                    ids.iter().filter_map(|d| hosted.remove(d)).collect()
                };
                // Outside the lock: a write may wait for room in the ring.
                for h in gone {
                    let info =
                        ErrorInfo::new(ErrorKind::ActorDown, format!("actor <{actor}> ended before it answered"));
                    answer_on(&h.link, h.req, Response::Call(Outcome::Failed(info)));
                }
            }
            _ => {}
        }
    }

    /// A record from the peer: a call or cast for an actor here, or an answer to a call of ours.
    pub(crate) fn received(&self, shared: &Shared, link: &Arc<Link>, frame: Frame) {
        match frame {
            Frame::Command(Command::Deliver { delivery: Some(req), actor, subject, sender, payload }) => {
                if !lock(&self.live).contains_key(&actor) {
                    let info = ErrorInfo::new(ErrorKind::NoProcess, format!("actor <{actor}> is not alive here"));
                    answer_on(link, req, Response::Call(Outcome::Failed(info)));
                    return;
                }
                let delivery = LOCAL_DELIVERY | self.next_delivery.fetch_add(1, Ordering::Relaxed);
                lock(&self.hosted).insert(delivery, Hosted { link: link.clone(), req, actor, taken: false });
                self.deliver(Some(delivery), actor, subject, sender, payload);
            }
            Frame::Command(Command::Deliver { delivery: None, actor, subject, sender, payload }) => {
                if lock(&self.live).contains_key(&actor) {
                    self.deliver(None, actor, subject, sender, payload);
                } else {
                    // Lost, as a cast to an actor that ended is; the answer (no request id: a
                    // cast has none) tells the sender its routes over this channel are stale.
                    answer_on(link, 0, Response::Cast { delivered: false });
                }
            }
            Frame::Response { body: Response::Cast { delivered: false }, .. } => self.forget_link_routes(link),
            // Call `req`'s reply comes the governor's way: its waiter waits there (see `AWAY`),
            // and what follows on the ring waits for it, if it is still awaited (`held.rs`).
            Frame::Response { req, body: AWAY } => {
                let Some((original, _)) = lock(&link.inflight).remove(&req) else { return };
                let wait = match original {
                    Request::Call { timeout_ms, .. } => Duration::from_millis(timeout_ms),
                    _ => return,
                };
                // Under `away`, as `arrived` takes it only once the answer left `pending`.
                let mut away = lock(&self.away);
                if lock(&shared.pending).contains_key(&req) {
                    link.held.hold(req, Instant::now() + wait);
                    away.insert(req, link.clone());
                }
            }
            Frame::Response { req, body } => {
                let Some((original, _)) = lock(&link.inflight).remove(&req) else { return };
                if let Response::Call(Outcome::Failed(info)) = &body {
                    if info.kind == ErrorKind::NoProcess && self.send_again(shared, req, original) {
                        return;
                    }
                }
                shared.answer(req, body);
            }
            // A peer sends nothing else on a channel; a stray record is ignored, not fatal.
            _ => {}
        }
    }

    /// A record read off `link`'s ring: handled now, or held behind a reply that went the
    /// governor's way (a held delivery counts in the backlog as a queued one: `held.rs`).
    pub(crate) fn read(&self, shared: &Shared, link: &Arc<Link>, frame: Frame) {
        let delivery = matches!(frame, Frame::Command(Command::Deliver { .. }));
        match link.held.pass(frame) {
            Some(frame) => self.received(shared, link, frame),
            None if delivery => shared.backlog.queued(),
            None => {}
        }
    }

    /// The answer to call `req` was handed to its waiter: what its link held behind it goes on.
    pub(crate) fn arrived(&self, shared: &Shared, req: ReqId) {
        let link = {
            let mut away = lock(&self.away);
            if away.is_empty() {
                return;
            }
            away.remove(&req)
        };
        if let Some(link) = link.filter(|link| link.held.release(req)) {
            self.hand_on(shared, &link);
        }
    }

    /// Ends `link`'s holds past their time (all of them with `now` None), and hands on what
    /// they held.
    pub(crate) fn expire_holds(&self, shared: &Shared, link: &Arc<Link>, now: Option<Instant>) {
        if link.held.expire(now) {
            lock(&self.away).retain(|req, l| !Arc::ptr_eq(l, link) || link.held.has(*req));
            self.hand_on(shared, link);
        }
    }

    fn hand_on(&self, shared: &Shared, link: &Arc<Link>) {
        link.held.drain(|frame| {
            if matches!(frame, Frame::Command(Command::Deliver { .. })) {
                // It counts again once queued.
                shared.backlog.done(1);
            }
            self.received(shared, link, frame);
        });
    }

    pub(crate) fn deliver(
        &self,
        delivery: Option<DeliveryId>,
        actor: ActorId,
        subject: String,
        sender: Option<ActorRef>,
        payload: rebeam_proto::Payload,
    ) {
        if let Some(tx) = self.commands.get() {
            let _ = tx.send(Command::Deliver { delivery, actor, subject, sender, payload });
        }
        *lock(&self.counted).0.entry(actor).or_default() += 1;
    }

    /// Reports the counted deliveries to the governor once [`COUNT_REPORT`] has passed since
    /// the last report; returns whether some are still waiting (the caller wakes for them).
    pub(crate) fn report_counts(&self, shared: &Shared) -> bool {
        let mut counted = lock(&self.counted);
        let (counts, last) = &mut *counted;
        if counts.is_empty() {
            return false;
        }
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < COUNT_REPORT) {
            return true;
        }
        *last = Some(now);
        let counts: Vec<(ActorId, u64)> = counts.drain().collect();
        drop(counted);
        let _ = shared.write_event(Event::DirectDeliveries { counts });
        false
    }
}
