//! The fixed header every frame opens with: what a router needs, at fixed offsets.
//!
//! A frame is this header, a variable part, and the payload pieces. All integers are
//! little-endian; offsets count from the frame's first byte (the length prefix):
//!
//! | offset | size | field      | meaning                                                        |
//! |-------:|-----:|------------|----------------------------------------------------------------|
//! |      0 |    4 | `length`   | bytes of the frame after this field                            |
//! |      4 |    1 | `lane`     | [`LANE_GOVERNOR`]: the frame goes through the governor         |
//! |      5 |    1 | `kind`     | a [`Kind`]: what the frame is                                  |
//! |      6 |    2 | `flags`    | `FLAG_*` bits; which ones a kind allows is [`Kind::flags`]     |
//! |      8 |    4 | `subject`  | bytes of the subject (UTF-8) in the variable part              |
//! |     12 |    4 | `name`     | bytes of the name (UTF-8): a call's target, a delivery's sender|
//! |     16 |    4 | `body`     | bytes of the bincode body ([`Kind::Bincode`] only)              |
//! |     20 |    4 | `pieces`   | payload pieces; each has a u64 length in the variable part     |
//! |     24 |    8 | `target`   | actor id: the call's target (unless named), the delivery's actor|
//! |     32 |    8 | `delivery` | delivery id chosen by the governor (deliveries, replies)       |
//! |     40 |    8 | `request`  | request id chosen by the caller (calls, casts, their answers);  |
//! |        |      |            | a delivered call's: its caller's pid, 0 if unknown (`lent.rs`)  |
//! |     48 |    8 | `sender`   | actor id of the sender ([`FLAG_SENDER`])                        |
//! |     56 |    8 | `timeout`  | a call's timeout in milliseconds                               |
//!
//! Then the variable part: the subject, the name, the bincode body, the piece lengths (8 bytes
//! each), in that order; then the pieces themselves, back to back, filling the frame exactly.
//!
//! Why this shape: a router reads one fixed-size block to know where a frame goes and where
//! its payload lies, and forwards it by writing a new header in front of the same pieces. The
//! header is 64 bytes with its 8-byte fields 8-aligned, so a frame in a shared-memory ring
//! (the coming direct channels carry the same layout) can be read in place. Fields a kind does
//! not use are zero, and a frame with a non-zero unused field, an unknown kind, lane or flag is
//! malformed: there is one encoding of each frame.

use crate::ProtoError;

/// Bytes of the fixed header, length prefix included.
pub const FIXED_HEADER_BYTES: usize = 64;
/// Bytes of a u8 field (`lane`, `kind`).
const U8_BYTES: usize = 1;
/// Bytes of a u16 field (`flags`).
const U16_BYTES: usize = 2;
/// Bytes of a u32 field (`length`, the four lengths).
const U32_BYTES: usize = 4;
/// Bytes of a u64 field (the five ids), and of one piece length in the variable part.
pub const U64_BYTES: usize = 8;

/// The only lane today: through the governor's socket. Direct channels will add theirs.
pub const LANE_GOVERNOR: u8 = 0;

/// The call's or cast's target is the name, not the `target` id.
pub const FLAG_TARGET_NAME: u16 = 1 << 0;
/// `sender` holds the sending actor (else the sender is a process, not an actor).
pub const FLAG_SENDER: u16 = 1 << 1;
/// A delivery's sender has a name (the name field).
pub const FLAG_SENDER_NAME: u16 = 1 << 2;
/// A delivery carries a delivery id (a call, or gated work): it must be answered.
pub const FLAG_DELIVERY: u16 = 1 << 3;
/// A reply's status is `Error` (a handler's `response_error`), else `Ok`.
pub const FLAG_STATUS_ERROR: u16 = 1 << 4;
/// A cast's answer: it was delivered.
pub const FLAG_DELIVERED: u16 = 1 << 5;
/// A call, cast, delivery, reply or call's answer lending buffers in shared memory: its last
/// piece is the loan table and its fds came with its first bytes (see `lent.rs`).
pub const FLAG_LENT: u16 = 1 << 6;

/// A reply to a direct call that goes the governor's way (too large for the channel's ring):
/// `target` is the channel, `request` the caller's request id on it; the governor sends it to
/// the channel's other end as that request's answer.
pub const FLAG_DIRECT: u16 = 1 << 7;

/// What a frame is. The hot kinds are the frames of an ordinary call or cast, laid out in the
/// header so the governor routes them without decoding anything else; every other frame is
/// [`Kind::Bincode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Any frame, as a bincode body (with its payload bytes taken out into the pieces).
    Bincode = 0,
    /// `Request::Call`: `request`, `target` or the name, subject, `sender`, `timeout`, payload.
    Call = 1,
    /// `Request::Cast`: as a call, without the timeout.
    Cast = 2,
    /// `Command::Deliver`: `target` is the actor, `delivery` if answered (and then `request`,
    /// the caller's pid, to which its reply may lend), the sender (and its name), subject,
    /// payload.
    Deliver = 3,
    /// `Event::Replied` with a reply: `delivery`, the status flag, payload; or, with
    /// [`FLAG_DIRECT`], `target` and `request` in place of `delivery`.
    Replied = 4,
    /// `Response::Call` with a reply: `request`, the status flag, payload.
    CallReply = 5,
    /// `Response::Cast`: `request`, the delivered flag.
    CastAnswer = 6,
}

