//! Waiting on several receivers at once: a process has one receiver per peer, and one thread
//! must sleep until any of them has a record or any of their peers dies.
//!
//! Rules: the same protocol as `Receiver::wait`, over all receivers together: check every ring;
//! announce sleep on every ring and check them all again; then `poll` every data bell and every
//! peer's pidfd in one call. A ready record wins over a dead peer (records published before a
//! death are still delivered), and the lowest index wins among ready receivers, so callers that
//! want fairness rotate the slice.
//!
//! [`wait_once`] is the same wait over the receivers and one more fd of the caller's (its own
//! doorbell, say), spinning first as a single receiver's wait does (the longest of the
//! receivers' spins, see `idle::Spin`; `stop` ends the spin early), then returning after one
//! sleep whatever woke it (or nothing did), so that a caller with conditions of its own (a
//! command queued elsewhere, another reader wanting a ring) looks at them after every wake-up;
//! `stop` is asked after sleep is announced, so a condition raised before the announcement is
//! never slept through.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

use crate::channel::Receiver;
use crate::error::{Result, ShmError};
use crate::idle::Spin;

/// What `wait_any` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// This receiver has a record.
    Record(usize),
    /// This receiver's ring is empty and its sender is dead.
    PeerGone(usize),
}

/// Waits up to `timeout` until one of `receivers` has a record or an empty one's peer is gone;
/// `TimedOut` otherwise.
pub fn wait_any(receivers: &mut [&mut Receiver], timeout: Duration) -> Result<Ready> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(i) = first_ready(receivers)? {
            return Ok(Ready::Record(i));
        }
        for r in receivers.iter() {
            r.ring.prepare_sleep();
        }
        let ready = first_ready(receivers);
        if !matches!(ready, Ok(None)) {
            cancel(receivers);
            return ready.map(|i| Ready::Record(i.expect("matched Some")));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let polled = if left.is_zero() { Ok((Vec::new(), false)) } else { poll(receivers, None, left) };
        cancel(receivers);
        let (gone, _) = polled?;
        if let Some(i) = first_ready(receivers)? {
            return Ok(Ready::Record(i));
        }
        if let Some(&i) = gone.first() {
            return Ok(Ready::PeerGone(i));
        }
        if Instant::now() >= deadline {
            return Err(ShmError::TimedOut);
        }
    }
}

/// What woke [`wait_once`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// This receiver has a record.
    Record(usize),
    /// This receiver's ring is empty and its sender is dead.
    PeerGone(usize),
    /// The caller's own fd was readable (it is drained: the caller looks at its conditions).
    Also,
    /// `stop` said so, the time ran out, or a bell rang with nothing behind it.
    Nothing,
}

/// Sleeps once until a receiver has a record, an empty one's peer is gone, `also` is readable
/// or `timeout` passes; returns without sleeping if `stop` is true once sleep is announced.
pub fn wait_once(
    receivers: &mut [&mut Receiver],
    also: BorrowedFd<'_>,
    timeout: Duration,
    stop: impl Fn() -> bool,
) -> Result<Woke> {
    wait_once_then(receivers, also, timeout, stop, || ())
}

/// Like [`wait_once`], running `before_sleep` after the spin, before sleep is announced (as
/// `Receiver::wait_then`).
pub fn wait_once_then(
    receivers: &mut [&mut Receiver],
    also: BorrowedFd<'_>,
    timeout: Duration,
    stop: impl Fn() -> bool,
    before_sleep: impl FnOnce(),
) -> Result<Woke> {
    if let Some(i) = first_ready(receivers)? {
        return Ok(Woke::Record(i));
    }
    let spin = receivers.iter().fold(Spin::default(), |spin, r| spin.max(r.spin));
    // A record or `stop` that comes within the spin is found below, before any sleep.
    if spin.run(timeout, || Ok(first_ready(receivers)?.is_some() || stop()))? {
        if let Some(i) = first_ready(receivers)? {
            return Ok(Woke::Record(i));
        }
    }
    before_sleep();
    for r in receivers.iter() {
        r.ring.prepare_sleep();
    }
    let ready = first_ready(receivers);
    if !matches!(ready, Ok(None)) || stop() || timeout.is_zero() {
        cancel(receivers);
        return ready.map(|i| i.map_or(Woke::Nothing, Woke::Record));
    }
    let polled = poll(receivers, Some(also), timeout);
    cancel(receivers);
    let (gone, also_rang) = polled?;
    if let Some(i) = first_ready(receivers)? {
        return Ok(Woke::Record(i));
    }
    if let Some(&i) = gone.first() {
        return Ok(Woke::PeerGone(i));
    }
    Ok(if also_rang { Woke::Also } else { Woke::Nothing })
}

