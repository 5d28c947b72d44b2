//! The node seam on a router with the fake OS: calls by name that cross to other nodes, and
//! calls from other nodes served here (see node.rs for the rules).

use bytes::Bytes;
use rebeam_proto::{
    decode_body, ActorId, ChildCode, ChildSpec, Command, ErrorKind, Event, Frame, Gating, IntoEncoded, Outcome,
    Payload, Request, Response, Restart, Status, Target, HEADER_BYTES,
};
use tokio::sync::mpsc;

use super::fake::FakeOs;
use super::regressions::{connect, frames, router};
use crate::node::{CastWindow, Link, NodeIn, NodeOut};
use crate::outbox::Drain;
use crate::router::{Input, ProcIdx, Router};
use crate::Program;

pub(super) fn node_router(os: &FakeOs) -> (Router, mpsc::UnboundedReceiver<NodeOut>) {
    let argv0 = std::ffi::OsString::from("main.py");
    let mut router = router(os, Program::Script { script: "/nonexistent/main.py".into(), argv0, args: vec![] });
    let (out, rx) = mpsc::unbounded_channel();
    router.node = Some(Link::detached(out));
    (router, rx)
}

/// A "counter" actor started on the router's worker: the main process's and the worker's
/// connections, the worker, and the actor.
pub(super) fn with_counter(router: &mut Router) -> (Drain, Drain, ProcIdx, ActorId) {
    let (main, worker) = (router.main, router.procs.find(|p| p.role == rebeam_proto::Role::Worker).expect("a worker"));
    let main_conn = connect(router, main, 1 << 20);
    let worker_conn = connect(router, worker, 1 << 20);
    let spec = ChildSpec {
        name: Some("counter".into()),
        label: "Counter".into(),
        restart: Restart::Temporary,
        shutdown_ms: None,
        code: ChildCode::Actor { class_name: "Counter".into(), instance: Payload::default() },
        group: None,
        node: Default::default(),
    };
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: Request::Spawn { child: spec.into() } }));
    let actor = router.actors.on(worker).next().expect("placed on the worker");
    router.handle(Input::Frame(worker, Frame::Event(Event::Started { actor, result: Ok(Gating::default()) })));
    (main_conn, worker_conn, worker, actor)
}

/// A request as another node's transport hands it in (no length prefix).
pub(super) fn encoded(r: Request) -> Bytes {
    Bytes::from(Frame::Request { req: 0, body: r }.into_encoded().expect("encodes").to_vec()).slice(HEADER_BYTES..)
}

fn call(name: &str, subject: &str) -> Request {
    Request::Call {
        target: Target::Name(name.into()),
        subject: subject.into(),
        sender: Some(99),
        payload: Payload { data: Bytes::from_static(b"\x80\x05K\x02."), buffers: vec![] },
        timeout_ms: 1500,
    }
}

fn reply(data: &'static [u8]) -> Outcome {
    Outcome::Reply { status: Status::Ok, payload: Payload { data: Bytes::from_static(data), buffers: vec![] } }
}

/// The frame of a `NodeOut` (length prefix included), decoded.
pub(super) fn decoded(frame: &[u8]) -> Frame {
    decode_body(&frame[HEADER_BYTES..]).expect("a frame")
}

#[test]
fn a_name_nothing_here_takes_is_asked_of_the_other_nodes_and_answered_back() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    router.handle(Input::Node(NodeIn::Up(vec!["a".into(), "b".into()])));
    router.handle(Input::Frame(main, Frame::Request { req: 7, body: call("far", "add") }));
    let Ok(NodeOut::Call { call: id, name, frame, timeout }) = out.try_recv() else { panic!("no call went out") };
    assert_eq!((name.as_str(), timeout.as_millis()), ("far", 1500));
    match decoded(&frame) {
        Frame::Request { body: Request::Call { sender, subject, target, .. }, .. } => {
            assert_eq!(
                (sender, subject.as_str(), target),
                (None, "add", Target::Name("far".into())),
                "no sender crosses"
            );
        }
        other => panic!("not a call: {other:?}"),
    }
    router.handle(Input::Node(NodeIn::Answer { call: id, outcome: reply(b"far away") }));
    // A late second answer to the same call reaches nobody.
    router.handle(Input::Node(NodeIn::Answer { call: id, outcome: reply(b"again") }));
    router.handle(Input::Frame(
        main,
        Frame::Request { req: 8, body: Request::Route { target: Target::Name("far".into()) } },
    ));
    router.handle(Input::Frame(main, Frame::Request { req: 9, body: Request::Nodes }));
    let answers = frames(&mut conn);
    let calls: Vec<_> = answers.iter().filter(|f| matches!(f, Frame::Response { req: 7, .. })).collect();
    assert_eq!(calls, [&Frame::Response { req: 7, body: Response::Call(reply(b"far away")) }], "{answers:?}");
    assert!(
        answers.iter().any(|f| matches!(f, Frame::Response { req: 8, body: Response::Route(Err(e)) } if e.kind == ErrorKind::BadRequest)),
        "a route to another node's name is refused, so the caller stays on the governor's path: {answers:?}"
    );
    assert!(answers.contains(&Frame::Response { req: 9, body: Response::Nodes(vec!["a".into(), "b".into()]) }));
}