/// Which fields a kind uses (the others must be zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uses {
    pub subject: bool,
    pub name: bool,
    pub body: bool,
    /// Pieces of one payload (at least its pickle), or none at all.
    pub payload: bool,
    pub target: bool,
    pub delivery: bool,
    pub request: bool,
    pub sender: bool,
    pub timeout: bool,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        [Kind::Bincode, Kind::Call, Kind::Cast, Kind::Deliver, Kind::Replied, Kind::CallReply, Kind::CastAnswer]
            .into_iter()
            .find(|k| *k as u8 == b)
    }

    /// The flags this kind may carry.
    pub fn flags(self) -> u16 {
        match self {
            Kind::Bincode => 0,
            Kind::Call | Kind::Cast => FLAG_TARGET_NAME | FLAG_SENDER | FLAG_LENT,
            Kind::Deliver => FLAG_SENDER | FLAG_SENDER_NAME | FLAG_DELIVERY | FLAG_LENT,
            Kind::Replied => FLAG_STATUS_ERROR | FLAG_LENT | FLAG_DIRECT,
            Kind::CallReply => FLAG_STATUS_ERROR | FLAG_LENT,
            Kind::CastAnswer => FLAG_DELIVERED,
        }
    }

    /// The fields this kind uses.
    pub fn uses(self) -> Uses {
        let none = Uses {
            subject: false,
            name: false,
            body: false,
            payload: false,
            target: false,
            delivery: false,
            request: false,
            sender: false,
            timeout: false,
        };
        let message = Uses { subject: true, name: true, payload: true, target: true, sender: true, ..none };
        match self {
            Kind::Bincode => Uses { body: true, payload: true, ..none },
            Kind::Call => Uses { request: true, timeout: true, ..message },
            Kind::Cast => Uses { request: true, ..message },
            Kind::Deliver => Uses { delivery: true, request: true, ..message },
            Kind::Replied => Uses { payload: true, delivery: true, ..none },
            Kind::CallReply => Uses { payload: true, request: true, ..none },
            Kind::CastAnswer => Uses { request: true, ..none },
        }
    }
}

/// The fixed header's fields, without the length (the framing owns it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    pub kind: Kind,
    pub flags: u16,
    pub subject: u32,
    pub name: u32,
    pub body: u32,
    pub pieces: u32,
    pub target: u64,
    pub delivery: u64,
    pub request: u64,
    pub sender: u64,
    pub timeout: u64,
}

