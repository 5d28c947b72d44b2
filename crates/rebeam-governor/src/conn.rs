//! A peer's socket as the governor holds it: registered with the runtime for reading only.
//!
//! The rules:
//! - **Woken only for input.** A Unix socket registered for writing too (as tokio's own
//!   `UnixStream` always is, edge-triggered) wakes the runtime each time the peer reads what
//!   was written to it: on a call's way through the governor, two wake-ups of the governor's
//!   thread for nothing (measured: 4.2 `epoll_wait` returns per call on the governor's path
//!   of one node, 2 without). So the socket is registered for readability alone.
//! - **Writes go at once.** A write is tried on the non-blocking socket as it is. Only one
//!   that finds the socket full waits for room, through a registration of its own for
//!   writability, on a duplicate of the fd (epoll keys a registration by fd), dropped once
//!   the write went in: a peer that reads slowly costs one registration per full socket, a
//!   peer that keeps up costs none.
//! - **Reads that tell.** A read that returned less than its buffer and no fds took all the
//!   socket held (a Unix stream read stops early only where fds come), so the readiness is
//!   cleared there and then, and the next read waits for input instead of first asking the
//!   socket for more (one `recvmsg` that says `EAGAIN` saved per frame). Tokio clears only
//!   the readiness that read saw, so input that came after it still wakes the reader.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::lent::MAX_FDS;

/// What one read brought: its bytes' count, whether the fds that came overflowed the control
/// buffer (then none are kept), and the fds.
pub(crate) struct Read {
    pub(crate) bytes: usize,
    pub(crate) truncated: bool,
    pub(crate) fds: Vec<OwnedFd>,
}

/// One peer's socket (see the module rules).
pub(crate) struct Conn {
    io: AsyncFd<UnixStream>,
}

impl Conn {
    /// Takes over `stream` (made non-blocking here) on the current runtime.
    pub(crate) fn new(stream: UnixStream) -> io::Result<Conn> {
        stream.set_nonblocking(true)?;
        Ok(Conn { io: register(stream, Interest::READABLE)? })
    }

