//! Calls, casts and replies that lend shared-memory pieces (`lent.rs`): their fds leave with
//! the delivery (a reply's with the caller's answer), and close wherever the message is
//! refused. An fd's fate is checked with a pipe:
//! the lent fd is its write end, so the read end says whether it is still open somewhere.

use std::io::Read;
use std::os::fd::OwnedFd;

use bytes::Bytes;
use rebeam_proto::{
    decode_body, decode_inbound, Command, ErrorKind, Event, Frame, Inbound, Kind, LentPiece, Outcome, Payload, Request,
    Response, Routed, Status, Target, HEADER_BYTES,
};

use super::fake::FakeOs;
use super::forwarding::with_actor_and_caller;
use crate::outbox::Drain;
use crate::router::Input;

/// A call (or a cast) to `target` lending its one buffer, as the listener reads it.
fn lent(target: &str, call: bool) -> Routed {
    let payload = Payload { data: vec![0x80, 5].into(), buffers: vec![Bytes::new()] };
    let (target, subject, sender) = (Target::Name(target.into()), "take".to_string(), None);
    let body = match call {
        true => Request::Call { target, subject, sender, payload, timeout_ms: 1000 },
        false => Request::Cast { target, subject, sender, payload },
    };
    let hot = Routed::from_frame(Frame::Request { req: 7, body }).expect("hot");
    let hot = hot.lend(&[LentPiece { piece: 1, segment_len: 8192, len: 100, slot: 0 }]).expect("lends");
    let wire = Bytes::from(hot.encode().expect("encodes").to_vec());
    match decode_inbound(wire.slice(HEADER_BYTES..)).expect("decodes") {
        Inbound::Hot(hot) => hot,
        Inbound::Frame(f) => panic!("not hot: {f:?}"),
    }
}

/// An fd to lend, and the end that tells whether it is still open.
fn watched() -> (OwnedFd, std::io::PipeReader) {
    let (read, write) = std::io::pipe().expect("a pipe");
    (write.into(), read)
}

/// True once every copy of the watched fd is closed (its pipe reads as ended); false while one
/// is open (nothing was written, so the read would block).
fn closed(mut read: std::io::PipeReader, held: Vec<OwnedFd>) -> bool {
    drop(held);
    rustix::io::ioctl_fionbio(&read, true).expect("non-blocking");
    let mut byte = [0u8; 1];
    match read.read(&mut byte) {
        Ok(n) => n == 0,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("reading the pipe: {e}"),
    }
}

/// The next answer to request 7 among what `conn` was sent (past its Welcome and the like).
fn answer(conn: &mut Drain) -> Response {
    while let Some(encoded) = conn.try_recv() {
        if let Ok(Frame::Response { req: 7, body }) = decode_body(&encoded.to_vec()[HEADER_BYTES..]) {
            return body;
        }
    }
    panic!("no answer to request 7")
}

#[test]
fn a_lent_calls_fds_leave_with_its_delivery() {
    let os = FakeOs::default();
    let (mut router, main, _main_conn, mut worker_conn) = with_actor_and_caller(&os);
    let (fd, read) = watched();
    router.handle(Input::Lent(main, lent("echo", true), vec![fd]));
    let out = worker_conn.try_recv_with_fds().expect("the delivery");
    assert_eq!(out.fds.len(), 1, "the delivery carries the lent fd");
    let Ok(Frame::Command(Command::Deliver { payload, .. })) = decode_body(&out.bytes.to_vec()[HEADER_BYTES..]) else {
        panic!("not a delivery")
    };
    assert_eq!(payload.buffers.len(), 2, "the lent piece and the loan table travel as they came");
    let routed = match decode_inbound(Bytes::from(out.bytes.to_vec()).slice(HEADER_BYTES..)).expect("decodes") {
        Inbound::Hot(hot) => hot,
        Inbound::Frame(f) => panic!("not hot: {f:?}"),
    };
    assert_eq!(routed.lent(), 1, "the delivery lends what the call lent");
    assert!(!closed(read.try_clone().expect("a clone"), Vec::new()), "the governor closed the fd it forwards");
    assert!(closed(read, out.fds), "the governor kept a copy of a forwarded fd");
}

#[test]
fn a_lent_message_with_the_wrong_fds_is_refused_and_they_close() {
    let os = FakeOs::default();
    let (mut router, main, mut main_conn, mut worker_conn) = with_actor_and_caller(&os);
    let (a, read_a) = watched();
    let (b, read_b) = watched();
    router.handle(Input::Lent(main, lent("echo", true), vec![a, b]));
    let Response::Call(Outcome::Failed(info)) = answer(&mut main_conn) else { panic!("the call was not refused") };
    assert_eq!(info.kind, ErrorKind::BadRequest, "{info:?}");
    assert!(info.message.contains("1 shared-memory piece(s) came with 2 fd(s)"), "{}", info.message);
    router.handle(Input::Hot(main, lent("echo", false)));
    assert_eq!(answer(&mut main_conn), Response::Cast { delivered: false });
    assert!(worker_conn.try_recv().is_none(), "nothing was delivered");
    assert!(closed(read_a, Vec::new()) && closed(read_b, Vec::new()), "a refused message's fds stay open");
}

