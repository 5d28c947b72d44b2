//! Channel ends in one process: threads stand in for the peer; a short-lived child stands in for
//! a dead one (the two-process tests are in `tests/`).

use std::thread;

use super::*;

const LONG: Duration = Duration::from_secs(10);

fn me() -> PeerWatch {
    PeerWatch::new(std::process::id()).unwrap()
}

fn dead() -> PeerWatch {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let watch = PeerWatch::new(child.id()).unwrap();
    child.wait().unwrap();
    watch
}

fn ends(capacity: usize, sender_peer: PeerWatch, receiver_peer: PeerWatch) -> (Sender, Receiver, ChannelFds) {
    let fds = ChannelFds::create(capacity).unwrap();
    let tx = Sender::open(fds.try_clone().unwrap(), sender_peer).unwrap();
    let rx = Receiver::open(fds.try_clone().unwrap(), receiver_peer).unwrap();
    (tx, rx, fds)
}

fn pending(bell: &OwnedFd) -> bool {
    let bell = Doorbell::from_fd(bell.try_clone().unwrap());
    bell.wait(&me(), Duration::ZERO).is_ok()
}

#[test]
fn a_sleeping_receiver_is_woken_by_a_send_from_another_thread() {
    let (mut tx, mut rx, _) = ends(4096, me(), me());
    let sender = thread::spawn(move || {
        for i in 0..1000u32 {
            tx.send(&[&i.to_le_bytes()], LONG).unwrap();
        }
    });
    for i in 0..1000u32 {
        assert_eq!(&*rx.recv(LONG).unwrap(), i.to_le_bytes());
    }
    sender.join().unwrap();
}

#[test]
fn a_busy_ring_rings_no_doorbell() {
    let (mut tx, mut rx, fds) = ends(4096, me(), me());
    tx.try_send(&[b"a"]).unwrap();
    assert!(!pending(&fds.data_bell), "nobody slept, nobody was rung");
    rx.recv(LONG).unwrap();
    // A receiver that announced sleep is rung, once, however many records follow.
    rx.ring.prepare_sleep();
    tx.try_send(&[b"b"]).unwrap();
    tx.try_send(&[b"c"]).unwrap();
    assert!(pending(&fds.data_bell));
    assert!(!pending(&fds.data_bell));
}

#[test]
fn an_empty_ring_times_out_and_a_full_one_refuses_after_the_timeout() {
    let (mut tx, mut rx, _) = ends(64, me(), me());
    assert!(matches!(rx.recv(Duration::from_millis(5)), Err(ShmError::TimedOut)));
    tx.try_send(&[&[0; 24]]).unwrap();
    tx.try_send(&[&[0; 24]]).unwrap();
    let err = tx.send(&[b"x"], Duration::from_millis(5)).unwrap_err();
    assert!(matches!(err, ShmError::Full { .. }), "{err}");
}

#[test]
fn a_sender_waiting_for_room_is_woken_by_a_release() {
    let (mut tx, mut rx, _) = ends(64, me(), me());
    tx.try_send(&[&[1; 24]]).unwrap();
    tx.try_send(&[&[2; 24]]).unwrap();
    let sender = thread::spawn(move || tx.send(&[&[3; 24]], LONG));
    for expected in [1, 2, 3] {
        assert_eq!(rx.recv(LONG).unwrap()[0], expected);
    }
    sender.join().unwrap().unwrap();
}

#[test]
fn a_dead_senders_records_are_delivered_then_peer_gone() {
    let (mut tx, mut rx, _) = ends(4096, me(), dead());
    tx.try_send(&[b"last words"]).unwrap();
    assert_eq!(&*rx.recv(LONG).unwrap(), b"last words");
    assert!(matches!(rx.recv(LONG), Err(ShmError::PeerGone)));
}

#[test]
fn a_sender_blocked_on_a_dead_receiver_gets_peer_gone() {
    let (mut tx, _rx, _) = ends(64, dead(), me());
    tx.try_send(&[&[0; 24]]).unwrap();
    tx.try_send(&[&[0; 24]]).unwrap();
    assert!(matches!(tx.send(&[b"x"], LONG), Err(ShmError::PeerGone)));
}

#[test]
fn spinning_receives_what_sleeping_receives() {
    let (mut tx, mut rx, _) = ends(4096, me(), me());
    rx.set_spin(Duration::from_micros(50));
    let sender = thread::spawn(move || {
        for i in 0..1000u32 {
            tx.send(&[&i.to_le_bytes()], LONG).unwrap();
        }
    });
    for i in 0..1000u32 {
        assert_eq!(&*rx.recv(LONG).unwrap(), i.to_le_bytes());
    }
    sender.join().unwrap();
}

