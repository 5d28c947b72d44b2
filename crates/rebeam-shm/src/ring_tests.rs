//! The ring against a model (a VecDeque and the byte accounting the module doc states), and
//! against a peer that scribbles on every field it shares.

use std::collections::VecDeque;
use std::os::fd::AsFd;

use proptest::prelude::*;

use super::*;

/// A producer, a consumer (separate mappings, as in two processes) and a third mapping to
/// scribble through.
fn pair(capacity: usize) -> (Producer, Consumer, Segment) {
    let seg = Segment::create(segment_len(capacity)).unwrap();
    format(&seg, capacity).unwrap();
    let map = || Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap(), seg.len()).unwrap();
    let (c, s) = (map(), map());
    (Producer::open(seg).unwrap(), Consumer::open(c, None).unwrap(), s)
}

fn poke_u64(seg: &Segment, off: usize, v: u64) {
    assert!(off + 8 <= seg.len());
    // SAFETY: in bounds; this test is single-threaded, so nothing races the write.
    unsafe { seg.base().as_ptr().add(off).cast::<u64>().write_unaligned(v) }
}

fn poke_u32(seg: &Segment, off: usize, v: u32) {
    assert!(off + 4 <= seg.len());
    // SAFETY: as for `poke_u64`.
    unsafe { seg.base().as_ptr().add(off).cast::<u32>().write_unaligned(v) }
}

