//! The idle command thread reads the rings itself: a message for an idle actor then wakes one
//! thread of this process, the one that runs it, not a channel thread that queues it for the
//! command thread.
//!
//! The rules:
//! - **Only when asked** ([`Client::read_rings_when_idle`](crate::Client::read_rings_when_idle):
//!   a worker's command loop), only while the command role's holder would otherwise sleep on
//!   an empty queue, and never while the process's backlog is over its bound (the channel
//!   threads' rule for that holds: records stay in the rings).
//! - **Taking the rings.** The holder takes each ring's lock, waiting for whoever reads it
//!   now (the channel thread, which never sleeps holding it) to let go. A ring a caller of
//!   this process reads, or waits to read, is left to it.
//! - **Reading.** Holding the rings it has, it sleeps on all of them and on the command role's
//!   doorbell (rung for anything queued: the socket's commands, or a ring a channel thread still
//!   read), and reads a ring that has records as its channel thread would (`take_ready`: ring
//!   order, each record released once queued, kept behind a hold as any reader's (`held.rs`),
//!   calls and answers passing the bound as they pass it there). It stops as soon as a command is
//!   queued, and lets go of a ring whose peer died (its channel thread meets the death) or that
//!   a caller wants (the caller rings the ring's bell; the holder lets go and wakes it). What it
//!   queues itself does not ring its own doorbell (it looks at the queue right after), and a
//!   ring it holds is quiet while it spins (`Receiver::quiet`): a record then rings nobody.
//! - **Giving the rings back.** Before it returns (to run what it took) it lets go of every
//!   ring as any reader does (`reading::leave`: announced, so the channel thread, asleep behind
//!   it, wakes for the next record), with no wake-up of anyone: the channel threads read while
//!   it is busy.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Select;

use crate::client::Shared;
use crate::direct::Link;
use crate::held_rings::{wait_and_read, Held, Taken};
use crate::role::CommandRole;

/// The command queue, as its consumer sees it.
type Commands = crossbeam_channel::Receiver<rebeam_proto::Command>;

/// How long the holder sleeps at a time when no deadline is nearer: it looks whether the
/// connection closed (the reader queues a last command then, so this is only a backstop).
const IDLE_SLICE: Duration = Duration::from_millis(500);

/// Reads the rings until a command is queued (`queued`), `deadline` passes, or nothing is left
/// to read; the caller then takes from the queue as it would have (see the module rules).
pub(crate) fn read_until_queued(
    shared: &Shared,
    role: &CommandRole,
    queue: &Commands,
    queued: impl Fn() -> bool,
    deadline: Option<Instant>,
) {
    let Some(bell) = &role.bell else { return };
    if shared.backlog.over() {
        return;
    }
    let links = shared.direct.links();
    if links.is_empty() {
        return;
    }
    let mut held = take_rings(shared, &links, queue, &queued, deadline);
    role.rings_waiting.store(true, Ordering::SeqCst);
    // Pairs with the fence in `CommandRole::pushed`: either it sees the flag and rings, or
    // this sees its command.
    std::sync::atomic::fence(Ordering::SeqCst);
    while !held.is_empty() && !queued() && !shared.backlog.over() {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) || shared.closed.load(Ordering::SeqCst) {
            break;
        }
        let timeout = left.map_or(IDLE_SLICE, |l| l.min(IDLE_SLICE));
        if !wait_and_read(shared, &mut held, bell.as_fd(), timeout, &queued, &role.rings_waiting) {
            break;
        }
    }
    role.rings_waiting.store(false, Ordering::SeqCst);
    held.into_iter().for_each(|h| h.release(shared));
}

/// Takes the locks that are free; gives back the rings still to wait for (a ring a caller of
/// this process wants is left to it).
fn take_free<'a>(shared: &Shared, waiting: Vec<&'a Arc<Link>>, held: &mut Vec<Held<'a>>) -> Vec<&'a Arc<Link>> {
    let mut still = Vec::new();
    for link in waiting {
        match Held::take(shared, link) {
            Taken::Held(h) => held.push(h),
            Taken::Busy => still.push(link),
            Taken::Wanted => {}
        }
    }
    still
}

/// Counts the holder a reader of every link and takes each ring's lock as its channel thread
/// lets go of it; stops waiting for the rest once a command is queued or `deadline` passes.
fn take_rings<'a>(
    shared: &Shared,
    links: &'a [Arc<Link>],
    queue: &Commands,
    queued: &impl Fn() -> bool,
    deadline: Option<Instant>,
) -> Vec<Held<'a>> {
    let mut held = Vec::with_capacity(links.len());
    let mut waiting = take_free(shared, links.iter().collect(), &mut held);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if waiting.is_empty() || queued() || left.is_some_and(|l| l.is_zero()) {
            return held;
        }
        // As a caller waits for a ring's lock (`reading::take_turn`): counted among the lock's
        // waiters before the last look, so whoever lets go after it signals.
        let counted = waiting.clone();
        for link in &counted {
            link.turns.lock_waiters.fetch_add(1, Ordering::SeqCst);
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        let before = waiting.len();
        waiting = take_free(shared, waiting, &mut held);
        if !waiting.is_empty() && waiting.len() == before {
            // A command queued meanwhile (a channel thread letting go queues what it read) ends
            // the wait too.
            let mut select = Select::new();
            for link in &waiting {
                select.recv(&link.turns.freed.1);
            }
            let queue_index = select.recv(queue);
            let slice = left.map_or(IDLE_SLICE, |l| l.min(IDLE_SLICE));
            if let Ok(i) = select.ready_timeout(slice) {
                if i != queue_index {
                    let _ = waiting[i].turns.freed.1.try_recv();
                }
            }
        }
        for link in counted {
            link.turns.lock_waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
