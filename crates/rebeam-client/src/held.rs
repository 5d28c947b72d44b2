//! Records held behind a direct call's reply that went the governor's way, so that nothing the
//! callee's process sent after it overtakes it (one order per sender → receiver).
//!
//! A reply too large for its ring goes the governor's way, and the callee then writes `AWAY`
//! on the ring (the `direct` module). What that process writes on the ring afterwards (a cast
//! from the same actor, another reply) would reach this process before the reply, which takes
//! the longer way. The rules:
//! - **A hold starts** when `AWAY` for call `req` is read, if the call still waits for its
//!   answer (one already answered, or given up on, holds nothing back).
//! - **While a link holds**, every record read off its ring is kept here, in ring order, not
//!   handled; a kept delivery counts in the backlog as a queued one does (so a flood meanwhile
//!   meets the bound), and callers leave the ring to the channel thread (their replies are
//!   kept like the rest).
//! - **A hold ends** when the answer to `req` has been handed to its waiter, at the call's
//!   timeout at the latest (a reply never forwarded leaves nothing stuck), or when the link is
//!   lost (the governor forwards the reply before it says the peer died). Then the kept records
//!   are handled in order, until another hold starts among them; records read meanwhile are
//!   kept behind them, and one thread at a time hands them on.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use rebeam_proto::{Frame, ReqId};

use crate::client::lock;

/// A link's holds and the records kept behind them (see the module rules).
#[derive(Default)]
pub(crate) struct Held {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Calls whose reply comes the governor's way, and when their hold ends at the latest.
    holds: HashMap<ReqId, Instant>,
    kept: VecDeque<Frame>,
    /// A thread is handing kept records on: later ones queue behind them.
    draining: bool,
}

impl State {
    fn passes(&self) -> bool {
        self.holds.is_empty() && self.kept.is_empty() && !self.draining
    }
}

impl Held {
    /// A record read off the ring: back to be handled now, or None if it was kept.
    pub(crate) fn pass(&self, frame: Frame) -> Option<Frame> {
        let mut state = lock(&self.state);
        if state.passes() {
            return Some(frame);
        }
        state.kept.push_back(frame);
        None
    }

    /// Whether records are held back now (a hold is on, or kept records wait to be handed on).
    pub(crate) fn holding(&self) -> bool {
        !lock(&self.state).passes()
    }

    /// Call `req`'s reply comes the governor's way: what follows it waits until `until`.
    pub(crate) fn hold(&self, req: ReqId, until: Instant) {
        lock(&self.state).holds.insert(req, until);
    }

    /// When the first hold on now ends at the latest (whoever reads the ring, the channel
    /// thread wakes for it then).
    pub(crate) fn next_end(&self) -> Option<Instant> {
        lock(&self.state).holds.values().min().copied()
    }

    /// Whether call `req`'s hold is on.
    pub(crate) fn has(&self, req: ReqId) -> bool {
        lock(&self.state).holds.contains_key(&req)
    }

    /// Ends the hold for `req`; whether there was one.
    pub(crate) fn release(&self, req: ReqId) -> bool {
        lock(&self.state).holds.remove(&req).is_some()
    }

    /// Ends every hold past its time (all of them with `now` None); whether any ended.
    pub(crate) fn expire(&self, now: Option<Instant>) -> bool {
        let mut state = lock(&self.state);
        let before = state.holds.len();
        match now {
            Some(now) => state.holds.retain(|_, until| *until > now),
            None => state.holds.clear(),
        }
        state.holds.len() < before
    }

