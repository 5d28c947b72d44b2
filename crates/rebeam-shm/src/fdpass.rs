//! Handing fds to another process over a Unix socket (SCM_RIGHTS).
//!
//! Rules:
//! - A message is at least one byte of data (a stream socket does not carry ancillary data
//!   alone) plus at most [`MAX_FDS`] fds. Sending more is refused before any system call.
//! - Received fds arrive close-on-exec. A message carrying more fds than [`MAX_FDS`] (the kernel
//!   truncates it) is an error, and every fd that did arrive is closed: a peer cannot make us
//!   hold descriptors we did not ask for. Ancillary messages other than SCM_RIGHTS are dropped.
//! - [`recv_fds_when_readable`] sleeps in `poll` for input, never in `recvmsg`: a thread asleep
//!   in a Unix stream socket's `recvmsg` is woken each time its peer reads what this end sent
//!   (the kernel's "write space" wake-up, which a waiter in `recvmsg` does not filter out),
//!   only to find nothing and sleep again, at a wake-up's cost to the peer's read. A `poll`
//!   waiter asks for input alone, and sleeps through those.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags,
};

use crate::error::{Result, ShmError};

/// The most fds one message may carry: a channel's three (segment and two doorbells) with room
/// for a few channels at once.
pub const MAX_FDS: usize = 16;

/// Sends `data` (non-empty) with `fds` attached.
pub fn send_fds(socket: impl AsFd, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<usize> {
    if data.is_empty() {
        return Err(ShmError::BadMessage("fds need at least one byte of data".into()));
    }
    if fds.len() > MAX_FDS {
        return Err(ShmError::BadMessage(format!("{} fds, at most {MAX_FDS}", fds.len())));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(ShmError::BadMessage("fds do not fit the control buffer".into()));
    }
    rustix::net::sendmsg(socket, &[IoSlice::new(data)], &mut control, SendFlags::NOSIGNAL)
        .map_err(ShmError::os("sendmsg"))
}

/// As [`recv_fds`], on a blocking socket, but sleeping in `poll` for input while there is none
/// (see the module rules): for a thread that reads one socket and has nothing else to do.
pub fn recv_fds_when_readable(socket: impl AsFd, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>)> {
    use rustix::event::{poll, PollFd, PollFlags};
    loop {
        match recv_fds_with(&socket, buf, RecvFlags::DONTWAIT) {
            Err(ShmError::Os { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock => {}
            other => return other,
        }
        let mut fds = [PollFd::new(&socket, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(ShmError::os("poll")(e)),
        }
    }
}

/// Receives one message into `buf`: the bytes read (0 at end of stream) and the fds attached.
pub fn recv_fds(socket: impl AsFd, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>)> {
    recv_fds_with(socket, buf, RecvFlags::empty())
}

fn recv_fds_with(socket: impl AsFd, buf: &mut [u8], flags: RecvFlags) -> Result<(usize, Vec<OwnedFd>)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(socket, &mut [IoSliceMut::new(buf)], &mut control, flags | RecvFlags::CMSG_CLOEXEC)
        .map_err(ShmError::os("recvmsg"))?;
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        // `fds` drops here, closing what arrived; the kernel dropped the rest.
        return Err(ShmError::BadMessage(format!("more than {MAX_FDS} fds in one message")));
    }
    Ok((msg.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None).unwrap()
    }

    /// How many of our fds refer to the same open file as `fd` (counting only those, since
    /// tests running alongside open fds of their own).
    fn copies_of(fd: &OwnedFd) -> usize {
        use std::os::fd::AsRawFd;
        let target = |raw: &str| std::fs::read_link(format!("/proc/self/fd/{raw}")).ok();
        let want = target(&fd.as_raw_fd().to_string());
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter(|e| target(e.as_ref().unwrap().file_name().to_str().unwrap()) == want)
            .count()
    }

    #[test]
    fn a_segment_passed_over_the_socket_shows_the_same_bytes() {
        let (a, b) = pair();
        let seg = crate::Segment::create(4096).unwrap();
        // SAFETY: within the mapping.
        unsafe { *seg.base().as_ptr() = 99 };
        send_fds(&a, b"seg", &[seg.as_fd()]).unwrap();
        let mut buf = [0u8; 8];
        let (n, mut fds) = recv_fds(&b, &mut buf).unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"seg"[..], 1));
        let got = crate::Segment::from_fd(fds.pop().unwrap(), seg.len()).unwrap();
        // SAFETY: within the mapping.
        assert_eq!(unsafe { *got.base().as_ptr() }, 99);
    }

    #[test]
    fn waiting_for_input_in_poll_receives_what_recvmsg_receives() {
        let (a, b) = pair();
        let seg = crate::Segment::create(4096).unwrap();
        let late = std::thread::spawn(move || {
            // Sent only once the reader sleeps, so that it sleeps in `poll` first.
            std::thread::sleep(std::time::Duration::from_millis(50));
            send_fds(&a, b"late", &[seg.as_fd()]).unwrap();
            send_fds(&a, b"plain", &[]).unwrap();
            // `a` closes here: the end of the stream.
        });
        let mut buf = [0u8; 4];
        let (n, fds) = recv_fds_when_readable(&b, &mut buf).unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"late"[..], 1));
        late.join().unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = recv_fds_when_readable(&b, &mut buf).unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"plain"[..], 0));
        assert_eq!(recv_fds_when_readable(&b, &mut buf).unwrap().0, 0);
    }

    #[test]
    fn sending_too_many_fds_or_no_data_is_refused() {
        let (a, _b) = pair();
        let many: Vec<_> = (0..=MAX_FDS).map(|_| a.as_fd()).collect();
        assert!(matches!(send_fds(&a, b"x", &many), Err(ShmError::BadMessage(_))));
        assert!(matches!(send_fds(&a, b"", &[a.as_fd()]), Err(ShmError::BadMessage(_))));
    }

    #[test]
    fn a_message_with_too_many_fds_is_refused_and_leaks_none() {
        let (a, b) = pair();
        // Bypass `send_fds`'s bound, as a hostile peer would.
        let many: Vec<_> = (0..MAX_FDS + 4).map(|_| a.as_fd()).collect();
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS + 4))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&many)));
        rustix::net::sendmsg(&a, &[IoSlice::new(b"x")], &mut control, SendFlags::empty()).unwrap();
        let mut buf = [0u8; 8];
        assert!(matches!(recv_fds(&b, &mut buf), Err(ShmError::BadMessage(_))));
        assert_eq!(copies_of(&a), 1, "every fd received was closed");
    }

    #[test]
    fn stray_fds_dropped_by_the_caller_are_closed() {
        let (a, b) = pair();
        send_fds(&a, b"x", &[a.as_fd(), a.as_fd()]).unwrap();
        let mut buf = [0u8; 1];
        let (_, fds) = recv_fds(&b, &mut buf).unwrap();
        assert_eq!(copies_of(&a), 3);
        drop(fds);
        assert_eq!(copies_of(&a), 1);
    }
}
