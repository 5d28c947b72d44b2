//! The governor's socket: accepts connections, checks who is on the other end, and turns bytes
//! into frames for the router.
//!
//! A connection is trusted only after (1) the peer's uid, read with SO_PEERCRED, is ours and
//! (2) its first frame is a Hello with the one-time token the governor gave that very child. A
//! peer that sends anything else, or bytes that do not decode, is logged and dropped; the
//! governor keeps running.

use std::time::Duration;

use rebeam_proto::{Frame, FrameDecoder, ProtoError, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

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
    pub writer: mpsc::UnboundedSender<Vec<u8>>,
    /// The router answers with the process this connection belongs to, or why it is refused.
    pub accept: oneshot::Sender<Result<ProcIdx, String>>,
}

/// `python_uid`: the uid the Python processes run as, if not ours (`--python-user`).
pub fn spawn_acceptor(
    listener: UnixListener,
    inputs: mpsc::UnboundedSender<Input>,
    frame_limit: u64,
    python_uid: Option<u32>,
) {
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

async fn serve(stream: UnixStream, inputs: mpsc::UnboundedSender<Input>, frame_limit: u64, python_uid: Option<u32>) {
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
    let (writer, mut outbox) = mpsc::unbounded_channel::<Vec<u8>>();
    let (accept, accepted) = oneshot::channel();
    let hello = Hello { version, role, token, pid, writer, accept };
    if inputs.send(Input::Hello(hello)).is_err() {
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
        while let Some(bytes) = outbox.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });

    loop {
        match next_frame(&mut rd, &mut decoder, &mut buf).await {
            Ok(frame) => {
                if inputs.send(Input::Frame(proc, frame)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = inputs.send(Input::Lost(proc, e));
                return;
            }
        }
    }
}

async fn next_frame(
    rd: &mut tokio::net::unix::OwnedReadHalf,
    decoder: &mut FrameDecoder,
    buf: &mut [u8],
) -> Result<Frame, ProtoError> {
    loop {
        if let Some(frame) = decoder.next_frame()? {
            return Ok(frame);
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