    /// Hands the kept records on, in order, to `handle` (outside the lock: handling one may
    /// start a hold, which stops here), unless another thread is doing so.
    pub(crate) fn drain(&self, mut handle: impl FnMut(Frame)) {
        {
            let mut state = lock(&self.state);
            if state.draining || !state.holds.is_empty() || state.kept.is_empty() {
                return;
            }
            state.draining = true;
        }
        loop {
            let frame = {
                let mut state = lock(&self.state);
                let next = if state.holds.is_empty() { state.kept.pop_front() } else { None };
                if next.is_none() {
                    state.draining = false;
                }
                next
            };
            match frame {
                Some(frame) => handle(frame),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rebeam_proto::{Command, Response};

    use super::*;

    fn record(n: u64) -> Frame {
        Frame::Response { req: n, body: Response::Cast { delivered: false } }
    }

    fn drained(held: &Held) -> Vec<Frame> {
        let mut out = Vec::new();
        held.drain(|f| out.push(f));
        out
    }

    #[test]
    fn without_a_hold_records_pass() {
        let held = Held::default();
        assert_eq!(held.pass(record(1)), Some(record(1)));
        assert!(!held.holding());
    }

    #[test]
    fn behind_a_hold_records_are_kept_and_handed_on_in_order_once_it_ends() {
        let held = Held::default();
        held.hold(7, Instant::now() + Duration::from_secs(60));
        assert_eq!(held.pass(record(1)), None);
        assert_eq!(held.pass(record(2)), None);
        assert!(drained(&held).is_empty(), "still held");
        assert!(held.release(7));
        assert!(held.holding(), "kept records wait: a new one goes behind them");
        assert_eq!(held.pass(record(3)), None);
        assert_eq!(drained(&held), vec![record(1), record(2), record(3)]);
        assert_eq!(held.pass(record(4)), Some(record(4)));
        assert!(!held.release(7), "once");
    }

    #[test]
    fn the_next_end_is_the_earliest_hold_still_on() {
        let held = Held::default();
        assert_eq!(held.next_end(), None);
        let now = Instant::now();
        held.hold(1, now + Duration::from_secs(60));
        held.hold(2, now + Duration::from_secs(5));
        assert_eq!(held.next_end(), Some(now + Duration::from_secs(5)));
        held.release(2);
        assert_eq!(held.next_end(), Some(now + Duration::from_secs(60)));
        assert!(held.expire(Some(now + Duration::from_secs(61))));
        assert_eq!(held.next_end(), None);
    }

    #[test]
    fn a_hold_started_by_a_kept_record_stops_the_handing_on_there() {
        let held = Held::default();
        held.hold(1, Instant::now() + Duration::from_secs(60));
        for n in 10..13 {
            held.pass(record(n));
        }
        held.release(1);
        let mut out = Vec::new();
        held.drain(|f| {
            if f == record(10) {
                held.hold(2, Instant::now() + Duration::from_secs(60));
            }
            out.push(f)
        });
        assert_eq!(out, vec![record(10)]);
        held.release(2);
        assert_eq!(drained(&held), vec![record(11), record(12)]);
    }

    #[test]
    fn records_read_while_another_thread_hands_on_queue_behind() {
        let held = Held::default();
        held.hold(1, Instant::now() + Duration::from_secs(60));
        held.pass(record(1));
        held.release(1);
        let mut out = Vec::new();
        held.drain(|f| {
            if f == record(1) {
                // Read off the ring meanwhile: behind, not before, and a second drain is no-op.
                assert_eq!(held.pass(record(2)), None);
                held.drain(|_| panic!("one thread hands on at a time"));
            }
            out.push(f)
        });
        assert_eq!(out, vec![record(1), record(2)]);
    }

    #[test]
    fn a_hold_ends_at_its_time_or_with_the_link() {
        let held = Held::default();
        let now = Instant::now();
        held.hold(1, now + Duration::from_secs(1));
        held.hold(2, now + Duration::from_secs(60));
        assert!(!held.expire(Some(now)));
        assert!(held.expire(Some(now + Duration::from_secs(2))));
        assert!(!held.release(1), "ended by its time");
        held.pass(Frame::Command(Command::Shutdown { code: 0 }));
        assert!(held.expire(None));
        assert_eq!(drained(&held), vec![Frame::Command(Command::Shutdown { code: 0 })]);
    }
}