impl Fixed {
    /// A header of `kind` with every other field zero.
    pub fn new(kind: Kind) -> Fixed {
        Fixed {
            kind,
            flags: 0,
            subject: 0,
            name: 0,
            body: 0,
            pieces: 0,
            target: 0,
            delivery: 0,
            request: 0,
            sender: 0,
            timeout: 0,
        }
    }

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// Appends the header for a frame of `length` bytes after the length field.
    pub fn write(&self, length: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(&length.to_le_bytes());
        out.push(LANE_GOVERNOR);
        out.push(self.kind as u8);
        out.extend_from_slice(&self.flags.to_le_bytes());
        for n in [self.subject, self.name, self.body, self.pieces] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for n in [self.target, self.delivery, self.request, self.sender, self.timeout] {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }

    /// Reads the header from a frame body (the bytes after the length field), and checks it
    /// against the kind's rules. It says nothing yet about whether the lengths fit the body.
    pub fn read(body: &[u8]) -> Result<Fixed, ProtoError> {
        let Some(fixed) = body.get(..FIXED_HEADER_BYTES - U32_BYTES) else {
            return Err(malformed(format!("a frame of {} bytes, shorter than its fixed header", body.len())));
        };
        let mut at = 0;
        let mut take = |n: usize| {
            let field = &fixed[at..at + n];
            at += n;
            field
        };
        let lane = take(U8_BYTES)[0];
        let kind = take(U8_BYTES)[0];
        let flags = u16::from_le_bytes(take(U16_BYTES).try_into().expect("2 bytes"));
        let mut u32s = [0u32; 4];
        u32s.iter_mut().for_each(|n| *n = u32::from_le_bytes(take(U32_BYTES).try_into().expect("4 bytes")));
        let mut u64s = [0u64; 5];
        u64s.iter_mut().for_each(|n| *n = u64::from_le_bytes(take(U64_BYTES).try_into().expect("8 bytes")));
        if lane != LANE_GOVERNOR {
            return Err(malformed(format!("lane {lane} on the governor's socket")));
        }
        let kind = Kind::from_u8(kind).ok_or_else(|| malformed(format!("unknown frame kind {kind}")))?;
        let [subject, name, body, pieces] = u32s;
        let [target, delivery, request, sender, timeout] = u64s;
        let fixed = Fixed { kind, flags, subject, name, body, pieces, target, delivery, request, sender, timeout };
        fixed.check()?;
        Ok(fixed)
    }

    /// The kind's rules: only its flags, its fields, and the fields its flags imply.
    fn check(&self) -> Result<(), ProtoError> {
        let (kind, mut uses) = (self.kind, self.kind.uses());
        if kind == Kind::Replied && self.has(FLAG_DIRECT) {
            (uses.target, uses.request, uses.delivery) = (true, true, false);
        }
        if self.flags & !kind.flags() != 0 {
            return Err(malformed(format!("flags {:#x} on a {kind:?} frame", self.flags)));
        }
        let named = self.has(FLAG_TARGET_NAME) || self.has(FLAG_SENDER_NAME);
        let sender = self.has(FLAG_SENDER);
        let delivery = self.has(FLAG_DELIVERY) || matches!(kind, Kind::Replied);
        let by_id = uses.target && !self.has(FLAG_TARGET_NAME);
        let unused = [
            (self.subject != 0 && !uses.subject, "subject"),
            (self.name != 0 && !(uses.name && named), "name"),
            (self.body != 0 && !uses.body, "body"),
            (self.pieces != 0 && !uses.payload, "pieces"),
            (self.pieces == 0 && uses.payload && kind != Kind::Bincode, "payload"),
            (self.target != 0 && !by_id, "target"),
            (self.delivery != 0 && !(uses.delivery && delivery), "delivery"),
            (self.request != 0 && !(uses.request && (kind != Kind::Deliver || delivery)), "request"),
            (self.sender != 0 && !(uses.sender && sender), "sender"),
            (self.timeout != 0 && !uses.timeout, "timeout"),
            (self.has(FLAG_SENDER_NAME) && !sender, "sender name"),
        ];
        match unused.iter().find(|(bad, _)| *bad) {
            Some((_, field)) => Err(malformed(format!("a {kind:?} frame with a {field} it does not take"))),
            None => Ok(()),
        }
    }
}

fn malformed(why: String) -> ProtoError {
    ProtoError::Malformed(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(fixed: &Fixed) -> Vec<u8> {
        let mut out = Vec::new();
        fixed.write(0, &mut out);
        out.split_off(U32_BYTES)
    }

    #[test]
    fn the_header_is_its_documented_size_and_reads_back() {
        let mut call = Fixed::new(Kind::Call);
        (call.flags, call.subject, call.pieces, call.target, call.request, call.timeout) =
            (FLAG_SENDER, 7, 2, 9, 11, 5000);
        call.sender = 3;
        let mut out = Vec::new();
        call.write(123, &mut out);
        assert_eq!(out.len(), FIXED_HEADER_BYTES);
        assert_eq!(&out[..U32_BYTES], &123u32.to_le_bytes());
        assert_eq!(out[5], Kind::Call as u8);
        assert_eq!(&out[24..32], &9u64.to_le_bytes(), "target at offset 24");
        assert_eq!(&out[56..64], &5000u64.to_le_bytes(), "timeout at offset 56");
        assert_eq!(Fixed::read(&out[U32_BYTES..]).unwrap(), call);
    }

    #[test]
    fn unknown_kinds_lanes_flags_and_stray_fields_are_malformed() {
        let good = Fixed { pieces: 1, ..Fixed::new(Kind::Cast) };
        assert!(Fixed::read(&body_of(&good)).is_ok());
        let mut bad_kind = body_of(&good);
        bad_kind[1] = 200;
        let mut bad_lane = body_of(&good);
        bad_lane[0] = 1;
        let cases = [
            bad_kind,
            bad_lane,
            body_of(&Fixed { flags: FLAG_DELIVERED, ..good }),
            body_of(&Fixed { timeout: 1, ..good }),
            body_of(&Fixed { delivery: 1, ..good }),
            body_of(&Fixed { name: 3, ..good }),
            body_of(&Fixed { pieces: 0, ..good }),
            body_of(&Fixed { flags: FLAG_TARGET_NAME, target: 4, ..good }),
            body_of(&Fixed { flags: FLAG_SENDER_NAME | FLAG_DELIVERY, ..Fixed { kind: Kind::Deliver, ..good } }),
            body_of(&good)[..FIXED_HEADER_BYTES - U32_BYTES - 1].to_vec(),
        ];
        for (i, body) in cases.iter().enumerate() {
            assert!(matches!(Fixed::read(body), Err(ProtoError::Malformed(_))), "case {i}");
        }
    }
}