#[test]
fn a_lent_message_that_finds_no_actor_closes_its_fds() {
    let os = FakeOs::default();
    let (mut router, main, mut main_conn, _worker_conn) = with_actor_and_caller(&os);
    let (call_fd, read_call) = watched();
    router.handle(Input::Lent(main, lent("nobody", true), vec![call_fd]));
    assert!(matches!(answer(&mut main_conn), Response::Call(Outcome::Failed(i)) if i.kind == ErrorKind::NoProcess));
    let (cast_fd, read_cast) = watched();
    router.handle(Input::Lent(main, lent("nobody", false), vec![cast_fd]));
    assert_eq!(answer(&mut main_conn), Response::Cast { delivered: false });
    assert!(closed(read_call, Vec::new()) && closed(read_cast, Vec::new()));
}

/// The delivery the worker got for a call (as it reads it, with the caller's pid), and a reply
/// to it lending its one buffer, as the listener reads that.
fn delivered_and_lent_reply(worker_conn: &mut Drain) -> (Routed, Routed) {
    let out = worker_conn.try_recv().expect("the delivery");
    let Inbound::Hot(delivery) = decode_inbound(Bytes::from(out.to_vec()).slice(HEADER_BYTES..)).expect("decodes")
    else {
        panic!("not hot")
    };
    let payload = Payload { data: vec![0x80, 5].into(), buffers: vec![Bytes::new()] };
    let outcome = Outcome::Reply { status: Status::Ok, payload };
    let replied = Frame::Event(Event::Replied { delivery: delivery.delivery().expect("a call's"), outcome });
    let hot = Routed::from_frame(replied).expect("hot");
    let hot = hot.lend(&[LentPiece { piece: 1, segment_len: 8192, len: 100, slot: 0 }]).expect("lends");
    let wire = Bytes::from(hot.encode().expect("encodes").to_vec());
    let Inbound::Hot(reply) = decode_inbound(wire.slice(HEADER_BYTES..)).expect("decodes") else { panic!("not hot") };
    (delivery, reply)
}

#[test]
fn a_delivered_call_names_its_callers_pid_and_a_lent_replys_fds_leave_with_the_answer() {
    let os = FakeOs::default();
    let (mut router, main, mut main_conn, mut worker_conn) = with_actor_and_caller(&os);
    let worker = router.procs.find(|p| p.role == rebeam_proto::Role::Worker).expect("one worker");
    router.handle(Input::Lent(main, lent("echo", true), vec![watched().0]));
    let (delivery, reply) = delivered_and_lent_reply(&mut worker_conn);
    assert_eq!(delivery.caller_pid(), Some(router.procs[main].pid), "the reply may lend to the caller's process");
    let (fd, read) = watched();
    router.handle(Input::Lent(worker, reply, vec![fd]));
    let out = loop {
        let out = main_conn.try_recv_with_fds().expect("the answer");
        if !out.fds.is_empty() {
            break out;
        }
    };
    let Inbound::Hot(answer) = decode_inbound(Bytes::from(out.bytes.to_vec()).slice(HEADER_BYTES..)).expect("decodes")
    else {
        panic!("not hot")
    };
    assert_eq!(
        (answer.kind(), answer.request(), answer.lent()),
        (Kind::CallReply, 7, 1),
        "it lends what the reply lent"
    );
    assert!(!closed(read.try_clone().expect("a clone"), Vec::new()), "the governor closed the fd it forwards");
    assert!(closed(read, out.fds), "the governor kept a copy of a forwarded fd");
}

#[test]
fn a_lent_reply_with_the_wrong_fds_fails_its_call_and_they_close() {
    let os = FakeOs::default();
    let (mut router, main, mut main_conn, mut worker_conn) = with_actor_and_caller(&os);
    let worker = router.procs.find(|p| p.role == rebeam_proto::Role::Worker).expect("one worker");
    router.handle(Input::Hot(main, Routed::from_frame(plain_call()).expect("hot")));
    let (_, reply) = delivered_and_lent_reply(&mut worker_conn);
    let ((a, read_a), (b, read_b)) = (watched(), watched());
    router.handle(Input::Lent(worker, reply, vec![a, b]));
    let Response::Call(Outcome::Failed(info)) = answer(&mut main_conn) else { panic!("the call was not failed") };
    assert_eq!(info.kind, ErrorKind::BadRequest, "{info:?}");
    assert!(closed(read_a, Vec::new()) && closed(read_b, Vec::new()), "a refused reply's fds stay open");
}

fn plain_call() -> Frame {
    let payload = Payload { data: vec![0x80, 5].into(), buffers: vec![] };
    let (target, subject) = (Target::Name("echo".into()), "take".to_string());
    Frame::Request { req: 7, body: Request::Call { target, subject, sender: None, payload, timeout_ms: 1000 } }
}
