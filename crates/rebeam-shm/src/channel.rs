//! Channel ends: a ring, its two doorbells and a watch on the peer, as one sender or receiver.
//!
//! Rules:
//! - A channel is created once (by the governor) as [`ChannelFds`]: a formatted ring segment and
//!   two eventfds, the data bell (the receiver waits on it) and the space bell (the sender waits
//!   on it). Both ends get the same three fds, plus the other end's pid for a [`PeerWatch`].
//! - Sending never blocks unless asked: `try_send` returns `Full`; `send` waits for room up to
//!   its timeout, then returns that `Full`, or `PeerGone` at once if the receiver dies.
//! - Receiving: `try_recv` never blocks; `recv` spins by the receiver's [`Spin`] (none by
//!   default: spinning only pays when another core is idle; with `set_spin_when_idle` it spins
//!   only while the `idle` module says a core is free), then announces sleep, re-checks the ring, and sleeps on the data bell and the peer's pidfd
//!   together. Records published before the
//!   peer died are still delivered (a record is published whole or not at all); a wait on an empty
//!   ring of a dead peer returns `PeerGone` at once.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::doorbell::Doorbell;
use crate::error::{Result, ShmError};
use crate::idle::Spin;
use crate::peer::PeerWatch;
use crate::ring::{self, Consumer, Producer, Record};
use crate::segment::Segment;

/// The fds of one channel, as created and as handed to each end.
#[derive(Debug)]
pub struct ChannelFds {
    /// The ring's segment.
    pub segment: OwnedFd,
    /// The segment's length, announced alongside the fds so the receiver can check it.
    pub len: usize,
    /// Rung by the sender when the receiver sleeps.
    pub data_bell: OwnedFd,
    /// Rung by the receiver when the sender waits for room.
    pub space_bell: OwnedFd,
}

impl ChannelFds {
    /// Creates a channel whose ring holds at least `capacity` bytes of records.
    pub fn create(capacity: usize) -> Result<ChannelFds> {
        let capacity = capacity.max(ring::MIN_CAPACITY).next_power_of_two();
        let seg = Segment::create(ring::segment_len(capacity))?;
        ring::format(&seg, capacity)?;
        Ok(ChannelFds {
            segment: dup(seg.as_fd())?,
            len: seg.len(),
            data_bell: dup(Doorbell::new()?.as_fd())?,
            space_bell: dup(Doorbell::new()?.as_fd())?,
        })
    }

    /// The three fds in the order `from_fds` expects, for `fdpass::send_fds`.
    pub fn fds(&self) -> [BorrowedFd<'_>; 3] {
        [self.segment.as_fd(), self.data_bell.as_fd(), self.space_bell.as_fd()]
    }

    /// Rebuilds the fds received in one message (in `fds()` order) with the announced length.
    pub fn from_fds(fds: Vec<OwnedFd>, len: usize) -> Result<ChannelFds> {
        let Ok([segment, data_bell, space_bell]) = <[OwnedFd; 3]>::try_from(fds) else {
            return Err(ShmError::BadMessage("a channel is exactly three fds".into()));
        };
        Ok(ChannelFds { segment, len, data_bell, space_bell })
    }

    /// A second set of the same fds (dups), for the other end.
    pub fn try_clone(&self) -> Result<ChannelFds> {
        Ok(ChannelFds {
            segment: dup(self.segment.as_fd())?,
            len: self.len,
            data_bell: dup(self.data_bell.as_fd())?,
            space_bell: dup(self.space_bell.as_fd())?,
        })
    }
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    fd.try_clone_to_owned().map_err(|e| ShmError::Os { op: "dup", source: e })
}

/// The sending end of a channel.
#[derive(Debug)]
pub struct Sender {
    ring: Producer,
    data_bell: Doorbell,
    space_bell: Doorbell,
    peer: PeerWatch,
}

impl Sender {
    /// Opens the sending end; `peer` watches the receiving process.
    pub fn open(fds: ChannelFds, peer: PeerWatch) -> Result<Sender> {
        Ok(Sender {
            ring: Producer::open(Segment::from_fd(fds.segment, fds.len)?)?,
            data_bell: Doorbell::from_fd(fds.data_bell),
            space_bell: Doorbell::from_fd(fds.space_bell),
            peer,
        })
    }

    /// Sends one record made of `parts`, or `Full` at once.
    pub fn try_send(&mut self, parts: &[&[u8]]) -> Result<()> {
        self.ring.try_send(parts)?;
        if self.ring.take_consumer_sleeping() {
            self.data_bell.ring()?;
        }
        Ok(())
    }

