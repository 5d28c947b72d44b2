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

use std::sync::Arc;
use std::time::Duration;

use rebeam_proto::{Encoded, Frame, FrameDecoder, Inbound, ProtoError, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::outbox::{self, Outbox};
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
        while let Some(frame) = outbox.recv().await {
            if write_vectored_all(&mut wr, &frame).await.is_err() {
                break;
            }
            outbox.written(frame.len());
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

/// Writes a frame's header and payload pieces without concatenating them.
async fn write_vectored_all(wr: &mut tokio::net::unix::OwnedWriteHalf, frame: &Encoded) -> std::io::Result<()> {
    let (mut written, total) = (0, frame.len());
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
