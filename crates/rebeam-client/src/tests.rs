//! The client against a fake governor: a real `UnixListener` in a temporary directory, driven
//! frame by frame by the test.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rebeam_proto::{
    read_frame, write_frame, Command, ErrorInfo, ErrorKind, Frame, Request, Response, Role, Safety,
    DEFAULT_MAX_MESSAGE_BYTES,
};

use crate::client::lock;
use crate::{Client, ClientError, Welcome};

const WELCOME: Welcome = Welcome { index: 3, max_message_bytes: 1 << 20, workers: 2 };
/// A wait that must time out: long enough to be a real wait, short enough to keep tests quick.
pub(crate) const SHORT: Duration = Duration::from_millis(50);

/// A fresh socket path and its listener.
fn listen() -> (PathBuf, UnixListener) {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("rebeam-client-test-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind");
    (path, listener)
}

pub(crate) fn read(s: &mut UnixStream) -> Frame {
    read_frame(s, DEFAULT_MAX_MESSAGE_BYTES).expect("a frame from the client")
}

/// Connects a client to a fake governor that welcomes it; returns both ends.
pub(crate) fn connected() -> (Client, UnixStream) {
    let (path, listener) = listen();
    let governor = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        match read(&mut s) {
            Frame::Hello { token, role: Role::Worker, .. } => assert_eq!(token, "tok"),
            other => panic!("expected Hello, got {other:?}"),
        }
        let w = WELCOME;
        write_frame(
            &mut s,
            &Frame::Welcome { index: w.index, max_message_bytes: w.max_message_bytes, workers: w.workers },
        )
        .unwrap();
        s
    });
    let client = Client::connect(&path, "tok", Role::Worker).expect("connects");
    let s = governor.join().unwrap();
    let _ = std::fs::remove_file(&path);
    (client, s)
}

pub(crate) fn answer(s: &mut UnixStream, req: u64, body: Response) {
    write_frame(s, &Frame::Response { req, body }).unwrap();
}

