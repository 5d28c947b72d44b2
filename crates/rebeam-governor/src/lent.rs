//! Fds that peers send: the segments a call or cast lends (see `rebeam_proto::lent`).
//!
//! A sender attaches a frame's fds to its first bytes (one sendmsg), and the kernel hands them
//! to the read that returns the first of those bytes and ends that read there. So the fds a
//! read brings belong to a frame that begins in that read's bytes. The listener keeps them in
//! [`PeerFds`] until that frame is whole, and the rules are:
//!
//! - A frame that lends pieces takes every fd waiting; the router checks that they are as many
//!   as it lends, and refuses it otherwise (a call fails with `BadRequest`, a cast is not
//!   delivered), closing them.
//! - Fds no frame claims are stray and closed at once, with a warning naming the process: when
//!   every frame begun is whole and fds still wait, or when new fds arrive while others wait.
//! - At most [`MAX_FDS`] fds per read (the receive buffer's room); a read that brought more has
//!   every one closed (the kernel closed the rest), so a peer cannot make the governor hold
//!   descriptors: what it holds of one connection is bounded by [`MAX_FDS`]; what it holds for
//!   a worker to read is bounded by its outbox (`outbox.rs`, `MAX_QUEUED_FDS`).
//! - Fds the governor forwards leave with the delivery's first bytes, and close here once
//!   written; a delivery refused or dropped (its worker gone, its outbox full, its actor ended
//!   while it was parked) closes them with it. The governor keeps none.

use std::os::fd::OwnedFd;

pub use rebeam_shm::fdpass::MAX_FDS;

/// What a connection's reader holds of the fds its peer sent (see the module rules).
#[derive(Debug, Default)]
pub struct PeerFds {
    waiting: Vec<OwnedFd>,
}

/// Fds closed because no frame claimed them (how many), to be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stray(pub usize);

impl PeerFds {
    /// A read brought `fds`; those still waiting are stray.
    pub fn arrived(&mut self, fds: Vec<OwnedFd>) -> Option<Stray> {
        if fds.is_empty() {
            return None;
        }
        let stray = std::mem::replace(&mut self.waiting, fds);
        (!stray.is_empty()).then_some(Stray(stray.len()))
    }

    /// The fds for a whole frame that lends `lent` pieces: every fd waiting if it lends any.
    pub fn claim(&mut self, lent: usize) -> Vec<OwnedFd> {
        match lent {
            0 => Vec::new(),
            _ => std::mem::take(&mut self.waiting),
        }
    }

    /// Every frame begun is whole (`pending` bytes of a next one are read): what waits is stray.
    pub fn settle(&mut self, pending: usize) -> Option<Stray> {
        if pending > 0 || self.waiting.is_empty() {
            return None;
        }
        Some(Stray(std::mem::take(&mut self.waiting).len()))
    }

    /// How many fds wait (the bound the module doc gives).
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fds(n: usize) -> Vec<OwnedFd> {
        (0..n).map(|_| rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("an eventfd")).collect()
    }

    #[test]
    fn a_lending_frame_takes_the_fds_that_came_with_it_and_a_plain_one_none() {
        let mut peer = PeerFds::default();
        assert_eq!(peer.arrived(fds(2)), None);
        assert!(peer.claim(0).is_empty(), "a frame before the lending one, in the same read");
        assert_eq!(peer.settle(10), None, "the lending frame is not whole yet");
        assert_eq!(peer.claim(2).len(), 2);
        assert_eq!((peer.waiting(), peer.settle(0)), (0, None));
    }

    #[test]
    fn fds_no_frame_claims_are_stray() {
        let mut peer = PeerFds::default();
        peer.arrived(fds(3));
        assert!(peer.claim(0).is_empty());
        assert_eq!(peer.settle(0), Some(Stray(3)), "every frame is whole and none lent");
        assert_eq!(peer.waiting(), 0);
        peer.arrived(fds(1));
        assert_eq!(peer.arrived(fds(2)), Some(Stray(1)), "new fds: the older ones had no frame");
        assert_eq!(peer.claim(1).len(), 2, "the router sees the mismatch and refuses the frame");
        assert_eq!(peer.arrived(Vec::new()), None);
    }

    /// Closed means closed: a pipe whose only write end was stray reads as ended.
    #[test]
    fn stray_fds_are_closed() {
        use std::io::Read;
        let (mut read, write) = std::io::pipe().expect("a pipe");
        let mut peer = PeerFds::default();
        peer.arrived(vec![write.into()]);
        peer.settle(0);
        let mut byte = [0u8; 1];
        assert_eq!(read.read(&mut byte).expect("reads"), 0, "the write end is still open");
    }
}
