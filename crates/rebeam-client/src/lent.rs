//! Large buffers lent in shared memory on the governor's path (`rebeam_proto::lent`).
//!
//! The rules:
//! - **What is lent.** A call or cast that goes the governor's way to an actor whose process
//!   is known (a route's, or this one: a loan names its receiver) lends each buffer of
//!   at least [`LEND_ABOVE`] bytes, up to [`MAX_LENT_PIECES`] of them: the buffer is copied once
//!   into a segment of this process's [`Pool`] (pre-faulted, reused) and the segment's fd goes
//!   with the frame's first bytes. Anything else travels as bytes, as before; so does a message
//!   when the pool is at its bound or the segment has no slot left.
//! - **Replies.** A reply to a call the governor delivered lends its large buffers the same
//!   way, to the caller's process, which the delivery names (its pid; the reader keeps it per
//!   delivery until the reply, or the actor's end). A delivery that names none (a call from
//!   another node) is answered with bytes. The caller maps the answer's segments on receipt
//!   as a delivery's; one it cannot map becomes its call's `BadRequest`.
//! - **Direct calls' replies.** A reply too large for its channel's ring goes the governor's
//!   way (`direct.rs`), its large buffers lent to the channel's peer, the caller.
//! - **Order.** A lent message takes the governor's path like any message too large for a
//!   ring (the rings cannot carry fds), behind the fence `direct.rs` keeps for those.
//! - **A stale receiver.** A loan names the process the route said hosts the actor; if the
//!   actor now lives elsewhere, its new process cannot map it and refuses the call
//!   ([`UNMAPPED`]): nothing was delivered, so the caller sends the call again as bytes,
//!   under its target resolved afresh, and the caller gets that call's answer. (A lent cast
//!   so refused is lost, as a cast to an actor that ended is.)
//! - **Receipt.** The reader maps each lent segment when the frame arrives, before anything
//!   reaches Python: the delivery's buffer is then a read-only view of the segment
//!   ([`BulkView`] as the `Bytes`' owner), and the loan goes back when the last reference to
//!   it is dropped, whether or not Python ever saw the message. A segment that cannot be mapped
//!   (not a bulk segment, not lent to this process) fails the call with `BadRequest` and drops
//!   a cast, its fds closed.
//! - **Built in shared memory.** A buffer that is a block of the pool from the start
//!   ([`Lender::take`], `rebeam.shared_array`) is lent as it is, whatever its size: no copy.
//!   Its holder must not write it while a receiver may read it (the receiver's view is
//!   read-only, but the memory is the same).
//! - **A sender that dies** leaves every view valid: a view holds its own mapping.
//! - **Lent within one process too.** A call or cast to an actor hosted in the caller's own
//!   process has no route (it goes the governor's way, and back); once the governor's refusal
//!   of a route and this process's own actors say the actor is here, its large buffers are
//!   lent to this process: one copy into a segment, in place of two through the socket, and a
//!   read-only view on arrival, as from any other process. Passing the object itself would save
//!   the pickle too, but the actor would then share the caller's object, and a write on either
//!   side would show on the other: every other call copies (or lends read-only), and one in
//!   the same process must mean the same. A buffer built in the pool is lent with no copy.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use bytes::Bytes;
use rebeam_proto::{
    ActorId, Command, DeliveryId, Encoded, ErrorInfo, ErrorKind, Event, Frame, Kind, LentPiece, Outcome, Payload,
    ReqId, Request, Response, Routed, TargetRef, MAX_LENT_PIECES,
};
use rebeam_shm::{Block, BulkView, Limits, Loan, PeerWatch, Pool};

use crate::client::lock;

/// Buffers of at least this many bytes are lent rather than sent as bytes: below it, the copy
/// through the socket costs less than the segment's bookkeeping and the extra fd.
pub const LEND_ABOVE: usize = 1 << 20;

/// Deliveries whose caller's pid this process keeps at most, for their replies: past it a
/// reply goes as bytes (entries leave with their reply, or with their actor's end).
const MAX_CALLERS: usize = 1 << 16;

