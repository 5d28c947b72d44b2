//! A single-producer, single-consumer ring of variable-length records in a [`Segment`].
//!
//! Layout (all integers little-endian, as the machine writes them):
//!
//! | offset | field | written by |
//! |---|---|---|
//! | 0 | magic `b"rebeamRG"`, u64 | creator ([`format()`]) |
//! | 8 | version, u32 | creator |
//! | 16 | capacity of the data area in bytes, u64 (a power of two) | creator |
//! | 1 × [`LINE`] | head: bytes ever written, u64 | producer |
//! | 2 × `LINE` | tail: bytes ever released, u64 | consumer |
//! | 3 × `LINE` | "consumer is going to sleep" flag, u32 | consumer sets, producer clears |
//! | 4 × `LINE` | "producer waits for room" flag, u32 | producer sets, consumer clears |
//! | [`DATA_OFFSET`] | data area, `capacity` bytes | |
//!
//! Rules:
//! - head and tail count bytes from the start and never wrap in practice (u64); a position's
//!   place in the data area is `pos % capacity`. Each lives on its own pair of cache lines, so
//!   the two sides never write the same line (the pair because x86 prefetches lines in pairs).
//! - A record is an 8-byte header (u32 length, u32 tag) followed by the payload, padded to 8
//!   bytes. Records are never split: the receiver gets one contiguous, borrowed slice (zero
//!   copy). A record that would cross the end of the data area is preceded by a padding record
//!   that fills the area to its end, written in the same publication as the record. So that every
//!   record fits once the ring drains, whatever the head's position, a record's payload is at most
//!   `capacity / 2 - 8` bytes ([`Producer::max_record`]).
//! - The producer writes a record, then publishes it by storing the new head (release); the
//!   consumer reads head (acquire), then the record. Releasing stores the new tail (release); the
//!   producer reads tail (acquire) before reusing the bytes.
//! - Each side keeps its own index privately and never reads it back from shared memory; it
//!   reads only the other side's index, and only when what it saw last is used up (so a busy
//!   side does not pull the other's cache line across on every record), and checks it: tail must lie between the last tail seen
//!   and head, head must be at most `capacity` ahead of tail, both 8-aligned and below 2^62; a
//!   record's tag must be known, its length must fit the bytes published and the area's end, a
//!   padding record must reach exactly to the end. The header is checked once at open and then cached. Any violation
//!   is [`ShmError::Corrupt`].
//! - Wake-ups cost a system call only for a side that sleeps. The consumer sets its flag,
//!   then a SeqCst fence, then re-reads head (and sleeps only if nothing came); the producer
//!   stores head, then a SeqCst fence, then reads the flag (and rings, clearing it, only if
//!   set). The fences are totally ordered, so either the producer sees the flag or the consumer
//!   sees the record: a wake-up is never lost, and a consumer that keeps reading never sets the
//!   flag, so writing to it makes no system call. The same holds, sides swapped, for the
//!   producer waiting for room.
//! - The two flags may hold any value (non-zero means set); a peer that scribbles on them can
//!   cause only a spurious wake-up or a missed one, and every wait has a timeout.
//! - Control words in shared memory are only ever accessed as atomics, so a racing peer cannot
//!   make a load undefined. Payload bytes are copied in with plain copies and lent out as a
//!   slice: a peer that writes into a record it already published can change what the receiver
//!   reads (garbage in, garbage out) but never where it reads.

use std::os::fd::AsFd;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use crate::doorbell::Doorbell;
use crate::error::{Result, ShmError};
use crate::segment::Segment;

