//! The sender's pool of bulk segments: pre-faulted once, reused when every loan is back.
//!
//! A fresh 64 MiB segment costs tens to hundreds of milliseconds in page faults, one copy into
//! a pre-faulted one a few milliseconds; so segments are kept and reused. Rules:
//! - [`Pool::take`] hands out a [`Block`]: a segment no one else holds, whose data is at least
//!   the size asked for. It reuses the smallest free segment that fits and is no more than
//!   [`Limits::max_slack`] times the size asked; otherwise it creates one (sized up to whole
//!   [`SIZE_STEP`]s), unless that would pass [`Limits::max_bytes`]: then `None`, and the caller
//!   sends the buffer the ordinary way.
//! - A segment is free when the pool holds the only [`Block`] handle on it and, in every slot
//!   of its header, the loans are back or the receiver is dead (the pool holds a pidfd watch for
//!   each receiver it lent to; see [`bulk`]). A freed segment's slots are cleared.
//! - Free segments beyond [`Limits::keep_free_bytes`] are closed (largest first), so an idle
//!   process does not hold a burst's worth of memory for ever.
//! - [`Pool::block_at`] finds the block whose data a buffer is (a buffer built in a segment
//!   from the start, such as `rebeam.shared_array`'s), so it is lent as it is, with no copy.
//! - [`Pool::lend`] counts one loan to a receiver, in the slot that already names it or a
//!   fresh one; with every slot taken by live receivers it returns `None` (send by copy).
//! - The counts are the receivers' word: the processes of one run trust each other this far
//!   (they run the same user's code). A receiver that gives back a loan it still reads only
//!   sees its own view change under it, or that of another receiver of the same segment.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::bulk::{self, Loan, DATA_OFFSET, SLOTS};
use crate::error::Result;
use crate::peer::PeerWatch;
use crate::segment::Segment;

/// New segments are sized in whole steps of this many bytes, so similar sizes share segments.
pub const SIZE_STEP: usize = 1 << 20;

/// How much memory a pool may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// All segments together, in use or free.
    pub max_bytes: usize,
    /// Free segments kept for reuse; the rest are closed.
    pub keep_free_bytes: usize,
    /// A free segment is reused for a buffer at least 1/`max_slack` of its size.
    pub max_slack: usize,
}

impl Default for Limits {
    /// 1 GiB in all, 256 MiB kept free (four 64 MiB arrays), reuse within a factor of 4.
    fn default() -> Limits {
        Limits { max_bytes: 1 << 30, keep_free_bytes: 256 << 20, max_slack: 4 }
    }
}

/// A segment in the pool, and who it was lent to (by slot).
struct Pooled {
    seg: Arc<Segment>,
    receivers: Vec<Option<PeerWatch>>,
}

impl Pooled {
    fn free(&self) -> bool {
        if Arc::strong_count(&self.seg) > 1 {
            return false;
        }
        let h = bulk::header(&self.seg);
        h.slots
            .iter()
            .zip(&self.receivers)
            .all(|(slot, watch)| slot.loans.load(Ordering::Acquire) == 0 || watch.as_ref().is_none_or(PeerWatch::gone))
    }

    fn clear(&mut self) {
        bulk::init(&self.seg);
        self.receivers.iter_mut().for_each(|w| *w = None);
    }

    fn capacity(&self) -> usize {
        self.seg.len() - DATA_OFFSET
    }
}

/// A segment the caller holds: writes its data, then lends it.
#[derive(Debug, Clone)]
pub struct Block {
    seg: Arc<Segment>,
}

impl Block {
    /// The data's first byte (page aligned) and its capacity in bytes.
    pub fn data(&self) -> (*mut u8, usize) {
        // SAFETY: the segment is at least DATA_OFFSET long (the pool made it so).
        (unsafe { self.seg.base().as_ptr().add(DATA_OFFSET) }, self.seg.len() - DATA_OFFSET)
    }

    /// The segment's fd, to hand over with a [`Loan`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.seg.as_fd()
    }
}

/// The pool (one per sending process).
pub struct Pool {
    segments: Vec<Pooled>,
    limits: Limits,
}

impl Pool {
    pub fn new(limits: Limits) -> Pool {
        Pool { segments: Vec::new(), limits }
    }

