//! The thread draining the completion queue reads the rings itself: an answer to a call started
//! with a completion then wakes one thread of this process, the one that hands it out, not a
//! channel thread that queues it for that one.
//!
//! The rules:
//! - **Only where no command thread reads the rings** (a process that did not ask for
//!   [`Client::read_rings_when_idle`](crate::Client::read_rings_when_idle)), only while the
//!   drainer would otherwise sleep on an empty queue with a completion outstanding (with none,
//!   a caller of this process would only have to ring it off its ring), and never while the
//!   process's backlog is over its bound (the channel threads' rule for that holds: records
//!   stay in the rings).
//! - **Taking the rings.** It takes only the locks that are free at once (a ring a caller of
//!   this process reads, or the channel thread holds for a moment, is left to them), marked as
//!   the thread on the ring so that a caller arriving rings it off.
//! - **Reading.** Holding the rings it has, it sleeps on all of them and on the queue's doorbell
//!   (rung for anything queued by another thread: an answer on the socket or on a ring it does
//!   not hold, an earlier deadline, the close), and reads a ring that has records as its channel
//!   thread would (`reading::take_ready`: ring order, each record released once handled, kept
//!   behind a hold, at the bound as the channel thread reads). It stops as soon as anything is
//!   queued or the time it was given passes (a deadline's expiry is the drainer's, after it),
//!   and lets go of a ring whose peer died (its channel thread meets the death and answers every
//!   call in flight there) or that a caller wants. What it queues itself does not ring its own
//!   doorbell, and a ring it holds is quiet while it spins.
//! - **Giving the rings back** is as any reader's (`reading::leave`: read, announced, so the
//!   channel thread, asleep behind it, wakes for the next record).

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::Shared;
use crate::direct::Link;
use crate::held_rings::{wait_and_read, Held, Taken};

/// How long it sleeps at a time when nothing nearer is due: it looks whether the connection
/// closed (the close rings the queue's doorbell, so this is only a backstop).
const COMPLETION_SLICE: Duration = Duration::from_millis(500);

/// Reads the rings until something is queued for the drainer, `until` passes, or nothing is
/// left to read (see the module rules); the drainer then takes from the queue as it would have.
pub(crate) fn read_until_completed(shared: &Shared, until: Option<Instant>) {
    let completions = &shared.completions;
    let Some(bell) = completions.bell() else { return };
    if shared.backlog.over() || completions.queued() {
        return;
    }
    let links = shared.direct.links();
    let mut held = take_free(shared, &links);
    completions.rings_waiting.store(true, Ordering::SeqCst);
    // Pairs with the fence in `Completions::queued_by_another`: either it sees the flag and
    // rings, or this sees what it queued.
    std::sync::atomic::fence(Ordering::SeqCst);
    while !held.is_empty() && !completions.queued() && !shared.backlog.over() {
        let left = until.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) || shared.closed.load(Ordering::SeqCst) {
            break;
        }
        let timeout = left.map_or(COMPLETION_SLICE, |l| l.min(COMPLETION_SLICE));
        if !wait_and_read(shared, &mut held, bell.as_fd(), timeout, || completions.queued(), &completions.rings_waiting)
        {
            break;
        }
    }
    completions.rings_waiting.store(false, Ordering::SeqCst);
    held.into_iter().for_each(|h| h.release(shared));
}

/// Takes the locks that are free now, leaving a ring a caller of this process wants to it.
fn take_free<'a>(shared: &Shared, links: &'a [Arc<Link>]) -> Vec<Held<'a>> {
    links
        .iter()
        .filter_map(|link| match Held::take(shared, link) {
            Taken::Held(h) => Some(h),
            Taken::Busy | Taken::Wanted => None,
        })
        .collect()
}
