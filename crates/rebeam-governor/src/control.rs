//! The control socket: how the host (a person with `rebeam ctl`, or a Rust application)
//! arms, disarms and inspects a running system.
//!
//! # Who may change the safety state
//!
//! Python reads the safety state and never changes it. Every connection is checked twice:
//!
//! 1. its peer uid (SO_PEERCRED) must be the governor's, else it is refused outright;
//! 2. its peer pid's ancestry is walked through `/proc/<pid>/stat` up to pid 1. If the chain
//!    passes through the governor or through any live process of the run, the peer is *of the
//!    run*: it may ask for `status`, and `arm`, `disarm` and `force-disarm` are refused.
//!
//! Why the ancestry settles it: under `rebeam main.py` every Python process is the governor's
//! child, and the governor is a child subreaper, so whatever they start, even a double-forked
//! `setsid` daemon whose parent died, still has the governor as an ancestor. In library mode
//! the main process is the governor's *parent*: it and everything below it are checked by its
//! pid; the one exception is a main process started as the host (`rebeam serve --host`, a Rust
//! application that runs no Python): the peer that *is* it is the host, while everything it
//! starts is still checked as above. A peer whose ancestry cannot be read (it exited at once) is refused the same way:
//! unproven is not the host. The governor's own process as the peer is the host (a Rust
//! application embedding it); as an ancestor it marks the run.
//!
//! Only this socket accepts safety commands: the same frames arriving on the process socket
//! from a worker or the main process are refused by the router. The socket sits in the private
//! runtime directory (0700) as `ctl-<pid>.sock`, or where the host names it with
//! `--control-socket PATH` (in a directory owned by us and writable by nobody else), and is
//! owner-only (0600). Its path is never put in a Python process's environment.

use std::path::{Path, PathBuf};

use rebeam_proto::{
    ControlRefusal, ControlRequest, ControlResponse, Frame, FrameDecoder, ProtoError, RefusalKind, Role,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::router::{Input, ProcState, Router};
use crate::GovernorError;

/// Control requests are small; anything bigger is garbage.
const CONTROL_FRAME_LIMIT: u64 = 64 * 1024;
/// A reply carries a status report, which grows with the actors and subscriptions of the run
/// (about a hundred bytes each): room for a very large run, still a bound on what a client
/// of a misbehaving peer allocates.
const CONTROL_REPLY_LIMIT: u64 = 64 * 1024 * 1024;
/// Longest ancestry walked; a longer chain means /proc is lying or looping.
const MAX_ANCESTRY: usize = 4096;

/// Who is on the other end of a control connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub pid: Option<u32>,
    /// The peer and its ancestors up to pid 1, or why they could not be read.
    pub ancestry: Result<Vec<u32>, String>,
}

