//! Processes that stop reading, and the rule for what their callers hear meanwhile.

use std::collections::HashSet;

use rebeam_proto::Role;

use super::Harness;
use crate::outbox::HUNG_AFTER;
use crate::router::ProcState;

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
    pub(super) fn calls_answered_or_pending(&mut self) -> Result<(), String> {
        let now = self.now;
        let pending: HashSet<(usize, u64)> = self.router.pending.values().map(|p| (p.caller, p.req)).collect();
        for (i, f) in self.fakes.iter_mut().enumerate() {
            f.calls_due.retain(|_, due| *due >= now);
            let p = &self.router.procs[i];
            if f.stalled || f.gone || f.closed || p.tx.is_none() || p.state == ProcState::Dead {
                continue;
            }
            if let Some(req) = f.calls_due.keys().find(|&&req| !pending.contains(&(i, req))) {
                return Err(format!("{}'s call (request {req}) was neither answered nor is it pending", p.describe()));
            }
        }
        Ok(())
    }
}