fn corrupt<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
    match r {
        Err(ShmError::Corrupt(what)) => what,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

fn recv(c: &mut Consumer) -> Option<Vec<u8>> {
    c.try_recv().unwrap().map(|r| r.to_vec())
}

#[test]
fn records_arrive_whole_and_in_order_from_pieces() {
    let (mut p, mut c, _) = pair(4096);
    p.try_send(&[b"ab", b"", b"cde"]).unwrap();
    p.try_send(&[]).unwrap();
    assert_eq!(recv(&mut c).unwrap(), b"abcde");
    assert_eq!(recv(&mut c).unwrap(), b"");
    assert_eq!(recv(&mut c), None);
}

#[test]
fn a_full_ring_refuses_without_writing_and_accepts_after_a_release() {
    let (mut p, mut c, _) = pair(64);
    assert_eq!(p.max_record(), 24);
    p.try_send(&[&[1; 24]]).unwrap();
    p.try_send(&[&[2; 24]]).unwrap();
    assert!(matches!(p.try_send(&[b"x"]), Err(ShmError::Full { needed: 16, free: 0 })));
    assert_eq!(recv(&mut c).unwrap(), [1; 24]);
    p.try_send(&[b"x"]).unwrap();
    assert_eq!(recv(&mut c).unwrap(), [2; 24]);
    assert_eq!(recv(&mut c).unwrap(), b"x");
}

#[test]
fn a_record_left_unread_comes_again_and_keeps_its_room() {
    let (mut p, mut c, _s) = pair(64);
    p.try_send(&[b"one"]).unwrap();
    p.try_send(&[b"two"]).unwrap();
    let free = p.free().unwrap();
    c.try_recv().unwrap().expect("a record").unread();
    assert_eq!(p.free().unwrap(), free, "not released");
    assert_eq!(recv(&mut c).as_deref(), Some(&b"one"[..]), "the same record again");
    assert_eq!(recv(&mut c).as_deref(), Some(&b"two"[..]));
}

#[test]
fn a_record_past_the_largest_is_too_large_even_when_empty() {
    let (mut p, _, _) = pair(64);
    assert!(matches!(p.try_send(&[&[0; 25]]), Err(ShmError::TooLarge { len: 25, max: 24 })));
}

#[test]
fn a_record_that_would_wrap_goes_behind_padding_and_arrives_contiguous() {
    let (mut p, mut c, _) = pair(64);
    p.try_send(&[&[1; 16]]).unwrap(); // 24 bytes
    p.try_send(&[&[2; 16]]).unwrap(); // 48
    assert_eq!(recv(&mut c).unwrap(), [1; 16]);
    assert_eq!(recv(&mut c).unwrap(), [2; 16]);
    // 16 bytes left to the end; a 32-byte record pads them and starts at 0.
    p.try_send(&[&[3; 24]]).unwrap();
    assert_eq!(recv(&mut c).unwrap(), [3; 24]);
    assert_eq!(recv(&mut c), None);
}

#[test]
fn a_corrupt_header_is_refused_at_open() {
    let fields: [(&str, usize, u64); 5] = [
        ("magic", OFF_MAGIC, 0),
        ("version", OFF_VERSION, u64::from(VERSION) + 1),
        ("capacity, not a power of two", OFF_CAPACITY, 3000),
        ("capacity, larger than the segment", OFF_CAPACITY, 1 << 40),
        ("capacity, too small", OFF_CAPACITY, 32),
    ];
    for (what, off, value) in fields {
        let (_, _, s) = pair(4096);
        if off == OFF_VERSION {
            poke_u32(&s, off, value as u32);
        } else {
            poke_u64(&s, off, value);
        }
        let again = || Segment::from_fd(s.as_fd().try_clone_to_owned().unwrap(), s.len()).unwrap();
        corrupt(Producer::open(again()));
        corrupt(Consumer::open(again(), None));
        let _ = what;
    }
}

#[test]
fn indices_apart_by_more_than_a_ring_are_refused_at_open() {
    let (_, _, s) = pair(4096);
    poke_u64(&s, OFF_HEAD, 4096 + 8);
    let again = || Segment::from_fd(s.as_fd().try_clone_to_owned().unwrap(), s.len()).unwrap();
    corrupt(Producer::open(again()));
    corrupt(Consumer::open(again(), None));
}

#[test]
fn positions_near_the_end_of_u64_are_refused_at_open() {
    let (_, _, s) = pair(4096);
    poke_u64(&s, OFF_HEAD, u64::MAX - 7);
    poke_u64(&s, OFF_TAIL, u64::MAX - 7);
    let again = || Segment::from_fd(s.as_fd().try_clone_to_owned().unwrap(), s.len()).unwrap();
    corrupt(Producer::open(again()));
    corrupt(Consumer::open(again(), None));
}

#[test]
fn a_scribbled_head_is_corrupt_for_the_consumer() {
    for head in [4096 + 8, 4, u64::MAX - 7] {
        let (_, mut c, s) = pair(4096);
        poke_u64(&s, OFF_HEAD, head);
        corrupt(c.try_recv().map(|r| r.map(|r| r.len())));
    }
    // Behind the consumer's tail.
    let (mut p, mut c, s) = pair(4096);
    p.try_send(&[b"abc"]).unwrap();
    recv(&mut c).unwrap();
    poke_u64(&s, OFF_HEAD, 0);
    corrupt(c.ready());
}

#[test]
fn a_scribbled_tail_is_corrupt_for_the_producer() {
    // Past any head, unaligned, and behind the tail the producer already saw.
    for tail in [1 << 40, 20, 8] {
        let (mut p, mut c, s) = pair(4096);
        p.try_send(&[b"12345678"]).unwrap();
        p.try_send(&[b"12345678"]).unwrap();
        recv(&mut c).unwrap();
        assert_eq!(p.free().unwrap(), 4096 - 16, "tail 16, head 32");
        poke_u64(&s, OFF_TAIL, tail);
        // The producer reads the tail again once the room it knows of runs out.
        let refused = loop {
            if let Err(e) = p.try_send(&[&[0; 100]]) {
                break e;
            }
        };
        assert!(matches!(refused, ShmError::Corrupt(_)), "{refused:?}");
    }
}

#[test]
fn a_scribbled_record_header_is_corrupt_for_the_consumer() {
    let data = DATA_OFFSET;
    let cases: [(&str, usize, u32); 4] = [
        ("length past the published bytes", data, 200),
        ("length past the largest record", data, u32::MAX),
        ("unknown tag", data + 4, u32::from_le_bytes(*b"EVIL")),
        ("padding that does not reach the end", data + 4, TAG_PAD),
    ];
    for (what, off, value) in cases {
        let (mut p, mut c, s) = pair(4096);
        p.try_send(&[&[7; 40]]).unwrap();
        poke_u32(&s, off, value);
        let got = corrupt(c.try_recv().map(|r| r.map(|r| r.len())));
        assert!(!got.is_empty(), "{what}");
    }
}

#[test]
fn a_record_that_runs_past_the_area_end_is_corrupt() {
    let (mut p, mut c, s) = pair(64);
    p.try_send(&[&[1; 16]]).unwrap();
    p.try_send(&[&[2; 16]]).unwrap();
    recv(&mut c).unwrap();
    recv(&mut c).unwrap();
    p.try_send(&[&[3; 24]]).unwrap(); // padding at 48, record at 0
    poke_u32(&s, DATA_OFFSET + 52, TAG_DATA); // the padding claims to be a 8-byte record: fits
    poke_u32(&s, DATA_OFFSET + 48, 16); // 24 bytes from offset 48 would cross the end
    corrupt(c.ready());
}

#[derive(Debug, Clone)]
enum Op {
    /// Send a record of this length, cut into pieces at these fractions.
    Send(usize, Vec<u8>),
    Recv,
}

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (0..=max, proptest::collection::vec(any::<u8>(), 0..3)).prop_map(|(n, cuts)| Op::Send(n, cuts)),
        2 => Just(Op::Recv),
    ];
    proptest::collection::vec(op, 1..300)
}

