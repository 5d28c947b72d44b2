//! Held frames (`batch.rs`): they wait until the batch is full, something else is written, or a
//! flush; they keep their order and go before what follows; a flusher waits for them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rebeam_proto::{encode_parts, Event, Frame, Payload, Request};

use crate::batch::{Held, Pushed};
use crate::tests::{connected, read, request_id, SHORT};
use crate::{HELD_FRAMES, HELD_FRAME_MAX_BYTES};

fn done(behaviour: u64) -> Event {
    Event::BehaviourDone { behaviour }
}

fn schedule(behaviour: u64, code_bytes: usize) -> Request {
    Request::Schedule {
        behaviour,
        cowns: vec![behaviour],
        result: behaviour + 1000,
        code: Payload { data: vec![1; code_bytes].into(), buffers: vec![] },
        at_main: false,
        gated: false,
        quiet: true,
    }
}

/// Whether the fake governor's socket has bytes to read now.
fn readable(s: &std::os::unix::net::UnixStream) -> bool {
    let mut fds = [rustix::event::PollFd::new(s, rustix::event::PollFlags::IN)];
    let now = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
    matches!(rustix::event::poll(&mut fds, Some(&now)), Ok(1))
}

#[test]
fn a_batch_fills_at_its_bound_and_is_written_whole_in_order() {
    let held = Held::default();
    let mut expected = Vec::new();
    for b in 0..HELD_FRAMES as u64 {
        let frame = encode_parts(Frame::Event(done(b))).unwrap();
        expected.extend_from_slice(&frame.to_vec());
        let want = if b + 1 == HELD_FRAMES as u64 { Pushed::Full } else { Pushed::Held };
        assert_eq!(held.push(&frame, true), want, "frame {b}");
        assert!(held.any());
    }
    let mut out = Vec::new();
    held.write_to(&mut out).unwrap();
    assert_eq!(out, expected);
    assert!(!held.any());
    let mut again = Vec::new();
    held.write_to(&mut again).unwrap();
    assert!(again.is_empty(), "written once");
    let large = encode_parts(Frame::Request { req: 1, body: schedule(1, HELD_FRAME_MAX_BYTES) }).unwrap();
    assert_eq!(held.push(&large, true), Pushed::Refused);
    assert!(!held.any());
}

#[test]
fn held_frames_wait_then_go_before_the_next_frame_in_order() {
    let (client, mut s) = connected();
    for b in 0..3 {
        assert!(!client.hold_request(schedule(b, 16)).unwrap());
    }
    assert!(!client.hold_event(done(7)).unwrap());
    std::thread::sleep(SHORT);
    assert!(!readable(&s), "held frames wait for a flush or the next write");
    let pending = client.start_request(Request::BocStats).unwrap();
    for b in 0..3 {
        let (req, body) = request_id(&mut s);
        assert_ne!(req & (1 << 62), 0, "a quiet request's id");
        assert_eq!(body, schedule(b, 16));
    }
    assert_eq!(read(&mut s), Frame::Event(done(7)));
    let (req, body) = request_id(&mut s);
    assert_eq!(body, Request::BocStats);
    crate::tests::answer(&mut s, req, rebeam_proto::Response::Done);
    pending.wait(None).unwrap();
}

#[test]
fn a_large_frame_goes_at_once_after_the_held_ones() {
    let (client, mut s) = connected();
    assert!(!client.hold_event(done(1)).unwrap());
    assert!(!client.hold_request(schedule(2, HELD_FRAME_MAX_BYTES + 1)).unwrap());
    assert_eq!(read(&mut s), Frame::Event(done(1)));
    assert_eq!(request_id(&mut s).1, schedule(2, HELD_FRAME_MAX_BYTES + 1));
}

#[test]
fn a_full_batch_says_so_and_a_flush_sends_it() {
    let (client, mut s) = connected();
    let full: Vec<bool> = (0..HELD_FRAMES as u64).map(|b| client.hold_event(done(b)).unwrap()).collect();
    assert_eq!(full.iter().filter(|f| **f).count(), 1);
    assert!(full[HELD_FRAMES - 1]);
    client.flush_held().unwrap();
    for b in 0..HELD_FRAMES as u64 {
        assert_eq!(read(&mut s), Frame::Event(done(b)));
    }
    // A cast tried at once never jumps held frames: it is given back for the full path.
    assert!(!client.hold_event(done(99)).unwrap());
    let cast = Request::Cast {
        target: rebeam_proto::Target::Name("x".into()),
        subject: "s".into(),
        sender: None,
        payload: Payload::default(),
    };
    assert_eq!(client.try_cast(cast.clone()), Some(cast));
}

#[test]
fn a_flusher_wakes_for_the_first_held_frame_and_ends_on_its_stop() {
    let (client, mut s) = connected();
    let client = Arc::new(client);
    let stop = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (client, stop) = (client.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rounds = 0;
            while client.wait_held(&stop) {
                client.flush_held().unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    std::thread::sleep(SHORT); // the flusher is asleep now: the first frame must wake it
    assert!(!client.hold_event(done(5)).unwrap());
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(read(&mut s), Frame::Event(done(5)));
    stop.store(true, Ordering::SeqCst);
    client.wake_held();
    assert!(flusher.join().unwrap() >= 1);
}

#[test]
fn a_flusher_ends_when_the_connection_closes() {
    let (client, s) = connected();
    let client = Arc::new(client);
    let stop = AtomicBool::new(false);
    let waiting = {
        let client = client.clone();
        std::thread::spawn(move || client.wait_held(&stop))
    };
    drop(s);
    assert!(!waiting.join().unwrap());
    assert!(client.hold_event(done(1)).is_err());
}

#[test]
fn a_frame_held_unwoken_leaves_the_flusher_asleep_until_one_held_woken() {
    let (client, mut s) = connected();
    let client = Arc::new(client);
    let stop = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (client, stop) = (client.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rounds = 0;
            while client.wait_held(&stop) {
                client.flush_held().unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    std::thread::sleep(SHORT); // the flusher is asleep now
    assert!(!client.hold_event_unwoken(done(1)).unwrap());
    std::thread::sleep(SHORT);
    assert!(!readable(&s), "a frame held unwoken waits for its holder's flush");
    assert!(!client.hold_event(done(2)).unwrap());
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(read(&mut s), Frame::Event(done(1)));
    assert_eq!(read(&mut s), Frame::Event(done(2)));
    stop.store(true, Ordering::SeqCst);
    client.wake_held();
    assert_eq!(flusher.join().unwrap(), 1, "one wake-up sent both");
}
