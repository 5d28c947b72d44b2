//! The topic bus in the governor: the I/O half of `rebeam_core::bus`.
//!
//! `rebeam.on(pattern, fn)` and `rebeam.publish(topic, payload)`. The machine decides who is
//! subscribed, what a publication reaches and when (bounded queues, throttles, reserved
//! prefixes); this file only feeds it requests and losses and carries out its effects: a
//! publication goes to its subscriber's outbox, a flush timer goes to the OS. A subscriber
//! whose outbox is full misses the publication as a full queue would (it is counted as a
//! drop): the bus never waits for a slow subscriber.

use std::time::{Duration, Instant};

use rebeam_core::bus::{Effect, Owner, Publication, Spec};
use rebeam_core::topics::TopicError;
use rebeam_proto::{ActorId, Command as Cmd, ErrorInfo, ErrorKind, Frame, Payload};

use crate::outbox::Refusal;
use crate::router::{Input, ProcIdx, Router};

/// The bus machine, over the governor's process ids and payloads.
pub type Bus = rebeam_core::bus::Bus<ProcIdx, Payload>;

/// A reserved topic is a refusal of its own kind; everything else is a malformed request.
fn refusal(e: TopicError) -> ErrorInfo {
    let kind = match e {
        TopicError::Reserved { .. } => ErrorKind::Reserved,
        _ => ErrorKind::BadRequest,
    };
    ErrorInfo::new(kind, e.to_string())
}

impl Router {
    pub fn subscribe(
        &mut self,
        proc: ProcIdx,
        actor: Option<ActorId>,
        pattern: &str,
        throttle_ms: u64,
        queue: u32,
    ) -> Result<u64, ErrorInfo> {
        let spec = Spec::new(pattern, Duration::from_millis(throttle_ms), queue).map_err(refusal)?;
        if let Some(a) = actor {
            if !self.actors.contains_key(&a) {
                return Err(ErrorInfo::new(ErrorKind::NoProcess, format!("actor <{a}> is not alive")));
            }
        }
        let id = self.next_id();
        self.bus.subscribe(id, Owner { proc, actor }, spec);
        Ok(id)
    }

    /// Publishes from a Python process: reserved prefixes are refused unless opened. On a
    /// node, a publication taken here goes to the other nodes too (`node_bus.rs`).
    pub fn publish(&mut self, topic: &str, payload: Payload) -> Result<(), ErrorInfo> {
        let far = self.node.is_some().then(|| payload.clone());
        self.publish_here(topic, payload)?;
        if let Some(payload) = far {
            self.publish_elsewhere(topic, payload);
        }
        Ok(())
    }

    /// Publishes to this node's subscribers by a Python process's rules.
    pub(crate) fn publish_here(&mut self, topic: &str, payload: Payload) -> Result<(), ErrorInfo> {
        let now = self.os.now();
        let effects = self.bus.publish(topic, payload, now).map_err(refusal)?;
        self.carry_out_bus(effects, now);
        Ok(())
    }

    /// Publishes as the host (the governor itself): any topic.
    pub fn publish_as_host(&mut self, topic: &str, payload: Payload) {
        let now = self.os.now();
        let effects = self.bus.publish_as_host(topic, payload, now);
        self.carry_out_bus(effects, now);
    }

    /// Publishes for a host program that is the main process (`rebeam serve --host`): any
    /// well-formed topic, reserved prefixes included.
    pub fn publish_from_host(&mut self, topic: &str, payload: Payload) -> Result<(), ErrorInfo> {
        rebeam_core::topics::validate_topic(topic).map_err(refusal)?;
        self.publish_as_host(topic, payload);
        Ok(())
    }

    /// A subscription's flush timer fired.
    pub fn flush(&mut self, id: u64) {
        let now = self.os.now();
        let effects = self.bus.flush(id, now);
        self.carry_out_bus(effects, now);
    }

    /// `now` is the instant the machine was given, so a timer's delay is measured from it.
    fn carry_out_bus(&mut self, effects: Vec<Effect<ProcIdx, Payload>>, now: Instant) {
        for effect in effects {
            match effect {
                Effect::FlushAt { subscription, at } => {
                    let delay = at.saturating_duration_since(now);
                    self.after(delay, Input::BusFlush(subscription));
                }
                Effect::Deliver(Publication { subscription, to, topic, payload, dropped }) => {
                    let actor = to.actor;
                    let frame = Frame::Command(Cmd::Publication { subscription, actor, topic, payload, dropped });
                    if let Err(Refusal::Full { .. }) = self.offer(to.proc, frame) {
                        self.bus.undelivered(subscription, 1);
                    }
                }
            }
        }
    }

    /// Subscriptions end with their actor.
    pub fn unsubscribe_actor(&mut self, actor: ActorId) {
        self.bus.actor_gone(actor);
    }

    /// Subscriptions end with their process.
    pub fn unsubscribe_proc(&mut self, proc: ProcIdx) {
        self.bus.proc_gone(proc);
    }
}