pub(crate) fn request_id(s: &mut UnixStream) -> (u64, Request) {
    match read(s) {
        Frame::Request { req, body } => (req, body),
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn handshake_gives_the_welcome() {
    let (client, _s) = connected();
    assert_eq!(client.welcome(), WELCOME);
    assert!(!client.closed());
}

#[test]
fn a_first_frame_other_than_welcome_is_refused() {
    let (path, listener) = listen();
    let governor = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        read(&mut s);
        write_frame(&mut s, &Frame::Ready).unwrap();
    });
    let err = Client::connect(&path, "tok", Role::Main).err().expect("refused");
    governor.join().unwrap();
    assert!(err.to_string().contains("unexpected first frame"), "{err}");
    assert_eq!(err.into_info().kind, ErrorKind::ShuttingDown);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn connecting_to_no_governor_names_the_socket() {
    let (path, listener) = listen();
    drop(listener);
    let _ = std::fs::remove_file(&path);
    let err = Client::connect(&path, "tok", Role::Main).err().expect("no governor");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
}

#[test]
fn responses_reach_their_own_waiters_whatever_the_order() {
    let (client, mut s) = connected();
    let first = client.start_request(Request::Whereis { name: "a".into() }).unwrap();
    let second = client.start_request(Request::Whereis { name: "b".into() }).unwrap();
    let (r1, _) = request_id(&mut s);
    let (r2, _) = request_id(&mut s);
    assert_ne!(r1, r2);
    answer(&mut s, r2, Response::Updated(false));
    answer(&mut s, r1, Response::Updated(true));
    assert_eq!(first.wait(None).unwrap(), Response::Updated(true));
    assert_eq!(second.wait(None).unwrap(), Response::Updated(false));
}

#[test]
fn a_timed_out_wait_can_wait_again_for_the_same_response() {
    let (client, mut s) = connected();
    let pending = client.start_request(Request::BocStats).unwrap();
    let (req, body) = request_id(&mut s);
    assert_eq!(body, Request::BocStats);
    assert!(matches!(pending.wait(Some(SHORT)), Err(ClientError::Timeout)));
    answer(&mut s, req, Response::Done);
    assert_eq!(pending.wait(None).unwrap(), Response::Done);
}

#[test]
fn a_response_nobody_waits_for_is_dropped() {
    let (client, mut s) = connected();
    drop(client.start_request(Request::BocStats).unwrap());
    let (stale, _) = request_id(&mut s);
    let pending = client.start_request(Request::BocStats).unwrap();
    let (req, _) = request_id(&mut s);
    answer(&mut s, stale, Response::Updated(true));
    answer(&mut s, req, Response::Done);
    assert_eq!(pending.wait(None).unwrap(), Response::Done);
}

#[test]
fn commands_queue_in_order_and_safety_only_updates_the_state() {
    let (client, mut s) = connected();
    assert_eq!(client.safety(), Safety::Disarmed);
    write_frame(&mut s, &Frame::Command(Command::Preload)).unwrap();
    write_frame(&mut s, &Frame::Command(Command::Safety { state: Safety::Armed })).unwrap();
    write_frame(&mut s, &Frame::Command(Command::Stop { actor: 4 })).unwrap();
    // A response after the commands: once it is in, so are they (frames arrive in order).
    let pending = client.start_request(Request::BocStats).unwrap();
    let (req, _) = request_id(&mut s);
    answer(&mut s, req, Response::Done);
    pending.wait(None).unwrap();
    assert_eq!(client.commands_received(), 2);
    assert_eq!(client.safety(), Safety::Armed);
    assert_eq!(client.next_command(None), Some(Command::Preload));
    assert_eq!(client.next_command(None), Some(Command::Stop { actor: 4 }));
    assert_eq!(client.next_command(Some(SHORT)), None);
}

#[test]
fn a_batch_of_commands_is_the_casts_behind_the_first_and_ends_before_anything_else() {
    let (client, mut s) = connected();
    let cast = |subject: &str| Command::Deliver {
        delivery: None,
        actor: 4,
        subject: subject.into(),
        sender: None,
        payload: rebeam_proto::Payload::default(),
    };
    let call = Command::Deliver {
        delivery: Some(7),
        actor: 4,
        subject: "c".into(),
        sender: None,
        payload: rebeam_proto::Payload::default(),
    };
    for command in [Command::Preload, cast("a"), cast("b"), call.clone(), cast("d"), cast("e"), cast("f")] {
        write_frame(&mut s, &Frame::Command(command)).unwrap();
    }
    let pending = client.start_request(Request::BocStats).unwrap();
    let (req, _) = request_id(&mut s);
    answer(&mut s, req, Response::Done);
    pending.wait(None).unwrap();
    assert_eq!(client.next_commands(None, 10), [Command::Preload, cast("a"), cast("b")]);
    // The call that ended the batch heads the next one, with the casts behind it, `max` at most.
    assert_eq!(client.next_commands(None, 3), [call, cast("d"), cast("e")]);
    assert_eq!(client.next_command(None), Some(cast("f")));
    assert_eq!(client.next_commands(Some(SHORT), 10), []);
}

#[test]
fn behaviours_queued_together_come_in_one_batch_with_the_casts_among_them() {
    let (client, mut s) = connected();
    let run = |behaviour| Command::RunBehaviour {
        behaviour,
        cowns: vec![1],
        result: 100 + behaviour,
        values: vec![],
        lost: vec![],
        code: rebeam_proto::Payload::default(),
        refused: None,
        gated: false,
    };
    let cast = Command::Deliver {
        delivery: None,
        actor: 4,
        subject: "c".into(),
        sender: None,
        payload: rebeam_proto::Payload::default(),
    };
    for command in [run(1), run(2), cast.clone(), run(3), Command::Surrender { cown: 1 }, run(4)] {
        write_frame(&mut s, &Frame::Command(command)).unwrap();
    }
    let pending = client.start_request(Request::BocStats).unwrap();
    let (req, _) = request_id(&mut s);
    answer(&mut s, req, Response::Done);
    pending.wait(None).unwrap();
    assert_eq!(client.next_commands(None, 10), [run(1), run(2), cast, run(3)]);
    assert_eq!(client.next_commands(None, 10), [Command::Surrender { cown: 1 }, run(4)]);
}

#[test]
fn refusals_of_unawaited_requests_are_kept_for_later() {
    let (client, mut s) = connected();
    client.send_unawaited(Request::Drain { tags: vec![] }).unwrap();
    let (req, _) = request_id(&mut s);
    answer(&mut s, req, Response::Refused(ErrorInfo::new(ErrorKind::Safety, "not armed")));
    // A later awaited request's answer proves the refusal was read first.
    let pending = client.start_request(Request::BocStats).unwrap();
    let (later, _) = request_id(&mut s);
    answer(&mut s, later, Response::Done);
    pending.wait(None).unwrap();
    let refused = client.take_refused();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].message, "not armed");
    assert!(client.take_refused().is_empty());
}

