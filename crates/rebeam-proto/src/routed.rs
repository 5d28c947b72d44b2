//! Hot frames (an ordinary call, cast, delivery, reply, and their answers) as the router
//! handles them: the fixed header's fields, the subject and name as the bytes read, and the
//! payload pieces as the bytes read.
//!
//! The rules:
//! - A [`Routed`] is what the wire holds for a hot kind (see `header.rs`), nothing more: the
//!   frame it stands for is [`Routed::into_frame`], and [`Routed::from_frame`] takes exactly
//!   the frames that have a hot kind (a call or cast, a delivery, a reply that is not a
//!   failure, a call's reply, a cast's answer).
//! - Forwarding rewrites the fixed fields, and the name (a call names its target, a delivery
//!   its sender); the subject and the payload pieces move as they are, so a forwarded payload
//!   is the very bytes read, never decoded or copied.
//! - A call, cast or delivery may lend pieces ([`Routed::lend`], `lent.rs`), and so may a reply
//!   and the call's answer made of it: its loan table is checked when it is read, and
//!   forwarding keeps the flag and the table, so the delivery lends what the call lent and the
//!   answer what the reply lent. A delivered call carries its caller's pid
//!   ([`Routed::with_caller_pid`]) so that its reply can lend to that process. [`Routed::into_frame`] does not know loans: the table stays its
//!   payload's last buffer, so a reader asks [`Routed::loans`] before it converts.

use bytes::Bytes;

use crate::codec::{assemble, write_head, Encoded};
use crate::header::*;
use crate::{
    ActorId, ActorRef, Command, DeliveryId, Event, Frame, Outcome, Payload, ProtoError, ReqId, Request, Response,
    Status, Target,
};

/// Whom a routed call or cast is for, borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetRef<'a> {
    Name(&'a str),
    Actor(ActorId),
}

impl Target {
    pub fn as_target_ref(&self) -> TargetRef<'_> {
        match self {
            Target::Name(name) => TargetRef::Name(name),
            Target::Actor(id) => TargetRef::Actor(*id),
        }
    }
}

/// Spelled as [`Target`]'s `Display`, so that messages read the same on either path.
impl std::fmt::Display for TargetRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetRef::Name(name) => write!(f, "'{name}'"),
            TargetRef::Actor(id) => write!(f, "<{id}>"),
        }
    }
}

/// A routed frame's target, kept past the frame (to name it in an error once the frame is
/// forwarded): the name shares the bytes read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetLabel {
    name: Option<Bytes>,
    id: ActorId,
}

impl std::fmt::Display for TargetLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => TargetRef::Name(text(name)).fmt(f),
            None => TargetRef::Actor(self.id).fmt(f),
        }
    }
}

/// What can be sent: a frame, or a routed one as it is.
pub trait IntoEncoded {
    fn into_encoded(self) -> Result<Encoded, ProtoError>;
}

impl IntoEncoded for Frame {
    fn into_encoded(self) -> Result<Encoded, ProtoError> {
        crate::encode_parts(self)
    }
}

impl IntoEncoded for Routed {
    fn into_encoded(self) -> Result<Encoded, ProtoError> {
        self.encode()
    }
}

/// A hot frame: see the module doc. The subject and name are valid UTF-8 (checked when read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Its length fields are zero: they are the parts' lengths, written by `encode`.
    fixed: Fixed,
    subject: Bytes,
    name: Bytes,
    /// The payload: its pickle, then its buffers (none for a cast's answer).
    pieces: Vec<Bytes>,
}

impl Routed {
    /// A hot frame read from the wire: `fixed` passed its kind's checks, and `pieces` are as
    /// many as it says.
    pub(crate) fn read(fixed: Fixed, subject: Bytes, name: Bytes, pieces: Vec<Bytes>) -> Result<Self, ProtoError> {
        if fixed.kind == Kind::Bincode {
            return Err(ProtoError::Malformed("a bincode frame read as a hot one".into()));
        }
        for (what, text) in [("subject", &subject), ("name", &name)] {
            if std::str::from_utf8(text).is_err() {
                return Err(ProtoError::Malformed(format!("a {what} that is not UTF-8")));
            }
        }
        if fixed.has(FLAG_LENT) {
            crate::lent::loans(&pieces)?;
        }
        // The lengths are the parts' own: `encode` writes them again from those.
        let fixed = Fixed { subject: 0, name: 0, body: 0, pieces: 0, ..fixed };
        Ok(Routed { fixed, subject, name, pieces })
    }

    pub fn kind(&self) -> Kind {
        self.fixed.kind
    }

