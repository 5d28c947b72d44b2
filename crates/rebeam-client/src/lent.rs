//! Large buffers lent in shared memory on the governor's path (`rebeam_proto::lent`).
//!
//! The rules:
//! - **What is lent.** A call or cast that goes the governor's way to an actor in another
//!   process whose route is known (so its pid: a loan names its receiver) lends each buffer of
//!   at least [`LEND_ABOVE`] bytes, up to [`MAX_LENT_PIECES`] of them: the buffer is copied once
//!   into a segment of this process's [`Pool`] (pre-faulted, reused) and the segment's fd goes
//!   with the frame's first bytes. Anything else travels as bytes, as before; so does a message
//!   when the pool is at its bound or the segment has no slot left.
//! - **Order.** A lent message takes the governor's path like any message too large for a
//!   ring (the rings cannot carry fds), behind the fence `direct.rs` keeps for those.
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

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use bytes::Bytes;
use rebeam_proto::{
    Command, Encoded, ErrorInfo, ErrorKind, Event, Frame, LentPiece, Outcome, ReqId, Request, Routed, MAX_LENT_PIECES,
};
use rebeam_shm::{Block, BulkView, Limits, Loan, PeerWatch, Pool};

use crate::client::lock;

/// Buffers of at least this many bytes are lent rather than sent as bytes: below it, the copy
/// through the socket costs less than the segment's bookkeeping and the extra fd.
pub const LEND_ABOVE: usize = 1 << 20;

/// This process's pool of segments for the buffers it lends.
pub(crate) struct Lender {
    pool: Mutex<Pool>,
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
        Lender { pool: Mutex::new(Pool::new(Limits::default())) }
    }

    /// A block of the pool for a buffer to be built in and lent with no copy; `None` when the
    /// pool is at its bound (or no segment can be made: the caller says so, as for memory).
    pub(crate) fn take(&self, len: usize) -> Option<Block> {
        lock(&self.pool).take(len).ok().flatten()
    }

    /// Request `req` with its large buffers lent to `receiver`, or the request back if it
    /// lends nothing (see the module rules); by value, as `Routed::from_frame` (boxing it
    /// would cost every message an allocation).
    #[allow(clippy::result_large_err)]
    pub(crate) fn lend(&self, req: ReqId, mut body: Request, receiver: &PeerWatch) -> Result<LentFrame, Request> {
        let payload = match &mut body {
            Request::Call { payload, .. } | Request::Cast { payload, .. } => payload,
            _ => return Err(body),
        };
        let mut pool = lock(&self.pool);
        let built = |b: &Bytes| pool.block_at(b.as_ptr(), b.len()).is_some();
        let large: Vec<usize> = (0..payload.buffers.len())
            .filter(|&i| payload.buffers[i].len() >= LEND_ABOVE || built(&payload.buffers[i]))
            .take(MAX_LENT_PIECES)
            .collect();
        if large.is_empty() {
            return Err(body);
        }
        let mut blocks = Vec::with_capacity(large.len());
        for &i in &large {
            let bytes = &payload.buffers[i];
            let block = pool.block_at(bytes.as_ptr(), bytes.len()).or_else(|| {
                let block = pool.take(bytes.len()).ok().flatten()?;
                // SAFETY: the block is ours alone (no loan yet) and holds at least `len` bytes.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), block.data().0, bytes.len()) };
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
            return Err(body);
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
        let original = body.clone();
        if let Request::Call { payload, .. } | Request::Cast { payload, .. } = &mut body {
            large.iter().for_each(|&i| payload.buffers[i] = Bytes::new());
        }
        let routed = Routed::from_frame(Frame::Request { req, body }).ok().map(|r| r.lend(&loans));
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

    fn unlend(&self, blocks: Vec<(Block, Loan)>, body: Request) -> Request {
        let mut pool = lock(&self.pool);
        blocks.iter().for_each(|(block, loan)| pool.unlend(block, *loan));
        body
    }
}

/// What the reader makes of a frame that lends pieces.
pub(crate) enum Received {
    /// The frame, each lent buffer a view of its segment.
    Frame(Frame),
    /// It could not be mapped; for a call, the answer to send back.
    Refused(Option<Event>),
}

/// Maps the segments `hot` lends (`fds`, in its loan table's order) into its buffers.
pub(crate) fn receive(hot: Routed, fds: Vec<OwnedFd>) -> Received {
    let delivery = hot.delivery();
    let refuse = |why: String| {
        let info =
            ErrorInfo::new(ErrorKind::BadRequest, format!("a message's shared memory could not be mapped: {why}"));
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
    let Frame::Command(Command::Deliver { payload, .. }) = &mut frame else {
        return refuse("a lent frame that is not a delivery".into());
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
        let frame = lender.lend(1, call(vec![small.clone(), big.clone()]), &me()).expect("lent");
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
        assert!(lender.lend(1, call(vec![vec![1; LEND_ABOVE - 1].into()]), &me()).is_err());
        assert!(lender.lend(1, Request::BocStats, &me()).is_err());
        assert_eq!(lock(&lender.pool).bytes(), 0, "no segment was taken");
    }

    #[test]
    fn a_segment_not_lent_to_this_process_fails_the_call_and_its_loan_can_be_taken_back() {
        let lender = Lender::new();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("a child");
        let other = PeerWatch::new(child.id()).expect("a pidfd");
        let frame = lender.lend(1, call(vec![vec![7; LEND_ABOVE].into()]), &other).expect("lent");
        match receive(delivered(&frame), fds_of(&frame)) {
            Received::Refused(Some(Event::Replied { delivery: 9, outcome: Outcome::Failed(info) })) => {
                assert_eq!(info.kind, ErrorKind::BadRequest);
                assert!(info.message.contains("no loan to this process"), "{}", info.message);
            }
            _ => panic!("not refused with an answer"),
        }
        lender.unsent(frame);
        child.kill().expect("killed");
        child.wait().expect("reaped");
        let pool = lock(&lender.pool);
        assert_eq!(pool.free_bytes(), pool.bytes(), "the loan was taken back");
    }
}