    /// A block with room for `len` bytes (see the module rules); `None` at the memory bound.
    pub fn take(&mut self, len: usize) -> Result<Option<Block>> {
        let fits = |p: &Pooled| p.capacity() >= len && p.capacity() / self.limits.max_slack.max(1) <= len;
        let best = (self.segments.iter().enumerate())
            .filter(|(_, p)| fits(p) && p.free())
            .min_by_key(|(_, p)| p.capacity())
            .map(|(i, _)| i);
        if let Some(i) = best {
            self.segments[i].clear();
            return Ok(Some(Block { seg: self.segments[i].seg.clone() }));
        }
        self.trim(0);
        let size = (DATA_OFFSET + len).next_multiple_of(SIZE_STEP);
        if self.bytes() + size > self.limits.max_bytes {
            self.trim_all_free();
            if self.bytes() + size > self.limits.max_bytes {
                return Ok(None);
            }
        }
        let seg = Arc::new(Segment::create(size)?);
        bulk::init(&seg);
        self.segments.push(Pooled { seg: seg.clone(), receivers: (0..SLOTS).map(|_| None).collect() });
        Ok(Some(Block { seg }))
    }

    /// Counts one loan of `block`'s first `len` bytes to the process `receiver` watches; the
    /// [`Loan`] to send with the block's fd, or `None` when every slot is taken by a live
    /// receiver (or `len` exceeds the block, or the block is not this pool's).
    pub fn lend(&mut self, block: &Block, len: usize, receiver: &PeerWatch) -> Result<Option<Loan>> {
        let Some(p) = self.segments.iter_mut().find(|p| Arc::ptr_eq(&p.seg, &block.seg)) else {
            return Ok(None);
        };
        if len > p.capacity() {
            return Ok(None);
        }
        let h = bulk::header(&p.seg);
        let pid = receiver.pid();
        let named = h.slots.iter().position(|s| s.pid.load(Ordering::Acquire) == pid);
        let slot = match named {
            // A recycled pid: the slot's receiver died, and its loans died with it.
            Some(i) if p.receivers[i].as_ref().is_none_or(PeerWatch::gone) => {
                p.receivers[i] = Some(receiver.try_clone()?);
                h.slots[i].loans.store(0, Ordering::Release);
                i
            }
            Some(i) => i,
            None => {
                let Some(i) = h.slots.iter().position(|s| s.pid.load(Ordering::Acquire) == 0) else {
                    return Ok(None);
                };
                p.receivers[i] = Some(receiver.try_clone()?);
                h.slots[i].pid.store(pid, Ordering::Release);
                i
            }
        };
        h.slots[slot].loans.fetch_add(1, Ordering::AcqRel);
        Ok(Some(Loan { segment_len: p.seg.len(), len, slot }))
    }

    /// The block of this pool whose data starts at `ptr` and holds `len` bytes, if any.
    pub fn block_at(&self, ptr: *const u8, len: usize) -> Option<Block> {
        let found = self.segments.iter().find(|p| {
            // SAFETY: the segment is at least DATA_OFFSET long; only the address is compared.
            let data = unsafe { p.seg.base().as_ptr().add(DATA_OFFSET) };
            std::ptr::eq(data, ptr) && len <= p.capacity()
        });
        found.map(|p| Block { seg: p.seg.clone() })
    }

    /// Takes back a loan that was never delivered (the send failed before the fd left).
    pub fn unlend(&mut self, block: &Block, loan: Loan) {
        if let Some(slot) = bulk::header(&block.seg).slots.get(loan.slot) {
            let _ = slot.loans.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Bytes of all segments the pool holds.
    pub fn bytes(&self) -> usize {
        self.segments.iter().map(|p| p.seg.len()).sum()
    }

    /// Bytes of the segments free now.
    pub fn free_bytes(&self) -> usize {
        self.segments.iter().filter(|p| p.free()).map(|p| p.seg.len()).sum()
    }

    /// Closes free segments, largest first, until at most `keep_free_bytes + extra` are free.
    fn trim(&mut self, extra: usize) {
        let keep = self.limits.keep_free_bytes + extra;
        let mut free: Vec<usize> = (0..self.segments.len()).filter(|&i| self.segments[i].free()).collect();
        free.sort_by_key(|&i| std::cmp::Reverse(self.segments[i].seg.len()));
        let mut total: usize = free.iter().map(|&i| self.segments[i].seg.len()).sum();
        let mut close = Vec::new();
        for i in free {
            if total <= keep {
                break;
            }
            total -= self.segments[i].seg.len();
            close.push(i);
        }
        close.sort_unstable();
        for i in close.into_iter().rev() {
            self.segments.swap_remove(i);
        }
    }

    fn trim_all_free(&mut self) {
        self.segments.retain(|p| !p.free());
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
