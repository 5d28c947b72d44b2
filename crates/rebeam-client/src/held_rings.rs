//! The rings a thread other than their channel threads reads for a while: the idle command
//! thread (`idle_reader.rs`) and the completion queue's drainer (`completion_reader.rs`). Both
//! take and give back rings, sleep on them and read them by the same rules, kept here once.
//!
//! The rules:
//! - **Taking a ring.** Only its lock, and only if it is free now and no caller of this process
//!   wants the ring; marked as the thread on the ring (so that a caller arriving rings it off),
//!   then looked at again, since a caller that came between the look and the mark may not have
//!   rung. A taken ring is quiet while its reader spins (`Receiver::quiet`): a record rings nobody.
//! - **One wait.** The reader sleeps once on all its rings and on its own doorbell (`bell`), and
//!   pauses the channel threads behind them only once it is about to sleep. A ring with records
//!   is read as its channel thread would (`reading::take_ready`). The reader's "rings waiting"
//!   flag is down while it reads: it looks at its queue right after, so what it queues itself
//!   need not ring its own doorbell.
//! - **Letting go** of a ring whose peer died (its channel thread meets the death and answers
//!   what is in flight there), of one a caller wants, and of all at the end, as any reader does
//!   (`reading::leave`: read, announced, so the channel thread, asleep behind it, wakes for the
//!   next record).

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use rebeam_shm::{Receiver, Woke};

use crate::client::Shared;
use crate::direct::Link;
use crate::reading::{hold, leave, take_ready, try_lock};

/// One ring a reader holds: its link and its lock.
pub(crate) struct Held<'a> {
    pub(crate) link: &'a Arc<Link>,
    receiver: MutexGuard<'a, Receiver>,
}

/// What trying to take a ring gave.
pub(crate) enum Taken<'a> {
    Held(Held<'a>),
    /// A caller of this process wants it: it is left to that caller.
    Wanted,
    /// Its lock is held now (or a caller came just as it was taken): it may be free later.
    Busy,
}

impl<'a> Held<'a> {
    /// Takes `link`'s ring if it is free now (see the module rules).
    pub(crate) fn take(shared: &Shared, link: &'a Arc<Link>) -> Taken<'a> {
        if link.turns.readers.load(Ordering::SeqCst) > 0 {
            return Taken::Wanted;
        }
        let Some(receiver) = try_lock(&link.receiver) else { return Taken::Busy };
        link.turns.thread_reads.store(true, Ordering::SeqCst);
        if link.turns.readers.load(Ordering::SeqCst) > 0 {
            link.turns.thread_reads.store(false, Ordering::SeqCst);
            // As any reader lets go: what came while it held the lock is read and the ring
            // announced, so the channel thread wakes for the next record.
            leave(shared, link, receiver, true);
            return Taken::Busy;
        }
        receiver.quiet();
        Taken::Held(Held { link, receiver })
    }

    /// Lets go of the ring (see `reading::leave`); a caller waiting for it takes it.
    pub(crate) fn release(self, shared: &Shared) {
        self.link.turns.thread_reads.store(false, Ordering::SeqCst);
        leave(shared, self.link, self.receiver, true);
    }

    /// A caller of this process wants the ring.
    fn wanted(&self) -> bool {
        self.link.turns.readers.load(Ordering::SeqCst) > 0
    }
}

/// Sleeps once on `held` and `bell` for up to `timeout` (or until `stop`), reads a ring that
/// has records, and lets go of a ring whose peer died or that a caller wants. `waiting` is the
/// reader's "rings waiting" flag, lowered while it reads. False if the poll itself failed: the
/// channel threads then read on, as they did before.
pub(crate) fn wait_and_read(
    shared: &Shared,
    held: &mut Vec<Held<'_>>,
    bell: BorrowedFd<'_>,
    timeout: Duration,
    stop: impl Fn() -> bool,
    waiting: &AtomicBool,
) -> bool {
    let woke = {
        let links: Vec<&Arc<Link>> = held.iter().map(|h| h.link).collect();
        let wanted = || links.iter().any(|l| l.turns.readers.load(Ordering::SeqCst) > 0);
        let sleeps = || links.iter().for_each(|link| hold(link));
        let mut receivers: Vec<&mut Receiver> = held.iter_mut().map(|h| &mut *h.receiver).collect();
        rebeam_shm::wait_once_then(&mut receivers, bell, timeout, || stop() || wanted(), sleeps)
    };
    let lost = match woke {
        Ok(Woke::Record(i)) => {
            waiting.store(false, Ordering::SeqCst);
            let h = &mut held[i];
            let read = take_ready(shared, h.link, &mut h.receiver, true).err().map(|_| i);
            waiting.store(true, Ordering::SeqCst);
            // As before the reader's loop: either a pusher sees the flag again, or the loop's
            // condition sees what it pushed.
            std::sync::atomic::fence(Ordering::SeqCst);
            read
        }
        Ok(Woke::PeerGone(i)) => Some(i),
        Ok(Woke::Also | Woke::Nothing) => None,
        Err(_) => return false,
    };
    if let Some(i) = lost {
        held.swap_remove(i).release(shared);
    }
    let (wanted, kept): (Vec<_>, Vec<_>) = std::mem::take(held).into_iter().partition(Held::wanted);
    *held = kept;
    wanted.into_iter().for_each(|h| h.release(shared));
    true
}