/// The ring's magic number, `b"rebeamRG"`, so a segment that is not a ring is refused.
pub const MAGIC: u64 = u64::from_le_bytes(*b"rebeamRG");
/// The layout version; bumped on any change to the table above.
pub const VERSION: u32 = 1;
/// The spacing of the control words: two 64-byte cache lines (see the module rules).
pub const LINE: usize = 128;
/// Where the data area starts.
pub const DATA_OFFSET: usize = 5 * LINE;
/// A record's header: u32 length, u32 tag.
pub const RECORD_HEADER: usize = 8;
/// Records are padded to this alignment so headers stay aligned for atomic access.
const ALIGN: usize = 8;
/// Positions beyond this are corrupt: 2^62 bytes take decades to send, and the bound keeps a
/// scribbled starting position from overflowing our own arithmetic.
const POSITION_LIMIT: u64 = 1 << 62;
/// The smallest data area accepted, so that `max_record` is useful.
pub const MIN_CAPACITY: usize = 64;

const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 8;
const OFF_CAPACITY: usize = 16;
const OFF_HEAD: usize = LINE;
const OFF_TAIL: usize = 2 * LINE;
const OFF_CONSUMER_SLEEPING: usize = 3 * LINE;
const OFF_PRODUCER_WAITING: usize = 4 * LINE;

const TAG_DATA: u32 = u32::from_le_bytes(*b"DATA");
const TAG_PAD: u32 = u32::from_le_bytes(*b"PAD_");

/// The segment length a ring with a data area of `capacity` bytes needs.
pub fn segment_len(capacity: usize) -> usize {
    DATA_OFFSET + capacity
}

/// Writes a fresh ring header into `seg` for a data area of `capacity` bytes (a power of two,
/// at least [`MIN_CAPACITY`], fitting the segment). Only the segment's creator does this, before
/// handing it out.
pub fn format(seg: &Segment, capacity: usize) -> Result<()> {
    let fits = capacity >= MIN_CAPACITY && capacity.is_power_of_two() && segment_len(capacity) <= seg.len();
    if !fits {
        return Err(ShmError::BadSegment(format!(
            "a {}-byte segment cannot hold a ring of {capacity} bytes (a power of two, at least {MIN_CAPACITY})",
            seg.len()
        )));
    }
    let view = View { seg };
    view.u64_at(OFF_MAGIC).store(MAGIC, Ordering::Relaxed);
    view.u32_at(OFF_VERSION).store(VERSION, Ordering::Relaxed);
    view.u64_at(OFF_CAPACITY).store(capacity as u64, Ordering::Relaxed);
    view.u64_at(OFF_HEAD).store(0, Ordering::Relaxed);
    view.u64_at(OFF_TAIL).store(0, Ordering::Relaxed);
    view.u32_at(OFF_CONSUMER_SLEEPING).store(0, Ordering::Relaxed);
    view.u32_at(OFF_PRODUCER_WAITING).store(0, Ordering::Relaxed);
    fence(Ordering::Release);
    Ok(())
}

/// Typed access to the control words of a mapped segment.
struct View<'a> {
    seg: &'a Segment,
}

impl<'a> View<'a> {
    fn u64_at(&self, off: usize) -> &'a AtomicU64 {
        debug_assert!(off & 7 == 0 && off + 8 <= self.seg.len());
        // SAFETY: `off` is one of this module's aligned control offsets (or a checked, aligned
        // record offset), inside the mapping, which lives as long as the borrow of `seg`; the
        // word is only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(self.seg.base().as_ptr().add(off).cast()) }
    }

    fn u32_at(&self, off: usize) -> &'a AtomicU32 {
        debug_assert!(off & 3 == 0 && off + 4 <= self.seg.len());
        // SAFETY: as for `u64_at`.
        unsafe { AtomicU32::from_ptr(self.seg.base().as_ptr().add(off).cast()) }
    }
}

/// Checks a segment's ring header and returns its capacity.
fn open(seg: &Segment) -> Result<usize> {
    if seg.len() < DATA_OFFSET + MIN_CAPACITY {
        return Err(ShmError::Corrupt("segment too small for a ring"));
    }
    fence(Ordering::Acquire);
    let view = View { seg };
    if view.u64_at(OFF_MAGIC).load(Ordering::Relaxed) != MAGIC {
        return Err(ShmError::Corrupt("bad magic"));
    }
    if view.u32_at(OFF_VERSION).load(Ordering::Relaxed) != VERSION {
        return Err(ShmError::Corrupt("unknown layout version"));
    }
    let capacity = view.u64_at(OFF_CAPACITY).load(Ordering::Relaxed);
    let fits =
        capacity >= MIN_CAPACITY as u64 && capacity.is_power_of_two() && capacity <= (seg.len() - DATA_OFFSET) as u64;
    if !fits {
        return Err(ShmError::Corrupt("capacity does not fit the segment"));
    }
    Ok(capacity as usize)
}