    /// Sends one record, waiting up to `timeout` for room: `Full` when it never came,
    /// `PeerGone` at once if the receiver dies meanwhile.
    pub fn send(&mut self, parts: &[&[u8]], timeout: Duration) -> Result<()> {
        match self.try_send(parts) {
            Err(ShmError::Full { .. }) => {}
            other => return other,
        }
        // Only a sender that has to wait reads the clock.
        let deadline = Instant::now() + timeout;
        loop {
            self.ring.prepare_wait();
            // Re-check after announcing, so a release that raced the announcement is not missed.
            let full = match self.try_send(parts) {
                Err(full @ ShmError::Full { .. }) => full,
                other => {
                    self.ring.cancel_wait();
                    return other;
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let woke = if left.is_zero() { Err(ShmError::TimedOut) } else { self.space_bell.wait(&self.peer, left) };
            match woke {
                Ok(()) => {}
                Err(e) => {
                    self.ring.cancel_wait();
                    return Err(if matches!(e, ShmError::TimedOut) { full } else { e });
                }
            }
        }
    }

    /// The end of the last record sent, as a position in the ring's byte stream.
    pub fn position(&self) -> u64 {
        self.ring.head()
    }

    /// How far the receiver has released what it read (a position, as [`Sender::position`]):
    /// a record ending past it never reached anything beyond the receiver's ring reader. The
    /// mapping is ours, so this reads true after the receiver died.
    pub fn released(&mut self) -> Result<u64> {
        self.ring.released()
    }

    /// Whether the receiver has taken every record sent (one read of its index).
    pub fn drained(&mut self) -> Result<bool> {
        Ok(self.ring.free()? == self.ring.capacity())
    }

    /// The largest record this channel carries.
    pub fn max_record(&self) -> usize {
        self.ring.max_record()
    }

    /// The watch on the receiving process.
    pub fn peer(&self) -> &PeerWatch {
        &self.peer
    }
}

/// The receiving end of a channel.
#[derive(Debug)]
pub struct Receiver {
    pub(crate) ring: Consumer,
    pub(crate) data_bell: Doorbell,
    pub(crate) peer: PeerWatch,
    /// How it polls the ring before it sleeps.
    pub(crate) spin: Spin,
}

impl Receiver {
    /// Opens the receiving end; `peer` watches the sending process. It does not spin.
    pub fn open(fds: ChannelFds, peer: PeerWatch) -> Result<Receiver> {
        let space_bell = Doorbell::from_fd(fds.space_bell);
        Ok(Receiver {
            ring: Consumer::open(Segment::from_fd(fds.segment, fds.len)?, Some(space_bell))?,
            data_bell: Doorbell::from_fd(fds.data_bell),
            peer,
            spin: Spin::default(),
        })
    }

    /// Whether a record is ready to be taken, without taking it.
    pub fn ready(&mut self) -> Result<bool> {
        self.ring.ready()
    }

    /// How long `recv` polls the ring before it sleeps. Worth it only when another core is idle
    /// (spinning on the core the sender needs delays the sender).
    pub fn set_spin(&mut self, budget: Duration) {
        self.spin = Spin { budget, idle_only: false };
    }

    /// Like `set_spin`, but `recv` spins only while a core is free (the `idle` module's rule),
    /// so a spin never takes a CPU a runnable thread waits for.
    pub fn set_spin_when_idle(&mut self, budget: Duration) {
        self.spin = Spin { budget, idle_only: true };
    }

    /// The next record, if one is there now.
    pub fn try_recv(&mut self) -> Result<Option<Record<'_>>> {
        self.ring.try_recv()
    }

    /// The next record, waiting up to `timeout`: `TimedOut` if none came, `PeerGone` at once if
    /// the ring is empty and the sender is dead.
    pub fn recv(&mut self, timeout: Duration) -> Result<Record<'_>> {
        self.wait(timeout)?;
        self.ring.try_recv()?.ok_or(ShmError::Corrupt("a ready record vanished"))
    }

    /// Waits until a record is ready (see `recv`).
    pub fn wait(&mut self, timeout: Duration) -> Result<()> {
        self.wait_unless(timeout, || false)
    }

    /// A second handle on the doorbell this receiver sleeps on: ringing it wakes a `wait` (as
    /// a record would), so another thread can ask a sleeping reader to look up.
    pub fn bell(&self) -> Result<Doorbell> {
        self.data_bell.try_clone()
    }

    /// Like `wait`, but also returns `Ok(())`, with no record ready, once `stop()` is true
    /// after a wake-up (its bell rung by another thread, see `bell`): checked before sleeping
    /// and after each wake.
    pub fn wait_unless(&mut self, timeout: Duration, stop: impl Fn() -> bool) -> Result<()> {
        self.wait_then(timeout, stop, || ())
    }

    /// Like `wait_unless`, running `before_sleep` once the spin found nothing, before sleep is
    /// first announced: for a reader whose preparations for sleep are worth making only when it
    /// really sleeps (a backstop paused, say).
    pub fn wait_then(&mut self, timeout: Duration, stop: impl Fn() -> bool, before_sleep: impl FnOnce()) -> Result<()> {
        if self.ring.ready()? || stop() {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        let spin = self.spin;
        if spin.run(timeout, || self.ring.ready())? {
            return Ok(());
        }
        before_sleep();
        loop {
            self.ring.prepare_sleep();
            if self.ring.ready()? {
                self.ring.cancel_sleep();
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let woke = if left.is_zero() { Err(ShmError::TimedOut) } else { self.data_bell.wait(&self.peer, left) };
            self.ring.cancel_sleep();
            match woke {
                Ok(()) if stop() => return Ok(()),
                Ok(()) => {}
                // A record published just before the peer died or the time ran out still counts.
                Err(_) if self.ring.ready()? => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// The watch on the sending process.
    pub fn peer(&self) -> &PeerWatch {
        &self.peer
    }
}

#[cfg(test)]
#[path = "channel_tests.rs"]
mod tests;
