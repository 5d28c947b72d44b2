//! Bulk segments: a large buffer lent to other processes in a segment of its own.
//!
//! A bulk segment is a [`Segment`] whose first [`DATA_OFFSET`] bytes are a header and whose
//! data follows, page aligned (so NumPy's alignment is met for every dtype). The header holds
//! [`SLOTS`] loan slots, one per receiving process: the sender ([`Pool`](crate::pool::Pool))
//! writes the receiver's pid in a slot and counts one loan there per message it sends; the
//! receiver's [`BulkView`] gives its loan back (one decrement) when it is dropped. So the
//! sender learns that a segment is free again by reading the slots: every count zero, or its
//! receiver dead (the sender watches each receiver's pidfd, so a SIGKILLed receiver's loans
//! end with it).
//!
//! Rules:
//! - The receiver trusts nothing it reads: the slot it is told to give back must exist and name
//!   its own pid, and the data must lie inside the segment; otherwise [`ShmError::BadSegment`].
//! - A receiver writes only its own slot's count, and only down, once per view.
//! - A view keeps its own mapping (and fd), so a sender that dies leaves every view valid:
//!   the memory lives until the last mapping of it is gone.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::{Result, ShmError};
use crate::segment::Segment;

/// Bytes before the data: the header, padded to a page so the data is page aligned.
pub const DATA_OFFSET: usize = 4096;
/// Distinct receivers one segment can be lent to before it is recycled (each has a slot).
pub const SLOTS: usize = 64;
/// Marks a segment as a bulk segment laid out as this module says.
const MAGIC: u64 = 0x7265_6265_616d_626b; // "rebeambk"

/// One receiver's loans: its pid and how many of its views are outstanding.
#[repr(C)]
pub(crate) struct Slot {
    pub(crate) pid: AtomicU32,
    pub(crate) loans: AtomicU32,
}

#[repr(C)]
pub(crate) struct Header {
    magic: AtomicU64,
    pub(crate) slots: [Slot; SLOTS],
}

const _: () = assert!(std::mem::size_of::<Header>() <= DATA_OFFSET);

/// The header of `seg`, which must be at least [`DATA_OFFSET`] bytes long.
pub(crate) fn header(seg: &Segment) -> &Header {
    debug_assert!(seg.len() >= DATA_OFFSET);
    // SAFETY: the mapping is page aligned and longer than the header; every field is an atomic,
    // so concurrent access from the peer is not a data race, and any bit pattern is valid.
    unsafe { &*seg.base().as_ptr().cast::<Header>() }
}

/// Lays out a fresh segment's header (the creator, before anyone else maps it).
pub(crate) fn init(seg: &Segment) {
    let h = header(seg);
    for s in &h.slots {
        s.pid.store(0, Ordering::Relaxed);
        s.loans.store(0, Ordering::Relaxed);
    }
    h.magic.store(MAGIC, Ordering::Release);
}

/// Where a lent buffer lies: what travels in the message beside the segment's fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loan {
    /// The segment's length in bytes (checked against the fd's size on receipt).
    pub segment_len: usize,
    /// The buffer's length, from [`DATA_OFFSET`].
    pub len: usize,
    /// The slot the receiver gives its loan back to.
    pub slot: usize,
}

/// A receiver's read-only view of a lent buffer; dropping it gives the loan back.
#[derive(Debug)]
pub struct BulkView {
    seg: Segment,
    len: usize,
    slot: usize,
}

impl BulkView {
    /// Maps a lent segment and checks the loan against it (see the module rules).
    pub fn open(fd: OwnedFd, loan: Loan) -> Result<BulkView> {
        // Mapped lazily: a receiver that reads part of a large array faults only that part in.
        let seg = Segment::from_fd_lazy(fd, loan.segment_len)?;
        if seg.len() < DATA_OFFSET || loan.len > seg.len() - DATA_OFFSET {
            return Err(ShmError::BadSegment(format!("{} bytes do not fit a {}-byte segment", loan.len, seg.len())));
        }
        let h = header(&seg);
        if h.magic.load(Ordering::Acquire) != MAGIC {
            return Err(ShmError::BadSegment("not a bulk segment".into()));
        }
        let me = std::process::id();
        match h.slots.get(loan.slot) {
            Some(s) if s.pid.load(Ordering::Acquire) == me && s.loans.load(Ordering::Acquire) > 0 => {}
            _ => return Err(ShmError::BadSegment(format!("slot {} holds no loan to this process", loan.slot))),
        }
        Ok(BulkView { seg, len: loan.len, slot: loan.slot })
    }

    /// The lent bytes. Read-only by contract: the sender may reuse the memory once the view is
    /// dropped, and must not write it while the view lives.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `open` checked that DATA_OFFSET + len lies inside the mapping, which lives as
        // long as `self`; the sender does not write the data while the loan is outstanding.
        unsafe { std::slice::from_raw_parts(self.seg.base().as_ptr().add(DATA_OFFSET), self.len) }
    }
}

impl BulkView {
    /// The slot this view gives its loan back to.
    pub fn slot(&self) -> usize {
        self.slot
    }
}

impl AsRef<[u8]> for BulkView {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl Drop for BulkView {
    fn drop(&mut self) {
        // Release: the sender, seeing the count drop, may reuse the memory; our reads are done.
        let slot = &header(&self.seg).slots[self.slot];
        let _ = slot.loans.fetch_update(Ordering::Release, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}