#[test]
fn a_call_from_another_node_is_served_here_or_told_not_here() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let (_main_conn, mut worker_conn, worker, _actor) = with_counter(&mut router);
    router.handle(Input::Node(NodeIn::Call { query: 41, frame: encoded(call("counter", "add")) }));
    let delivery = frames(&mut worker_conn)
        .into_iter()
        .find_map(|f| match f {
            Frame::Command(Command::Deliver { delivery: Some(d), subject, sender, .. }) if subject == "add" => {
                assert_eq!(sender, None, "a remote caller has no actor here");
                Some(d)
            }
            _ => None,
        })
        .expect("the call is delivered to the actor");
    assert!(out.try_recv().is_err(), "nothing goes back before the actor answers");
    router.handle(Input::Frame(worker, Frame::Event(Event::Replied { delivery, outcome: reply(b"3") })));
    match out.try_recv() {
        Ok(NodeOut::Answer { query: 41, frame }) => {
            assert_eq!(decoded(&frame), Frame::Response { req: 41, body: Response::Call(reply(b"3")) });
        }
        other => panic!("expected the answer to query 41: {other:?}"),
    }
    router.handle(Input::Node(NodeIn::Call { query: 42, frame: encoded(call("nobody", "add")) }));
    assert!(matches!(out.try_recv(), Ok(NodeOut::NotHere { query: 42 })), "a name not here");
    // A call from another node is never sent on to the others.
    assert!(out.try_recv().is_err());
    router.handle(Input::Node(NodeIn::Call { query: 43, frame: Bytes::from_static(b"garbage") }));
    match out.try_recv() {
        Ok(NodeOut::Answer { query: 43, frame }) => match decoded(&frame) {
            Frame::Response { body: Response::Call(Outcome::Failed(e)), .. } => {
                assert_eq!(e.kind, ErrorKind::BadRequest)
            }
            other => panic!("{other:?}"),
        },
        other => panic!("a malformed call is answered as such: {other:?}"),
    }
}

/// Found by the model (a call from another node parked for a group member that never got a
/// worker, left unanswered when the shutdown's deadline killed what was left): whatever the run
/// ends with in flight for another node is answered as it ends.
#[test]
fn calls_from_other_nodes_still_in_flight_when_the_shutdown_deadline_passes_are_answered() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let (_main_conn, _worker_conn, _worker, _actor) = with_counter(&mut router);
    router.handle(Input::Node(NodeIn::Call { query: 51, frame: encoded(call("counter", "add")) }));
    router.begin_shutdown(0, "the test ends the run");
    // The worker never answers, nor stops its actor: only the deadline ends the run.
    assert!(out.try_recv().is_err(), "nothing is answered before the run ends");
    router.handle(Input::ShutdownDeadline);
    let answers: Vec<_> = std::iter::from_fn(|| out.try_recv().ok())
        .filter_map(|o| match o {
            NodeOut::Answer { query, frame } => Some((query, decoded(&frame))),
            _ => None,
        })
        .collect();
    match answers.as_slice() {
        [(51, Frame::Response { req: 51, body: Response::Call(Outcome::Failed(e)) })] => {
            assert_eq!(e.kind, ErrorKind::ShuttingDown);
            assert!(e.message.contains("shut down before the call was answered"), "{}", e.message);
        }
        other => panic!("expected one answer to query 51: {other:?}"),
    }
}

fn cast(name: &str) -> Request {
    Request::Cast {
        target: Target::Name(name.into()),
        subject: "push".into(),
        sender: Some(99),
        payload: Payload { data: Bytes::from_static(b"\x80\x05K\x02."), buffers: vec![] },
    }
}