    /// The request id of a call, a cast, or their answers.
    pub fn request(&self) -> ReqId {
        self.fixed.request
    }

    /// A call's or cast's target.
    pub fn target(&self) -> TargetRef<'_> {
        match self.fixed.has(FLAG_TARGET_NAME) {
            true => TargetRef::Name(text(&self.name)),
            false => TargetRef::Actor(self.fixed.target),
        }
    }

    /// The target, to name once the frame is gone.
    pub fn target_label(&self) -> TargetLabel {
        match self.fixed.has(FLAG_TARGET_NAME) {
            true => TargetLabel { name: Some(self.name.clone()), id: 0 },
            false => TargetLabel { name: None, id: self.fixed.target },
        }
    }

    pub fn subject(&self) -> &str {
        text(&self.subject)
    }

    /// The sending actor of a call, cast or delivery.
    pub fn sender(&self) -> Option<ActorId> {
        self.fixed.has(FLAG_SENDER).then_some(self.fixed.sender)
    }

    pub fn timeout_ms(&self) -> u64 {
        self.fixed.timeout
    }

    /// The delivery id of a delivery that must be answered, or of a reply.
    pub fn delivery(&self) -> Option<DeliveryId> {
        (self.fixed.has(FLAG_DELIVERY) || self.kind() == Kind::Replied).then_some(self.fixed.delivery)
    }

    /// Bytes of the payload (pickle and buffers).
    pub fn payload_len(&self) -> u64 {
        self.pieces.iter().map(|p| p.len() as u64).sum()
    }

    /// The payload pieces, in wire order.
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// How many pieces the frame lends (so how many fds must come with it).
    pub fn lent(&self) -> usize {
        match (self.fixed.has(FLAG_LENT), self.pieces.last()) {
            (true, Some(table)) => table.len() / crate::lent::LOAN_BYTES,
            _ => 0,
        }
    }

    /// The lent pieces, in the order of the frame's fds (none without [`FLAG_LENT`]).
    pub fn loans(&self) -> Result<Vec<crate::LentPiece>, ProtoError> {
        match self.fixed.has(FLAG_LENT) {
            true => crate::lent::loans(&self.pieces),
            false => Ok(Vec::new()),
        }
    }

    /// A call, cast or reply that lends `loans` (their pieces empty): appends the loan table and
    /// sets the flag; malformed if the loans break the rules of `lent.rs`, or it lends already.
    pub fn lend(mut self, loans: &[crate::LentPiece]) -> Result<Routed, ProtoError> {
        if !matches!(self.kind(), Kind::Call | Kind::Cast | Kind::Replied) || self.fixed.has(FLAG_LENT) {
            return Err(ProtoError::Malformed(format!("a {:?} frame cannot lend pieces", self.kind())));
        }
        self.pieces.push(crate::lent::table(loans));
        crate::lent::loans(&self.pieces)?;
        self.fixed.flags |= FLAG_LENT;
        Ok(self)
    }

    /// A call or cast, forwarded to `actor` as its delivery (`delivery` set when it must be
    /// answered); `sender_name` is the sending actor's registered name, if it has one.
    pub fn into_delivery(self, actor: ActorId, delivery: Option<DeliveryId>, sender_name: Option<&str>) -> Routed {
        let mut fixed = Fixed::new(Kind::Deliver);
        (fixed.target, fixed.flags) = (actor, self.fixed.flags & FLAG_LENT);
        if let Some(d) = delivery {
            (fixed.flags, fixed.delivery) = (fixed.flags | FLAG_DELIVERY, d);
        }
        if let Some(s) = self.sender() {
            (fixed.flags, fixed.sender) = (fixed.flags | FLAG_SENDER, s);
        }
        let name = match sender_name.filter(|_| fixed.has(FLAG_SENDER)) {
            Some(n) => {
                fixed.flags |= FLAG_SENDER_NAME;
                Bytes::copy_from_slice(n.as_bytes())
            }
            None => Bytes::new(),
        };
        Routed { fixed, subject: self.subject, name, pieces: self.pieces }
    }

    /// A reply, forwarded to the caller as the answer to its request `req` (lending what the
    /// reply lends).
    pub fn into_call_reply(self, req: ReqId) -> Routed {
        let fixed = Fixed { request: req, ..Fixed::new(Kind::CallReply) };
        Routed { fixed: Fixed { flags: self.fixed.flags & (FLAG_STATUS_ERROR | FLAG_LENT), ..fixed }, ..self }
    }

    /// A reply to the direct call `req` on channel `channel`, to go the governor's way (see
    /// `FLAG_DIRECT`): the governor makes it that call's answer at the channel's other end.
    pub fn into_direct_reply(mut self, channel: u64, req: ReqId) -> Routed {
        if self.kind() == Kind::Replied {
            self.fixed.flags |= FLAG_DIRECT;
            (self.fixed.target, self.fixed.request, self.fixed.delivery) = (channel, req, 0);
        }
        self
    }

    /// A direct call's reply going the governor's way: its channel and request id there.
    pub fn direct_reply(&self) -> Option<(u64, ReqId)> {
        (self.kind() == Kind::Replied && self.fixed.has(FLAG_DIRECT)).then_some((self.fixed.target, self.fixed.request))
    }

    /// A delivered call that names its caller's process, `pid` (0: none known, as for a call
    /// from another node): its reply may lend buffers to that process (`lent.rs`). A delivery
    /// nobody answers names none.
    pub fn with_caller_pid(mut self, pid: u32) -> Routed {
        if self.kind() == Kind::Deliver && self.fixed.has(FLAG_DELIVERY) {
            self.fixed.request = u64::from(pid);
        }
        self
    }

    /// A delivered call's caller's pid, if it names one ([`Routed::with_caller_pid`]).
    pub fn caller_pid(&self) -> Option<u32> {
        match self.kind() {
            Kind::Deliver => u32::try_from(self.fixed.request).ok().filter(|&pid| pid != 0),
            _ => None,
        }
    }

    /// The answer to a cast.
    pub fn cast_answer(req: ReqId, delivered: bool) -> Routed {
        let flags = if delivered { FLAG_DELIVERED } else { 0 };
        let fixed = Fixed { request: req, flags, ..Fixed::new(Kind::CastAnswer) };
        Routed { fixed, subject: Bytes::new(), name: Bytes::new(), pieces: Vec::new() }
    }

    /// Appends to `out` the head of the delivery of a cast to `actor` (nobody answers it) from
    /// borrowed parts: byte for byte what [`crate::encode_parts`] writes before the payload's
    /// pieces for that `Command::Deliver`, whose pieces follow it as they are (the pickle,
    /// then the buffers). `sender` is the sending actor and its registered name, if any. A
    /// sender that keeps its message (to hand it back when the ring is full) so pays no copy
    /// of the subject, name or payload handles.
    pub fn write_cast_delivery(
        out: &mut Vec<u8>,
        actor: ActorId,
        subject: &str,
        sender: Option<(ActorId, Option<&str>)>,
        payload: &Payload,
    ) -> Result<(), ProtoError> {
        let mut fixed = Fixed::new(Kind::Deliver);
        fixed.target = actor;
        let mut name: &[u8] = &[];
        if let Some((id, sender_name)) = sender {
            (fixed.flags, fixed.sender) = (fixed.flags | FLAG_SENDER, id);
            if let Some(n) = sender_name {
                (fixed.flags, name) = (fixed.flags | FLAG_SENDER_NAME, n.as_bytes());
            }
        }
        let lens = std::iter::once(payload.data.len()).chain(payload.buffers.iter().map(Bytes::len));
        write_head(fixed, subject.as_bytes(), name, &[], lens, out)
    }

    /// The frame for the wire: a fixed header, the subject and name, then the pieces as they are.
    pub fn encode(self) -> Result<Encoded, ProtoError> {
        assemble(self.fixed, &self.subject, &self.name, &[], self.pieces)
    }

    /// Whether `frame` has a hot kind ([`Routed::from_frame`] takes it).
    pub fn is_hot(frame: &Frame) -> bool {
        matches!(
            frame,
            Frame::Request { body: Request::Call { .. } | Request::Cast { .. }, .. }
                | Frame::Command(Command::Deliver { .. })
                | Frame::Event(Event::Replied { outcome: Outcome::Reply { .. }, .. })
                | Frame::Response { body: Response::Call(Outcome::Reply { .. }) | Response::Cast { .. }, .. }
        )
    }

    /// The frame, if it has a hot kind; else the frame back (by value: boxing it would cost
    /// every other frame an allocation).
    #[allow(clippy::result_large_err)]
    pub fn from_frame(frame: Frame) -> Result<Routed, Frame> {
        let message = |kind, target: Target, subject: String, sender: Option<ActorId>, payload| {
            let mut fixed = Fixed::new(kind);
            let name = match target {
                Target::Name(n) => {
                    fixed.flags |= FLAG_TARGET_NAME;
                    Bytes::from(n)
                }
                Target::Actor(id) => {
                    fixed.target = id;
                    Bytes::new()
                }
            };
            if let Some(s) = sender {
                (fixed.flags, fixed.sender) = (fixed.flags | FLAG_SENDER, s);
            }
            Routed { fixed, subject: Bytes::from(subject), name, pieces: pieces_of(payload) }
        };
        let reply = |kind, status, payload| {
            let flags = if status == Status::Error { FLAG_STATUS_ERROR } else { 0 };
            Routed {
                fixed: Fixed { flags, ..Fixed::new(kind) },
                subject: Bytes::new(),
                name: Bytes::new(),
                pieces: pieces_of(payload),
            }
        };
        Ok(match frame {
            Frame::Request { req, body: Request::Call { target, subject, sender, payload, timeout_ms } } => {
                let mut call = message(Kind::Call, target, subject, sender, payload);
                (call.fixed.request, call.fixed.timeout) = (req, timeout_ms);
                call
            }
            Frame::Request { req, body: Request::Cast { target, subject, sender, payload } } => {
                let mut cast = message(Kind::Cast, target, subject, sender, payload);
                cast.fixed.request = req;
                cast
            }
            Frame::Command(Command::Deliver { delivery, actor, subject, sender, payload }) => {
                let call = message(Kind::Cast, Target::Actor(0), subject, sender.as_ref().map(|s| s.id), payload);
                let name = sender.and_then(|s| s.name);
                call.into_delivery(actor, delivery, name.as_deref())
            }
            Frame::Event(Event::Replied { delivery, outcome: Outcome::Reply { status, payload } }) => {
                let mut replied = reply(Kind::Replied, status, payload);
                replied.fixed.delivery = delivery;
                replied
            }
            Frame::Response { req, body: Response::Call(Outcome::Reply { status, payload }) } => {
                let mut answer = reply(Kind::CallReply, status, payload);
                answer.fixed.request = req;
                answer
            }
            Frame::Response { req, body: Response::Cast { delivered } } => Routed::cast_answer(req, delivered),
            other => return Err(other),
        })
    }

    /// The frame this stands for.
    pub fn into_frame(self) -> Frame {
        let req = self.fixed.request;
        let status = if self.fixed.has(FLAG_STATUS_ERROR) { Status::Error } else { Status::Ok };
        let (target, subject, sender) = (owned_target(self.target()), self.subject().to_owned(), self.sender());
        let delivery = self.delivery();
        let name = self.fixed.has(FLAG_SENDER_NAME).then(|| text(&self.name).to_owned());
        let (kind, actor, timeout_ms) = (self.kind(), self.fixed.target, self.fixed.timeout);
        let payload = payload_of(self.pieces);
        match kind {
            Kind::Call => Frame::Request { req, body: Request::Call { target, subject, sender, payload, timeout_ms } },
            Kind::Cast => Frame::Request { req, body: Request::Cast { target, subject, sender, payload } },
            Kind::Deliver => {
                let sender = sender.map(|id| ActorRef { id, name });
                Frame::Command(Command::Deliver { delivery, actor, subject, sender, payload })
            }
            Kind::Replied => Frame::Event(Event::Replied {
                delivery: delivery.unwrap_or_default(),
                outcome: Outcome::Reply { status, payload },
            }),
            Kind::CallReply => Frame::Response { req, body: Response::Call(Outcome::Reply { status, payload }) },
            Kind::CastAnswer => {
                Frame::Response { req, body: Response::Cast { delivered: self.fixed.has(FLAG_DELIVERED) } }
            }
            // `read` is only given hot kinds, and `from_frame` makes none of this kind.
            Kind::Bincode => unreachable!("a Routed is never of the bincode kind"),
        }
    }
}

/// Text checked as UTF-8 when it was read (or made from a `String`).
fn text(bytes: &Bytes) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn owned_target(target: TargetRef<'_>) -> Target {
    match target {
        TargetRef::Name(n) => Target::Name(n.to_owned()),
        TargetRef::Actor(id) => Target::Actor(id),
    }
}

fn pieces_of(payload: Payload) -> Vec<Bytes> {
    let mut pieces = Vec::with_capacity(1 + payload.buffers.len());
    pieces.push(payload.data);
    pieces.extend(payload.buffers);
    pieces
}

/// The payload of a hot kind's pieces (the first is the pickle); a cast's answer has none.
fn payload_of(pieces: Vec<Bytes>) -> Payload {
    let mut pieces = pieces.into_iter();
    Payload { data: pieces.next().unwrap_or_default(), buffers: pieces.collect() }
}

#[cfg(test)]
mod tests;