    /// Reads what the socket holds into `buf`, with the fds that came with it, waiting for
    /// input if there is none.
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> io::Result<Read> {
        loop {
            let mut ready = self.io.readable().await?;
            let got = ready.try_io(|io| {
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let msg = rustix::net::recvmsg(
                    io.get_ref(),
                    &mut [io::IoSliceMut::new(buf)],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )?;
                let mut fds = Vec::new();
                for m in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(rights) = m {
                        fds.extend(rights);
                    }
                }
                Ok(Read { bytes: msg.bytes, truncated: msg.flags.contains(ReturnFlags::CTRUNC), fds })
            });
            match got {
                Ok(Ok(read)) => {
                    if read.bytes > 0 && read.bytes < buf.len() && read.fds.is_empty() && !read.truncated {
                        ready.clear_ready();
                    }
                    return Ok(read);
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }

    /// Writes what `write` writes of the socket, at once if it takes bytes, else once it has
    /// room (see the module rules); `write` is tried again until it does not say `WouldBlock`.
    async fn write_with(&self, mut write: impl FnMut(&UnixStream) -> io::Result<usize>) -> io::Result<usize> {
        match write(self.io.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return done,
        }
        let room = register(self.io.get_ref().try_clone()?, Interest::WRITABLE)?;
        loop {
            let mut ready = room.writable().await?;
            if let Ok(done) = ready.try_io(|io| write(io.get_ref())) {
                return done;
            }
        }
    }

    /// Writes some of `slices`, as `write_vectored` does, but as a `sendmsg` that raises no
    /// SIGPIPE when the peer is gone (the write fails with `EPIPE` instead, whatever the
    /// process does with the signal).
    pub(crate) async fn write_vectored(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_with(|io| {
            let mut no_control = SendAncillaryBuffer::default();
            Ok(rustix::net::sendmsg(io, slices, &mut no_control, SendFlags::NOSIGNAL)?)
        })
        .await
    }

    /// Writes some of `slices` with `fds` attached to their first byte, in one sendmsg. The
    /// kernel attaches them to the first byte written, and a receiver's recvmsg returns them
    /// no later than that byte.
    pub(crate) async fn send_with_fds(&self, slices: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        self.write_with(|io| {
            let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(fds)) {
                return Err(io::Error::other("the fds do not fit the control buffer"));
            }
            Ok(rustix::net::sendmsg(io, slices, &mut control, SendFlags::NOSIGNAL)?)
        })
        .await
    }

    /// Shuts the writing half: the peer reads to the end of what was written, then sees it end.
    pub(crate) fn shutdown_write(&self) {
        let _ = self.io.get_ref().shutdown(std::net::Shutdown::Write);
    }
}

/// Registers `stream` with the current runtime for `interest`.
fn register(stream: UnixStream, interest: Interest) -> io::Result<AsyncFd<UnixStream>> {
    // SAFETY: a `UnixStream` owns its fd until it is dropped, and `as_raw_fd` always gives that
    // one; the `AsyncFd` owns the stream, and nothing here swaps it for another.
    Ok(unsafe { AsyncFd::register_with_interest(stream, interest) }?)
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get_ref().as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(5);

    async fn recv_within(conn: &Conn, buf: &mut [u8]) -> Read {
        tokio::time::timeout(WAIT, conn.recv(buf)).await.expect("input that came wakes the reader").expect("reads")
    }

    /// A read that took all the socket held clears its readiness, and input that comes
    /// afterwards still wakes the next read.
    #[tokio::test]
    async fn input_after_a_read_that_drained_the_socket_still_wakes_the_reader() {
        let (ours, mut theirs) = UnixStream::pair().expect("a pair");
        let conn = Conn::new(ours).expect("registered");
        let mut buf = vec![0u8; 1024];
        for round in 0..50u8 {
            theirs.write_all(&[round; 10]).expect("written");
            let read = recv_within(&conn, &mut buf).await;
            assert_eq!(&buf[..read.bytes], &[round; 10]);
        }
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            theirs.write_all(b"later").expect("written");
            theirs
        });
        let read = recv_within(&conn, &mut buf).await;
        assert_eq!(&buf[..read.bytes], b"later");
        drop(writer.join());
        assert_eq!(recv_within(&conn, &mut buf).await.bytes, 0, "the end of the stream");
    }

    /// A read stops where fds come with the bytes, so it says nothing of what is behind them:
    /// the bytes queued after fds are read without new input.
    #[tokio::test]
    async fn bytes_queued_behind_fds_are_read_without_new_input() {
        let (ours, theirs) = UnixStream::pair().expect("a pair");
        let conn = Conn::new(ours).expect("registered");
        let bell = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("an eventfd");
        rebeam_shm::fdpass::send_fds(&theirs, b"first", &[]).expect("sent");
        rebeam_shm::fdpass::send_fds(&theirs, b"carrying", &[bell.as_fd()]).expect("sent");
        rebeam_shm::fdpass::send_fds(&theirs, b"behind", &[]).expect("sent");
        let mut buf = vec![0u8; 1024];
        let (mut got, mut fds) = (Vec::new(), 0);
        while got.len() < b"firstcarryingbehind".len() {
            let read = recv_within(&conn, &mut buf).await;
            assert!(read.bytes > 0, "the stream ended early");
            got.extend_from_slice(&buf[..read.bytes]);
            fds += read.fds.len();
        }
        assert_eq!((&got[..], fds), (&b"firstcarryingbehind"[..], 1));
    }

    /// A write that finds the socket full waits for room, and goes in whole once the peer reads.
    #[tokio::test]
    async fn a_write_to_a_full_socket_waits_for_room() {
        let (ours, mut theirs) = UnixStream::pair().expect("a pair");
        let conn = Conn::new(ours).expect("registered");
        let chunk = vec![7u8; 64 * 1024];
        let total = 8 << 20; // far more than a socket buffer holds
        let reader = std::thread::spawn(move || {
            let (mut got, mut buf) = (0, vec![0u8; 64 * 1024]);
            while got < total {
                std::thread::sleep(Duration::from_micros(200));
                let n = std::io::Read::read(&mut theirs, &mut buf).expect("reads");
                assert!(buf[..n].iter().all(|&b| b == 7));
                got += n;
            }
            got
        });
        let mut written = 0;
        while written < total {
            let left = chunk.len().min(total - written);
            let n = tokio::time::timeout(WAIT, conn.write_vectored(&[IoSlice::new(&chunk[..left])]))
                .await
                .expect("room comes as the peer reads")
                .expect("written");
            written += n;
        }
        assert_eq!(reader.join().expect("the reader"), total);
    }

    /// A write to a peer that is gone fails, and the next one too: the writer stops.
    #[tokio::test]
    async fn a_write_to_a_peer_that_is_gone_fails() {
        let (ours, theirs) = UnixStream::pair().expect("a pair");
        let conn = Conn::new(ours).expect("registered");
        drop(theirs);
        let err = conn.write_vectored(&[IoSlice::new(b"to nobody")]).await.expect_err("nobody reads");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    }
}