/// This process's pool of segments for the buffers it lends, and what a lent message's
/// answer needs.
pub(crate) struct Lender {
    pool: Mutex<Pool>,
    /// Lent calls not answered yet, as they were before lending (sent again as bytes if the
    /// receiver cannot map them).
    calls: Mutex<HashMap<ReqId, Request>>,
    /// The governor's deliveries of calls here: their actor and caller's pid.
    callers: Mutex<HashMap<DeliveryId, (ActorId, u32)>>,
}

/// A message ready for the socket: its bytes, the fds that go with them, and the blocks it
/// lends (held until the write is done, so a failed write can take the loans back).
pub(crate) struct LentFrame {
    pub(crate) encoded: Encoded,
    pub(crate) fds: Vec<OwnedFd>,
    blocks: Vec<(Block, Loan)>,
}

impl Lender {
    pub(crate) fn new() -> Lender {
        Lender {
            pool: Mutex::new(Pool::new(Limits::default())),
            calls: Mutex::new(HashMap::new()),
            callers: Mutex::new(HashMap::new()),
        }
    }

    /// Lent call `req` is on its way; `original` is it before lending.
    pub(crate) fn lent_call(&self, req: ReqId, original: Request) {
        lock(&self.calls).insert(req, original);
    }

    /// Lent call `req` did not leave.
    pub(crate) fn forget_call(&self, req: ReqId) {
        lock(&self.calls).remove(&req);
    }

    /// The answer to request `req` came: if it was a lent call that its receiver could not
    /// map, the call as it was before lending, to be sent again as bytes.
    pub(crate) fn answered(&self, req: ReqId, body: &Response) -> Option<Request> {
        let original = {
            let mut calls = lock(&self.calls);
            if calls.is_empty() {
                return None;
            }
            calls.remove(&req)?
        };
        match body {
            Response::Call(Outcome::Failed(info))
                if info.kind == ErrorKind::BadRequest && info.message.starts_with(UNMAPPED) =>
            {
                Some(original)
            }
            _ => None,
        }
    }

    /// Whether any of `buffers` would be lent (so a pidfd for the receiver is worth opening).
    fn would_lend(&self, buffers: &[Bytes]) -> bool {
        if buffers.iter().any(|b| b.len() >= LEND_ABOVE) {
            return true;
        }
        let pool = lock(&self.pool);
        buffers.iter().any(|b| pool.block_at(b.as_ptr(), b.len()).is_some())
    }

    /// A delivery read off the socket: a call's caller pid is kept for its reply.
    pub(crate) fn note_delivery(&self, hot: &Routed) {
        let (Some(pid), Some(delivery), TargetRef::Actor(actor)) = (hot.caller_pid(), hot.delivery(), hot.target())
        else {
            return;
        };
        let mut callers = lock(&self.callers);
        if callers.len() < MAX_CALLERS {
            callers.insert(delivery, (actor, pid));
        }
    }

    /// The process a reply goes to, if its delivery named one (and it is alive); an actor's
    /// end forgets its deliveries.
    pub(crate) fn caller_of(&self, event: &Event) -> Option<PeerWatch> {
        let pid = match event {
            Event::Replied { delivery, outcome } => {
                let mut callers = lock(&self.callers);
                let (_, pid) = callers.remove(delivery)?;
                drop(callers);
                let Outcome::Reply { payload, .. } = outcome else { return None };
                (!payload.buffers.is_empty() && self.would_lend(&payload.buffers)).then_some(pid)?
            }
            Event::Exited { actor, .. } => {
                let mut callers = lock(&self.callers);
                if !callers.is_empty() {
                    callers.retain(|_, (a, _)| a != actor);
                }
                return None;
            }
            _ => return None,
        };
        PeerWatch::new(pid).ok()
    }

    /// A block of the pool for a buffer to be built in and lent with no copy; `None` when the
    /// pool is at its bound (or no segment can be made: the caller says so, as for memory).
    pub(crate) fn take(&self, len: usize) -> Option<Block> {
        lock(&self.pool).take(len).ok().flatten()
    }

    /// `frame` (a call, a cast or a reply) with its large buffers lent to `receiver`, or the
    /// frame back if it lends nothing (see the module rules); by value, as
    /// `Routed::from_frame` (boxing it would cost every message an allocation).
    #[allow(clippy::result_large_err)]
    pub(crate) fn lend(&self, frame: Frame, receiver: &PeerWatch) -> Result<LentFrame, Frame> {
        self.lend_shaped(frame, receiver, |routed| routed)
    }

