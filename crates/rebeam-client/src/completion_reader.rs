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
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use rebeam_shm::{Receiver, Woke};

use crate::client::Shared;
use crate::direct::Link;
use crate::reading::{hold, leave, take_ready, try_lock};

/// How long it sleeps at a time when nothing nearer is due: it looks whether the connection
/// closed (the close rings the queue's doorbell, so this is only a backstop).
const COMPLETION_SLICE: Duration = Duration::from_millis(500);

/// One ring it reads: its link and its lock.
struct Held<'a> {
    link: &'a Arc<Link>,
    receiver: MutexGuard<'a, Receiver>,
}

impl Held<'_> {
    fn release(self, shared: &Shared) {
        self.link.turns.thread_reads.store(false, Ordering::SeqCst);
        leave(shared, self.link, self.receiver, true);
    }

    fn wanted(&self) -> bool {
        self.link.turns.readers.load(Ordering::SeqCst) > 0
    }
}

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
        let woke = {
            let links: Vec<&Arc<Link>> = held.iter().map(|h| h.link).collect();
            let wanted = || links.iter().any(|l| l.turns.readers.load(Ordering::SeqCst) > 0);
            let sleeps = || links.iter().for_each(|link| hold(link));
            let mut receivers: Vec<&mut Receiver> = held.iter_mut().map(|h| &mut *h.receiver).collect();
            rebeam_shm::wait_once_then(
                &mut receivers,
                bell.as_fd(),
                timeout,
                || completions.queued() || wanted(),
                sleeps,
            )
        };
        let lost = match woke {
            Ok(Woke::Record(i)) => {
                // It looks at the queue right after: what it queues itself need not ring its bell.
                completions.rings_waiting.store(false, Ordering::SeqCst);
                let h = &mut held[i];
                let read = take_ready(shared, h.link, &mut h.receiver, true).err().map(|_| i);
                completions.rings_waiting.store(true, Ordering::SeqCst);
                // As before the loop: either another pusher sees the flag, or the loop sees its entry.
                std::sync::atomic::fence(Ordering::SeqCst);
                read
            }
            Ok(Woke::PeerGone(i)) => Some(i),
            Ok(Woke::Also | Woke::Nothing) => None,
            // The poll itself failed: the channel threads read on, as they did before.
            Err(_) => break,
        };
        if let Some(i) = lost {
            held.swap_remove(i).release(shared);
        }
        let (wanted, kept): (Vec<_>, Vec<_>) = held.into_iter().partition(Held::wanted);
        held = kept;
        wanted.into_iter().for_each(|h| h.release(shared));
    }
    completions.rings_waiting.store(false, Ordering::SeqCst);
    held.into_iter().for_each(|h| h.release(shared));
}

/// Takes the locks that are free now, leaving a ring a caller of this process wants to it.
fn take_free<'a>(shared: &Shared, links: &'a [Arc<Link>]) -> Vec<Held<'a>> {
    let mut held = Vec::with_capacity(links.len());
    for link in links {
        if link.turns.readers.load(Ordering::SeqCst) > 0 {
            continue;
        }
        let Some(receiver) = try_lock(&link.receiver) else { continue };
        link.turns.thread_reads.store(true, Ordering::SeqCst);
        // A caller that came between the look and the mark may not have rung.
        if link.turns.readers.load(Ordering::SeqCst) > 0 {
            link.turns.thread_reads.store(false, Ordering::SeqCst);
            leave(shared, link, receiver, true);
            continue;
        }
        // It spins on the ring before it sleeps: meanwhile a record rings nobody (and the
        // channel thread is paused only once it sleeps).
        receiver.quiet();
        held.push(Held { link, receiver });
    }
    held
}
