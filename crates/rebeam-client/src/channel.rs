//! Direct channel ends as this process receives them from the governor.
//!
//! The rules:
//! - The reader reads the socket with recvmsg ([`FdStream`]), one frame at a time (a length
//!   prefix, then exactly that frame's bytes), so every recvmsg returns bytes of one frame
//!   only. The kernel hands fds over with the bytes of the write that carried them, and the
//!   governor writes a frame's fds with that frame's first bytes: the fds a frame's reads
//!   returned are that frame's.
//! - A frame gets exactly the fds it names ([`Frame::fds_expected`]): fds with any other frame,
//!   or too few or too many with one that names some, are closed at once; a route that lost its
//!   fds is answered as refused, so its caller stays on the governor's path.
//! - A channel whose fds arrived is opened ([`ChannelEnd::open`]) and kept under its id until
//!   the process takes it ([`Client::take_channel`](crate::Client::take_channel)). Each end
//!   watches its peer's pidfd, so every wait on it ends the moment the peer dies.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use rebeam_proto::{ChannelGrant, ErrorInfo, ErrorKind, Frame, Response};
use rebeam_shm::{ChannelFds, PeerWatch, Receiver, Sender, ShmError};

/// Fds in a channel's grant per ring: its segment and its two doorbells.
const FDS_PER_RING: usize = 3;

/// The socket as the reader reads it: bytes with recvmsg, and the fds that come with them;
/// asleep in `poll` for input between them (`fdpass::recv_fds_when_readable`: so the
/// governor's every read of what this process sent does not wake the reader for nothing).
pub(crate) struct FdStream {
    stream: UnixStream,
    fds: Vec<OwnedFd>,
}

impl FdStream {
    pub(crate) fn new(stream: UnixStream) -> FdStream {
        FdStream { stream, fds: Vec::new() }
    }

    /// The fds received since the last call (with the frame just read).
    pub(crate) fn take_fds(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.fds)
    }
}

impl Read for FdStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match rebeam_shm::fdpass::recv_fds_when_readable(&self.stream, buf) {
            Ok((n, fds)) => {
                self.fds.extend(fds);
                Ok(n)
            }
            Err(ShmError::Os { source, .. }) => Err(source),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }
}

/// One end of a direct channel: a sender on the ring to the peer, a receiver on the ring from it.
#[derive(Debug)]
pub struct ChannelEnd {
    /// The channel's id, as the governor named it.
    pub id: u64,
    /// Records to the peer.
    pub sender: Sender,
    /// Records from the peer.
    pub receiver: Receiver,
}

impl ChannelEnd {
    /// Opens an end from its grant and its fds, in the order `rebeam_proto::CHANNEL_FDS` states.
    pub fn open(grant: &ChannelGrant, fds: Vec<OwnedFd>) -> Result<ChannelEnd, ShmError> {
        if fds.len() != rebeam_proto::CHANNEL_FDS {
            return Err(ShmError::BadMessage(format!(
                "a channel end is {} fds, got {}",
                rebeam_proto::CHANNEL_FDS,
                fds.len()
            )));
        }
        let len = |n: u64| usize::try_from(n).map_err(|_| ShmError::BadMessage(format!("a segment of {n} bytes")));
        let mut fds = fds.into_iter();
        let send = ChannelFds::from_fds(fds.by_ref().take(FDS_PER_RING).collect(), len(grant.send_len)?)?;
        let recv = ChannelFds::from_fds(fds.by_ref().take(FDS_PER_RING).collect(), len(grant.recv_len)?)?;
        let peer = PeerWatch::from_pidfd(fds.next().expect("counted above"))?;
        if peer.pid() != grant.peer_pid {
            return Err(ShmError::BadMessage(format!("a pidfd of pid {}, not {}", peer.pid(), grant.peer_pid)));
        }
        let sender = Sender::open(send, peer.try_clone()?)?;
        Ok(ChannelEnd { id: grant.id, sender, receiver: Receiver::open(recv, peer)? })
    }
}

/// What the reader does with a frame's fds: the channel end they make, if the frame hands one
/// over, and the frame as it is passed on (a route whose end cannot be opened becomes a
/// refusal). Fds the frame does not name are dropped, which closes them.
pub(crate) fn take_end(frame: Frame, fds: Vec<OwnedFd>) -> (Frame, Option<ChannelEnd>) {
    let named = frame.fds_expected();
    if named == 0 {
        return (frame, None);
    }
    let grant = match &frame {
        Frame::Response { body: Response::Route(Ok(route)), .. } => &route.channel,
        Frame::Command(rebeam_proto::Command::ChannelOpened(grant)) => grant,
        _ => unreachable!("only these frames name fds"),
    };
    match ChannelEnd::open(grant, fds) {
        Ok(end) => (frame, Some(end)),
        Err(e) => {
            let frame = match frame {
                Frame::Response { req, body: Response::Route(Ok(route)) } => {
                    let why = format!("the channel to actor <{}> could not be opened: {e}", route.actor.id);
                    Frame::Response { req, body: Response::Route(Err(ErrorInfo::new(ErrorKind::BadRequest, why))) }
                }
                other => other,
            };
            (frame, None)
        }
    }
}
