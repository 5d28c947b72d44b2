//! The crate's one error type.

use std::io;

/// What can go wrong with a segment, a ring, a doorbell or a peer.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// The ring has no room for this record now; the caller decides whether to wait or give up.
    #[error("the ring is full: {needed} bytes needed, {free} free")]
    Full { needed: usize, free: usize },
    /// The record can never fit, however far the receiver drains the ring.
    #[error("a {len}-byte record exceeds this ring's largest record of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// The shared memory holds something the protocol forbids: the peer scribbled on it (or is
    /// not a rebeam ring at all). The channel must be dropped; nothing read from it is trusted.
    #[error("the shared ring is corrupt: {0}")]
    Corrupt(&'static str),
    /// The peer process is gone; whatever the ring still holds will never be answered.
    #[error("the peer process has exited")]
    PeerGone,
    /// A wait ran out of time with nothing to report.
    #[error("timed out waiting on the channel")]
    TimedOut,
    /// A segment handed over does not have the size or seals this side insists on.
    #[error("the segment handed over is unusable: {0}")]
    BadSegment(String),
    /// A message over the Unix socket broke the fd-passing rules (too many fds, truncated).
    #[error("bad fd-passing message: {0}")]
    BadMessage(String),
    /// A system call failed.
    #[error("{op}: {source}")]
    Os {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl ShmError {
    /// Wraps a failed system call with the operation's name, so the message says which one.
    pub(crate) fn os(op: &'static str) -> impl FnOnce(rustix::io::Errno) -> Self {
        move |e| ShmError::Os { op, source: e.into() }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, ShmError>;
