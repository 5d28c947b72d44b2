//! The governor's socket: accepts connections, checks who is on the other end, and turns bytes
//! into frames for the router.
//!
//! A connection is trusted only after (1) the peer's uid, read with SO_PEERCRED, is ours and
//! (2) its first frame is a Hello with the one-time token the governor gave that very child. A
//! peer that sends anything else, or bytes that do not decode, is logged and dropped; the
//! governor keeps running.
//!
//! What peers send is bounded in bytes on its way to the router: a reader holds a share of
//! [`PeerInputs`]' budget for each frame until the router has handled it, and reads nothing
//! more from its socket while it waits for room (backpressure on the sender's socket). What
//! the governor sends them is bounded by their outbox (`outbox.rs`).
//!
//! A frame that hands a process a channel end carries fds (SCM_RIGHTS): the writer sends them
//! with the frame's first bytes, in one sendmsg, so they reach the reader with that frame and
//! no other; then they close here, and the governor holds none of a channel's fds.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use rebeam_proto::{Encoded, Frame, FrameDecoder, Inbound, ProtoError, Role};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::outbox::{self, Outbox, Outgoing};
use crate::router::{Input, ProcIdx};

/// How long a fresh connection has to say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 64 * 1024;

/// A Hello, handed to the router to match against the children it spawned.
pub struct Hello {
    pub version: u32,
    pub role: Role,
    pub token: String,
    pub pid: u32,
    pub writer: Outbox,
    /// The router answers with the process this connection belongs to, or why it is refused.
    pub accept: oneshot::Sender<Result<ProcIdx, String>>,
}

/// Budget units are KiB, so a budget of several GiB still counts in a semaphore's permits.
const UNIT: u64 = 1024;

/// The router's input from peers: inputs, each holding its share of the byte budget.
#[derive(Clone)]
pub struct PeerInputs {
    tx: mpsc::UnboundedSender<PeerInput>,
    budget: Arc<Semaphore>,
    units: u32,
}

/// One input from a peer; its share of the budget returns when the router drops it.
pub struct PeerInput {
    pub input: Input,
    _share: OwnedSemaphorePermit,
}

/// A channel for peer inputs holding at most `budget` bytes of frames (but always one frame).
pub fn peer_inputs(budget: u64) -> (PeerInputs, mpsc::UnboundedReceiver<PeerInput>) {
    let units = u32::try_from(budget.div_ceil(UNIT)).unwrap_or(u32::MAX).max(1);
    let (tx, rx) = mpsc::unbounded_channel();
    (PeerInputs { tx, budget: Arc::new(Semaphore::new(units as usize)), units }, rx)
}

impl PeerInputs {
    /// Waits for room for `bytes`, then hands `input` to the router; false once it is gone.
    async fn send(&self, input: Input, bytes: usize) -> bool {
        let want = u32::try_from((bytes as u64).div_ceil(UNIT)).unwrap_or(u32::MAX).clamp(1, self.units);
        let Ok(share) = self.budget.clone().acquire_many_owned(want).await else {
            return false;
        };
        self.tx.send(PeerInput { input, _share: share }).is_ok()
    }
}