/// Binds the control socket: at `explicit` if the host named a path, else in `dir`.
pub fn bind(dir: &Path, explicit: Option<&Path>) -> Result<(UnixListener, PathBuf), GovernorError> {
    use std::os::unix::fs::PermissionsExt;
    let path = match explicit {
        Some(p) => {
            let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            check_host_path(&p)?;
            p
        }
        None => {
            let p = dir.join(format!("ctl-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&p);
            p
        }
    };
    let listener = UnixListener::bind(&path).map_err(|source| GovernorError::Listen { path: path.clone(), source })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| GovernorError::Listen { path: path.clone(), source })?;
    Ok((listener, path))
}

/// A path the host chose: its directory must be ours and closed to others (else another user
/// could swap the socket for their own), and an existing file there is replaced only if it is
/// a socket (a stale one of an earlier run), never a file of the user's.
fn check_host_path(path: &Path) -> Result<(), GovernorError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let bad = |why: String| GovernorError::ControlSocket { path: path.to_path_buf(), why };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let meta = std::fs::metadata(parent).map_err(|e| bad(format!("cannot read its directory: {e}")))?;
    let me = rustix::process::getuid().as_raw();
    if meta.uid() != me {
        return Err(bad(format!(
            "its directory {} belongs to uid {}, not to this user (uid {me}); choose a directory of your own",
            parent.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(bad(format!(
            "its directory {} is writable by group or others (mode {:o}); use a directory only you can write (chmod go-w)",
            parent.display(),
            meta.mode() & 0o777
        )));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            let _ = std::fs::remove_file(path);
            Ok(())
        }
        Ok(_) => Err(bad("a file that is not a socket is already there; choose another path".into())),
        Err(_) => Ok(()),
    }
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
    let peer = match stream.peer_cred() {
        Ok(cred) if cred.uid() == me => {
            let pid = cred.pid().and_then(|p| u32::try_from(p).ok());
            Peer { pid, ancestry: pid.map_or(Err("the peer's pid is unknown".into()), ancestry) }
        }
        Ok(cred) => {
            tracing::warn!(uid = cred.uid(), "refused a control connection from another user");
            let message = format!("uid {} may not control this rebeam: it belongs to uid {me}", cred.uid());
            let refusal = ControlRefusal { kind: RefusalKind::OtherUser, message };
            if let Ok(bytes) = rebeam_proto::encode(&Frame::ControlReply(ControlResponse::Refused(refusal))) {
                let _ = stream.write_all(&bytes).await;
            }
            return;
        }
        Err(e) => {
            tracing::warn!("refused a control connection whose credentials cannot be read: {e}");
            return;
        }
    };
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
        if inputs.send(Input::Control(request, peer.clone(), reply)).is_err() {
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

/// `pid` and its ancestors, read from `/proc/<pid>/stat`, ending at pid 1 (or 0).
fn ancestry(pid: u32) -> Result<Vec<u32>, String> {
    let mut chain = vec![pid];
    let mut at = pid;
    while at > 1 && chain.len() < MAX_ANCESTRY {
        at = parent_of(at).ok_or_else(|| format!("cannot read /proc/{at}/stat (the process is gone)"))?;
        chain.push(at);
    }
    Ok(chain)
}

/// The ppid field of `/proc/<pid>/stat` (the fourth; the name before it may hold spaces
/// and parentheses, so it is parsed from the last ')').
fn parent_of(pid: u32) -> Option<u32> {
    ppid_in_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn ppid_in_stat(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

impl Router {
    /// Why `peer` may not send `request`, if it may not: see the module doc.
    pub(crate) fn control_refusal(&self, request: &ControlRequest, peer: &Peer) -> Option<ControlRefusal> {
        if matches!(request, ControlRequest::Status) {
            return None;
        }
        let who = peer.pid.map_or("a peer of unknown pid".to_string(), |p| format!("pid {p}"));
        let (kind, through) = match &peer.ancestry {
            Err(e) => (RefusalKind::Unverified, format!("its ancestry cannot be checked ({e})")),
            Ok(chain) => (RefusalKind::InsideTheRun, self.member_of_the_run(chain)?),
        };
        let action = match request {
            ControlRequest::Arm => "arm",
            ControlRequest::Disarm => "disarm",
            ControlRequest::ForceDisarm => "force-disarm",
            ControlRequest::Status => "status",
        };
        tracing::warn!("refused `{action}` on the control socket from {who}: {through}");
        let message = format!(
            "{action} from {who}: {through}. The safety state is changed only by the host, \
             never by a Python process of the run or anything it started: run `rebeam ctl {action}` \
             from outside the run (your terminal, or the host application)"
        );
        Some(ControlRefusal { kind, message })
    }

    /// Which process of the run `chain` (a pid and its ancestors) passes through, if any.
    fn member_of_the_run(&self, chain: &[u32]) -> Option<String> {
        if is_the_host_main(&self.config.program, chain) {
            return None;
        }
        // Dead processes are skipped: their pids may belong to strangers by now.
        let live: Vec<(u32, String)> = self
            .procs
            .values()
            .filter(|p| p.state != ProcState::Dead)
            .map(|p| match p.role {
                Role::Main => (p.pid, format!("the {}", p.describe())),
                Role::Worker => (p.pid, p.describe()),
            })
            .collect();
        of_the_run(chain, std::process::id(), &live)
    }
}

/// Whether the peer of `chain` is a main process started as the host (`rebeam serve --host`)
/// itself: not its descendants, which are checked like any other peer.
fn is_the_host_main(program: &crate::Program, chain: &[u32]) -> bool {
    matches!(program, crate::Program::Library { parent, host: true, .. } if chain.first() == Some(parent))
}

/// The rule of the module doc on one ancestry `chain` (the peer first): the process of the
/// run it passes through, nearest first, if any. The governor's own pid as the peer itself is
/// not of the run: that is a Rust host that embeds the governor, and no Python process can
/// have that pid; as an *ancestor* it is (the run's children and re-parented orphans).
fn of_the_run(chain: &[u32], governor: u32, live: &[(u32, String)]) -> Option<String> {
    chain.iter().enumerate().find_map(|(depth, &pid)| {
        let what = if pid == governor {
            (depth > 0).then(|| "the governor".to_string())
        } else {
            live.iter().find(|(p, _)| *p == pid).map(|(_, what)| what.clone())
        }?;
        Some(if depth == 0 { format!("it is {what}") } else { format!("it descends from {what}") })
    })
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
    match rebeam_proto::read_frame(&mut stream, CONTROL_REPLY_LIMIT) {
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
    if let Some(p) = std::env::var_os(rebeam_proto::env::CONTROL).filter(|p| !p.is_empty()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_host_main_itself_is_the_host() {
        let library = |host| crate::Program::Library { parent: 10, token: String::new(), ready_fd: None, host };
        assert!(is_the_host_main(&library(true), &[10, 1]));
        assert!(!is_the_host_main(&library(false), &[10, 1]), "a Python library main is of the run");
        assert!(!is_the_host_main(&library(true), &[11, 10, 1]), "what the host starts is checked as usual");
        let script = crate::Program::Script { script: "m.py".into(), argv0: "m.py".into(), args: vec![] };
        assert!(!is_the_host_main(&script, &[10, 1]));
    }

    #[test]
    fn the_ppid_is_read_past_a_name_with_parentheses_and_spaces() {
        assert_eq!(ppid_in_stat("42 (evil) 1 (x) S 7 42 42 0 -1"), Some(7));
        assert_eq!(ppid_in_stat("42 (python3) S 1 42 42"), Some(1));
        assert_eq!(ppid_in_stat("garbage"), None);
    }

    /// Pids: 1 init, 50 a shell, 100 the governor, 101 its main process, 102 a worker; in
    /// library mode 90 is the user's Python (the governor's parent), 91 its child.
    #[test]
    fn the_run_is_the_governors_descendants_and_the_library_main_process_with_its_own() {
        let cli = [(101, "the main process (pid 101)".to_string()), (102, "worker 1 (pid 102)".to_string())];
        let of = |chain: &[u32], live: &[(u32, String)]| of_the_run(chain, 100, live);
        assert_eq!(of(&[300, 50, 1], &cli), None, "a host's `rebeam ctl` from a shell");
        assert_eq!(of(&[100, 50, 1], &cli), None, "a Rust host embedding the governor");
        assert_eq!(of(&[101, 100, 50, 1], &cli).as_deref(), Some("it is the main process (pid 101)"));
        assert_eq!(of(&[200, 102, 100, 50, 1], &cli).as_deref(), Some("it descends from worker 1 (pid 102)"));
        assert_eq!(of(&[201, 100, 50, 1], &cli).as_deref(), Some("it descends from the governor"), "an orphan");
        let library = [(90, "the main process (pid 90)".to_string()), (102, "worker 1 (pid 102)".to_string())];
        assert_eq!(of(&[90, 50, 1], &library).as_deref(), Some("it is the main process (pid 90)"));
        assert_eq!(of(&[92, 91, 90, 50, 1], &library).as_deref(), Some("it descends from the main process (pid 90)"));
        assert_eq!(of(&[300, 50, 1], &library), None, "the host, beside the user's process");
    }

    #[test]
    fn our_ancestry_runs_through_our_parent_to_init() {
        let me = std::process::id();
        let chain = ancestry(me).expect("our own /proc entry is readable");
        assert_eq!(chain[0], me);
        assert_eq!(chain[1], std::os::unix::process::parent_id());
        assert!(matches!(chain.last(), Some(0 | 1)), "{chain:?}");
    }
}
