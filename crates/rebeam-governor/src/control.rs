//! The control socket: how the host (a person with `rebeam ctl`, or a Rust application)
//! arms, disarms and inspects a running system.
//!
//! It lives beside the process socket in the private runtime directory (0700) and is itself
//! owner-only (0600); every connection's peer uid (SO_PEERCRED) must be the governor's. Only
//! this socket accepts safety commands: the same frames arriving from a worker or the main
//! process are refused, so Python can never arm the system.

use std::path::{Path, PathBuf};

use rebeam_proto::{ControlRequest, ControlResponse, Frame, FrameDecoder, ProtoError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::router::Input;
use crate::GovernorError;

/// Control frames are small; anything bigger is garbage.
const CONTROL_FRAME_LIMIT: u64 = 64 * 1024;

pub fn bind(dir: &Path) -> Result<(UnixListener, PathBuf), GovernorError> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("ctl-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|source| GovernorError::Listen { path: path.clone(), source })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| GovernorError::Listen { path: path.clone(), source })?;
    Ok((listener, path))
}

pub fn spawn_acceptor(listener: UnixListener, inputs: mpsc::UnboundedSender<Input>) {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, inputs.clone()));
                }
                Err(e) => {
                    tracing::warn!("accept failed on the control socket: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
}

async fn serve(mut stream: UnixStream, inputs: mpsc::UnboundedSender<Input>) {
    let me = rustix::process::getuid().as_raw();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == me => {}
        Ok(cred) => {
            tracing::warn!(uid = cred.uid(), "refused a control connection from another user");
            let why = format!("uid {} may not control this rebeam: it belongs to uid {me}", cred.uid());
            if let Ok(bytes) = rebeam_proto::encode(&Frame::ControlReply(ControlResponse::Refused(why))) {
                let _ = stream.write_all(&bytes).await;
            }
            return;
        }
        Err(e) => {
            tracing::warn!("refused a control connection whose credentials cannot be read: {e}");
            return;
        }
    }
    let mut decoder = FrameDecoder::new(CONTROL_FRAME_LIMIT);
    let mut buf = vec![0u8; 4096];
    loop {
        let frame = loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(e) => return drop_bad(e),
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => decoder.push(&buf[..n]),
            }
        };
        let Frame::Control(request) = frame else {
            tracing::warn!("dropped a control connection that sent a non-control frame");
            return;
        };
        let (reply, answer) = oneshot::channel();
        if inputs.send(Input::Control(request, reply)).is_err() {
            return;
        }
        let Ok(response) = answer.await else { return };
        let Ok(bytes) = rebeam_proto::encode(&Frame::ControlReply(response)) else { return };
        if stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

fn drop_bad(e: ProtoError) {
    tracing::warn!("dropped a control connection: {e}");
}

/// What the router answers for one control request.
pub type Reply = oneshot::Sender<ControlResponse>;

/// Sends one request to a running governor's control socket (blocking; for `rebeam ctl`
/// and Rust hosts).
pub fn request(socket: &Path, request: ControlRequest) -> Result<ControlResponse, String> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    // A refused peer gets its refusal and the connection closes, maybe before our write:
    // read the answer even when the write failed.
    let written = rebeam_proto::write_frame(&mut stream, &Frame::Control(request));
    match rebeam_proto::read_frame(&mut stream, CONTROL_FRAME_LIMIT) {
        Err(_) if written.is_err() => Err(written.expect_err("checked").to_string()),
        Ok(Frame::ControlReply(response)) => Ok(response),
        Ok(other) => Err(format!("unexpected answer from the governor: {other:?}")),
        Err(e) => Err(format!("no answer from the governor at {}: {e}", socket.display())),
    }
}

/// Finds the control socket: `explicit`, else `REBEAM_CONTROL`, else the only running rebeam
/// of this user.
pub fn find_socket(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("REBEAM_CONTROL").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let dir = crate::router::runtime_dir().map_err(|e| e.to_string())?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ctl-")))
        .collect();
    found.sort();
    match found.len() {
        0 => Err("no running rebeam found; start one with `rebeam main.py`, or name it with --socket / REBEAM_CONTROL"
            .into()),
        1 => Ok(found.remove(0)),
        _ => {
            let list: Vec<String> = found.iter().map(|p| format!("  {}", p.display())).collect();
            Err(format!("several rebeam runs are going; choose one with --socket:\n{}", list.join("\n")))
        }
    }
}