    /// As [`Lender::lend`], the routed frame given its last touches by `shape` before it is
    /// encoded (a direct call's reply names its channel).
    #[allow(clippy::result_large_err)]
    pub(crate) fn lend_shaped(
        &self,
        mut frame: Frame,
        receiver: &PeerWatch,
        shape: impl FnOnce(Routed) -> Routed,
    ) -> Result<LentFrame, Frame> {
        let Some(payload) = lendable(&mut frame) else { return Err(frame) };
        let mut pool = lock(&self.pool);
        let built = |b: &Bytes| pool.block_at(b.as_ptr(), b.len()).is_some();
        let large: Vec<usize> = (0..payload.buffers.len())
            .filter(|&i| payload.buffers[i].len() >= LEND_ABOVE || built(&payload.buffers[i]))
            .take(MAX_LENT_PIECES)
            .collect();
        if large.is_empty() {
            return Err(frame);
        }
        let mut blocks = Vec::with_capacity(large.len());
        for &i in &large {
            let bytes = &payload.buffers[i];
            let block = pool.block_at(bytes.as_ptr(), bytes.len()).or_else(|| {
                let block = pool.take(bytes.len()).ok().flatten()?;
                // SAFETY: the block is ours alone (no loan yet) and holds at least `len` bytes.
                unsafe { rebeam_shm::copy::copy_in(bytes, block.data().0) };
                Some(block)
            });
            let lent = block.and_then(|block| {
                let loan = pool.lend(&block, bytes.len(), receiver).ok().flatten()?;
                Some((block, loan))
            });
            match lent {
                Some(b) => blocks.push(b),
                None => break,
            }
        }
        if blocks.len() < large.len() {
            // All or nothing: the frame's pieces are then the ones it would have had.
            blocks.iter().for_each(|(block, loan)| pool.unlend(block, *loan));
            return Err(frame);
        }
        drop(pool);
        let fds: Result<Vec<OwnedFd>, _> = blocks.iter().map(|(b, _)| b.fd().try_clone_to_owned()).collect();
        let loans: Vec<LentPiece> = (large.iter().zip(&blocks))
            .map(|(&i, (_, loan))| LentPiece {
                piece: i as u32 + 1,
                segment_len: loan.segment_len as u64,
                len: loan.len as u64,
                slot: loan.slot as u32,
            })
            .collect();
        let original = frame.clone();
        if let Some(payload) = lendable(&mut frame) {
            large.iter().for_each(|&i| payload.buffers[i] = Bytes::new());
        }
        let routed = Routed::from_frame(frame).ok().map(|r| shape(r).lend(&loans));
        match (routed, fds) {
            (Some(Ok(routed)), Ok(fds)) => match routed.encode() {
                Ok(encoded) => Ok(LentFrame { encoded, fds, blocks }),
                Err(_) => Err(self.unlend(blocks, original)),
            },
            _ => Err(self.unlend(blocks, original)),
        }
    }

    /// A lent frame that did not leave: its loans come back.
    pub(crate) fn unsent(&self, frame: LentFrame) {
        let mut pool = lock(&self.pool);
        frame.blocks.iter().for_each(|(block, loan)| pool.unlend(block, *loan));
    }

    fn unlend(&self, blocks: Vec<(Block, Loan)>, frame: Frame) -> Frame {
        let mut pool = lock(&self.pool);
        blocks.iter().for_each(|(block, loan)| pool.unlend(block, *loan));
        frame
    }
}

/// The payload of a frame that may lend: a call's, a cast's, or a reply's.
fn lendable(frame: &mut Frame) -> Option<&mut Payload> {
    match frame {
        Frame::Request { body: Request::Call { payload, .. } | Request::Cast { payload, .. }, .. }
        | Frame::Event(Event::Replied { outcome: Outcome::Reply { payload, .. }, .. }) => Some(payload),
        _ => None,
    }
}

/// What the reader makes of a frame that lends pieces.
pub(crate) enum Received {
    /// The frame, each lent buffer a view of its segment.
    Frame(Frame),
    /// A delivery that could not be mapped: for a call, the answer to send back.
    Refused(Option<Event>),
}

