//! The reader thread: the only reader of the socket, never attached to Python. It takes the
//! fds that come with a frame too (`channel.rs` has the rules for channel ends, `lent.rs` for
//! the segments a delivery lends, mapped here before the delivery is queued).

use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rebeam_proto::{read_inbound, Command, Frame, Inbound};

use crate::channel::{take_end, FdStream};
use crate::client::{lock, Shared, Waiter};
use crate::completions::Completion;
use crate::lent::{self, Received};
use crate::role::Commands;
use crate::ClientError;

/// Reads frames until the socket closes or a frame is malformed, then wakes every waiter and
/// completes every outstanding completion with `Gone`.
pub(crate) fn run(stream: UnixStream, shared: Arc<Shared>, commands: Commands, limit: u64) {
    let mut stream = FdStream::new(stream);
    loop {
        let frame = read_inbound(&mut stream, limit).map(|frame| match frame {
            Inbound::Hot(hot) => {
                // Before the delivery is queued: its reply may be sent before the next read.
                if hot.caller_pid().is_some() {
                    shared.lender.note_delivery(&hot);
                }
                if hot.lent() > 0 {
                    return lent_frame(&shared, hot, stream.take_fds());
                }
                plain_frame(&shared, &mut stream, Inbound::Hot(hot))
            }
            frame => plain_frame(&shared, &mut stream, frame),
        });
        let frame = match frame {
            Ok(None) => continue,
            Ok(Some(frame)) => Ok(frame),
            Err(e) => Err(e),
        };
        match frame {
            Ok(Frame::Response { req, body }) => shared.answer(req, body),
            Ok(Frame::Command(Command::Safety { state })) => {
                shared.safety.store(state as u8, Ordering::SeqCst);
            }
            Ok(Frame::Command(Command::ChannelClosed { channel, why })) => shared.direct.peer_closed(channel, why),
            Ok(Frame::Command(cmd)) => {
                shared.direct.note_command(&cmd);
                shared.commands_in.fetch_add(1, Ordering::SeqCst);
                if !commands.send(cmd) {
                    break;
                }
            }
            // Nothing else is meant for a process; a stray frame is ignored, not fatal.
            Ok(_) => {}
            Err(_) => break,
        }
    }
    // `closed` first: a request registered after the map is emptied sees it and takes itself
    // back (see `Client::start_completion`).
    shared.closed.store(true, Ordering::SeqCst);
    shared.held.wake();
    // Dropping the senders wakes every waiting request with a disconnect.
    let outstanding = std::mem::take(&mut *lock(&shared.pending));
    for (tag, waiter) in outstanding {
        if let Waiter::Completion = waiter {
            shared.completions.push(Completion { tag, result: Err(ClientError::Gone) });
        }
    }
    shared.completions.end();
    commands.send(Command::Shutdown { code: -1 });
}

/// A frame that lends pieces, its segments mapped (`lent.rs`); None if refused (a call's
/// refusal is sent back).
fn lent_frame(shared: &Shared, hot: rebeam_proto::Routed, fds: Vec<std::os::fd::OwnedFd>) -> Option<Frame> {
    match lent::receive(hot, fds) {
        Received::Frame(frame) => Some(frame),
        Received::Refused(answer) => {
            if let Some(event) = answer {
                let _ = shared.write_event(event);
            }
            None
        }
    }
}

/// Any other frame; a channel end that came with it is adopted.
fn plain_frame(shared: &Arc<Shared>, stream: &mut FdStream, frame: Inbound) -> Option<Frame> {
    let (frame, end) = take_end(frame.into_frame(), stream.take_fds());
    if let Some(end) = end {
        shared.direct.adopt(shared, end);
    }
    Some(frame)
}
