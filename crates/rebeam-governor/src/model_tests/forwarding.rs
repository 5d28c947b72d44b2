//! The forward path: the payload of a `call` or `cast` reaches the actor's worker as the very
//! bytes the governor read from the caller's socket (a slice of that read buffer), never
//! decoded and never copied. Checked by address: the outgoing pieces point into the incoming
//! buffer. Frames the listener reads arrive routed (`Input::Hot`), as do the ones tests build
//! in memory (`Input::Frame`, turned into routed frames by the router); both are checked.

use bytes::Bytes;
use rebeam_proto::{
    decode_frame, decode_inbound, encode, ChildCode, ChildSpec, Command, Event, Frame, Gating, Inbound, Outcome,
    Payload, Request, Response, Routed, Status, Target, HEADER_BYTES,
};

use super::fake::FakeOs;
use super::regressions::{connect, router};
use crate::outbox::Drain;
use crate::router::{Input, ProcIdx, Router};
use crate::Program;

/// A router with its main process and one worker connected, and an actor named `echo` started
/// on the worker; the worker's outbox, emptied.
fn with_actor(os: &FakeOs) -> (Router, ProcIdx, Drain) {
    let (router, main, _main_conn, worker_conn) = with_actor_and_caller(os);
    (router, main, worker_conn)
}

/// As [`with_actor`], with the main process's outbox too.
pub(super) fn with_actor_and_caller(os: &FakeOs) -> (Router, ProcIdx, Drain, Drain) {
    let script = Program::Script { script: "/nonexistent/main.py".into(), argv0: "main.py".into(), args: vec![] };
    let mut router = router(os, script);
    let main = router.main;
    let worker = router.procs.find(|p| p.role == rebeam_proto::Role::Worker).expect("one worker");
    let main_conn = connect(&mut router, main, 1 << 20);
    let mut worker_conn = connect(&mut router, worker, 1 << 20);
    let spec = ChildSpec {
        name: Some("echo".into()),
        label: "Echo".into(),
        restart: rebeam_proto::Restart::Temporary,
        shutdown_ms: None,
        code: ChildCode::Actor { class_name: "Echo".into(), instance: Payload::default() },
        group: None,
        node: Default::default(),
    };
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: Request::Spawn { child: spec.into() } }));
    let actor = router.actors.on(worker).next().expect("the actor is placed on the worker");
    router.handle(Input::Frame(worker, Frame::Event(Event::Started { actor, result: Ok(Gating::default()) })));
    while worker_conn.try_recv().is_some() {}
    (router, main, main_conn, worker_conn)
}

/// `frame` as the listener reads it: routed from one read buffer, returned too.
fn routed_as_read(frame: Frame) -> (Bytes, Routed) {
    let wire = Bytes::from(encode(&frame).expect("encodes"));
    let Inbound::Hot(hot) = decode_inbound(wire.slice(HEADER_BYTES..)).expect("decodes") else {
        panic!("not a hot frame: {frame:?}")
    };
    (wire, hot)
}

/// The answer to request `req` among what `conn` was sent, and its payload pieces.
fn answer_to(req: u64, conn: &mut Drain) -> (Vec<Bytes>, Response) {
    while let Some(encoded) = conn.try_recv() {
        if let Ok(Frame::Response { req: r, body }) = rebeam_proto::decode_body(&encoded.to_vec()[HEADER_BYTES..]) {
            if r == req {
                return (encoded.pieces().to_vec(), body);
            }
        }
    }
    panic!("no answer to request {req}")
}

/// `body` as the listener hands it to the router: decoded from one read buffer, returned too.
fn as_read(req: u64, body: Request) -> (Bytes, Frame) {
    let wire = Bytes::from(encode(&Frame::Request { req, body }).expect("encodes"));
    let frame = decode_frame(wire.slice(HEADER_BYTES..)).expect("decodes");
    (wire, frame)
}

/// Every piece the worker was sent next, with the frame they belong to.
fn next_delivery(drain: &mut Drain) -> (Vec<Bytes>, Command) {
    let encoded = drain.try_recv().expect("the worker was sent the delivery");
    let Ok(Frame::Command(command)) = rebeam_proto::decode_body(&encoded.to_vec()[HEADER_BYTES..]) else {
        panic!("the worker was sent something else than a command");
    };
    (encoded.pieces().to_vec(), command)
}

/// True if `piece` lies inside `buffer`'s memory (shares it, not a copy of it).
fn inside(piece: &Bytes, buffer: &Bytes) -> bool {
    let range = buffer.as_ptr_range();
    !piece.is_empty() && range.start <= piece.as_ptr() && piece.as_ptr_range().end <= range.end
}