/// The start of the message a refused loan gives: a caller whose lent call gets it knows
/// nothing was delivered (see `Lender::retry`).
pub(crate) const UNMAPPED: &str = "a message's shared memory could not be mapped";

/// Maps the segments `hot` lends (`fds`, in its loan table's order) into its buffers. A
/// delivery that cannot be mapped is refused; a call's answer that cannot be mapped becomes
/// that call's failure (the caller must get an answer, and there is no one to refuse it to).
pub(crate) fn receive(hot: Routed, fds: Vec<OwnedFd>) -> Received {
    let (delivery, request, is_answer) = (hot.delivery(), hot.request(), hot.kind() == Kind::CallReply);
    let refuse = |why: String| {
        let info = ErrorInfo::new(ErrorKind::BadRequest, format!("{UNMAPPED}: {why}"));
        if is_answer {
            return Received::Frame(Frame::Response { req: request, body: Response::Call(Outcome::Failed(info)) });
        }
        Received::Refused(delivery.map(|delivery| Event::Replied { delivery, outcome: Outcome::Failed(info) }))
    };
    let loans = match hot.loans() {
        Ok(loans) if loans.len() == fds.len() => loans,
        Ok(loans) => return refuse(format!("{} lent pieces, {} fds", loans.len(), fds.len())),
        Err(e) => return refuse(e.to_string()),
    };
    let mut views = Vec::with_capacity(loans.len());
    for (lent, fd) in loans.iter().zip(fds) {
        let loan = Loan { segment_len: lent.segment_len as usize, len: lent.len as usize, slot: lent.slot as usize };
        match BulkView::open(fd, loan) {
            Ok(view) => views.push((lent.piece as usize, Bytes::from_owner(view))),
            Err(e) => return refuse(e.to_string()),
        }
    }
    let mut frame = hot.into_frame();
    let payload = match &mut frame {
        Frame::Command(Command::Deliver { payload, .. })
        | Frame::Response { body: Response::Call(Outcome::Reply { payload, .. }), .. } => payload,
        _ => return refuse("a lent frame that is not a delivery or a call's answer".into()),
    };
    payload.buffers.pop(); // the loan table
    for (piece, view) in views {
        // Piece 0 is the pickle: buffer `piece - 1` is the lent one (`loans` checked the range).
        payload.buffers[piece - 1] = view;
    }
    Received::Frame(frame)
}