#[test]
fn spinning_only_while_a_core_is_free_receives_what_sleeping_receives() {
    let (mut tx, mut rx, _) = ends(4096, me(), me());
    rx.set_spin_when_idle(Duration::from_micros(50));
    let sender = thread::spawn(move || {
        for i in 0..1000u32 {
            tx.send(&[&i.to_le_bytes()], LONG).unwrap();
        }
    });
    for i in 0..1000u32 {
        assert_eq!(&*rx.recv(LONG).unwrap(), i.to_le_bytes());
    }
    sender.join().unwrap();
}

#[test]
fn a_spin_never_outlasts_the_wait() {
    let (_tx, mut rx, _) = ends(4096, me(), me());
    rx.set_spin(Duration::from_secs(3600));
    assert!(matches!(rx.recv(Duration::from_millis(1)), Err(ShmError::TimedOut)));
    rx.set_spin_when_idle(Duration::from_secs(3600));
    assert!(matches!(rx.recv(Duration::from_millis(1)), Err(ShmError::TimedOut)));
}

#[test]
fn a_channel_is_exactly_three_fds() {
    let fds = ChannelFds::create(4096).unwrap();
    let two = vec![fds.segment.try_clone().unwrap(), fds.data_bell.try_clone().unwrap()];
    assert!(matches!(ChannelFds::from_fds(two, fds.len), Err(ShmError::BadMessage(_))));
    let three = fds.fds().map(|f| f.try_clone_to_owned().unwrap()).into_iter().collect();
    ChannelFds::from_fds(three, fds.len).unwrap();
}

#[test]
fn a_wrong_length_announced_is_refused() {
    let mut fds = ChannelFds::create(4096).unwrap();
    fds.len += 4096;
    assert!(matches!(Sender::open(fds, me()), Err(ShmError::BadSegment(_))));
}

/// Records of pseudo-random sizes through a small ring between two threads: every wrap, every
/// full ring and both doorbells, with each record's bytes checked.
#[test]
fn random_sizes_cross_threads_intact_and_in_order() {
    const RECORDS: u32 = 50_000;
    let (mut tx, mut rx, _) = ends(256, me(), me());
    // Less the 4-byte sequence number.
    let max = tx.max_record() - 4;
    // A fixed xorshift, so a failure replays.
    let size = move |i: u32| {
        let mut x = i.wrapping_mul(0x9e37_79b9) | 1;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as usize % (max + 1)
    };
    let body = |i: u32, n: usize| -> Vec<u8> { (0..n).map(|j| (i as usize + j) as u8).collect() };
    let sender = thread::spawn(move || {
        for i in 0..RECORDS {
            let bytes = body(i, size(i));
            let (a, b) = bytes.split_at(bytes.len() / 2);
            tx.send(&[&i.to_le_bytes(), a, b], LONG).unwrap();
        }
    });
    for i in 0..RECORDS {
        let record = rx.recv(LONG).unwrap();
        assert_eq!(record[..4], i.to_le_bytes());
        assert_eq!(record[4..], body(i, size(i)));
    }
    sender.join().unwrap();
}

#[test]
fn a_sender_is_drained_once_the_receiver_has_released_every_record() {
    let (mut tx, mut rx, _) = ends(4096, me(), me());
    assert!(tx.drained().unwrap());
    tx.try_send(&[b"one"]).unwrap();
    assert!(!tx.drained().unwrap());
    let record = rx.try_recv().unwrap().expect("a record");
    assert!(!tx.drained().unwrap(), "a record still held is not released");
    drop(record);
    assert!(tx.drained().unwrap());
}

#[test]
fn a_wait_prepares_for_sleep_only_when_it_sleeps() {
    let (mut tx, mut rx, _) = ends(4096, me(), me());
    let slept = std::cell::Cell::new(0);
    // A record that comes within the spin: no sleep, no preparation.
    rx.set_spin(LONG);
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(2));
        tx.send(&[b"x"], LONG).unwrap();
        tx
    });
    rx.wait_then(LONG, || false, || slept.set(slept.get() + 1)).unwrap();
    assert_eq!(slept.get(), 0);
    drop(rx.recv(LONG).unwrap());
    let _tx = sender.join().unwrap();
    // Nothing comes: prepared once, before its sleep.
    rx.set_spin(Duration::ZERO);
    let waited = rx.wait_then(Duration::from_millis(5), || false, || slept.set(slept.get() + 1));
    assert!(matches!(waited, Err(ShmError::TimedOut)));
    assert_eq!(slept.get(), 1);
}
