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
//! no other; then they close here, and the governor holds none of a channel's fds. Frames
//! without fds queued together are written together, in order (one system call a burst).
//!
//! Peers send fds too: the segments a call or cast lends. The reader receives them with the
//! bytes (recvmsg) and hands them to the router with the frame that claims them; the rules,
//! and what becomes of fds no frame claims, are in `lent.rs`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use rebeam_proto::{Encoded, Frame, FrameDecoder, Inbound, ProtoError, Role};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::conn::Conn;
use crate::lent::{PeerFds, Stray, MAX_FDS};
use crate::outbox::{self, Outbox, Outgoing};
use crate::router::{Input, ProcIdx};

/// How long a fresh connection has to say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 64 * 1024;
/// The most queued frames one write takes: a burst's cost is one system call, and its slices
/// stay well under the kernel's limit per vectored write (larger ones are written in parts).
const MAX_BURST_FRAMES: usize = 64;

/// A Hello, handed to the router to match against the children it spawned.
pub struct Hello {
    pub version: u32,
    pub role: Role,
    pub token: String,
    pub pid: u32,
    pub writer: Outbox,
    /// The router answers with the process this connection belongs to, or why it is refused.
    pub accept: oneshot::Sender<Result<ProcIdx, Refusal>>,
}

/// Why the router refused a Hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub why: String,
    /// The run is shutting down: a worker (a spare, say) started before the shutdown and
    /// connecting after it is expected, and worth a debug line, not a warning.
    pub late: bool,
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
    let peer_pid = peer.pid();
    let conn = match stream.into_std().and_then(Conn::new) {
        Ok(conn) => Arc::new(conn),
        Err(e) => {
            tracing::warn!(pid = ?peer_pid, "dropped a connection that cannot be taken over: {e}");
            return;
        }
    };
    let rd = &*conn;
    let mut decoder = FrameDecoder::new(frame_limit);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut fds = PeerFds::default();

    let first = tokio::time::timeout(HELLO_TIMEOUT, next_frame(rd, &mut decoder, &mut buf, &mut fds, peer_pid)).await;
    let first = first.map(|got| got.map(|(frame, _, _)| frame.into_frame()));
    let hello = match first {
        Err(_) => {
            tracing::warn!(pid = ?peer_pid, "dropped a connection that said nothing for {HELLO_TIMEOUT:?}");
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(pid = ?peer_pid, "dropped a connection before its Hello: {e}");
            return;
        }
        Ok(Ok(frame)) => frame,
    };
    let Frame::Hello { version, role, token, pid } = hello else {
        tracing::warn!(pid = ?peer_pid, "dropped a connection whose first frame was not a Hello");
        return;
    };
    let (writer, outbox) = outbox::outbox(outbox::budget(frame_limit));
    let (accept, accepted) = oneshot::channel();
    let hello = Hello { version, role, token, pid, writer, accept };
    if !inputs.send(Input::Hello(hello), 0).await {
        return;
    }
    let proc = match accepted.await {
        Ok(Ok(proc)) => proc,
        Ok(Err(Refusal { why, late: true })) => {
            tracing::debug!(pid, "refused a connection during the shutdown: {why}");
            return;
        }
        Ok(Err(Refusal { why, late: false })) => {
            tracing::warn!(pid, "refused a connection: {why}");
            return;
        }
        Err(_) => return,
    };

    tokio::spawn(write_queued(conn.clone(), outbox));

    loop {
        match next_frame(rd, &mut decoder, &mut buf, &mut fds, peer_pid).await {
            Ok((frame, bytes, lent)) => {
                let input = match frame {
                    Inbound::Hot(hot) if hot.lent() > 0 => Input::Lent(proc, hot, lent),
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

/// Writes what the outbox queues, in order, until it closes or a write fails; then shuts the
/// socket's writing half.
async fn write_queued(wr: Arc<Conn>, mut outbox: outbox::Drain) {
    let mut next = None;
    loop {
        let out = match next.take() {
            Some(out) => out,
            None => match outbox.recv().await {
                Some(out) => out,
                None => break,
            },
        };
        if !out.fds.is_empty() {
            let len = out.bytes.len();
            if write_outgoing(&wr, out).await.is_err() {
                break;
            }
            outbox.written(len);
            continue;
        }
        // The frames queued behind it go in the same write: a burst (behaviours sent to a
        // worker, say) costs one system call, not one each. One with fds goes alone next.
        let mut burst = vec![out.bytes];
        while burst.len() < MAX_BURST_FRAMES {
            match outbox.try_next() {
                Some(more) if more.fds.is_empty() => burst.push(more.bytes),
                more => {
                    next = more;
                    break;
                }
            }
        }
        let len = burst.iter().map(Encoded::len).sum();
        if write_burst(&wr, &burst).await.is_err() {
            break;
        }
        outbox.written(len);
    }
    wr.shutdown_write();
}

/// Writes frames one after another, in as few vectored writes as the kernel takes.
async fn write_burst(wr: &Conn, frames: &[Encoded]) -> std::io::Result<()> {
    let (mut written, total) = (0, frames.iter().map(Encoded::len).sum::<usize>());
    while written < total {
        let mut skip = written;
        let mut slices = Vec::new();
        for frame in frames {
            if skip >= frame.len() {
                skip -= frame.len();
                continue;
            }
            slices.extend(frame.slices_after(skip));
            skip = 0;
        }
        match wr.write_vectored(&slices).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => written += n,
        }
    }
    Ok(())
}

/// Writes one queued frame; its fds (if any) go with its first bytes, then close here.
async fn write_outgoing(wr: &Conn, out: Outgoing) -> std::io::Result<()> {
    let written = if out.fds.is_empty() { 0 } else { send_with_fds(wr, &out.bytes, &out.fds).await? };
    write_vectored_all(wr, &out.bytes, written).await
}

/// Writes the first bytes of `frame` with `fds` attached, in one sendmsg once the socket takes
/// bytes: they arrive with the frame that names them (see `Conn::send_with_fds`).
async fn send_with_fds(wr: &Conn, frame: &Encoded, fds: &[OwnedFd]) -> std::io::Result<usize> {
    let fds: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
    match wr.send_with_fds(&frame.slices_after(0), &fds).await? {
        0 => Err(std::io::ErrorKind::WriteZero.into()),
        n => Ok(n),
    }
}

/// Writes a frame's header and payload pieces after its first `written` bytes, without
/// concatenating them.
async fn write_vectored_all(wr: &Conn, frame: &Encoded, mut written: usize) -> std::io::Result<()> {
    let total = frame.len();
    while written < total {
        match wr.write_vectored(&frame.slices_after(written)).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => written += n,
        }
    }
    Ok(())
}

/// The next frame (a hot one as its header says), how many bytes it took on the wire, and
/// the fds it lends; fds no frame claims are closed (see `lent.rs`). `pid` names the peer in
/// the warning.
async fn next_frame(
    rd: &Conn,
    decoder: &mut FrameDecoder,
    buf: &mut [u8],
    fds: &mut PeerFds,
    pid: Option<i32>,
) -> Result<(Inbound, usize, Vec<OwnedFd>), ProtoError> {
    let warn = |Stray(n): Stray, why: &str| {
        tracing::warn!(?pid, "closed {n} fd(s) a peer sent {why}");
    };
    loop {
        let held = decoder.pending();
        if let Some(frame) = decoder.next_inbound()? {
            let lent = fds.claim(match &frame {
                Inbound::Hot(hot) => hot.lent(),
                Inbound::Frame(_) => 0,
            });
            if let Some(stray) = fds.settle(decoder.pending()) {
                warn(stray, "with no frame that lends pieces");
            }
            return Ok((frame, held - decoder.pending(), lent));
        }
        let (n, arrived) = read_with_fds(rd, buf).await?;
        if let Some(stray) = fds.arrived(arrived) {
            warn(stray, "with no frame that lends pieces");
        }
        if n == 0 {
            return Err(match decoder.pending() {
                0 => ProtoError::Closed,
                got => ProtoError::Truncated { got, expected: got + 1 },
            });
        }
        decoder.push(&buf[..n]);
    }
}

/// Reads what the socket holds into `buf`, with the fds that came with it (see `lent.rs`: a
/// read that brought more than [`MAX_FDS`] closes them all and brings none).
async fn read_with_fds(rd: &Conn, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let read = rd.recv(buf).await?;
    if read.truncated {
        tracing::warn!("closed the {} fd(s) of a read that brought more than {MAX_FDS}", read.fds.len());
        return Ok((read.bytes, Vec::new()));
    }
    Ok((read.bytes, read.fds))
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
            let wr = Conn::new(ours).expect("registered");
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
            write_outgoing(&wr, Outgoing { bytes: plain, fds: vec![] }).await.expect("written");
            write_outgoing(&wr, Outgoing { bytes: carrying, fds: vec![bell] }).await.expect("written");
            let (bytes, fds) = reader.join().expect("the reader");
            assert_eq!(fds.len(), 1);
            let at = fds[0].0;
            assert!(at > want.0 && at <= want.0 + want.1, "the fd came at byte {at}, outside the second frame");
            let second = decode_body(&bytes[want.0 + HEADER_BYTES..]).expect("decodes");
            assert!(matches!(second, Frame::Command(rebeam_proto::Command::Deliver { .. })));
        }
    }

    /// Frames queued together reach the socket whole and in order, however a burst is cut (more
    /// than one write's worth, a frame of many writes, a frame with fds among them, which
    /// brings its fd with its own bytes).
    #[tokio::test]
    async fn queued_frames_are_written_in_bursts_whole_and_in_order() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("a pair");
        let wr = Arc::new(Conn::new(ours).expect("registered"));
        let (writer, outbox) = outbox::outbox(u64::MAX);
        let sizes: Vec<usize> = (0..3 * MAX_BURST_FRAMES).map(|i| if i == 70 { 4 << 20 } else { 10 + i }).collect();
        let mut expected = Vec::new();
        let mut fd_frame = 0..0;
        for (i, &n) in sizes.iter().enumerate() {
            let f = frame(n);
            let fds = if i == 100 {
                fd_frame = expected.len()..expected.len() + f.len();
                vec![rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("an eventfd")]
            } else {
                vec![]
            };
            expected.extend_from_slice(&f.to_vec());
            assert!(writer.push_with_fds(f, fds, std::time::Instant::now));
        }
        drop(writer);
        let want = expected.len();
        let reader = std::thread::spawn(move || {
            let (mut got, mut fds_at) = (Vec::new(), Vec::new());
            let mut buf = vec![0u8; 64 * 1024];
            while got.len() < want {
                let (n, fds) = rebeam_shm::fdpass::recv_fds(&theirs, &mut buf).expect("reads");
                assert!(n > 0, "the stream ended early");
                got.extend_from_slice(&buf[..n]);
                fds_at.extend(fds.into_iter().map(|_| got.len()));
            }
            (got, fds_at)
        });
        write_queued(wr, outbox).await;
        let (got, fds_at) = reader.join().expect("the reader");
        assert!(got == expected, "the bytes written are not the frames queued, in order");
        assert_eq!(fds_at.len(), 1);
        assert!(fds_at[0] > fd_frame.start && fds_at[0] <= fd_frame.end, "the fd came outside its frame");
    }

    /// A lent call as its sender writes it: the frame's bytes, its one buffer lent.
    fn lent_call() -> Vec<u8> {
        let payload = rebeam_proto::Payload { data: vec![1].into(), buffers: vec![Default::default()] };
        let target = rebeam_proto::Target::Actor(1);
        let body = rebeam_proto::Request::Cast { target, subject: "s".into(), sender: None, payload };
        let hot = rebeam_proto::Routed::from_frame(Frame::Request { req: 1, body }).expect("hot");
        let loan = rebeam_proto::LentPiece { piece: 1, segment_len: 8192, len: 1, slot: 0 };
        hot.lend(&[loan]).expect("lends").encode().expect("encodes").to_vec()
    }

    /// The reader gives a lending frame the fd sent with it, a plain frame none, and closes an
    /// fd sent with a frame that lends nothing.
    #[tokio::test]
    async fn fds_go_to_the_frame_that_lends_them_and_stray_ones_close() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("a pair");
        let rd = Conn::new(ours).expect("registered");
        let (lent_read, lent_write) = std::io::pipe().expect("a pipe");
        let (stray_read, stray_write) = std::io::pipe().expect("a pipe");
        let (lent_write, stray_write): (OwnedFd, OwnedFd) = (lent_write.into(), stray_write.into());
        let plain = frame(8).to_vec();
        rebeam_shm::fdpass::send_fds(&theirs, &plain, &[]).expect("sent");
        rebeam_shm::fdpass::send_fds(&theirs, &lent_call(), &[lent_write.as_fd()]).expect("sent");
        rebeam_shm::fdpass::send_fds(&theirs, &plain, &[stray_write.as_fd()]).expect("sent");
        drop((lent_write, stray_write));
        let (mut decoder, mut buf, mut fds) = (FrameDecoder::new(1 << 20), vec![0u8; READ_CHUNK], PeerFds::default());
        let mut next = async || next_frame(&rd, &mut decoder, &mut buf, &mut fds, None).await.expect("a frame");
        let (first, _, none) = next().await;
        assert!(!matches!(first, Inbound::Hot(ref hot) if hot.lent() > 0) && none.is_empty());
        let (second, _, lent) = next().await;
        assert!(matches!(second, Inbound::Hot(ref hot) if hot.lent() == 1), "not the lent call");
        assert_eq!(lent.len(), 1, "the lent call came without its fd");
        let (_, _, stray) = next().await;
        assert!(stray.is_empty(), "a plain frame was given an fd");
        let ended = |mut r: std::io::PipeReader| {
            rustix::io::ioctl_fionbio(&r, true).expect("non-blocking");
            matches!(std::io::Read::read(&mut r, &mut [0u8; 1]), Ok(0))
        };
        assert!(ended(stray_read), "the stray fd is still open");
        assert!(!ended(lent_read.try_clone().expect("a clone")), "the lent fd was closed");
        drop(lent);
        assert!(ended(lent_read));
    }
}
