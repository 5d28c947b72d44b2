//! rebeam's wire protocol between the governor and the processes it runs.
//!
//! Every process (the main process running the user's script, and each worker) holds one
//! Unix-socket connection to the governor. On it travel length-prefixed frames:
//!
//! ```text
//! frame    = fixed header (64 bytes, opening with length:u32 little-endian), variable, pieces
//! variable = subject, name, bincode body, one u64 length per piece (sizes in the fixed header)
//! pieces   = the payload bytes, in order, back to back
//! ```
//!
//! The fixed header ([`header`] has its table) says what the frame is, whom it is for and
//! where its parts lie. The frames of an ordinary call or cast (the call, the cast, the
//! delivery, the reply, the answers) are all header ([`Routed`]): the governor routes them from
//! the header and forwards them by writing a new one in front of the same subject and payload
//! pieces. Every other frame is a bincode (varint) body, the [`Frame`] with its payload bytes
//! taken out. Payload bytes sit beside the header so that a reader slices them out of its
//! read buffer, and a writer sends them with the header in one vectored write: payloads cross
//! the governor without being decoded or copied.
//!
//! The rules a peer must follow:
//! - The first frame a process sends is [`Frame::Hello`] carrying the one-time token the governor
//!   gave it in its environment; the governor answers [`Frame::Welcome`]. The process sends
//!   [`Frame::Ready`] once it can take work; nothing is dispatched to it before.
//! - Requests carry a request id chosen by the sender; each gets exactly one [`Frame::Response`]
//!   with the same id. Commands and events are one-way.
//! - Frames longer than the receiver's limit, or bodies that do not decode, are protocol errors:
//!   the receiver drops the peer. A decoder never allocates more than the limit, whatever the
//!   length prefix claims.
//! - Python values travel as [`Payload`]s: a pickle (protocol 5) plus its out-of-band buffers, so
//!   the governor routes them without understanding them; a Rust host's values are instead
//!   tagged neutral values ([`value`]), which the governor routes the same way.

mod codec;
pub mod env;
mod frame;
pub mod header;
pub mod lent;
mod pickle;
pub mod remote;
mod routed;
mod segments;
mod status;
pub mod value;

pub use codec::{
    decode_body, decode_frame, decode_inbound, encode, encode_parts, read_frame, read_inbound, write_frame, Encoded,
    FrameDecoder, Inbound, HEADER_BYTES,
};
pub use frame::*;
pub use header::{Kind, FIXED_HEADER_BYTES};
pub use lent::{LentPiece, MAX_LENT_PIECES};
pub use pickle::{pickle_map, unpickle_map, PickleValue};
pub use routed::{IntoEncoded, Routed, TargetLabel, TargetRef};
pub use status::{
    ChildStatus, ProcessStatus, ProcessUsage, ProgramStatus, SafetyTransition, StatusReport, SubscriptionStatus,
    TimedTransition, TreeStatus, RECENT_TRANSITIONS, STATUS_VERSION,
};

/// Version spoken by this build; a Hello with another version is refused. 7: quiet schedules,
/// lent replies, the caller's pid on deliveries, direct replies sent the governor's way. 8:
/// cowns released and forgotten (`Event::DropCowns`, `Command::ForgetCowns`). 9: a child's
/// placement on a node (`ChildSpec::node`), cowns a `@when` requested released and kept
/// (`Event::ReleaseCowns`, `Event::KeepCowns`), `DropCowns` from any process for its own cowns,
/// `Response::WhereisAt` (a name found on another node) and the node on `Command::Down`.
pub const PROTOCOL_VERSION: u32 = 9;

/// Default limit on one message's payload (pickle plus buffers). Large enough for a 64 MiB array
/// with room to spare; `--max-message-bytes` changes it.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 256 * 1024 * 1024;

/// Headroom a frame may take beyond its payload (subjects, names, tracebacks).
pub const FRAME_OVERHEAD_BYTES: u64 = 1024 * 1024;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: u64, limit: u64 },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("connection closed")]
    Closed,
    #[error("connection closed in the middle of a frame ({got} of {expected} bytes)")]
    Truncated { got: usize, expected: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
