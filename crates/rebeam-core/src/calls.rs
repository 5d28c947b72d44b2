//! In-flight deliveries: the one index of messages handed to an actor whose end someone waits
//! for (a caller waiting for its reply, or the safety gate waiting for gated work to stop).
//!
//! The rules this machine implements:
//!
//! - A call is tracked from its delivery until exactly one of: the actor answers it (`reply`),
//!   its actor ends (`actor_ended`: the caller gets an error at once; but see the next rule),
//!   its caller gives up
//!   (`expire`: past the deadline the caller's own timeout fired, so nothing is sent; a late
//!   reply is then dropped), its caller's process dies (`proc_died`), or a disarm interrupts it
//!   (`cancel_gated`: the caller gets a safety error at once).
//! - **What the actor's process had taken.** When an actor ends in a process that lives on, the
//!   process says up to which delivery id it had taken deliveries in (checked them against the
//!   actor's liveness) when the actor died (`taken_up_to`). Those deliveries end with the actor
//!   (`ActorDown`: each one ran, or was lost in the cleared mailbox). A later one reached the
//!   process after the actor died, so the process answers it itself (`NoProcess`: it was not
//!   delivered, and trying again is safe); it stays tracked, waiting for that answer, until the
//!   process answers or dies (`worker_died`: then it fails as the others did). Why it matters:
//!   a caller told of a crash over a direct channel may call again through the governor before
//!   the governor has read the actor's end from its process's socket; without this, that call
//!   would get `ActorDown` although it never reached the actor.
//! - Gated work (a call or a cast to a `@requires_armed` handler) stays tracked after its caller
//!   is answered or gone, until the actor answers it or ends: the gate must know when the work
//!   itself stopped, not only when its caller stopped waiting.
//! - A delivery whose caller is gone and that is not gated is forgotten at once, so nothing
//!   grows per timeout or per dead caller.
//!
//! Nothing here sends anything: each operation returns what the governor must tell whom.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// Identifies one delivery (the governor's delivery id).
pub type DeliveryId = u64;
/// The actor a delivery is for.
pub type ActorId = u64;
/// The caller's request id, as its process numbered it.
pub type ReqId = u64;

/// Who waits for a call's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller<P> {
    pub proc: P,
    pub req: ReqId,
    /// When the caller has surely given up (its timeout, plus slack); `None` never.
    pub deadline: Option<Instant>,
}

/// One delivery in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<P> {
    pub actor: ActorId,
    /// `None` for a gated cast, or once the caller was answered or is gone.
    pub caller: Option<Caller<P>>,
    /// Whether it is gated work.
    pub gated: bool,
    /// The disarm (its number) that cancelled this gated work, if one did.
    pub cancelled: Option<u64>,
    /// Its actor ended, but its process took it in only afterwards and will answer it: the
    /// process whose answer (or death) it waits for.
    pub awaiting: Option<P>,
}

/// A delivery that left the index because its actor answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replied<P> {
    pub actor: ActorId,
    /// Whom to forward the answer to (`None`: nobody waits any more; drop it).
    pub caller: Option<Caller<P>>,
    /// It was gated work: the gate may now have nothing left in flight.
    pub gated: bool,
}

/// What ending an actor's deliveries asks of the governor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ended<P> {
    /// Callers to answer with an error (the actor will never answer them).
    pub callers: Vec<Caller<P>>,
    /// Whether gated work ended with it.
    pub gated: bool,
}

/// One gated delivery a disarm cancelled: the worker of `actor` is told to cancel `delivery`,
/// and `caller`, if any, gets a safety error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled<P> {
    pub delivery: DeliveryId,
    pub actor: ActorId,
    pub caller: Option<Caller<P>>,
}

/// The index. `P` names a process (the governor's process id type).
#[derive(Debug, Clone)]
pub struct InFlight<P> {
    deliveries: HashMap<DeliveryId, Delivery<P>>,
    /// The same deliveries by actor, kept in step by this type alone.
    by_actor: HashMap<ActorId, BTreeSet<DeliveryId>>,
}

impl<P> Default for InFlight<P> {
    fn default() -> Self {
        InFlight { deliveries: HashMap::new(), by_actor: HashMap::new() }
    }
}

impl<P: Copy + Eq> InFlight<P> {
    /// Tracks a delivery the governor has handed to `actor`'s worker (or parked for it). One
    /// with neither a caller nor a gate is not tracked: nobody waits for its end.
    pub fn deliver(&mut self, delivery: DeliveryId, actor: ActorId, caller: Option<Caller<P>>, gated: bool) {
        if caller.is_none() && !gated {
            return;
        }
        self.forget(delivery);
        self.deliveries.insert(delivery, Delivery { actor, caller, gated, cancelled: None, awaiting: None });
        self.by_actor.entry(actor).or_default().insert(delivery);
    }

    /// The actor answered `delivery`. `None` if it was not in flight (late, or never tracked).
    pub fn reply(&mut self, delivery: DeliveryId) -> Option<Replied<P>> {
        let d = self.forget(delivery)?;
        Some(Replied { actor: d.actor, caller: d.caller, gated: d.gated })
    }

