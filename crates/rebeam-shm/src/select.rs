//! Waiting on several receivers at once: a process has one receiver per peer, and one thread
//! must sleep until any of them has a record or any of their peers dies.
//!
//! Rules: the same protocol as `Receiver::wait`, over all receivers together: check every ring;
//! announce sleep on every ring and check them all again; then `poll` every data bell and every
//! peer's pidfd in one call. A ready record wins over a dead peer (records published before a
//! death are still delivered), and the lowest index wins among ready receivers, so callers that
//! want fairness rotate the slice.

use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

use crate::channel::Receiver;
use crate::error::{Result, ShmError};

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
        let polled = if left.is_zero() { Ok(Vec::new()) } else { poll(receivers, left) };
        cancel(receivers);
        let gone = polled?;
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

/// Polls every data bell and pidfd; returns the indices whose peer is gone, draining the bells
/// that rang.
fn poll(receivers: &[&mut Receiver], timeout: Duration) -> Result<Vec<usize>> {
    let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2 * receivers.len());
    for r in receivers {
        fds.push(PollFd::new(&r.data_bell, PollFlags::IN));
        fds.push(PollFd::new(&r.peer, PollFlags::IN));
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
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use std::thread;

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
    fn nothing_ready_times_out() {
        let (_tx, mut rx) = ends(me());
        let err = wait_any(&mut [&mut rx], Duration::from_millis(5)).unwrap_err();
        assert!(matches!(err, ShmError::TimedOut), "{err}");
    }
}
