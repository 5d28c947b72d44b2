//! How many deliveries wait in this process to be handled, and the bound past which its
//! channel threads leave records in their rings (so a slow receiver's memory stays bounded and
//! its senders meet a full ring: their bounded wait, then a cast refused and counted).
//!
//! The rules:
//! - **What counts.** Every delivery queued as a command (off a ring or the socket) counts
//!   from the moment it is queued until its consumer is done with it. By default that is when
//!   [`Client::next_command`] hands it out; a consumer that keeps its own mailboxes (a Python
//!   worker) says so once ([`Client::count_handled`]) and from then on reports each delivery it
//!   has finished with, whatever became of it ([`Client::handled`]).
//! - **Who waits.** Only a channel thread: while more than [`DELIVERY_BOUND`] deliveries
//!   count, it stops taking records off its ring at the next cast (between two records, never
//!   inside one; the cast stays in the ring) and sleeps until the count falls to [`RESUME_AT`]
//!   (a signal, not a timer; half the bound, so that under a steady flood it wakes once per
//!   half-bound of deliveries handled, not once per delivery).
//! - **Calls and answers pass it.** A call, or an answer to a call of ours, at the head of a
//!   ring is taken past the bound (up to [`CALL_BOUND`] for calls): each has a sender waiting
//!   for it, so calls are few, and holding them would stall a call cycle through a flooded
//!   process (A calls B, whose handler calls an actor in A's process) until it timed out. A
//!   caller reading its
//!   own reply reads past the bound: its reply may be behind deliveries, and it stops at its
//!   reply, so it adds at most one ring's worth per call. Replies are never held back.
//! - **A dead peer's records are still read.** A waiting channel thread looks at its peer each
//!   [`PEER_LOOK`]; once the peer is gone it reads on (what a peer sent before it died is
//!   delivered, as before), since a dead peer sends no more.
//!
//! [`Client::next_command`]: crate::Client::next_command
//! [`Client::count_handled`]: crate::Client::count_handled
//! [`Client::handled`]: crate::Client::handled

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::client::lock;

/// Deliveries that may wait in a process before its channel threads stop reading their rings.
/// A few thousand small casts are a few MB at most, and far more than a handler can fall
/// behind by and still catch up while its senders stay busy.
pub const DELIVERY_BOUND: usize = 4096;
/// Deliveries past which even calls stay in the rings: they pass [`DELIVERY_BOUND`] (see the
/// module rules), and this keeps what a process holds bounded whatever its senders do.
pub const CALL_BOUND: usize = 2 * DELIVERY_BOUND;
/// Where a channel thread that stopped at the bound takes its ring again.
pub(crate) const RESUME_AT: usize = DELIVERY_BOUND / 2;
/// How often a channel thread waiting for the backlog to fall looks whether its peer died or
/// the connection closed.
pub(crate) const PEER_LOOK: Duration = Duration::from_millis(20);

/// The count of deliveries waiting in this process (see the module rules).
#[derive(Default)]
pub(crate) struct Backlog {
    waiting: AtomicUsize,
    /// The consumer reports each delivery it is done with (else each counts until handed out).
    by_consumer: AtomicBool,
    /// Channel threads sleep on `fell` under this lock.
    sleep: Mutex<()>,
    fell: Condvar,
}

impl Backlog {
    /// A delivery was queued.
    pub(crate) fn queued(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
    }

    /// Deliveries handed out to the consumer (they stop counting unless it reports them).
    pub(crate) fn handed_out(&self, n: usize) {
        if n > 0 && !self.by_consumer.load(Ordering::SeqCst) {
            self.done(n);
        }
    }

    /// From now on a delivery counts until the consumer reports it done.
    pub(crate) fn count_by_consumer(&self) {
        self.by_consumer.store(true, Ordering::SeqCst);
    }

    /// `n` deliveries stop counting; a channel thread waiting for the count to fall wakes.
    pub(crate) fn done(&self, n: usize) {
        // Saturating: a report of more than was counted (a delivery queued before the consumer
        // said it counts) must not wrap the count and stop every ring.
        let before = self
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| Some(w.saturating_sub(n)))
            .unwrap_or_default();
        if before > RESUME_AT && before.saturating_sub(n) <= RESUME_AT {
            let _guard = lock(&self.sleep);
            self.fell.notify_all();
        }
    }

    /// Whether more deliveries wait than the bound allows.
    pub(crate) fn over(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > DELIVERY_BOUND
    }

    /// Whether more deliveries wait than even a call may pass.
    pub(crate) fn calls_over(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > CALL_BOUND
    }

    /// How many deliveries count now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Sleeps until the count falls to [`RESUME_AT`], up to `timeout`; true if it did.
    pub(crate) fn wait_below(&self, timeout: Duration) -> bool {
        let high = |_: &mut ()| self.waiting() > RESUME_AT;
        let guard = lock(&self.sleep);
        let (_guard, waited) = self.fell.wait_timeout_while(guard, timeout, high).unwrap_or_else(|p| p.into_inner());
        !waited.timed_out()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn filled() -> Backlog {
        let backlog = Backlog::default();
        for _ in 0..=DELIVERY_BOUND {
            backlog.queued();
        }
        backlog
    }

    #[test]
    fn past_the_bound_it_is_over_and_a_waiter_goes_on_only_at_the_resume_mark() {
        let backlog = filled();
        assert!(backlog.over());
        assert!(!backlog.wait_below(Duration::from_millis(1)));
        backlog.done(1);
        assert!(!backlog.over(), "within the bound again");
        assert!(!backlog.wait_below(Duration::from_millis(1)), "but not yet down to the resume mark");
        backlog.done(DELIVERY_BOUND - RESUME_AT);
        assert!(backlog.wait_below(Duration::ZERO));
    }

    #[test]
    fn by_default_a_delivery_handed_out_stops_counting_but_not_once_the_consumer_reports() {
        let backlog = filled();
        backlog.handed_out(DELIVERY_BOUND + 1);
        assert_eq!(backlog.waiting(), 0);
        let backlog = filled();
        backlog.count_by_consumer();
        backlog.handed_out(DELIVERY_BOUND + 1);
        assert!(backlog.over(), "handed out is not handled");
        backlog.done(DELIVERY_BOUND + 1);
        assert_eq!(backlog.waiting(), 0);
    }

    #[test]
    fn a_report_of_more_than_counted_does_not_wrap() {
        let backlog = Backlog::default();
        backlog.queued();
        backlog.done(5);
        assert_eq!(backlog.waiting(), 0);
        assert!(!backlog.over());
    }

    #[test]
    fn a_waiting_thread_wakes_when_the_count_falls_not_on_its_timeout() {
        let backlog = Arc::new(filled());
        let waiter = {
            let backlog = backlog.clone();
            std::thread::spawn(move || backlog.wait_below(Duration::from_secs(3600)))
        };
        backlog.done(DELIVERY_BOUND + 1 - RESUME_AT);
        assert!(waiter.join().unwrap(), "woken by the fall (a lost wake-up would hang here)");
    }
}
