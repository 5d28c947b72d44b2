//! The reader thread: the only reader of the socket, never attached to Python.

use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::Sender;
use rebeam_proto::{read_frame, Command, Frame, Response};

use crate::client::{lock, Shared};

/// Reads frames until the socket closes or a frame is malformed, then wakes every waiter.
pub(crate) fn run(mut stream: UnixStream, shared: Arc<Shared>, commands: Sender<Command>, limit: u64) {
    loop {
        match read_frame(&mut stream, limit) {
            Ok(Frame::Response { req, body }) => {
                let waiter = lock(&shared.pending).remove(&req);
                if let Some(tx) = waiter {
                    let _ = tx.send(body);
                } else if lock(&shared.unawaited).remove(&req) {
                    if let Response::Refused(info) = body {
                        lock(&shared.refused).push(info);
                    }
                }
            }
            Ok(Frame::Command(Command::Safety { state })) => {
                shared.safety.store(state as u8, Ordering::SeqCst);
            }
            Ok(Frame::Command(cmd)) => {
                shared.commands_in.fetch_add(1, Ordering::SeqCst);
                if commands.send(cmd).is_err() {
                    break;
                }
            }
            // Nothing else is meant for a process; a stray frame is ignored, not fatal.
            Ok(_) => {}
            Err(_) => break,
        }
    }
    shared.closed.store(true, Ordering::SeqCst);
    // Dropping the senders wakes every waiting request with a disconnect.
    lock(&shared.pending).clear();
    let _ = commands.send(Command::Shutdown { code: -1 });
}