/// Whether a position sits on a record boundary (a mask, not `is_multiple_of`, for the MSRV).
fn aligned(pos: u64) -> bool {
    pos & (ALIGN as u64 - 1) == 0
}

fn padded(len: usize) -> usize {
    RECORD_HEADER + len.next_multiple_of(ALIGN)
}

/// The writing end of a ring.
#[derive(Debug)]
pub struct Producer {
    seg: Segment,
    capacity: usize,
    /// Our head; never read back from shared memory.
    head: u64,
    /// The last tail seen, the lower bound for the next one.
    tail: u64,
}

impl Producer {
    /// Opens the writing end of the ring in `seg`, checking its header.
    pub fn open(seg: Segment) -> Result<Producer> {
        let capacity = open(&seg)?;
        let view = View { seg: &seg };
        let head = view.u64_at(OFF_HEAD).load(Ordering::Acquire);
        let tail = view.u64_at(OFF_TAIL).load(Ordering::Acquire);
        check_span(tail, head, capacity)?;
        Ok(Producer { seg, capacity, head, tail })
    }

    /// The largest payload this ring accepts.
    pub fn max_record(&self) -> usize {
        self.capacity / 2 - RECORD_HEADER
    }

    /// The data area's size in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Writes one record made of `parts` (concatenated) and publishes it, or returns `Full`
    /// without writing anything. Never blocks.
    pub fn try_send(&mut self, parts: &[&[u8]]) -> Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > self.max_record() {
            return Err(ShmError::TooLarge { len, max: self.max_record() });
        }
        let need = padded(len);
        let off = self.offset(self.head);
        let to_end = self.capacity - off;
        let total = if need <= to_end { need } else { to_end + need };
        // The last tail seen gives a lower bound on the room; read the consumer's line only when
        // that is not enough, so a busy producer does not pull it across cores on every record.
        let known = self.capacity - (self.head - self.tail) as usize;
        let free = if total <= known { known } else { self.free()? };
        if total > free {
            return Err(ShmError::Full { needed: total, free });
        }
        let mut at = off;
        if need > to_end {
            self.write_header(off, (to_end - RECORD_HEADER) as u32, TAG_PAD);
            at = 0;
        }
        self.write_header(at, len as u32, TAG_DATA);
        let mut dst = DATA_OFFSET + at + RECORD_HEADER;
        for part in parts {
            // SAFETY: `dst .. dst + part.len()` lies in the data area (the record was sized to
            // fit before the area's end) and in bytes the consumer has released (`free`).
            unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), self.seg.base().as_ptr().add(dst), part.len()) };
            dst += part.len();
        }
        self.head += total as u64;
        self.view().u64_at(OFF_HEAD).store(self.head, Ordering::Release);
        Ok(())
    }

    /// Where the next record will start: every record sent so far ends at or before it.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// How far the consumer has released records (its published tail, checked): a record
    /// that ends past it was never released by the consumer.
    pub fn released(&mut self) -> Result<u64> {
        self.free()?;
        Ok(self.tail)
    }

    /// Bytes free for records now, from the consumer's published tail (checked).
    pub fn free(&mut self) -> Result<usize> {
        let tail = self.view().u64_at(OFF_TAIL).load(Ordering::Acquire);
        // The tail may only move forward and never past our head.
        if tail < self.tail || tail > self.head || !aligned(tail) {
            return Err(ShmError::Corrupt("tail outside the published records"));
        }
        self.tail = tail;
        Ok(self.capacity - (self.head - tail) as usize)
    }

    /// After publishing: whether the consumer said it is going to sleep, clearing the flag so
    /// that one wake-up serves any number of records. The caller rings its doorbell if so.
    pub fn take_consumer_sleeping(&self) -> bool {
        // Pairs with the fence in `Consumer::prepare_sleep`: either we see the flag, or the
        // consumer sees our head.
        fence(Ordering::SeqCst);
        let flag = self.view().u32_at(OFF_CONSUMER_SLEEPING);
        flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::Relaxed) != 0
    }

    /// Announces that we are about to wait for room; the caller then re-checks `free` before
    /// sleeping, so a release that raced the announcement is not missed.
    pub fn prepare_wait(&self) {
        self.view().u32_at(OFF_PRODUCER_WAITING).store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Withdraws `prepare_wait` when no sleep happened.
    pub fn cancel_wait(&self) {
        self.view().u32_at(OFF_PRODUCER_WAITING).store(0, Ordering::Relaxed);
    }

    fn write_header(&self, at: usize, len: u32, tag: u32) {
        let view = self.view();
        view.u32_at(DATA_OFFSET + at).store(len, Ordering::Relaxed);
        view.u32_at(DATA_OFFSET + at + 4).store(tag, Ordering::Relaxed);
    }

    fn offset(&self, pos: u64) -> usize {
        (pos & (self.capacity as u64 - 1)) as usize
    }

    fn view(&self) -> View<'_> {
        View { seg: &self.seg }
    }
}

