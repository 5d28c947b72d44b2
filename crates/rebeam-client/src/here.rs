//! Casts to an actor in this process, queued here without a round trip to the governor.
//!
//! The rules:
//! - **What is queued here.** A cast taken at once ([`Client::try_cast`]) whose target's route
//!   says its actor lives in this process (the governor refused it a channel for that reason,
//!   and the actor's `Started` came from here) is queued as the `Command::Deliver` the governor
//!   would have sent back, answered `delivered`, and counted for the governor's status report
//!   as a direct delivery is, when all of these hold: the actor is still live here; its subject
//!   is not gated (the gating its `Started` reported; under `--safety require-armed` every
//!   subject is, so none is queued here); the cast has no out-of-band buffers (those are lent
//!   the governor's way, as before); the process's deliveries are within [`DELIVERY_BOUND`];
//!   and nothing its sender sent the governor's way is unanswered.
//! - **Order per sender → actor.** The governor writes a delivery to this process before its
//!   answer to the request that caused it, on the one socket, whose reader queues commands in
//!   order. So once every call and cast a sender sent the governor's way is answered, each of
//!   them that reached an actor here is queued already, and a cast queued here now comes after
//!   them. Each call and cast sent the governor's way counts under its sender until its answer
//!   is in (a lent one sent again as bytes still counts); while any does, that sender's casts
//!   take the governor's way too.
//! - **Anything else** is handed back untouched for the full path, which goes the governor's
//!   way as before: over the bound, there, as the governor queues it (so nothing is dropped that
//!   was not before). A cached route to an actor no longer live here is forgotten first, so the
//!   governor resolves its target afresh.
//!
//! [`Client::try_cast`]: crate::Client::try_cast
//! [`DELIVERY_BOUND`]: crate::DELIVERY_BOUND

use std::collections::HashMap;
use std::sync::OnceLock;

use rebeam_proto::{ActorId, ActorRef, ReqId, Request, Target};

use crate::client::{lock, Shared};
use crate::direct::Direct;

/// Calls and casts sent the governor's way and not answered yet, by sender (see the rules).
#[derive(Default)]
pub(crate) struct Unanswered {
    by_req: HashMap<ReqId, Option<ActorId>>,
    per_sender: HashMap<Option<ActorId>, usize>,
}

impl Unanswered {
    /// Request `req` from `sender` went the governor's way.
    pub(crate) fn sent(&mut self, req: ReqId, sender: Option<ActorId>) {
        if self.by_req.insert(req, sender).is_none() {
            *self.per_sender.entry(sender).or_default() += 1;
        }
    }

    /// An answer to `req` came in (an answer to anything else is ignored).
    pub(crate) fn answered(&mut self, req: ReqId) {
        let Some(sender) = self.by_req.remove(&req) else { return };
        if let Some(n) = self.per_sender.get_mut(&sender) {
            *n -= 1;
            if *n == 0 {
                self.per_sender.remove(&sender);
            }
        }
    }

    /// Whether `sender` has anything the governor's way still unanswered.
    pub(crate) fn waits(&self, sender: Option<ActorId>) -> bool {
        !self.per_sender.is_empty() && self.per_sender.contains_key(&sender)
    }
}

impl Direct {
    /// Queues cast `body` for `actor`, which its target's route says lives here, if it may
    /// be (see the rules); else hands it back untouched.
    pub(crate) fn cast_here(&self, shared: &Shared, actor: ActorId, body: Request) -> Option<Request> {
        let Request::Cast { target, subject, sender, payload } = &body else { return Some(body) };
        if !payload.buffers.is_empty() || all_gated() || shared.backlog.over() {
            return Some(body);
        }
        {
            let live = lock(&self.live);
            let Some(gating) = live.get(&actor) else {
                drop(live);
                // Gone from here (ended, or restarted elsewhere): the governor resolves it.
                lock(&self.routes).remove(target);
                return Some(body);
            };
            if rebeam_core::gate::marks(&gating.subjects, gating.catch_all, &gating.handled, subject) {
                return Some(body);
            }
        }
        if lock(&self.unanswered).waits(*sender) {
            return Some(body);
        }
        let Request::Cast { subject, sender, payload, .. } = body else { unreachable!("matched above") };
        let sender = sender.map(|id| ActorRef { id, name: lock(&self.names).get(&id).cloned() });
        self.deliver(None, actor, subject, sender, payload);
        // The governor's status counts it as it counts deliveries off the channels; the
        // report goes at most once per `COUNT_REPORT`, and a process with no channel has no
        // channel thread to send it.
        self.report_counts(shared);
        None
    }

    /// The id of the actor here that `target` names (see [`Direct::hosts`]).
    pub(crate) fn hosted_id(&self, target: &Target) -> Option<ActorId> {
        let live = lock(&self.live);
        match target {
            Target::Actor(id) => live.contains_key(id).then_some(*id),
            Target::Name(name) => {
                lock(&self.names).iter().find(|(id, n)| *n == name && live.contains_key(id)).map(|(id, _)| *id)
            }
        }
    }
}

/// Whether this run gates every subject (`rebeam --safety require-armed`), as the governor
/// tells the processes it starts.
pub(crate) fn all_gated() -> bool {
    static ALL: OnceLock<bool> = OnceLock::new();
    *ALL.get_or_init(|| std::env::var(rebeam_proto::env::SAFETY).is_ok_and(|v| v == "require-armed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_waits_until_each_of_its_requests_is_answered_and_only_its_own() {
        let mut u = Unanswered::default();
        assert!(!u.waits(Some(1)) && !u.waits(None));
        u.sent(10, Some(1));
        u.sent(11, Some(1));
        u.sent(12, None);
        assert!(u.waits(Some(1)) && u.waits(None) && !u.waits(Some(2)));
        u.answered(10);
        assert!(u.waits(Some(1)), "one still unanswered");
        u.answered(99); // not ours: ignored
        u.answered(11);
        assert!(!u.waits(Some(1)));
        u.answered(11); // twice: ignored
        assert!(u.waits(None));
        u.answered(12);
        assert!(!u.waits(None));
    }

    #[test]
    fn a_request_noted_twice_counts_once() {
        let mut u = Unanswered::default();
        u.sent(5, Some(3));
        u.sent(5, Some(3));
        u.answered(5);
        assert!(!u.waits(Some(3)));
    }
}