/// `python_uid`: the uid the Python processes run as, if not ours (`--python-user`).
pub fn spawn_acceptor(listener: UnixListener, inputs: PeerInputs, frame_limit: u64, python_uid: Option<u32>) {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, inputs.clone(), frame_limit, python_uid));
                }
                Err(e) => {
                    tracing::warn!("accept failed on the governor socket: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
}

async fn serve(stream: UnixStream, inputs: PeerInputs, frame_limit: u64, python_uid: Option<u32>) {
    let peer = match stream.peer_cred() {
        Ok(cred) => cred,
        Err(e) => {
            tracing::warn!("dropped a connection whose credentials cannot be read: {e}");
            return;
        }
    };
    let me = rustix::process::getuid().as_raw();
    if peer.uid() != me && Some(peer.uid()) != python_uid {
        tracing::warn!(uid = peer.uid(), pid = ?peer.pid(), "refused a connection from another user");
        return;
    }
    let (mut rd, mut wr) = stream.into_split();
    let mut decoder = FrameDecoder::new(frame_limit);
    let mut buf = vec![0u8; READ_CHUNK];

    let first = tokio::time::timeout(HELLO_TIMEOUT, next_frame(&mut rd, &mut decoder, &mut buf)).await;
    let first = first.map(|got| got.map(|(frame, _)| frame.into_frame()));
    let hello = match first {
        Err(_) => {
            tracing::warn!(pid = ?peer.pid(), "dropped a connection that said nothing for {HELLO_TIMEOUT:?}");
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(pid = ?peer.pid(), "dropped a connection before its Hello: {e}");
            return;
        }
        Ok(Ok(frame)) => frame,
    };
    let Frame::Hello { version, role, token, pid } = hello else {
        tracing::warn!(pid = ?peer.pid(), "dropped a connection whose first frame was not a Hello");
        return;
    };
    let (writer, mut outbox) = outbox::outbox(outbox::budget(frame_limit));
    let (accept, accepted) = oneshot::channel();
    let hello = Hello { version, role, token, pid, writer, accept };
    if !inputs.send(Input::Hello(hello), 0).await {
        return;
    }
    let proc = match accepted.await {
        Ok(Ok(proc)) => proc,
        Ok(Err(why)) => {
            tracing::warn!(pid, "refused a connection: {why}");
            return;
        }
        Err(_) => return,
    };

    tokio::spawn(async move {
        while let Some(out) = outbox.recv().await {
            let len = out.bytes.len();
            if write_outgoing(&mut wr, out).await.is_err() {
                break;
            }
            outbox.written(len);
        }
        let _ = wr.shutdown().await;
    });

    loop {
        match next_frame(&mut rd, &mut decoder, &mut buf).await {
            Ok((frame, bytes)) => {
                let input = match frame {
                    Inbound::Hot(hot) => Input::Hot(proc, hot),
                    Inbound::Frame(frame) => Input::Frame(proc, frame),
                };
                if !inputs.send(input, bytes).await {
                    return;
                }
            }
            Err(e) => {
                inputs.send(Input::Lost(proc, e), 0).await;
                return;
            }
        }
    }
}

/// Writes one queued frame; its fds (if any) go with its first bytes, then close here.
async fn write_outgoing(wr: &mut tokio::net::unix::OwnedWriteHalf, out: Outgoing) -> std::io::Result<()> {
    let written = if out.fds.is_empty() { 0 } else { send_with_fds(wr.as_ref(), &out.bytes, &out.fds).await? };
    write_vectored_all(wr, &out.bytes, written).await
}

/// Writes the first bytes of `frame` with `fds` attached, in one sendmsg once the socket takes
/// bytes. The kernel attaches the fds to the first byte written, and a receiver's recvmsg
/// returns them no later than that byte: they arrive with the frame that names them.
async fn send_with_fds(sock: &UnixStream, frame: &Encoded, fds: &[OwnedFd]) -> std::io::Result<usize> {
    let fds: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
    loop {
        sock.writable().await?;
        let sent = sock.try_io(Interest::WRITABLE, || {
            let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(std::io::Error::other("the fds do not fit the control buffer"));
            }
            Ok(rustix::net::sendmsg(sock, &frame.slices_after(0), &mut control, SendFlags::NOSIGNAL)?)
        });
        match sent {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes a frame's header and payload pieces after its first `written` bytes, without
/// concatenating them.
async fn write_vectored_all(
    wr: &mut tokio::net::unix::OwnedWriteHalf,
    frame: &Encoded,
    mut written: usize,
) -> std::io::Result<()> {
    let total = frame.len();
    while written < total {
        match wr.write_vectored(&frame.slices_after(written)).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => written += n,
        }
    }
    Ok(())
}

/// The next frame (a hot one as its header says) and how many bytes it took on the wire.
async fn next_frame(
    rd: &mut tokio::net::unix::OwnedReadHalf,
    decoder: &mut FrameDecoder,
    buf: &mut [u8],
) -> Result<(Inbound, usize), ProtoError> {
    loop {
        let held = decoder.pending();
        if let Some(frame) = decoder.next_inbound()? {
            return Ok((frame, held - decoder.pending()));
        }
        let n = rd.read(buf).await?;
        if n == 0 {
            return Err(match decoder.pending() {
                0 => ProtoError::Closed,
                got => ProtoError::Truncated { got, expected: got + 1 },
            });
        }
        decoder.push(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebeam_proto::{decode_body, encode_parts, HEADER_BYTES};

    /// A frame of `n` payload bytes (a delivery), encoded as the router queues it.
    fn frame(n: usize) -> Encoded {
        let payload = rebeam_proto::Payload { data: vec![7; n].into(), buffers: vec![] };
        let cmd =
            rebeam_proto::Command::Deliver { delivery: None, actor: 1, subject: "s".into(), sender: None, payload };
        encode_parts(Frame::Command(cmd)).expect("encodes")
    }

    /// Fds written with a frame arrive with its bytes, whether the frame is small or needs many
    /// writes; a frame without fds brings none.
    #[tokio::test]
    async fn fds_arrive_with_the_frame_that_carries_them() {
        for size in [16, 4 << 20] {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("a pair");
            ours.set_nonblocking(true).expect("nonblocking");
            let (_rd, mut wr) = UnixStream::from_std(ours).expect("tokio").into_split();
            let bell = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("an eventfd");
            let (plain, carrying) = (frame(size), frame(size));
            let want = (plain.len(), carrying.len());
            let reader = std::thread::spawn(move || {
                let mut got = (Vec::new(), Vec::new());
                let mut buf = vec![0u8; 64 * 1024];
                while got.0.len() < want.0 + want.1 {
                    let (n, fds) = rebeam_shm::fdpass::recv_fds(&theirs, &mut buf).expect("reads");
                    assert!(n > 0, "the stream ended early");
                    got.0.extend_from_slice(&buf[..n]);
                    got.1.extend(fds.into_iter().map(|fd| (got.0.len(), fd)));
                }
                got
            });
            write_outgoing(&mut wr, Outgoing { bytes: plain, fds: vec![] }).await.expect("written");
            write_outgoing(&mut wr, Outgoing { bytes: carrying, fds: vec![bell] }).await.expect("written");
            let (bytes, fds) = reader.join().expect("the reader");
            assert_eq!(fds.len(), 1);
            let at = fds[0].0;
            assert!(at > want.0 && at <= want.0 + want.1, "the fd came at byte {at}, outside the second frame");
            let second = decode_body(&bytes[want.0 + HEADER_BYTES..]).expect("decodes");
            assert!(matches!(second, Frame::Command(rebeam_proto::Command::Deliver { .. })));
        }
    }
}
