use std::os::fd::AsFd;

use super::*;
use crate::bulk::BulkView;
use crate::ShmError;

const MIB: usize = 1 << 20;

fn me() -> PeerWatch {
    PeerWatch::new(std::process::id()).unwrap()
}

/// A copy of the block's fd, as a receiver gets it over the socket.
fn handed_over(block: &Block) -> std::os::fd::OwnedFd {
    block.fd().try_clone_to_owned().unwrap()
}

fn fill(block: &Block, bytes: &[u8]) {
    let (ptr, cap) = block.data();
    assert!(bytes.len() <= cap);
    // SAFETY: within the block's data, which nobody else holds yet.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
}

#[test]
fn a_lent_block_is_seen_by_the_receiver_and_is_free_once_the_view_is_gone() {
    let mut pool = Pool::new(Limits::default());
    let block = pool.take(3 * MIB).unwrap().unwrap();
    assert_eq!(block.data().0 as usize % 4096, 0, "the data is page aligned");
    fill(&block, b"hello");
    let loan = pool.lend(&block, 5, &me()).unwrap().unwrap();
    let view = BulkView::open(handed_over(&block), loan).unwrap();
    drop(block);
    assert_eq!(view.bytes(), b"hello");
    assert_eq!(pool.free_bytes(), 0, "lent: not free");
    drop(view);
    assert_eq!(pool.free_bytes(), pool.bytes(), "the loan is back");
}

#[test]
fn a_free_segment_is_reused_and_a_held_one_is_not() {
    let mut pool = Pool::new(Limits::default());
    let a = pool.take(2 * MIB).unwrap().unwrap();
    let first = a.data().0;
    let b = pool.take(2 * MIB).unwrap().unwrap();
    assert_ne!(b.data().0, first, "a is still held");
    drop(a);
    let c = pool.take(MIB).unwrap().unwrap();
    assert_eq!(c.data().0, first, "a's segment, free again, is reused");
    assert_eq!(pool.bytes(), 2 * 3 * MIB, "no third segment");
    drop((b, c));
}

#[test]
fn a_segment_much_larger_than_needed_is_not_reused() {
    let mut pool = Pool::new(Limits::default());
    drop(pool.take(64 * MIB).unwrap().unwrap());
    let small = pool.take(MIB / 2).unwrap().unwrap();
    assert!(small.data().1 < 64 * MIB, "a fresh small segment, not the 64 MiB one");
}

#[test]
fn a_receiver_that_dies_with_its_loan_frees_the_segment() {
    let mut pool = Pool::new(Limits::default());
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let watch = PeerWatch::new(child.id()).unwrap();
    let block = pool.take(MIB).unwrap().unwrap();
    pool.lend(&block, 10, &watch).unwrap().unwrap();
    drop(block);
    assert_eq!(pool.free_bytes(), 0, "lent to a live process");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(pool.free_bytes(), pool.bytes(), "its loans ended with it");
}

#[test]
fn a_view_outlives_the_pool_and_its_segments() {
    let mut pool = Pool::new(Limits::default());
    let block = pool.take(MIB).unwrap().unwrap();
    fill(&block, b"kept");
    let loan = pool.lend(&block, 4, &me()).unwrap().unwrap();
    let view = BulkView::open(handed_over(&block), loan).unwrap();
    drop((block, pool)); // as when the sender dies
    assert_eq!(view.bytes(), b"kept");
}

#[test]
fn the_memory_bound_refuses_rather_than_grows() {
    let mut pool = Pool::new(Limits { max_bytes: 4 * MIB, keep_free_bytes: 4 * MIB, max_slack: 4 });
    let a = pool.take(2 * MIB).unwrap().unwrap();
    assert!(pool.take(2 * MIB).unwrap().is_none(), "3 + 3 MiB would pass the bound");
    drop(a);
    assert!(pool.take(2 * MIB).unwrap().is_some(), "a's segment is reused");
}

#[test]
fn free_segments_beyond_the_keep_bound_are_closed() {
    let mut pool = Pool::new(Limits { max_bytes: 64 * MIB, keep_free_bytes: 3 * MIB, max_slack: 1 });
    let blocks: Vec<_> = (1..=3).map(|n| pool.take(n * MIB).unwrap().unwrap()).collect();
    drop(blocks);
    pool.take(10 * MIB).unwrap().unwrap();
    assert!(pool.bytes() - 11 * MIB <= 3 * MIB, "{} bytes still held", pool.bytes());
}

#[test]
fn a_receiver_refuses_a_loan_that_is_not_its_own_or_does_not_fit() {
    let mut pool = Pool::new(Limits::default());
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let other = PeerWatch::new(child.id()).unwrap();
    let block = pool.take(MIB).unwrap().unwrap();
    let loan = pool.lend(&block, 10, &other).unwrap().unwrap();
    let err = BulkView::open(handed_over(&block), loan).unwrap_err();
    assert!(matches!(err, ShmError::BadSegment(ref m) if m.contains("no loan")), "{err}");
    assert!(pool.lend(&block, block.data().1 + 1, &me()).unwrap().is_none(), "more than the block holds");
    let mine = pool.lend(&block, 10, &me()).unwrap().unwrap();
    for bad in [Loan { len: mine.segment_len, ..mine }, Loan { slot: SLOTS, ..mine }] {
        assert!(matches!(BulkView::open(handed_over(&block), bad), Err(ShmError::BadSegment(_))));
    }
    let plain = Segment::create(MIB).unwrap();
    let fd = plain.as_fd().try_clone_to_owned().unwrap();
    let err = BulkView::open(fd, Loan { segment_len: plain.len(), len: 1, slot: 0 }).unwrap_err();
    assert!(matches!(err, ShmError::BadSegment(ref m) if m.contains("not a bulk")), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn loans_count_per_view_and_every_slot_taken_means_send_by_copy() {
    let mut pool = Pool::new(Limits::default());
    let block = pool.take(MIB).unwrap().unwrap();
    let views: Vec<_> = (0..3)
        .map(|_| BulkView::open(handed_over(&block), pool.lend(&block, 1, &me()).unwrap().unwrap()).unwrap())
        .collect();
    let slot = views[0].slot();
    assert_eq!(bulk::header(&block.seg).slots[slot].loans.load(Ordering::Acquire), 3);
    drop(views);
    assert_eq!(bulk::header(&block.seg).slots[slot].loans.load(Ordering::Acquire), 0);
    // Fill every other slot with live receivers (this process, under other pids it cannot be:
    // so mark the slots by hand) and the next receiver finds none.
    for (i, s) in bulk::header(&block.seg).slots.iter().enumerate() {
        if s.pid.load(Ordering::Acquire) == 0 {
            s.pid.store(u32::MAX - i as u32, Ordering::Release);
        }
    }
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let stranger = PeerWatch::new(child.id()).unwrap();
    assert!(pool.lend(&block, 1, &stranger).unwrap().is_none());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_buffer_built_in_a_block_is_found_by_its_address() {
    let mut pool = Pool::new(Limits::default());
    let block = pool.take(MIB).unwrap().unwrap();
    let (at, cap) = block.data();
    assert!(pool.block_at(at, cap).is_some_and(|b| b.data().0 == at));
    assert!(pool.block_at(at, cap + 1).is_none(), "longer than the block");
    assert!(pool.block_at(at.wrapping_add(1), 1).is_none(), "not the data's start");
    let elsewhere = [0u8; 16];
    assert!(pool.block_at(elsewhere.as_ptr(), 16).is_none());
}
