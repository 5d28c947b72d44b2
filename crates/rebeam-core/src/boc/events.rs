//! The inputs of [`Boc`], one method per event the governor reports.

use foldhash::HashSet;

use super::{Boc, BocError, Effect, How, Pending, Pool, ReqId, Stage};
use crate::cowns::{BehaviourId, CownError, CownId, Location};

impl<T: Clone> Boc<T> {
    /// The process at `at` created a cown (its value is there).
    pub fn create_cown(&mut self, at: Location, cown: CownId, pinned: bool) -> Result<(), CownError> {
        self.sched.create_cown(cown, at, pinned)
    }

    /// The process at `at` schedules behaviour `b` on `cowns`, its result going to `result`
    /// (a cown made for it here). Refused if the request is, and then nothing is left of it.
    #[allow(clippy::too_many_arguments)]
    pub fn schedule(
        &mut self,
        at: Location,
        b: BehaviourId,
        cowns: Vec<CownId>,
        result: CownId,
        code: T,
        how: How,
        pool: &Pool,
    ) -> Result<Vec<Effect<T>>, BocError> {
        let mut effects = Vec::new();
        self.schedule_into(at, b, cowns, result, code, how, pool, &mut effects)?;
        Ok(effects)
    }

    /// As [`Boc::schedule`], its effects appended to `effects` (a caller's buffer, reused
    /// from one behaviour to the next).
    #[allow(clippy::too_many_arguments)]
    pub fn schedule_into(
        &mut self,
        at: Location,
        b: BehaviourId,
        cowns: Vec<CownId>,
        result: CownId,
        code: T,
        how: How,
        pool: &Pool,
        effects: &mut Vec<Effect<T>>,
    ) -> Result<(), BocError> {
        if how.at_main && at != Location::Main {
            return Err(BocError::AcquireOffMain);
        }
        self.sched.create_cown(result, at, false)?;
        self.empty.insert(result);
        let ahead = self.ahead_target(&cowns, how, pool);
        let mut request = cowns;
        request.push(result);
        let runnable = match self.sched.schedule_owned(b, request) {
            Ok(runnable) => runnable,
            Err(e) => {
                // Refused: the result cown made for it must not linger.
                let _ = self.sched.drop_cown(result);
                self.empty.remove(&result);
                return Err(e.into());
            }
        };
        self.pending.insert(b, Pending { how, code, result, stage: Stage::Queued });
        if runnable {
            self.dispatch(b, pool, effects);
        } else if let Some(at) = ahead {
            self.dispatch_ahead(b, at, effects);
        }
        Ok(())
    }

    /// Runnable behaviours that found no place (no worker ready yet, or the pool warming) go now.
    pub fn dispatch_waiting(&mut self, pool: &Pool) -> Vec<Effect<T>> {
        let mut effects = Vec::new();
        for b in self.sched.runnable() {
            self.dispatch(b, pool, &mut effects);
        }
        effects
    }

    /// A surrendered value arrived.
    pub fn cown_value(&mut self, cown: CownId, value: T) -> Vec<Effect<T>> {
        let mut effects = Vec::new();
        let Some(b) = self.surrenders.remove(&cown) else { return effects };
        if let Some(Pending { stage: Stage::Gathering(w), .. }) = self.pending.get_mut(&b) {
            w.missing.remove(&cown);
            w.values.push((cown, value));
        }
        self.maybe_run(b, &mut effects);
        effects
    }

    /// The process at `at` says behaviour `b` is done (a late or unknown one is ignored).
    pub fn behaviour_done(&mut self, at: Location, b: BehaviourId, pool: &Pool) -> Vec<Effect<T>> {
        let mut effects = Vec::new();
        self.behaviour_done_into(at, b, pool, &mut effects);
        effects
    }

    /// As [`Boc::behaviour_done`], its effects appended to `effects`.
    pub fn behaviour_done_into(&mut self, at: Location, b: BehaviourId, pool: &Pool, effects: &mut Vec<Effect<T>>) {
        if let Some(Pending { stage: Stage::Running { at: there, ahead: true, early }, .. }) = self.pending.get_mut(&b)
        {
            // Sent ahead and not runnable yet: a worker keeps the order, so this one is early
            // (a confused worker); it counts once the behaviours before it are done.
            if *there == at {
                *early = true;
            }
            return;
        }
        // Those sent ahead that were early are finished in turn, last woken first.
        self.finish(at, b, pool, effects);
        while let Some((b, at)) = self.early_ready.pop() {
            self.finish(at, b, pool, effects);
        }
        self.answer_quiesce(effects);
    }

