//! Sending a behaviour ahead: to the worker where the behaviours queued before it were sent,
//! before they are done (the rule is in the module doc of `boc`).

use std::collections::VecDeque;

use foldhash::HashSet;

use super::{Boc, Effect, How, Pool, Run, Stage};
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
                    let before = self.pending.get(&before)?;
                    if before.how.gated || before.how.at_main {
                        return None;
                    }
                    // Only one already sent: one still gathering is sent later, and the worker
                    // keeps the order in which behaviours arrive.
                    match before.stage {
                        Stage::Running { at, .. } => at,
                        _ => return None,
                    }
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
        let p = self.pending.get_mut(&b).expect("scheduled");
        p.stage = Stage::Running { at, ahead: true, early: false };
        *self.load.entry(at).or_default() += 1;
        let (code, result) = (p.code.clone(), p.result);
        let cowns = self.sched.cowns_of(b).expect("scheduled").to_vec();
        let run = Run { at, behaviour: b, cowns, result, values: Vec::new(), lost: Vec::new(), code, gated: false };
        effects.push(Effect::Run(run));
    }

    /// Completes the behaviours lost with the process at `at` (`describe` names it), each with
    /// whether it was sent ahead and not runnable yet: those started first; one sent ahead is
    /// started, and completed, once what it waited for is.
    pub(super) fn complete_dead(
        &mut self,
        dead: Vec<(BehaviourId, bool)>,
        at: Location,
        describe: &str,
        pool: &Pool,
        effects: &mut Vec<Effect<T>>,
    ) {
        let mut waiting: HashSet<BehaviourId> = dead.iter().filter(|&&(_, ahead)| ahead).map(|&(b, _)| b).collect();
        let mut work: VecDeque<BehaviourId> = dead.into_iter().filter(|&(_, ahead)| !ahead).map(|(b, _)| b).collect();
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