#[test]
fn a_quiet_request_keeps_only_its_refusal_and_nothing_when_accepted() {
    let (client, mut s) = connected();
    let quiet = |b| Request::Schedule {
        behaviour: b,
        cowns: vec![],
        result: b + 100,
        code: Default::default(),
        at_main: false,
        gated: false,
        quiet: true,
    };
    client.send_quiet(quiet(1)).unwrap();
    client.send_quiet(quiet(2)).unwrap();
    let (_accepted, _) = request_id(&mut s);
    let (refused, _) = request_id(&mut s);
    answer(&mut s, refused, Response::Refused(ErrorInfo::new(ErrorKind::BadRequest, "unknown cown")));
    let pending = client.start_request(Request::BocStats).unwrap();
    let (later, _) = request_id(&mut s);
    answer(&mut s, later, Response::Done);
    pending.wait(None).unwrap();
    let refused = client.take_refused();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].message, "unknown cown");
    assert!(lock(&client.shared.unawaited).is_empty() && lock(&client.shared.pending).is_empty());
}

#[test]
fn an_event_tried_now_is_sent_while_the_socket_has_room_and_given_back_once_it_has_not() {
    let (client, mut s) = connected();
    let done = |behaviour| rebeam_proto::Event::BehaviourDone { behaviour };
    // The fake governor reads nothing yet: the socket fills, and a try never blocks on it.
    let mut sent = 0;
    let unsent = loop {
        match client.try_send_event(done(sent)).unwrap() {
            None => sent += 1,
            Some(event) => break event,
        }
        assert!(sent < 10_000_000, "the socket never filled");
    };
    assert_eq!(unsent, done(sent));
    assert!(sent > 0);
    for expected in 0..sent {
        assert_eq!(read(&mut s), Frame::Event(done(expected)));
    }
    // Another thread writing: given back at once rather than waiting for it.
    let writing = lock(&client.shared.writer);
    assert_eq!(client.try_send_event(done(1)).unwrap(), Some(done(1)));
    drop(writing);
    assert_eq!(client.try_send_event(done(2)).unwrap(), None);
    assert_eq!(read(&mut s), Frame::Event(done(2)));
}

#[test]
fn the_governor_leaving_wakes_waiters_and_ends_the_command_queue() {
    let (client, mut s) = connected();
    let pending = client.start_request(Request::BocStats).unwrap();
    request_id(&mut s);
    drop(s);
    assert!(matches!(pending.wait(None), Err(ClientError::Gone)));
    assert_eq!(client.next_command(None), Some(Command::Shutdown { code: -1 }));
    assert!(client.closed());
    assert_eq!(client.next_command(Some(SHORT)), Some(Command::Shutdown { code: -1 }));
    assert!(matches!(client.request(Request::BocStats, None), Err(ClientError::Closed)));
}

#[test]
fn a_malformed_frame_from_the_governor_closes_the_connection() {
    let (client, mut s) = connected();
    use std::io::Write;
    s.write_all(&[4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).unwrap();
    assert_eq!(client.next_command(None), Some(Command::Shutdown { code: -1 }));
    assert!(client.closed());
}