    fn finish(&mut self, at: Location, b: BehaviourId, pool: &Pool, effects: &mut Vec<Effect<T>>) {
        if !matches!(self.pending.get(&b), Some(Pending { stage: Stage::Running { .. }, .. })) {
            return;
        }
        let Pending { how, result, stage, .. } = self.pending.remove(&b).expect("checked");
        if let Some(there) = stage.placed() {
            self.unload(there);
        }
        self.empty.remove(&result);
        if !how.at_main {
            *self.ran.entry(at).or_default() += 1;
        }
        // Lost cowns stay lost: a behaviour cannot write them (their value raises), so running
        // one does not bring a value back.
        let completed = self.complete(b, at);
        if how.gated {
            effects.push(Effect::GatedEnded(b));
        }
        if how.at_main {
            // An acquire's result cown is never seen by the program.
            let _ = self.sched.drop_cown(result);
        }
        match completed {
            Ok(next) => next.into_iter().for_each(|n| self.dispatch(n, pool, effects)),
            Err(e) => effects.push(Effect::Oddity(format!("behaviour {b} completed oddly: {e}"))),
        }
    }

    /// The process at `at` (`describe` names it for the log) died.
    pub fn proc_died(&mut self, at: Location, describe: &str, pool: &Pool) -> Vec<Effect<T>> {
        let mut effects = Vec::new();
        // Its own `wait()` calls: nobody is left to answer.
        self.quiesce.retain(|&(p, _, _)| p != at);
        // Those sent there first, then those gathering to run there; each with whether it was
        // sent ahead and not runnable yet.
        let (mut dead, mut gathering_here) = (Vec::new(), Vec::new());
        let here: Vec<BehaviourId> =
            self.pending.iter().filter(|(_, p)| p.stage.placed() == Some(at)).map(|(&b, _)| b).collect();
        for b in here {
            let p = self.pending.remove(&b).expect("listed");
            self.empty.remove(&p.result);
            match p.stage {
                Stage::Running { ahead, .. } => {
                    if p.how.gated {
                        effects.push(Effect::GatedEnded(b));
                    }
                    dead.push((b, ahead));
                }
                Stage::Gathering(w) => {
                    for c in w.missing {
                        self.surrenders.remove(&c);
                    }
                    gathering_here.push((b, false));
                }
                Stage::Queued => unreachable!("placed"),
            }
        }
        dead.append(&mut gathering_here);
        self.load.remove(&at);
        for &(b, _) in &dead {
            let cowns = self.sched.cowns_of(b).map(<[CownId]>::to_vec).unwrap_or_default();
            self.lost.extend(cowns);
        }
        // A value it surrendered before dying is safe with the governor, on its way elsewhere.
        let in_transit: HashSet<CownId> = self
            .pending
            .values()
            .filter_map(Pending::gathering)
            .flat_map(|w| w.values.iter().map(|(c, _)| *c))
            .collect();
        let held: Vec<CownId> = self.sched.cowns_at(at).into_iter().filter(|c| !in_transit.contains(c)).collect();
        self.lost.extend(held);
        let waiting: Vec<BehaviourId> =
            self.pending.iter().filter(|(_, p)| p.gathering().is_some()).map(|(&b, _)| b).collect();
        for b in waiting {
            let Some(Pending { stage: Stage::Gathering(w), .. }) = self.pending.get_mut(&b) else { continue };
            let gone: Vec<CownId> = w.missing.iter().copied().filter(|c| self.lost.contains(c)).collect();
            for c in gone {
                w.missing.remove(&c);
                self.surrenders.remove(&c);
            }
            self.maybe_run(b, &mut effects);
        }
        self.complete_dead(dead, at, describe, pool, &mut effects);
        self.forget_dead(at);
        // Behaviours deferred while the pool was warming go now, or when the next worker is ready.
        effects.extend(self.dispatch_waiting(pool));
        self.answer_quiesce(&mut effects);
        effects
    }

    /// The process at `to` calls `wait()` (request `req`; `token` names its timer, if any).
    pub fn quiesce(&mut self, to: Location, req: ReqId, token: u64) -> Vec<Effect<T>> {
        self.quiesce.push((to, req, token));
        let mut effects = Vec::new();
        self.answer_quiesce(&mut effects);
        effects
    }

    /// The timer `token` of a `wait()` fired: it is answered with a timeout, if still waiting.
    pub fn quiesce_deadline(&mut self, token: u64) -> Vec<Effect<T>> {
        let Some(i) = self.quiesce.iter().position(|&(_, _, t)| t == token) else { return Vec::new() };
        let (to, req, _) = self.quiesce.remove(i);
        vec![Effect::QuiesceTimedOut { to, req, pending: self.sched.pending() }]
    }
}
