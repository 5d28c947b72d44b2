//! A backstop on a ring: a thread that sleeps on the ring's data bell without holding the
//! ring, so that whoever reads the ring can stop reading and leave it to the backstop with no
//! wake-up of anyone; the next record rings the bell and wakes the backstop.
//!
//! Rules:
//! - The backstop sleeps on the data bell edge-triggered (one ring wakes it once, whether or
//!   not the ring's reader, polling the same bell level-triggered, drains it first, and without
//!   spinning while that reader has not yet) and on the peer's pidfd.
//! - A reader stops reading with [`Receiver::announce`]: it raises the ring's "going to sleep"
//!   flag, so the next record rings the bell, and reads what is ready first (then announces
//!   again). After it has let go of the ring it calls [`Backstop::left`]: if the flag came down
//!   meanwhile (a record was published, and its ring may have woken a backstop that found the
//!   ring still held and went back to sleep), the bell is rung again.
//! - A reader that sleeps on the ring itself may [`Backstop::pause`] the backstop's sleep on
//!   the bell while it holds the ring (so a record wakes one thread, not two) and must
//!   [`Backstop::resume`] it before it lets go: a ring that came while paused, not drained by
//!   the reader, then wakes the backstop at once (re-arming looks at the bell as it is). A
//!   reader pauses only once it is about to sleep (after its spin): while it spins on a quiet
//!   ring, no record rings the bell, so the backstop sleeps on anyway.
//! - A reader that takes the ring over may take the flag down at once ([`Receiver::quiet`]):
//!   while it polls the ring, records then ring nobody; it raises the flag again before it
//!   sleeps, and announces before it lets go.
//! - The flag may be up while nobody sleeps (the backstop is reading, say): a record then costs
//!   its sender a ring and the next sleeper a spurious wake-up, never a lost record.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::Timespec;

use crate::channel::Receiver;
use crate::doorbell::Doorbell;
use crate::error::{Result, ShmError};
use crate::ring;
use crate::segment::Segment;

/// A backstop's sleep on one ring (see the module rules).
#[derive(Debug)]
pub struct Backstop {
    epoll: OwnedFd,
    /// The data bell (a second handle; also what `left` rings).
    watched: Doorbell,
    paused: AtomicBool,
    /// The ring's header, mapped a second time: the flag is read after the ring is let go.
    header: Segment,
    bell: Doorbell,
}

impl Backstop {
    /// Stops waking for the bell, for a reader that holds the ring and sleeps on it itself.
    pub fn pause(&self) -> Result<()> {
        // Paused already (a reader sleeping on the ring again): its sleep is off already.
        if self.paused.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        epoll::modify(&self.epoll, &self.watched, EventData::new_u64(0), EventFlags::empty())
            .map_err(ShmError::os("epoll_ctl"))
    }

    /// Wakes for the bell again (at once if it rang and was not drained); nothing if not paused.
    pub fn resume(&self) -> Result<()> {
        if !self.paused.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        epoll::modify(&self.epoll, &self.watched, EventData::new_u64(0), EventFlags::IN | EventFlags::ET)
            .map_err(ShmError::os("epoll_ctl"))
    }

    /// Sleeps until the bell rings after the last wait, the peer dies (then at once, each
    /// time), or `timeout` passes (`TimedOut`). An interrupted sleep returns early.
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        let ts =
            Timespec { tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64, tv_nsec: timeout.subsec_nanos().into() };
        let mut events = Vec::with_capacity(2);
        match epoll::wait(&self.epoll, rustix::buffer::spare_capacity(&mut events), Some(&ts)) {
            Ok(0) => Err(ShmError::TimedOut),
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(ShmError::os("epoll_wait")(e)),
        }
    }

    /// A reader let go of the ring after [`Receiver::announce`]: rings the bell if a record
    /// was published since (the flag is down), for a backstop that may have slept through it.
    pub fn left(&self) -> Result<()> {
        if ring::announced(&self.header) {
            return Ok(());
        }
        self.bell.ring()
    }

    /// Wakes the backstop now (a reader left records in the ring for it).
    pub fn wake(&self) -> Result<()> {
        self.bell.ring()
    }
}

