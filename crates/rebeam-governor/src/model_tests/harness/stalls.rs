//! Processes that stop reading, and the rule for what their callers hear meanwhile.

use std::collections::HashSet;

use rebeam_proto::Role;

use super::Harness;
use crate::outbox::HUNG_AFTER;
use crate::router::{Input, ProcIdx, ProcState};

impl Harness {
    /// A process stops reading for a while (mostly a worker): deliveries to it are refused once
    /// its outbox is full, and a worker that stays so for `HUNG_AFTER` is killed by the sweep.
    pub(super) fn stall(&mut self) -> bool {
        let any = self.rng.chance(1, 10);
        let Some(i) = self.pick(|f, _, _| f.talking() && (any || (f.role == Role::Worker && !f.hosted.is_empty())))
        else {
            return false;
        };
        let hung = HUNG_AFTER.as_millis() as u64;
        let ms = match self.rng.below(3) {
            0 => self.rng.below(1000),
            1 => hung - 1000 + self.rng.below(2000),
            _ => self.rng.below(3 * hung),
        };
        self.note(format!("process {i} stops reading for {ms} ms"));
        *self.known.seen.entry("(a process stalls)".into()).or_default() += 1;
        let f = &mut self.fakes[i];
        f.stalled_until = self.now + ms;
        f.stalled = true;
        true
    }

    /// A call is answered (an error included) or waits in the router for its actor's reply,
    /// until its caller gives up: never silence. (Checked of callers that read, and hear.)
    /// The periodic sweep: a worker whose outbox has been over budget for `HUNG_AFTER` (on the
    /// router's clock) is killed by it.
    pub(super) fn sweep(&mut self) -> Result<bool, String> {
        self.sync_clock();
        let now = self.router.os.now();
        let hung: Vec<usize> = (0..self.fakes.len())
            .filter(|&i| {
                let Some(p) = self.router.procs.get(self.ids[i]) else { return false };
                let over = p.tx.as_ref().and_then(|tx| tx.over_for(now));
                p.role == Role::Worker && p.state != ProcState::Dead && over.is_some_and(|t| t >= HUNG_AFTER)
            })
            .collect();
        self.feed(Input::Sweep)?;
        match hung.iter().find(|&&i| !self.fakes[i].gone) {
            Some(&i) => Err(format!(
                "{} has not read for {HUNG_AFTER:?}, and the sweep left it alive",
                self.router.procs.get(self.ids[i]).map_or_else(|| format!("process {i}"), |p| p.describe())
            )),
            None => Ok(true),
        }
    }

    pub(super) fn calls_answered_or_pending(&mut self) -> Result<(), String> {
        let now = self.now;
        // In flight here, or asked of another node (whose answer, or the transport's timeout,
        // is still to come).
        let far = self.router.node.iter().flat_map(|l| l.waiting());
        let pending: HashSet<(ProcIdx, u64)> = self
            .router
            .calls
            .iter()
            .filter_map(|(_, d)| d.caller.as_ref().map(|c| (c.proc, c.req)))
            .chain(far)
            .collect();
        for (i, f) in self.fakes.iter_mut().enumerate() {
            f.calls_due.retain(|_, due| *due >= now);
            let id = self.ids[i];
            let Some(p) = self.router.procs.get(id) else { continue };
            if f.stalled || f.gone || f.closed || p.tx.is_none() || p.state == ProcState::Dead {
                continue;
            }
            if let Some(req) = f.calls_due.keys().find(|&&req| !pending.contains(&(id, req))) {
                return Err(format!("{}'s call (request {req}) was neither answered nor is it pending", p.describe()));
            }
        }
        Ok(())
    }
}