/// The blocking writer's side: `frame`'s bytes with its fds on the first ones.
pub(crate) fn write(stream: &mut std::os::unix::net::UnixStream, frame: &LentFrame) -> std::io::Result<()> {
    use std::io::Write;
    let first = frame.encoded.slices_after(0)[0].to_vec();
    let fds: Vec<_> = frame.fds.iter().map(AsFd::as_fd).collect();
    let mut written = rebeam_shm::fdpass::send_fds(&*stream, &first, &fds).map_err(std::io::Error::other)?;
    while written < frame.encoded.len() {
        match stream.write_vectored(&frame.encoded.slices_after(written))? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => written += n,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rebeam_proto::{decode_inbound, Inbound, Payload, Target, HEADER_BYTES};

    use super::*;

    fn call(buffers: Vec<Bytes>) -> Request {
        let payload = Payload { data: vec![0x80, 5].into(), buffers };
        Request::Call { target: Target::Actor(3), subject: "take".into(), sender: None, payload, timeout_ms: 1000 }
    }

    fn request(body: Request) -> Frame {
        Frame::Request { req: 1, body }
    }

    fn me() -> PeerWatch {
        PeerWatch::new(std::process::id()).expect("a pidfd")
    }

    /// The delivery the governor makes of a lent frame: read, forwarded, read again.
    fn delivered(frame: &LentFrame) -> Routed {
        let read = |bytes: Vec<u8>| match decode_inbound(Bytes::from(bytes).slice(HEADER_BYTES..)).expect("decodes") {
            Inbound::Hot(hot) => hot,
            Inbound::Frame(f) => panic!("not hot: {f:?}"),
        };
        let call = read(frame.encoded.to_vec());
        read(call.into_delivery(3, Some(9), None).encode().expect("encodes").to_vec())
    }

    fn fds_of(frame: &LentFrame) -> Vec<OwnedFd> {
        frame.fds.iter().map(|fd| fd.try_clone().expect("a copy")).collect()
    }

    #[test]
    fn large_buffers_are_lent_and_arrive_as_views_with_the_same_bytes() {
        let lender = Lender::new();
        let big: Bytes = (0..LEND_ABOVE + 5).map(|i| i as u8).collect();
        let small = Bytes::from_static(b"small");
        let frame = lender.lend(request(call(vec![small.clone(), big.clone()])), &me()).expect("lent");
        assert_eq!(frame.fds.len(), 1);
        assert!(frame.encoded.len() < 4096, "the large buffer left the frame");
        let Received::Frame(Frame::Command(Command::Deliver { payload, .. })) =
            receive(delivered(&frame), fds_of(&frame))
        else {
            panic!("not received as a delivery")
        };
        assert_eq!(payload.buffers, vec![small, big], "the loan table is gone and the lent buffer is back");
        assert_eq!(lock(&lender.pool).free_bytes(), 0, "the view still holds its loan");
        drop((payload, frame));
        let pool = lock(&lender.pool);
        assert_eq!(pool.free_bytes(), pool.bytes(), "the dropped view gave its loan back");
    }

    #[test]
    fn small_buffers_and_other_requests_are_not_lent() {
        let lender = Lender::new();
        assert!(lender.lend(request(call(vec![vec![1; LEND_ABOVE - 1].into()])), &me()).is_err());
        assert!(lender.lend(request(Request::BocStats), &me()).is_err());
        assert_eq!(lock(&lender.pool).bytes(), 0, "no segment was taken");
    }

    #[test]
    fn a_segment_not_lent_to_this_process_fails_the_call_and_its_loan_can_be_taken_back() {
        let lender = Lender::new();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("a child");
        let other = PeerWatch::new(child.id()).expect("a pidfd");
        let frame = lender.lend(request(call(vec![vec![7; LEND_ABOVE].into()])), &other).expect("lent");
        match receive(delivered(&frame), fds_of(&frame)) {
            Received::Refused(Some(Event::Replied { delivery: 9, outcome: Outcome::Failed(info) })) => {
                assert_eq!(info.kind, ErrorKind::BadRequest);
                assert!(info.message.contains("no loan to this process"), "{}", info.message);
                assert!(info.message.starts_with(UNMAPPED), "the caller tells it from other refusals");
            }
            _ => panic!("not refused with an answer"),
        }
        lender.unsent(frame);
        child.kill().expect("killed");
        child.wait().expect("reaped");
        let pool = lock(&lender.pool);
        assert_eq!(pool.free_bytes(), pool.bytes(), "the loan was taken back");
    }

    /// A reply as the governor forwards it to the caller: read, made the call's answer, read.
    fn answered(frame: &LentFrame) -> Routed {
        let read = |bytes: Vec<u8>| match decode_inbound(Bytes::from(bytes).slice(HEADER_BYTES..)).expect("decodes") {
            Inbound::Hot(hot) => hot,
            Inbound::Frame(f) => panic!("not hot: {f:?}"),
        };
        read(read(frame.encoded.to_vec()).into_call_reply(5).encode().expect("encodes").to_vec())
    }

    fn reply(delivery: DeliveryId, buffers: Vec<Bytes>) -> Event {
        let payload = Payload { data: vec![0x80, 5].into(), buffers };
        Event::Replied { delivery, outcome: Outcome::Reply { status: rebeam_proto::Status::Ok, payload } }
    }

    /// A call's delivery as the reader gets it from the governor, naming its caller's pid.
    fn delivery_from(pid: u32, delivery: DeliveryId, actor: ActorId) -> Routed {
        let call = Routed::from_frame(request(call(vec![]))).expect("hot");
        call.into_delivery(actor, Some(delivery), None).with_caller_pid(pid)
    }

    #[test]
    fn a_large_reply_is_lent_to_the_caller_its_delivery_named_and_arrives_as_a_view() {
        let lender = Lender::new();
        let big: Bytes = (0..2 * LEND_ABOVE).map(|i| (i % 251) as u8).collect();
        lender.note_delivery(&delivery_from(std::process::id(), 8, 3));
        assert!(lender.caller_of(&reply(9, vec![big.clone()])).is_none(), "not a delivery it was told of");
        let receiver = lender.caller_of(&reply(8, vec![big.clone()])).expect("the caller's process");
        assert!(lender.caller_of(&reply(8, vec![big.clone()])).is_none(), "a delivery is answered once");
        let frame = lender.lend(Frame::Event(reply(8, vec![big.clone()])), &receiver).expect("lent");
        assert_eq!(frame.fds.len(), 1);
        let Received::Frame(Frame::Response { req: 5, body: Response::Call(Outcome::Reply { payload, .. }) }) =
            receive(answered(&frame), fds_of(&frame))
        else {
            panic!("not received as the call's answer")
        };
        assert_eq!(payload.buffers, vec![big], "the loan table is gone and the lent buffer is back");
        drop((payload, frame));
        let pool = lock(&lender.pool);
        assert_eq!(pool.free_bytes(), pool.bytes(), "the dropped view gave its loan back");
    }

    #[test]
    fn small_replies_failures_and_a_dead_actors_deliveries_are_not_lent() {
        let lender = Lender::new();
        let pid = std::process::id();
        lender.note_delivery(&delivery_from(pid, 1, 3));
        assert!(lender.caller_of(&reply(1, vec![vec![1; 100].into()])).is_none(), "small: bytes, no pidfd");
        lender.note_delivery(&delivery_from(pid, 2, 3));
        let failed = ErrorInfo::new(ErrorKind::Crashed, "boom");
        assert!(lender.caller_of(&Event::Replied { delivery: 2, outcome: Outcome::Failed(failed) }).is_none());
        lender.note_delivery(&delivery_from(pid, 3, 3));
        lender.note_delivery(&delivery_from(pid, 4, 6));
        let exit = rebeam_proto::Exit::Normal;
        assert!(lender.caller_of(&Event::Exited { actor: 3, reason: exit, taken_up_to: 0 }).is_none());
        let big = || vec![Bytes::from(vec![1; LEND_ABOVE])];
        assert!(lender.caller_of(&reply(3, big())).is_none(), "its actor ended: forgotten");
        assert!(lender.caller_of(&reply(4, big())).is_some(), "another actor's stays");
        assert!(lock(&lender.callers).is_empty(), "every entry left with its reply or its actor");
        lender.note_delivery(&delivery_from(0, 5, 3));
        assert!(lock(&lender.callers).is_empty(), "a delivery naming no caller (another node's) is not kept");
    }

    #[test]
    fn an_answer_the_caller_cannot_map_fails_its_call() {
        let lender = Lender::new();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("a child");
        let other = PeerWatch::new(child.id()).expect("a pidfd");
        let frame = lender.lend(Frame::Event(reply(8, vec![vec![7; LEND_ABOVE].into()])), &other).expect("lent");
        let Received::Frame(Frame::Response { req: 5, body: Response::Call(Outcome::Failed(info)) }) =
            receive(answered(&frame), fds_of(&frame))
        else {
            panic!("not the call's failure")
        };
        assert_eq!(info.kind, ErrorKind::BadRequest);
        child.kill().expect("killed");
        child.wait().expect("reaped");
    }

    #[test]
    fn only_a_lent_call_refused_as_unmapped_is_given_back_to_send_again() {
        let lender = Lender::new();
        let unmapped =
            |kind| Response::Call(Outcome::Failed(ErrorInfo::new(kind, format!("{UNMAPPED}: slot 0 holds no loan"))));
        assert!(lender.answered(1, &unmapped(ErrorKind::BadRequest)).is_none(), "not a lent call");
        lender.lent_call(1, call(vec![]));
        lender.lent_call(2, call(vec![]));
        lender.lent_call(3, call(vec![]));
        assert!(matches!(lender.answered(1, &unmapped(ErrorKind::BadRequest)), Some(Request::Call { .. })));
        assert!(lender.answered(1, &unmapped(ErrorKind::BadRequest)).is_none(), "once");
        assert!(lender.answered(2, &unmapped(ErrorKind::Crashed)).is_none(), "another failure is the answer");
        lender.forget_call(3);
        assert!(lock(&lender.calls).is_empty());
    }
}
