//! Shared-memory channel ends for rebeam's data plane.
//!
//! A direct channel from process A to process B is one [`Ring`](ring) in a sealed memfd
//! [`Segment`] plus two eventfd [`Doorbell`]s, handed to both ends as fds over a Unix socket
//! ([`fdpass`]). A holds the [`Sender`], B the [`Receiver`]; each also holds a [`PeerWatch`]
//! (a pidfd) on the other, so every wait returns [`ShmError::PeerGone`] the moment the peer dies.
//! A process with several peers sleeps on all its receivers at once with [`wait_any`].
//!
//! A buffer too large for a ring travels in a [`bulk`] segment of its own: the sender takes one
//! from its [`Pool`] (pre-faulted once, reused), copies the buffer in (a large one on every core:
//! [`copy`]) or built it there, and hands the segment's fd over with a [`Loan`]; the receiver
//! maps it as a [`BulkView`] and gives the loan back, in the segment's header, when the view is
//! dropped.
//!
//! Rules the crate keeps:
//! - No names anywhere: segments are memfds, doorbells eventfds, peers pidfds. Everything dies
//!   with its last fd, so a SIGKILL leaks nothing.
//! - The peer is not trusted: every index and length read from shared memory is checked before
//!   use, and a violation is [`ShmError::Corrupt`], never a panic or an out-of-bounds access.
//! - Nothing blocks unless asked to (`try_send`, `try_recv`), nothing grows (a full ring is
//!   [`ShmError::Full`]), and a wait has a timeout and watches the peer.
//! - A busy channel costs no system call: the sender rings the doorbell only when the receiver
//!   has said it is going to sleep (and the receiver wakes the sender only when it waits for
//!   room).

pub mod backstop;
pub mod bulk;
pub mod channel;
pub mod copy;
pub mod doorbell;
pub mod error;
pub mod fdpass;
pub mod idle;
pub mod peer;
pub mod pool;
pub mod ring;
pub mod segment;
pub mod select;

pub use backstop::Backstop;
pub use bulk::{BulkView, Loan};
pub use channel::{ChannelFds, Receiver, Sender};
pub use doorbell::Doorbell;
pub use error::{Result, ShmError};
pub use peer::PeerWatch;
pub use pool::{Block, Limits, Pool};
pub use ring::{Consumer, Producer, Record};
pub use segment::Segment;
pub use select::{wait_any, wait_once, wait_once_then, Ready, Woke};