    /// `actor` ended: its deliveries end with it, answered or not, except, when its process
    /// lives on and says it had taken deliveries in up to some id (`taken`: the process and
    /// that id), the later ones, which wait for that process's own answer (see the module's
    /// rules).
    pub fn actor_ended(&mut self, actor: ActorId, taken: Option<(P, DeliveryId)>) -> Ended<P> {
        let mut ended = Ended { callers: Vec::new(), gated: false };
        let ids = self.by_actor.remove(&actor).unwrap_or_default();
        let upto = taken.map_or(DeliveryId::MAX, |(_, upto)| upto);
        let (waiting, ending): (BTreeSet<_>, BTreeSet<_>) = ids.into_iter().partition(|&id| id > upto);
        for id in ending {
            if let Some(d) = self.deliveries.remove(&id) {
                ended.callers.extend(d.caller);
                ended.gated |= d.gated;
            }
        }
        for &id in &waiting {
            if let Some(d) = self.deliveries.get_mut(&id) {
                d.awaiting = taken.map(|(worker, _)| worker);
            }
        }
        if !waiting.is_empty() {
            self.by_actor.insert(actor, waiting);
        }
        ended
    }

    /// `worker` died: the deliveries that waited for its own answer end as their actor did.
    pub fn worker_died(&mut self, worker: P) -> Ended<P> {
        let mut ids: Vec<DeliveryId> =
            self.deliveries.iter().filter(|(_, d)| d.awaiting == Some(worker)).map(|(&id, _)| id).collect();
        ids.sort_unstable(); // deterministic answers, whatever the hash seed
        let mut ended = Ended { callers: Vec::new(), gated: false };
        for id in ids {
            if let Some(d) = self.forget(id) {
                ended.callers.extend(d.caller);
                ended.gated |= d.gated;
            }
        }
        ended
    }

    /// Forgets the callers that have given up by `now`; returns how many. Their callers are
    /// told nothing: each one's own timeout already fired (the deadline is past it).
    pub fn expire(&mut self, now: Instant) -> usize {
        self.drop_callers(|c| matches!(c.deadline, Some(at) if at <= now))
    }

    /// Process `proc` died: nobody there waits for a reply any more.
    pub fn proc_died(&mut self, proc: P) -> usize {
        self.drop_callers(|c| c.proc == proc)
    }

    /// A disarm (number `disarm`) cancels every gated delivery not cancelled before; their
    /// callers stop waiting (the governor answers them). The work stays tracked until it ends.
    pub fn cancel_gated(&mut self, disarm: u64) -> Vec<Cancelled<P>> {
        let mut out = Vec::new();
        for (&delivery, d) in self.deliveries.iter_mut().filter(|(_, d)| d.gated && d.cancelled.is_none()) {
            d.cancelled = Some(disarm);
            out.push(Cancelled { delivery, actor: d.actor, caller: d.caller.take() });
        }
        // Deterministic order: the governor's frames then do not depend on the hash seed.
        out.sort_unstable_by_key(|c| c.delivery);
        out
    }

    /// Actors still running gated work that `disarm` cancelled, in order, each once.
    pub fn cancelled_by(&self, disarm: u64) -> BTreeSet<ActorId> {
        self.deliveries.values().filter(|d| d.cancelled == Some(disarm)).map(|d| d.actor).collect()
    }

    /// Whether any gated work is in flight.
    pub fn any_gated(&self) -> bool {
        self.deliveries.values().any(|d| d.gated)
    }

    pub fn get(&self, delivery: DeliveryId) -> Option<&Delivery<P>> {
        self.deliveries.get(&delivery)
    }

    /// Every delivery in flight, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (DeliveryId, &Delivery<P>)> {
        self.deliveries.iter().map(|(&id, d)| (id, d))
    }

    /// The deliveries in flight to `actor`.
    pub fn of_actor(&self, actor: ActorId) -> impl Iterator<Item = DeliveryId> + '_ {
        self.by_actor.get(&actor).into_iter().flatten().copied()
    }

    pub fn len(&self) -> usize {
        self.deliveries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty()
    }

    fn forget(&mut self, delivery: DeliveryId) -> Option<Delivery<P>> {
        let d = self.deliveries.remove(&delivery)?;
        if let Some(set) = self.by_actor.get_mut(&d.actor) {
            set.remove(&delivery);
            if set.is_empty() {
                self.by_actor.remove(&d.actor);
            }
        }
        Some(d)
    }

    /// Drops the callers `gone` picks; a delivery left with neither caller nor gate is forgotten.
    fn drop_callers(&mut self, gone: impl Fn(&Caller<P>) -> bool) -> usize {
        let mut dropped = 0;
        let mut forgotten = Vec::new();
        for (&id, d) in &mut self.deliveries {
            if d.caller.as_ref().is_some_and(&gone) {
                d.caller = None;
                dropped += 1;
                if !d.gated {
                    forgotten.push(id);
                }
            }
        }
        for id in forgotten {
            self.forget(id);
        }
        dropped
    }
}

#[cfg(test)]
mod tests;
