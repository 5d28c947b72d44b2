//! Doorbells: an eventfd one side rings and the other waits on, together with a peer watch.
//!
//! Rules: ringing is one `write` of 1 to the eventfd; a wait `poll`s the eventfd and the peer's
//! pidfd together, with a timeout, and drains the counter when woken, so any number of rings
//! before a wait give one wake-up. Whether to ring at all is decided by the ring's flags (see
//! `ring`): a doorbell is only rung for a side that said it is going to sleep. Peer death takes
//! precedence over a pending ring: a dead peer is reported even if it rang first.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};

use crate::error::{Result, ShmError};
use crate::peer::PeerWatch;

/// One eventfd doorbell.
#[derive(Debug)]
pub struct Doorbell {
    fd: OwnedFd,
}

impl Doorbell {
    /// A fresh doorbell, close-on-exec and non-blocking.
    pub fn new() -> Result<Doorbell> {
        let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(ShmError::os("eventfd"))?;
        Ok(Doorbell { fd })
    }

    /// Adopts a doorbell handed over by a peer.
    pub fn from_fd(fd: OwnedFd) -> Doorbell {
        Doorbell { fd }
    }

    /// A second handle on the same doorbell (a dup of its fd).
    pub fn try_clone(&self) -> Result<Doorbell> {
        let fd = self.fd.try_clone().map_err(|e| ShmError::Os { op: "dup", source: e })?;
        Ok(Doorbell { fd })
    }

    /// Wakes the waiter (or its next wait).
    pub fn ring(&self) -> Result<()> {
        match rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
            // EAGAIN: the counter is at its maximum, so the waiter is already woken.
            Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(()),
            Err(e) => Err(ShmError::os("eventfd write")(e)),
        }
    }

    /// Waits until rung, the peer exits, or `timeout` passes: `Ok(())`, `PeerGone` or
    /// `TimedOut`. An interrupted wait returns `Ok(())` early; callers re-check their ring.
    pub fn wait(&self, peer: &PeerWatch, timeout: Duration) -> Result<()> {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN), PollFd::new(peer, PollFlags::IN)];
        let ts =
            Timespec { tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64, tv_nsec: timeout.subsec_nanos().into() };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) => return Err(ShmError::TimedOut),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(ShmError::os("poll")(e)),
        }
        if !fds[1].revents().is_empty() {
            return Err(ShmError::PeerGone);
        }
        self.drain();
        Ok(())
    }

    /// Clears pending rings.
    pub fn drain(&self) {
        let mut buf = [0u8; 8];
        // EAGAIN (nothing pending) is the expected outcome of a spurious wake-up.
        let _ = rustix::io::read(&self.fd, &mut buf);
    }
}

impl AsFd for Doorbell {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> PeerWatch {
        PeerWatch::new(std::process::id()).unwrap()
    }

    #[test]
    fn rings_before_a_wait_give_one_wake_up() {
        let bell = Doorbell::new().unwrap();
        bell.ring().unwrap();
        bell.ring().unwrap();
        bell.wait(&me(), Duration::from_secs(5)).unwrap();
        let err = bell.wait(&me(), Duration::from_millis(1)).unwrap_err();
        assert!(matches!(err, ShmError::TimedOut), "{err}");
    }

    #[test]
    fn a_clone_rings_the_same_doorbell() {
        let bell = Doorbell::new().unwrap();
        bell.try_clone().unwrap().ring().unwrap();
        bell.wait(&me(), Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn a_dead_peer_ends_the_wait_even_when_rung() {
        let bell = Doorbell::new().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let peer = PeerWatch::new(child.id()).unwrap();
        child.wait().unwrap();
        bell.ring().unwrap();
        assert!(matches!(bell.wait(&peer, Duration::from_secs(5)), Err(ShmError::PeerGone)));
    }
}
