//! The bus: who is subscribed to what, and which publication goes to whom, when.
//!
//! A sans-IO machine over [`crate::topics`]: the governor feeds it requests and losses, and
//! carries out the [`Effect`]s it returns (send a publication, start a timer). Nothing here
//! sends, reads a clock or knows a process beyond the id `P` it is given.
//!
//! The rules:
//!
//! - A subscription belongs to a process, and to one of its actors or to the process itself
//!   (the main process's `rebeam.on`). It is checked when made ([`Spec::new`]): a valid
//!   pattern, `1 ≤ queue ≤ MAX_QUEUE`, `throttle ≤ MAX_THROTTLE`.
//! - A process may publish only on a valid topic outside the reserved prefixes, unless the
//!   host opened it ([`PublishPolicy`]); the refusal is the [`TopicError`] that says why. The
//!   host publishes on any topic.
//! - A publication is pushed into the mailbox of every subscription whose pattern matches,
//!   in subscription order (ids ascending), and each of those is flushed at once.
//! - A flush delivers what the mailbox's throttle lets out now ([`Effect::Deliver`], each
//!   carrying the subscription's drop count as it stands), and, if something is left
//!   waiting, asks to be flushed again when it becomes deliverable ([`Effect::FlushAt`]),
//!   once per instant: a timer already asked for that instant is not asked for twice.
//! - A delivery the subscriber could not take (its outbox was full) is counted as dropped,
//!   as a full queue would count it ([`Bus::undelivered`]).
//! - A subscription ends when it is unsubscribed, or its actor or process is gone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::topics::{validate_topic, Mailbox, Pattern, PublishPolicy, TopicError, MAX_QUEUE, MAX_THROTTLE};

/// Identifies a subscription (the governor hands out the ids).
pub type SubscriptionId = u64;
/// The actor a subscription belongs to.
pub type ActorId = u64;

/// What a subscription asks for, checked.
#[derive(Debug, Clone)]
pub struct Spec {
    pattern: Pattern,
    queue: usize,
    throttle: Duration,
}

impl Spec {
    /// Checks a subscription request: the pattern first, then the bounds.
    pub fn new(pattern: &str, throttle: Duration, queue: u32) -> Result<Spec, TopicError> {
        let pattern = Pattern::parse(pattern)?;
        if !(1..=MAX_QUEUE).contains(&(queue as usize)) || throttle > MAX_THROTTLE {
            return Err(TopicError::OutOfBounds { pattern: pattern.to_string(), queue, throttle });
        }
        Ok(Spec { pattern, queue: queue as usize, throttle })
    }
}

/// Whose a subscription is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<P> {
    pub proc: P,
    /// `None`: the process itself (its handler runs outside any actor).
    pub actor: Option<ActorId>,
}

/// One publication for one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication<P, T> {
    pub subscription: SubscriptionId,
    pub to: Owner<P>,
    pub topic: String,
    pub payload: T,
    /// What the subscription's queue has dropped so far.
    pub dropped: u64,
}

/// What the governor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<P, T> {
    /// Send this publication to its subscriber.
    Deliver(Publication<P, T>),
    /// Call [`Bus::flush`] for this subscription at `at`.
    FlushAt { subscription: SubscriptionId, at: Instant },
}

/// One subscription as the status report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionStats<P> {
    pub id: SubscriptionId,
    pub owner: Owner<P>,
    pub pattern: String,
    /// Publications waiting (for the throttle), and how many its queue holds at most.
    pub queued: usize,
    pub capacity: usize,
    /// Publications it lost so far (full queue, throttle, or an outbox that could not take them).
    pub dropped: u64,
}

struct Subscription<P, T> {
    owner: Owner<P>,
    pattern: Pattern,
    mailbox: Mailbox<(String, T)>,
    /// The instant a flush timer was last asked for, until a flush runs.
    flush_at: Option<Instant>,
}

/// The bus. `P` names a process, `T` is a payload (cloned once per matching subscriber).
pub struct Bus<P, T> {
    subs: BTreeMap<SubscriptionId, Subscription<P, T>>,
    policy: PublishPolicy,
}

impl<P: Copy + Eq, T: Clone> Bus<P, T> {
    /// A bus whose reserved topics matching `opened` are open to processes
    /// (`rebeam --allow-publish PATTERN`).
    pub fn new(opened: &[String]) -> Result<Self, TopicError> {
        let opened = opened.iter().map(|p| Pattern::parse(p)).collect::<Result<_, _>>()?;
        Ok(Bus { subs: BTreeMap::new(), policy: PublishPolicy::new(opened) })
    }