#[test]
fn a_calls_payload_is_forwarded_as_the_bytes_read_for_it() {
    let os = FakeOs::default();
    let (mut router, main, mut worker) = with_actor(&os);
    let payload = Payload { data: vec![0x80, 5, 1, 2].into(), buffers: vec![vec![7; 16].into()] };
    let call = Request::Call {
        target: Target::Name("echo".into()),
        subject: "compute".into(),
        sender: None,
        payload: payload.clone(),
        timeout_ms: 1000,
    };
    let (wire, frame) = as_read(2, call);
    let Frame::Request { body: Request::Call { payload: read, .. }, .. } = &frame else { unreachable!() };
    let (data_at, buffer_at) = (read.data.as_ptr(), read.buffers[0].as_ptr());
    router.handle(Input::Frame(main, frame));
    let (pieces, command) = next_delivery(&mut worker);
    let Command::Deliver { payload: delivered, subject, .. } = command else { panic!("not a delivery: {command:?}") };
    assert_eq!((delivered, subject.as_str()), (payload, "compute"));
    assert_eq!(pieces.len(), 2);
    assert_eq!((pieces[0].as_ptr(), pieces[1].as_ptr()), (data_at, buffer_at), "the payload was copied");
    assert!(pieces.iter().all(|p| inside(p, &wire)), "the payload does not share the read buffer");
}

#[test]
fn a_casts_payload_is_forwarded_as_the_bytes_read_for_it() {
    let os = FakeOs::default();
    let (mut router, main, mut worker) = with_actor(&os);
    let payload = Payload { data: vec![0x80, 5, 9].into(), buffers: vec![] };
    let cast = Request::Cast { target: Target::Name("echo".into()), subject: "note".into(), sender: None, payload };
    let (wire, frame) = as_read(2, cast);
    router.handle(Input::Frame(main, frame));
    let (pieces, command) = next_delivery(&mut worker);
    assert!(matches!(command, Command::Deliver { .. }), "not a delivery: {command:?}");
    assert_eq!(pieces.len(), 1);
    assert!(inside(&pieces[0], &wire), "the payload was copied");
}

#[test]
fn a_routed_call_and_its_reply_are_forwarded_as_the_bytes_read_for_them() {
    let os = FakeOs::default();
    let (mut router, main, mut main_conn, mut worker_conn) = with_actor_and_caller(&os);
    let worker = router.procs.find(|p| p.role == rebeam_proto::Role::Worker).expect("one worker");
    let payload = Payload { data: vec![0x80, 5, 1, 2].into(), buffers: vec![vec![7; 16].into()] };
    let call = Request::Call {
        target: Target::Name("echo".into()),
        subject: "compute".into(),
        sender: None,
        payload: payload.clone(),
        timeout_ms: 1000,
    };
    let (wire, hot) = routed_as_read(Frame::Request { req: 2, body: call });
    let read_at: Vec<_> = hot.pieces().iter().map(|p| p.as_ptr()).collect();
    router.handle(Input::Hot(main, hot));
    let (pieces, command) = next_delivery(&mut worker_conn);
    assert_eq!(pieces.iter().map(|p| p.as_ptr()).collect::<Vec<_>>(), read_at, "the call's payload was copied");
    assert!(pieces.iter().all(|p| inside(p, &wire)), "the call's payload does not share the read buffer");
    let Command::Deliver { delivery: Some(delivery), payload: delivered, .. } = command else {
        panic!("not a call's delivery: {command:?}")
    };
    assert_eq!(delivered, payload);

    let answer = Payload { data: vec![0x80, 5, 3].into(), buffers: vec![vec![8; 16].into()] };
    let outcome = Outcome::Reply { status: Status::Ok, payload: answer.clone() };
    let (reply_wire, hot) = routed_as_read(Frame::Event(Event::Replied { delivery, outcome }));
    let read_at: Vec<_> = hot.pieces().iter().map(|p| p.as_ptr()).collect();
    router.handle(Input::Hot(worker, hot));
    let (pieces, body) = answer_to(2, &mut main_conn);
    assert_eq!(body, Response::Call(Outcome::Reply { status: Status::Ok, payload: answer }));
    assert_eq!(pieces.iter().map(|p| p.as_ptr()).collect::<Vec<_>>(), read_at, "the reply's payload was copied");
    assert!(pieces.iter().all(|p| inside(p, &reply_wire)), "the reply does not share the read buffer");
}

#[test]
fn a_routed_cast_is_forwarded_as_the_bytes_read_for_it_and_answered() {
    let os = FakeOs::default();
    let (mut router, main, mut main_conn, mut worker_conn) = with_actor_and_caller(&os);
    let payload = Payload { data: vec![0x80, 5, 9].into(), buffers: vec![vec![6; 8].into()] };
    let cast = Request::Cast { target: Target::Name("echo".into()), subject: "note".into(), sender: None, payload };
    let (wire, hot) = routed_as_read(Frame::Request { req: 3, body: cast });
    let read_at: Vec<_> = hot.pieces().iter().map(|p| p.as_ptr()).collect();
    router.handle(Input::Hot(main, hot));
    let (pieces, command) = next_delivery(&mut worker_conn);
    assert!(matches!(command, Command::Deliver { delivery: None, .. }), "not a cast's delivery: {command:?}");
    assert_eq!(pieces.iter().map(|p| p.as_ptr()).collect::<Vec<_>>(), read_at, "the cast's payload was copied");
    assert!(pieces.iter().all(|p| inside(p, &wire)), "the cast's payload does not share the read buffer");
    assert_eq!(answer_to(3, &mut main_conn).1, Response::Cast { delivered: true });
}