#[test]
fn a_cast_nothing_here_takes_goes_to_the_other_nodes_in_order_and_its_sender_hears_of_it() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    for req in [7, 8] {
        router.handle(Input::Frame(main, Frame::Request { req, body: cast("far") }));
    }
    let mut sent = Vec::new();
    while let Ok(NodeOut::Cast { call, name, frame, .. }) = out.try_recv() {
        assert_eq!(name, "far");
        match decoded(&frame) {
            Frame::Request { body: Request::Cast { sender, .. }, req } => {
                assert_eq!(sender, None, "no sender crosses");
                sent.push((call, req));
            }
            other => panic!("not a cast: {other:?}"),
        }
    }
    assert_eq!(sent.iter().map(|(_, req)| *req).collect::<Vec<_>>(), [7, 8], "handed over in the order sent");
    assert!(frames(&mut conn).iter().all(|f| !matches!(f, Frame::Response { .. })), "nobody answers before the node");
    router.handle(Input::Node(NodeIn::CastAnswer { call: sent[1].0, delivered: false }));
    router.handle(Input::Node(NodeIn::CastAnswer { call: sent[0].0, delivered: true }));
    router.handle(Input::Node(NodeIn::CastAnswer { call: sent[0].0, delivered: false }));
    let answers: Vec<_> = frames(&mut conn).into_iter().filter(|f| matches!(f, Frame::Response { .. })).collect();
    assert_eq!(
        answers,
        [
            Frame::Response { req: 8, body: Response::Cast { delivered: false } },
            Frame::Response { req: 7, body: Response::Cast { delivered: true } },
        ],
        "each cast answered once, as its node said"
    );
}

/// A window that opens for the names it has, once each.
struct Window(std::sync::Mutex<Vec<&'static str>>);

impl CastWindow for Window {
    fn open(&self, name: &str) -> bool {
        let mut names = self.0.lock().expect("not poisoned");
        let found = names.iter().position(|n| *n == name);
        found.map(|at| names.remove(at)).is_some()
    }
}

#[test]
fn a_cast_the_transport_s_window_opens_for_is_answered_sent_at_once_and_its_node_s_word_ignored() {
    let os = FakeOs::default();
    let (mut router, _) = node_router(&os);
    let (tx, mut out) = mpsc::unbounded_channel();
    router.node = Some(Link::detached(tx).with_window(std::sync::Arc::new(Window(std::sync::Mutex::new(vec!["far"])))));
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    for req in [7, 8] {
        router.handle(Input::Frame(main, Frame::Request { req, body: cast("far") }));
    }
    let handed: Vec<_> = std::iter::from_fn(|| out.try_recv().ok())
        .map(|o| match o {
            NodeOut::Cast { call, sent, .. } => (call, sent),
            other => panic!("not a cast: {other:?}"),
        })
        .collect();
    assert_eq!(handed.iter().map(|(_, sent)| *sent).collect::<Vec<_>>(), [true, false], "in order, one window");
    let answers = |conn: &mut Drain| -> Vec<Frame> {
        frames(conn).into_iter().filter(|f| matches!(f, Frame::Response { .. })).collect()
    };
    assert_eq!(answers(&mut conn), [Frame::Response { req: 7, body: Response::Cast { delivered: true } }], "sent");
    router.handle(Input::Node(NodeIn::CastAnswer { call: handed[0].0, delivered: false }));
    router.handle(Input::Node(NodeIn::CastAnswer { call: handed[1].0, delivered: false }));
    assert_eq!(
        answers(&mut conn),
        [Frame::Response { req: 8, body: Response::Cast { delivered: false } }],
        "the sent one's word goes to no one; the other's sender hears it"
    );
}

#[test]
fn a_cast_from_another_node_is_delivered_here_or_told_not_here() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let (_main_conn, mut worker_conn, _worker, _actor) = with_counter(&mut router);
    router.handle(Input::Node(NodeIn::Call { query: 51, frame: encoded(cast("counter")) }));
    let delivered = frames(&mut worker_conn).into_iter().any(|f| {
        matches!(f, Frame::Command(Command::Deliver { delivery: None, ref subject, sender: None, .. }) if subject == "push")
    });
    assert!(delivered, "the cast reaches the actor, with no sender");
    match out.try_recv() {
        Ok(NodeOut::Answer { query: 51, frame }) => {
            assert_eq!(decoded(&frame), Frame::Response { req: 51, body: Response::Cast { delivered: true } });
        }
        other => panic!("expected the answer to query 51: {other:?}"),
    }
    router.handle(Input::Node(NodeIn::Call { query: 52, frame: encoded(cast("nobody")) }));
    assert!(matches!(out.try_recv(), Ok(NodeOut::NotHere { query: 52 })), "a name not here");
    assert!(out.try_recv().is_err(), "a cast from another node is never sent on");
}
