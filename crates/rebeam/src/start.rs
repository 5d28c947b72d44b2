//! The start-up sequence of the `runtime` module doc, steps 2 to 4.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rebeam_proto::env;

use crate::runtime::{connect, say_ready, spawn_governor, Builder, Runtime};
use crate::Error;

/// Bytes of randomness in the main process's token (as hex, twice as many characters).
const TOKEN_BYTES: usize = 16;

pub(crate) fn start(builder: Builder) -> Result<Runtime, Error> {
    let command = builder.command()?;
    // Settings that make no run are refused before anything is made for one.
    builder.node.serve_args()?;
    let fail = |why: String| Error::Start { command: command.clone(), why };
    let token = random_hex().map_err(|e| fail(format!("no randomness for its token ({e})")))?;
    let private_dir = private_dir(&token).map_err(|e| fail(format!("cannot make a private directory ({e})")))?;
    let control = private_dir.join("ctl.sock");
    let (read_end, write_end) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| fail(format!("no pipe ({e})")))?;
    let args = builder.serve_args(write_end.as_raw_fd(), &control)?;
    let spawned = spawn_governor(&command, &args, &token, write_end.as_raw_fd());
    // Our copy closed, the governor's is the pipe's only writer: its exit ends our read.
    drop(write_end);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let _ = std::fs::remove_dir(&private_dir);
            return Err(fail(e.to_string()));
        }
    };
    if let Some(stderr) = child.stderr.take() {
        crate::logs::forward(stderr).map_err(|e| fail(format!("cannot forward its logs ({e})")))?;
    }
    let abandon = |mut child: std::process::Child, why: String| {
        let _ = child.kill();
        let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
        let _ = std::fs::remove_dir(&private_dir);
        fail(format!("{why} ({status})"))
    };
    let socket = match read_socket_path(read_end, builder.start_wait()) {
        Ok(socket) => socket,
        Err(why) => return Err(abandon(child, why)),
    };
    let client = match connect(&socket, &token).and_then(|c| say_ready(&c).map(|()| c)) {
        Ok(client) => client,
        Err(e) => return Err(abandon(child, e.to_string())),
    };
    let client = Arc::new(client);
    let tables = crate::monitors::Tables::default();
    if let Err(e) = crate::monitors::start_dispatch(client.clone(), tables.clone()) {
        return Err(abandon(child, format!("cannot start the command thread ({e})")));
    }
    Ok(Runtime { tables, client, child: Some(child), control, private_dir, shutdown_wait: builder.shutdown_wait() })
}

/// The process socket's path, from the governor's `REBEAM_SOCKET=…` line on the ready pipe.
fn read_socket_path(read_end: OwnedFd, timeout: Duration) -> Result<PathBuf, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    // A thread, so a governor that neither writes nor exits cannot hold the host past `timeout`.
    std::thread::Builder::new()
        .name("rebeam-start".into())
        .spawn(move || {
            let mut text = String::new();
            let read = std::fs::File::from(read_end).read_to_string(&mut text);
            let _ = tx.send(read.map(|_| text));
        })
        .map_err(|e| e.to_string())?;
    let text = match rx.recv_timeout(timeout) {
        Ok(Ok(text)) => text,
        Ok(Err(e)) => return Err(format!("reading its ready pipe failed: {e}")),
        Err(_) => return Err(format!("it was not listening after {timeout:?}")),
    };
    socket_in(&text).ok_or_else(|| "it ended before it was listening; its log says why".to_string())
}

/// The path in a `REBEAM_SOCKET=<path>` line of `text`.
fn socket_in(text: &str) -> Option<PathBuf> {
    let prefix = format!("{}=", env::SOCKET);
    text.lines().find_map(|l| l.strip_prefix(&prefix)).filter(|p| !p.is_empty()).map(PathBuf::from)
}

fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh directory only this user can enter, for the control socket.
fn private_dir(nonce: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base =
        std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()).map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!("rebeam-host-{}-{}", std::process::id(), &nonce[..8]));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_line_is_found_among_others() {
        assert_eq!(socket_in("X=1\nREBEAM_SOCKET=/run/a.sock\n"), Some(PathBuf::from("/run/a.sock")));
        assert_eq!(socket_in("REBEAM_SOCKET=\n"), None);
        assert_eq!(socket_in(""), None);
    }

    #[test]
    fn a_governor_that_exits_without_a_line_is_reported() {
        let (read_end, write_end) = rustix::pipe::pipe().unwrap();
        drop(write_end);
        let why = read_socket_path(read_end, Duration::from_secs(5)).unwrap_err();
        assert!(why.contains("ended before it was listening"), "{why}");
    }

    #[test]
    fn tokens_are_fresh_hex() {
        let (a, b) = (random_hex().unwrap(), random_hex().unwrap());
        assert_eq!(a.len(), 2 * TOKEN_BYTES);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
