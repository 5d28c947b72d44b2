//! The topic bus: `rebeam.on(pattern, fn)` and `rebeam.publish(topic, payload)`.
//!
//! Subscriptions belong to an actor (its handler runs in the actor's context, serialised with
//! its messages) or to the main process. Each has a bounded queue that drops the oldest
//! publication when full (counting drops) and an optional throttle; both live in
//! `rebeam_core::topics::Mailbox`. Reserved prefixes (`safety.`, `actuator.`, `param.`,
//! `rebeam.`) are closed to Python publishers unless the host opened a topic with
//! `--allow-publish`. A subscription ends with its actor or process.

use std::collections::BTreeMap;
use std::time::Duration;

use rebeam_core::topics::{validate_topic, Mailbox, Pattern, PublishPolicy, MAX_QUEUE, MAX_THROTTLE};
use rebeam_proto::{ActorId, Command as Cmd, ErrorInfo, ErrorKind, Frame, Payload};

use crate::outbox::Refusal;
use crate::router::{Input, ProcIdx, Router};

pub struct Subscription {
    pub proc: ProcIdx,
    pub actor: Option<ActorId>,
    pattern: Pattern,
    mailbox: Mailbox<(String, Payload)>,
    flush_scheduled: bool,
}

pub struct Bus {
    pub subs: BTreeMap<u64, Subscription>,
    policy: PublishPolicy,
}

impl Bus {
    pub fn new(opened: &[String]) -> Result<Bus, String> {
        let opened = opened.iter().map(|p| Pattern::parse(p).map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
        Ok(Bus { subs: BTreeMap::new(), policy: PublishPolicy::new(opened) })
    }
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
        let pattern = Pattern::parse(pattern).map_err(|e| ErrorInfo::new(ErrorKind::BadRequest, e.to_string()))?;
        let throttle = Duration::from_millis(throttle_ms);
        if !(1..=MAX_QUEUE).contains(&(queue as usize)) || throttle > MAX_THROTTLE {
            return Err(ErrorInfo::new(
                ErrorKind::BadRequest,
                format!(
                    "subscription to '{pattern}' asks for queue={queue} and throttle={throttle:?}; \
                     the bounds are 1 ≤ queue ≤ {MAX_QUEUE} and throttle ≤ {MAX_THROTTLE:?}: pass values within them"
                ),
            ));
        }
        if let Some(a) = actor {
            if !self.actors.contains_key(&a) {
                return Err(ErrorInfo::new(ErrorKind::NoProcess, format!("actor <{a}> is not alive")));
            }
        }
        let id = self.next_id();
        let mailbox = Mailbox::new(queue as usize, throttle);
        self.bus.subs.insert(id, Subscription { proc, actor, pattern, mailbox, flush_scheduled: false });
        Ok(id)
    }

    /// Publishes from a Python process: reserved prefixes are refused unless opened.
    pub fn publish(&mut self, topic: &str, payload: Payload) -> Result<(), ErrorInfo> {
        validate_topic(topic).map_err(|e| ErrorInfo::new(ErrorKind::BadRequest, e.to_string()))?;
        self.bus.policy.check(topic).map_err(|e| ErrorInfo::new(ErrorKind::Reserved, e.to_string()))?;
        self.fan_out(topic, payload);
        Ok(())
    }

    /// Publishes as the host (the governor itself): any topic.
    pub fn publish_as_host(&mut self, topic: &str, payload: Payload) {
        self.fan_out(topic, payload);
    }

    fn fan_out(&mut self, topic: &str, payload: Payload) {
        let now = self.os.now();
        let matching: Vec<u64> =
            self.bus.subs.iter().filter(|(_, s)| s.pattern.matches(topic)).map(|(&id, _)| id).collect();
        for id in matching {
            let Some(sub) = self.bus.subs.get_mut(&id) else { continue };
            sub.mailbox.push((topic.to_string(), payload.clone()), now);
            self.flush(id);
        }
    }

    /// Delivers what the throttle allows now; schedules the rest.
    pub fn flush(&mut self, id: u64) {
        let now = self.os.now();
        let Some(sub) = self.bus.subs.get_mut(&id) else { return };
        sub.flush_scheduled = false;
        let mut ready = Vec::new();
        while let Some(item) = sub.mailbox.pop_ready(now) {
            ready.push(item);
        }
        let (proc, actor, dropped) = (sub.proc, sub.actor, sub.mailbox.dropped());
        let next = sub.mailbox.next_ready_at(now);
        if let Some(at) = next {
            sub.flush_scheduled = true;
            self.after(at.saturating_duration_since(now), Input::BusFlush(id));
        }
        // A subscriber whose outbox is full misses publications as a full queue would.
        let mut refused = 0;
        for (topic, payload) in ready {
            let frame = Frame::Command(Cmd::Publication { subscription: id, actor, topic, payload, dropped });
            if let Err(Refusal::Full { .. }) = self.offer(proc, &frame) {
                refused += 1;
            }
        }
        if let (true, Some(sub)) = (refused > 0, self.bus.subs.get_mut(&id)) {
            sub.mailbox.count_dropped(refused);
        }
    }

    /// Subscriptions end with their actor.
    pub fn unsubscribe_actor(&mut self, actor: ActorId) {
        self.bus.subs.retain(|_, s| s.actor != Some(actor));
    }

    /// Subscriptions end with their process.
    pub fn unsubscribe_proc(&mut self, proc: ProcIdx) {
        self.bus.subs.retain(|_, s| s.proc != proc);
    }
}