impl Receiver {
    /// A backstop for this ring (see the `backstop` module).
    pub fn backstop(&self) -> Result<Backstop> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(ShmError::os("epoll_create"))?;
        let watched = self.data_bell.try_clone()?;
        epoll::add(&epoll, &watched, EventData::new_u64(0), EventFlags::IN | EventFlags::ET)
            .map_err(ShmError::os("epoll_ctl"))?;
        epoll::add(&epoll, &self.peer, EventData::new_u64(1), EventFlags::IN).map_err(ShmError::os("epoll_ctl"))?;
        Ok(Backstop {
            epoll,
            watched,
            paused: AtomicBool::new(false),
            header: self.ring.second_mapping()?,
            bell: self.data_bell.try_clone()?,
        })
    }

    /// Raises the ring's "going to sleep" flag for a reader about to let go of it, so that the
    /// next record rings the bell; true if a record is ready already (read it, then announce
    /// again). See the `backstop` module.
    pub fn announce(&mut self) -> Result<bool> {
        self.ring.prepare_sleep();
        self.ring.ready()
    }

    /// Takes the ring's "going to sleep" flag down, for a reader that took the ring over and
    /// polls it before it sleeps (see the `backstop` module): while it polls, a record costs its
    /// sender no ring of the bell. The flag goes up again before any sleep (`wait`) and when the
    /// reader lets go (`announce`), so no record is slept through.
    pub fn quiet(&self) {
        self.ring.cancel_sleep();
    }

    /// Clears the bell's pending rings (for the one holding the ring, which reads it next).
    pub fn drain_bell(&self) {
        self.data_bell.drain();
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;
    use crate::{ChannelFds, PeerWatch, Sender};

    const LONG: Duration = Duration::from_secs(10);
    const SHORT: Duration = Duration::from_millis(5);

    fn ends() -> (Sender, Receiver) {
        let fds = ChannelFds::create(4096).unwrap();
        let me = || PeerWatch::new(std::process::id()).unwrap();
        let tx = Sender::open(fds.try_clone().unwrap(), me()).unwrap();
        (tx, Receiver::open(fds, me()).unwrap())
    }

    #[test]
    fn a_record_after_the_reader_left_wakes_the_backstop_once() {
        let (mut tx, mut rx) = ends();
        let backstop = rx.backstop().unwrap();
        assert!(!rx.announce().unwrap());
        backstop.left().unwrap();
        let sender = thread::spawn(move || {
            tx.send(&[b"x"], LONG).unwrap();
            tx
        });
        backstop.wait(LONG).unwrap();
        assert!(rx.ready().unwrap());
        // Edge-triggered: the same ring does not wake it again, drained or not.
        assert!(matches!(backstop.wait(SHORT), Err(ShmError::TimedOut)));
        drop(sender.join().unwrap());
    }

    #[test]
    fn a_level_reader_still_wakes_after_the_backstop_did() {
        let (mut tx, mut rx) = ends();
        let backstop = rx.backstop().unwrap();
        assert!(!rx.announce().unwrap());
        tx.send(&[b"x"], LONG).unwrap();
        backstop.wait(LONG).unwrap();
        // The backstop does not drain the bell: the ring's own reader sees the ring too.
        let mut fds = [rustix::event::PollFd::new(&rx.data_bell, rustix::event::PollFlags::IN)];
        assert_eq!(rustix::event::poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })).unwrap(), 1);
    }

    #[test]
    fn a_record_published_while_the_ring_was_held_is_rung_again_on_leaving() {
        let (mut tx, mut rx) = ends();
        let backstop = rx.backstop().unwrap();
        assert!(!rx.announce().unwrap());
        // Published after the announcement, while the reader still holds the ring: its ring
        // is taken by a backstop that found the ring held (this wait) and slept on.
        tx.send(&[b"x"], LONG).unwrap();
        backstop.wait(LONG).unwrap();
        backstop.left().unwrap();
        backstop.wait(LONG).unwrap();
        // With nothing published since the announcement, leaving rings nothing.
        drop(rx.try_recv().unwrap());
        assert!(!rx.announce().unwrap());
        backstop.left().unwrap();
        assert!(matches!(backstop.wait(SHORT), Err(ShmError::TimedOut)));
    }

    #[test]
    fn a_paused_backstop_sleeps_through_a_ring_and_wakes_for_it_on_resume() {
        let (mut tx, mut rx) = ends();
        let backstop = rx.backstop().unwrap();
        assert!(!rx.announce().unwrap());
        backstop.pause().unwrap();
        tx.send(&[b"x"], LONG).unwrap();
        assert!(matches!(backstop.wait(SHORT), Err(ShmError::TimedOut)));
        // Not drained by the holder: resuming wakes the backstop for it.
        backstop.resume().unwrap();
        backstop.wait(LONG).unwrap();
        // Drained by the holder: resuming wakes nobody.
        backstop.pause().unwrap();
        drop(rx.try_recv().unwrap());
        assert!(!rx.announce().unwrap());
        tx.send(&[b"y"], LONG).unwrap();
        rx.drain_bell();
        backstop.resume().unwrap();
        assert!(matches!(backstop.wait(SHORT), Err(ShmError::TimedOut)));
    }

    #[test]
    fn a_quiet_ring_rings_nobody_until_its_reader_announces_again() {
        let (mut tx, mut rx) = ends();
        let backstop = rx.backstop().unwrap();
        assert!(!rx.announce().unwrap());
        // Taken over by a reader that polls it: a record rings neither the backstop nor the bell.
        rx.quiet();
        tx.send(&[b"x"], LONG).unwrap();
        assert!(matches!(backstop.wait(SHORT), Err(ShmError::TimedOut)));
        let mut fds = [rustix::event::PollFd::new(&rx.data_bell, rustix::event::PollFlags::IN)];
        assert_eq!(rustix::event::poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })).unwrap(), 0);
        drop(rx.try_recv().unwrap().expect("the record is in the ring"));
        // Let go again: the next record rings the bell and wakes the backstop.
        assert!(!rx.announce().unwrap());
        backstop.left().unwrap();
        tx.send(&[b"y"], LONG).unwrap();
        backstop.wait(LONG).unwrap();
    }

    #[test]
    fn a_dead_peer_wakes_the_backstop() {
        let fds = ChannelFds::create(4096).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = PeerWatch::new(child.id()).unwrap();
        child.wait().unwrap();
        let rx = Receiver::open(fds, dead).unwrap();
        rx.backstop().unwrap().wait(LONG).unwrap();
    }
}
