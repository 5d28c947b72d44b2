//! Sending a behaviour ahead: to the worker where the behaviours queued before it were sent,
//! before they are done (the rule is in the module doc of `boc`).

use std::collections::VecDeque;

use foldhash::HashSet;

use super::{Boc, Effect, How, Pool, Run};
use crate::cowns::{BehaviourId, CownId, Location};

impl<T: Clone> Boc<T> {
    /// Where a behaviour about to be scheduled on `cowns` would go ahead, if it is not runnable
    /// then: the worker everything it needs will be at, read from the tails of their queues
    /// before it joins them. None when it may not go ahead.
    pub(super) fn ahead_target(&self, cowns: &[CownId], how: How, pool: &Pool) -> Option<Location> {
        if !self.send_ahead || how.at_main || how.gated {
            return None;
        }
        let mut target = None;
        for &c in cowns {
            if self.lost.contains(&c) || self.sched.is_pinned(c) {
                return None;
            }
            let at = match self.sched.tail(c) {
                Some(before) => {
                    if self.how.get(&before).is_some_and(|h| h.gated || h.at_main) {
                        return None;
                    }
                    // Only one already sent: one still gathering is sent later, and the worker
                    // keeps the order in which behaviours arrive.
                    *self.running.get(&before)?
                }
                None if self.empty.contains(&c) => continue,
                None => self.sched.location(c)?,
            };
            match target {
                None => target = Some(at),
                Some(t) if t != at => return None,
                Some(_) => {}
            }
        }
        target.filter(|at| matches!(at, Location::Worker(w) if pool.workers.contains(w)))
    }

    /// Sends the just-scheduled, not runnable `b` ahead to `at` (its `ahead_target`).
    pub(super) fn dispatch_ahead(&mut self, b: BehaviourId, at: Location, effects: &mut Vec<Effect<T>>) {
        let (code, result) = self.code.get(&b).cloned().expect("scheduled");
        let cowns = self.sched.cowns_of(b).expect("scheduled").to_vec();
        self.ahead.insert(b);
        self.running.insert(b, at);
        let run = Run { at, behaviour: b, cowns, result, values: Vec::new(), lost: Vec::new(), code, gated: false };
        effects.push(Effect::Run(run));
    }

    /// Completes the behaviours lost with the process at `at` (`describe` names it): those
    /// started first; one sent ahead is started, and completed, once what it waited for is.
    pub(super) fn complete_dead(
        &mut self,
        dead: Vec<BehaviourId>,
        at: Location,
        describe: &str,
        pool: &Pool,
        effects: &mut Vec<Effect<T>>,
    ) {
        let mut waiting: HashSet<BehaviourId> = dead.iter().copied().filter(|b| self.ahead.remove(b)).collect();
        self.early.retain(|b| !waiting.contains(b));
        let mut work: VecDeque<BehaviourId> = dead.into_iter().filter(|b| !waiting.contains(b)).collect();
        while let Some(b) = work.pop_front() {
            match self.complete(b, at) {
                Ok(next) => {
                    for n in next {
                        if waiting.remove(&n) {
                            let _ = self.sched.start(n);
                            work.push_back(n);
                        } else {
                            self.dispatch(n, pool, effects);
                        }
                    }
                }
                Err(e) => {
                    effects.push(Effect::Oddity(format!("behaviour {b} lost with {describe} completed oddly: {e}")))
                }
            }
        }
        if !waiting.is_empty() {
            effects
                .push(Effect::Oddity(format!("behaviours {waiting:?} sent ahead to {describe} never became runnable")));
        }
    }
}
