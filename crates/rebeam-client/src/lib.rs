//! A process's connection to its rebeam governor, with no Python in it: `rebeam-py` wraps it for
//! Python, and a Rust host uses it as it is.
//!
//! The rules it implements:
//! - [`Client::connect`] sends [`Frame::Hello`](rebeam_proto::Frame::Hello) with the process's
//!   token and waits for `Welcome`; any other first answer, or none, is a [`ClientError::Connect`].
//! - Each request gets a fresh id and exactly one waiter. A reader thread (the only reader of the
//!   socket) hands each response to the thread waiting for its id; a response nobody waits for
//!   any more (its waiter timed out) is dropped. Requests sent without a waiter
//!   ([`Client::send_unawaited`]) keep only their refusals, for [`Client::take_refused`]; so do
//!   requests the governor answers only when it refuses them ([`Client::send_quiet`]), which
//!   leave nothing behind when accepted.
//! - A request may instead be started with a completion ([`Client::start_completion`]): its
//!   response, or its backstop timeout, or `Gone` at the close, is queued under its tag for
//!   [`Client::next_completion`], so one thread can drain the answers of many requests in
//!   flight (the rules are in the `completions` module).
//! - Commands go, in arrival order, to one queue drained by [`Client::next_command`] (or in
//!   batches of casts and behaviours by
//!   [`Client::next_commands`]), except
//!   `Command::Safety`, which only updates [`Client::safety`] (read without a round trip).
//!   One thread at a time takes them; it may step aside to run what it took while another
//!   takes the next (the rules are in the `role` module). Past [`DELIVERY_BOUND`] deliveries
//!   waiting here, the channel threads leave casts in their rings; calls and answers pass
//!   (the `backlog` module).
//! - When the socket closes, every waiter wakes with [`ClientError::Gone`], later requests fail
//!   with [`ClientError::Closed`], and the command queue ends with `Command::Shutdown { code: -1 }`.
//! - Frames that hand over a direct channel's end come with its fds; the reader opens the end
//!   and starts using it, and closes any fd no frame names (the rules are in the `channel`
//!   module).
//! - Ordinary calls and casts go straight to the actor's process once its route is known, and
//!   their answers reach the same waiters (the rules are in the `direct` module).
//! - Writers share one lock, so frames from several threads never interleave on the socket.
//!   Frames nobody waits for may be held to go in one write, before anything else is sent (the
//!   rules are in the `batch` module).
//!
//! Waits take a timeout and never hold a lock, so a caller can wait in slices (as `rebeam-py`
//! does, to run Python's signal handlers in between) without losing the response.

mod backlog;
#[cfg(test)]
mod backlog_tests;
mod batch;
#[cfg(test)]
mod batch_tests;
mod channel;
#[cfg(test)]
mod channel_tests;
mod client;
mod completion_reader;
#[cfg(test)]
mod completion_reader_tests;
#[cfg(test)]
mod completion_tests;
mod completions;
mod direct;
#[cfg(test)]
mod direct_tests;
#[cfg(test)]
mod fast_cast_tests;
mod fit;
mod held;
mod held_rings;
#[cfg(test)]
mod held_tests;
mod here;
#[cfg(test)]
mod here_tests;
mod idle_reader;
#[cfg(test)]
mod idle_reader_tests;
mod lent;
mod reader;
mod reading;
mod role;
#[cfg(test)]
mod role_tests;
#[cfg(test)]
mod tests;

pub use backlog::{CALL_BOUND, DELIVERY_BOUND};
pub use batch::{HELD_FRAMES, HELD_FRAME_MAX_BYTES};
pub use channel::ChannelEnd;
pub use client::{Client, PendingResponse, Welcome};
pub use completions::{Completion, Tag};
pub use direct::{CAST_ROOM_WAIT, LOCAL_DELIVERY};
pub use lent::LEND_ABOVE;
use rebeam_proto::{ErrorInfo, ErrorKind, ProtoError};
pub use rebeam_shm::Block;

/// Limit on the handshake's answer: a `Welcome` is a few bytes, so anything near this is not one.
pub const HANDSHAKE_LIMIT_BYTES: u64 = 1 << 20;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting or the handshake failed (the message names the socket or the answer).
    #[error("{0}")]
    Connect(String),
    /// The connection was already closed when the request was made.
    #[error("the connection to the rebeam governor is closed")]
    Closed,
    /// The governor went away while a request waited for its answer.
    #[error("the rebeam governor is gone")]
    Gone,
    /// Writing to the governor failed.
    #[error("the governor is gone ({0})")]
    Write(std::io::Error),
    /// The frame could not be encoded (too large for the wire).
    #[error("{0}")]
    Encode(ProtoError),
    /// No answer within the wait's timeout (the request may still be answered later).
    #[error("no answer within the timeout")]
    Timeout,
}

impl ClientError {
    /// The failure as callers are told about it (the Python layer raises it as an exception).
    pub fn into_info(self) -> ErrorInfo {
        let kind = match self {
            ClientError::Encode(_) => ErrorKind::BadRequest,
            // A timed-out wait has no message of its own: the caller knows what it waited for.
            ClientError::Timeout => return ErrorInfo::new(ErrorKind::Timeout, ""),
            ClientError::Connect(_) | ClientError::Closed | ClientError::Gone | ClientError::Write(_) => {
                ErrorKind::ShuttingDown
            }
        };
        ErrorInfo::new(kind, self.to_string())
    }
}