fn pieces<'a>(bytes: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|&c| c as usize * bytes.len() / 255).collect();
    at.sort();
    let mut out = Vec::new();
    let mut from = 0;
    for a in at.into_iter().chain([bytes.len()]) {
        out.push(&bytes[from..a]);
        from = a;
    }
    out
}

proptest! {
    #[test]
    fn the_ring_behaves_like_its_model(cap_log in 6u32..10, ops in ops(256), seed in any::<u8>()) {
        let cap = 1usize << cap_log;
        let (mut p, mut c, _) = pair(cap);
        let max = p.max_record();
        let (mut head, mut tail) = (0usize, 0usize);
        let mut model: VecDeque<(Vec<u8>, usize)> = VecDeque::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Send(len, cuts) => {
                    let bytes: Vec<u8> = (0..len).map(|j| (i + j) as u8 ^ seed).collect();
                    let got = p.try_send(&pieces(&bytes, &cuts));
                    if len > max {
                        prop_assert!(matches!(got, Err(ShmError::TooLarge { .. })), "{:?}", got);
                        continue;
                    }
                    let need = padded(len);
                    let to_end = cap - head % cap;
                    let total = if need <= to_end { need } else { to_end + need };
                    if total <= cap - (head - tail) {
                        prop_assert!(got.is_ok(), "{:?}", got);
                        head += total;
                        model.push_back((bytes, total));
                    } else {
                        prop_assert!(!model.is_empty(), "an empty ring takes any allowed record");
                        prop_assert!(matches!(got, Err(ShmError::Full { .. })), "{:?}", got);
                    }
                }
                Op::Recv => {
                    let got = recv(&mut c);
                    match model.pop_front() {
                        Some((bytes, total)) => {
                            prop_assert_eq!(got, Some(bytes));
                            tail += total;
                        }
                        None => prop_assert_eq!(got, None),
                    }
                }
            }
        }
        while let Some((bytes, _)) = model.pop_front() {
            prop_assert_eq!(recv(&mut c), Some(bytes));
        }
        prop_assert_eq!(recv(&mut c), None);
    }

    /// A peer writing anything anywhere in the shared area never makes either end panic or
    /// lend bytes outside the ring: each operation succeeds or reports `Corrupt`.
    #[test]
    fn scribbling_anywhere_is_survived(
        writes in proptest::collection::vec((0usize..(DATA_OFFSET + 256) / 4, any::<u32>(), 0usize..4), 1..40),
    ) {
        let (mut p, mut c, s) = pair(256);
        for (slot, value, sends) in writes {
            for _ in 0..sends {
                match p.try_send(&[&[5; 20]]) {
                    Ok(()) | Err(ShmError::Full { .. }) | Err(ShmError::Corrupt(_)) => {}
                    Err(e) => prop_assert!(false, "{}", e),
                }
            }
            poke_u32(&s, slot * 4, value);
            match c.try_recv() {
                Ok(Some(r)) => prop_assert!(r.len() <= 256 / 2 - RECORD_HEADER),
                Ok(None) | Err(ShmError::Corrupt(_)) => {}
                Err(e) => prop_assert!(false, "{}", e),
            }
        }
    }
}

#[test]
fn a_record_is_lent_from_the_ring_not_copied() {
    let (mut p, mut c, _) = pair(4096);
    p.try_send(&[b"in place"]).unwrap();
    let (lo, hi) = (c.seg.base().as_ptr() as usize, c.seg.base().as_ptr() as usize + c.seg.len());
    let record = c.try_recv().unwrap().unwrap();
    let at = record.as_ptr() as usize;
    assert!(at >= lo + DATA_OFFSET && at + record.len() <= hi, "the slice points into the mapping");
}