fn first_ready(receivers: &mut [&mut Receiver]) -> Result<Option<usize>> {
    for (i, r) in receivers.iter_mut().enumerate() {
        if r.ring.ready()? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn cancel(receivers: &[&mut Receiver]) {
    for r in receivers {
        r.ring.cancel_sleep();
    }
}

/// Polls every data bell and pidfd, and `also`; returns the indices whose peer is gone and
/// whether `also` was readable, draining the bells that rang (`also` too, as an eventfd).
fn poll(receivers: &[&mut Receiver], also: Option<BorrowedFd<'_>>, timeout: Duration) -> Result<(Vec<usize>, bool)> {
    let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2 * receivers.len() + 1);
    for r in receivers {
        fds.push(PollFd::new(&r.data_bell, PollFlags::IN));
        fds.push(PollFd::new(&r.peer, PollFlags::IN));
    }
    if let Some(fd) = also {
        fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
    }
    let ts = Timespec { tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64, tv_nsec: timeout.subsec_nanos().into() };
    match rustix::event::poll(&mut fds, Some(&ts)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(ShmError::os("poll")(e)),
    }
    let mut gone = Vec::new();
    for (i, r) in receivers.iter().enumerate() {
        if !fds[2 * i].revents().is_empty() {
            r.data_bell.drain();
        }
        if !fds[2 * i + 1].revents().is_empty() {
            gone.push(i);
        }
    }
    let also_rang = also.is_some_and(|fd| {
        let rang = fds.last().is_some_and(|p| !p.revents().is_empty());
        if rang {
            // Drained as a doorbell is: any number of rings give one wake-up.
            let _ = rustix::io::read(fd, &mut [0u8; 8]);
        }
        rang
    });
    Ok((gone, also_rang))
}

#[cfg(test)]
mod tests {
    use std::thread;

    use std::os::fd::AsFd;

    use super::*;
    use crate::{ChannelFds, PeerWatch, Sender};

    const LONG: Duration = Duration::from_secs(10);

    fn ends(peer: PeerWatch) -> (Sender, Receiver) {
        let fds = ChannelFds::create(4096).unwrap();
        let me = PeerWatch::new(std::process::id()).unwrap();
        let tx = Sender::open(fds.try_clone().unwrap(), me).unwrap();
        (tx, Receiver::open(fds, peer).unwrap())
    }

    fn me() -> PeerWatch {
        PeerWatch::new(std::process::id()).unwrap()
    }

    #[test]
    fn a_send_on_any_channel_wakes_the_waiter_with_its_index() {
        let (mut tx0, mut rx0) = ends(me());
        let (mut tx1, mut rx1) = ends(me());
        for round in 0..200u32 {
            let which = round % 2;
            let sender = thread::spawn(move || {
                let tx = if which == 0 { &mut tx0 } else { &mut tx1 };
                tx.send(&[&round.to_le_bytes()], LONG).unwrap();
                (tx0, tx1)
            });
            let got = wait_any(&mut [&mut rx0, &mut rx1], LONG).unwrap();
            assert_eq!(got, Ready::Record(which as usize));
            let rx = if which == 0 { &mut rx0 } else { &mut rx1 };
            assert_eq!(&*rx.recv(LONG).unwrap(), round.to_le_bytes());
            (tx0, tx1) = sender.join().unwrap();
        }
    }

    #[test]
    fn an_empty_channel_of_a_dead_peer_is_reported_after_records_elsewhere() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = PeerWatch::new(child.id()).unwrap();
        child.wait().unwrap();
        let (_tx0, mut rx0) = ends(dead);
        let (mut tx1, mut rx1) = ends(me());
        tx1.try_send(&[b"x"]).unwrap();
        assert_eq!(wait_any(&mut [&mut rx0, &mut rx1], LONG).unwrap(), Ready::Record(1));
        drop(rx1.recv(LONG).unwrap());
        assert_eq!(wait_any(&mut [&mut rx0, &mut rx1], LONG).unwrap(), Ready::PeerGone(0));
    }

    #[test]
    fn wait_once_wakes_for_a_record_or_the_callers_own_fd() {
        let (mut tx, mut rx) = ends(me());
        let bell = crate::Doorbell::new().unwrap();
        let ringer = bell.try_clone().unwrap();
        let t = thread::spawn(move || ringer.ring().unwrap());
        assert_eq!(wait_once(&mut [&mut rx], bell.as_fd(), LONG, || false).unwrap(), Woke::Also);
        t.join().unwrap();
        // Drained: nothing wakes it now.
        let short = Duration::from_millis(5);
        assert_eq!(wait_once(&mut [&mut rx], bell.as_fd(), short, || false).unwrap(), Woke::Nothing);
        let t = thread::spawn(move || {
            tx.send(&[b"x"], LONG).unwrap();
            tx
        });
        assert_eq!(wait_once(&mut [&mut rx], bell.as_fd(), LONG, || false).unwrap(), Woke::Record(0));
        drop(t.join().unwrap());
    }

    #[test]
    fn wait_once_does_not_sleep_when_stopped_or_on_a_dead_peer() {
        let (_tx, mut rx) = ends(me());
        let bell = crate::Doorbell::new().unwrap();
        // A stop raised before the wait would hang it for LONG if it were slept through.
        assert_eq!(wait_once(&mut [&mut rx], bell.as_fd(), LONG, || true).unwrap(), Woke::Nothing);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = PeerWatch::new(child.id()).unwrap();
        child.wait().unwrap();
        let (_tx0, mut rx0) = ends(dead);
        assert_eq!(wait_once(&mut [&mut rx, &mut rx0], bell.as_fd(), LONG, || false).unwrap(), Woke::PeerGone(1));
    }

    #[test]
    fn wait_once_prepares_for_sleep_only_when_it_sleeps() {
        let (mut tx, mut rx) = ends(me());
        let bell = crate::Doorbell::new().unwrap();
        let slept = std::cell::Cell::new(0);
        // A record that comes within the spin: no sleep, no preparation.
        rx.set_spin(LONG);
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(2));
            tx.send(&[b"x"], LONG).unwrap();
            tx
        });
        let got = wait_once_then(&mut [&mut rx], bell.as_fd(), LONG, || false, || slept.set(slept.get() + 1));
        assert_eq!((got.unwrap(), slept.get()), (Woke::Record(0), 0));
        drop(rx.recv(LONG).unwrap());
        let _tx = t.join().unwrap();
        // Nothing comes: prepared once, before the one sleep.
        rx.set_spin(Duration::ZERO);
        let short = Duration::from_millis(5);
        let got = wait_once_then(&mut [&mut rx], bell.as_fd(), short, || false, || slept.set(slept.get() + 1));
        assert_eq!((got.unwrap(), slept.get()), (Woke::Nothing, 1));
    }

    #[test]
    fn nothing_ready_times_out() {
        let (_tx, mut rx) = ends(me());
        let err = wait_any(&mut [&mut rx], Duration::from_millis(5)).unwrap_err();
        assert!(matches!(err, ShmError::TimedOut), "{err}");
    }
}