    /// Adds subscription `id` (an id not used before).
    pub fn subscribe(&mut self, id: SubscriptionId, owner: Owner<P>, spec: Spec) {
        let mailbox = Mailbox::new(spec.queue, spec.throttle);
        self.subs.insert(id, Subscription { owner, pattern: spec.pattern, mailbox, flush_at: None });
    }

    /// Ends subscription `id`; whether it existed.
    pub fn unsubscribe(&mut self, id: SubscriptionId) -> bool {
        self.subs.remove(&id).is_some()
    }

    /// A process publishes: refused on an invalid or reserved topic the host did not open.
    pub fn publish(&mut self, topic: &str, payload: T, now: Instant) -> Result<Vec<Effect<P, T>>, TopicError> {
        validate_topic(topic)?;
        self.policy.check(topic)?;
        Ok(self.publish_as_host(topic, payload, now))
    }

    /// The host publishes: any topic.
    pub fn publish_as_host(&mut self, topic: &str, payload: T, now: Instant) -> Vec<Effect<P, T>> {
        let matching: Vec<SubscriptionId> =
            self.subs.iter().filter(|(_, s)| s.pattern.matches(topic)).map(|(&id, _)| id).collect();
        let mut effects = Vec::new();
        for id in matching {
            let Some(sub) = self.subs.get_mut(&id) else { continue };
            sub.mailbox.push((topic.to_owned(), payload.clone()), now);
            self.flush_into(id, now, &mut effects);
        }
        effects
    }

    /// Delivers what subscription `id`'s throttle lets out at `now`; asks for a timer for the rest.
    pub fn flush(&mut self, id: SubscriptionId, now: Instant) -> Vec<Effect<P, T>> {
        let mut effects = Vec::new();
        if let Some(sub) = self.subs.get_mut(&id) {
            // Whatever timer this is, a flush runs now: a later one is asked for afresh.
            sub.flush_at = None;
            self.flush_into(id, now, &mut effects);
        }
        effects
    }

    /// `n` deliveries of subscription `id` never reached its subscriber.
    pub fn undelivered(&mut self, id: SubscriptionId, n: u64) {
        if let Some(sub) = self.subs.get_mut(&id) {
            sub.mailbox.count_dropped(n);
        }
    }

    /// `actor` is gone: its subscriptions end.
    pub fn actor_gone(&mut self, actor: ActorId) {
        self.subs.retain(|_, s| s.owner.actor != Some(actor));
    }

    /// `proc` is gone: its subscriptions end, its actors' included.
    pub fn proc_gone(&mut self, proc: P) {
        self.subs.retain(|_, s| s.owner.proc != proc);
    }

    /// Every subscription and its owner, in id order.
    pub fn subscriptions(&self) -> impl Iterator<Item = (SubscriptionId, Owner<P>)> + '_ {
        self.subs.iter().map(|(&id, s)| (id, s.owner))
    }

    /// What each subscription holds now, in id order (for the status report).
    pub fn stats(&self) -> impl Iterator<Item = SubscriptionStats<P>> + '_ {
        self.subs.iter().map(|(&id, s)| SubscriptionStats {
            id,
            owner: s.owner,
            pattern: s.pattern.as_str().to_owned(),
            queued: s.mailbox.len(),
            capacity: s.mailbox.capacity(),
            dropped: s.mailbox.dropped(),
        })
    }

    fn flush_into(&mut self, id: SubscriptionId, now: Instant, effects: &mut Vec<Effect<P, T>>) {
        let Some(sub) = self.subs.get_mut(&id) else { return };
        let ready: Vec<(String, T)> = std::iter::from_fn(|| sub.mailbox.pop_ready(now)).collect();
        let next = sub.mailbox.next_ready_at(now);
        if let Some(at) = next.filter(|&at| sub.flush_at != Some(at)) {
            sub.flush_at = Some(at);
            effects.push(Effect::FlushAt { subscription: id, at });
        }
        let (to, dropped) = (sub.owner, sub.mailbox.dropped());
        effects.extend(
            ready
                .into_iter()
                .map(|(topic, payload)| Effect::Deliver(Publication { subscription: id, to, topic, payload, dropped })),
        );
    }
}

#[cfg(test)]
mod tests;