/// Checks that `head` is at most `capacity` ahead of `tail` and both are aligned.
fn check_span(tail: u64, head: u64, capacity: usize) -> Result<()> {
    let apart = head < tail || head - tail > capacity as u64;
    if !aligned(tail) || !aligned(head) || apart || head > POSITION_LIMIT {
        return Err(ShmError::Corrupt("head and tail more than a ring apart"));
    }
    Ok(())
}

/// The reading end of a ring.
#[derive(Debug)]
pub struct Consumer {
    seg: Segment,
    capacity: usize,
    /// Our tail; never read back from shared memory.
    tail: u64,
    /// The last head seen (checked); re-read only when the records it covers are consumed.
    head: u64,
    /// Rung on release when the producer waits for room.
    space_bell: Option<Doorbell>,
}

impl Consumer {
    /// Opens the reading end of the ring in `seg`, checking its header. `space_bell`, when
    /// given, is rung on release if the producer announced it waits for room.
    pub fn open(seg: Segment, space_bell: Option<Doorbell>) -> Result<Consumer> {
        let capacity = open(&seg)?;
        let view = View { seg: &seg };
        let tail = view.u64_at(OFF_TAIL).load(Ordering::Acquire);
        let head = view.u64_at(OFF_HEAD).load(Ordering::Acquire);
        check_span(tail, head, capacity)?;
        Ok(Consumer { seg, capacity, tail, head: tail, space_bell })
    }

    /// Whether a data record is ready at the tail, skipping (and releasing) padding first.
    pub fn ready(&mut self) -> Result<bool> {
        Ok(self.peek()?.is_some())
    }

    /// Takes the next record, if any, as a slice borrowed from the ring; dropping it releases
    /// its bytes to the producer.
    pub fn try_recv(&mut self) -> Result<Option<Record<'_>>> {
        Ok(self.peek()?.map(|(start, len, advance)| Record { consumer: self, start, len, advance }))
    }

    /// Finds the data record at the tail: (its payload's offset in the segment, its length, the
    /// bytes it occupies).
    fn peek(&mut self) -> Result<Option<(usize, usize, usize)>> {
        loop {
            if self.head == self.tail {
                let head = self.view().u64_at(OFF_HEAD).load(Ordering::Acquire);
                check_span(self.tail, head, self.capacity)?;
                self.head = head;
            }
            let avail = (self.head - self.tail) as usize;
            if avail == 0 {
                return Ok(None);
            }
            let off = (self.tail & (self.capacity as u64 - 1)) as usize;
            let to_end = self.capacity - off;
            // An 8-aligned offset leaves at least 8 bytes to the end: the header is in bounds.
            let len = self.view().u32_at(DATA_OFFSET + off).load(Ordering::Relaxed) as usize;
            let tag = self.view().u32_at(DATA_OFFSET + off + 4).load(Ordering::Relaxed);
            match tag {
                TAG_PAD => {
                    if len != to_end - RECORD_HEADER || to_end > avail {
                        return Err(ShmError::Corrupt("padding record does not reach the end"));
                    }
                    self.release(to_end);
                }
                TAG_DATA => {
                    if len > self.capacity / 2 - RECORD_HEADER {
                        return Err(ShmError::Corrupt("record longer than the largest allowed"));
                    }
                    let size = padded(len);
                    if size > to_end || size > avail {
                        return Err(ShmError::Corrupt("record runs past the published bytes"));
                    }
                    return Ok(Some((DATA_OFFSET + off + RECORD_HEADER, len, size)));
                }
                _ => return Err(ShmError::Corrupt("unknown record tag")),
            }
        }
    }

    /// Announces that we are going to sleep. The caller must call `ready` once more afterwards
    /// and sleep only if it is still false, so a record published meanwhile is never missed.
    pub fn prepare_sleep(&self) {
        self.view().u32_at(OFF_CONSUMER_SLEEPING).store(1, Ordering::Relaxed);
        // Pairs with the fence in `Producer::take_consumer_sleeping`.
        fence(Ordering::SeqCst);
    }

    /// A second mapping of this ring's segment, for [`announced`] (its pages mapped lazily:
    /// only the header is ever touched).
    pub(crate) fn second_mapping(&self) -> Result<Segment> {
        let fd = self.seg.as_fd().try_clone_to_owned().map_err(|e| ShmError::Os { op: "dup", source: e })?;
        Segment::from_fd_lazy(fd, self.seg.len())
    }

    /// Withdraws `prepare_sleep` after waking (or not sleeping after all).
    pub fn cancel_sleep(&self) {
        self.view().u32_at(OFF_CONSUMER_SLEEPING).store(0, Ordering::Relaxed);
    }

    fn release(&mut self, bytes: usize) {
        self.tail += bytes as u64;
        self.view().u64_at(OFF_TAIL).store(self.tail, Ordering::Release);
        if let Some(bell) = &self.space_bell {
            // Pairs with the fence in `Producer::prepare_wait`.
            fence(Ordering::SeqCst);
            let flag = self.view().u32_at(OFF_PRODUCER_WAITING);
            if flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::Relaxed) != 0 {
                // A failed ring only delays the producer to its next timed re-check.
                let _ = bell.ring();
            }
        }
    }

    fn view(&self) -> View<'_> {
        View { seg: &self.seg }
    }
}

/// Whether the consumer's "going to sleep" flag is still up in the ring of `seg` (a producer
/// that publishes takes it down as it rings). Read with the same fence as the producer's.
pub(crate) fn announced(seg: &Segment) -> bool {
    fence(Ordering::SeqCst);
    View { seg }.u32_at(OFF_CONSUMER_SLEEPING).load(Ordering::Relaxed) != 0
}

/// One received record, borrowed from the ring until dropped.
#[derive(Debug)]
pub struct Record<'a> {
    consumer: &'a mut Consumer,
    start: usize,
    len: usize,
    advance: usize,
}

impl std::ops::Deref for Record<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `start .. start + len` was checked to lie inside the data area and inside the
        // published records; the producer does not write it again until we release it (a
        // misbehaving peer can change the bytes, not their place: see the module rules).
        unsafe { std::slice::from_raw_parts(self.consumer.seg.base().as_ptr().add(self.start), self.len) }
    }
}

impl Record<'_> {
    /// Leaves the record in the ring, unreleased: the next `try_recv` returns it again (a
    /// reader that looked at it and chose not to take it yet).
    pub fn unread(self) {
        // Dropping would release its bytes; it owns nothing else.
        std::mem::forget(self);
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        self.consumer.release(self.advance);
    }
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;
