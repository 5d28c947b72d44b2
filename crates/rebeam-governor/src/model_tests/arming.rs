//! One arming authority on a router with the fake OS: the authority's changes leave through
//! the seam, a follower arms and disarms on its authority's word with the local ladder, and
//! `arm` on a follower's control socket is refused, naming the authority (see node.rs).

use bytes::Bytes;
use rebeam_proto::{
    ChildCode, ChildSpec, ControlRequest, ControlResponse, ErrorKind, Event, Frame, Gating, IntoEncoded, Outcome,
    Payload, Request, Response, Restart, Safety, Target, HEADER_BYTES,
};
use tokio::sync::{mpsc, oneshot};

use super::fake::FakeOs;
use super::regressions::{connect, router};
use crate::control::Peer;
use crate::node::{Authority, Follow, Link, NodeIn, NodeOut};
use crate::router::{Input, Router};
use crate::Program;

/// A pid no process of the run has, with pid 1 above it: the host at its terminal.
const HOST_PID: u32 = 3_999_999;

fn node_router(os: &FakeOs) -> (Router, mpsc::UnboundedReceiver<NodeOut>) {
    let argv0 = std::ffi::OsString::from("main.py");
    let mut router = router(os, Program::Script { script: "/nonexistent/main.py".into(), argv0, args: vec![] });
    let (out, rx) = mpsc::unbounded_channel();
    router.node = Some(Link::detached(out));
    (router, rx)
}

fn host(router: &mut Router, request: ControlRequest) -> ControlResponse {
    let peer = Peer { pid: Some(HOST_PID), ancestry: Ok(vec![HOST_PID, 1]) };
    let (reply, mut answer) = oneshot::channel();
    router.handle(Input::Control(request, peer, reply));
    answer.try_recv().expect("a control request is answered within its input")
}

fn refusal(response: ControlResponse) -> Option<String> {
    match response {
        ControlResponse::Refused(refusal) => Some(refusal.message),
        _ => None,
    }
}

fn sent_states(out: &mut mpsc::UnboundedReceiver<NodeOut>) -> Vec<Safety> {
    std::iter::from_fn(|| out.try_recv().ok())
        .filter_map(|o| match o {
            NodeOut::Safety { state } => Some(state),
            _ => None,
        })
        .collect()
}

#[test]
fn the_authority_arms_here_and_tells_every_change() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    router.handle(Input::Node(NodeIn::Authority(Authority::Here)));
    assert_eq!(sent_states(&mut out), [Safety::Disarmed], "its state at once");
    assert_eq!(refusal(host(&mut router, ControlRequest::Arm)), None);
    assert_eq!(sent_states(&mut out), [Safety::Armed]);
    router.handle(Input::Node(NodeIn::Follow(Follow::Disarm)));
    assert_eq!(router.safety_state(), Safety::Armed, "the authority follows nobody");
    assert_eq!(refusal(host(&mut router, ControlRequest::Disarm)), None);
    assert_eq!(sent_states(&mut out), [Safety::Disarming, Safety::Disarmed]);
}

#[test]
fn a_follower_refuses_arm_naming_its_authority_and_follows_it() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let unknown = refusal(host(&mut router, ControlRequest::Arm)).expect("refused before any authority is heard");
    assert!(unknown.contains("--authority"), "{unknown}");
    router.handle(Input::Node(NodeIn::Authority(Authority::Elsewhere(Some("a".into())))));
    let named = refusal(host(&mut router, ControlRequest::Arm)).expect("a follower never arms itself");
    assert!(named.contains("node a is this system's arming authority"), "{named}");
    assert_eq!(router.safety_state(), Safety::Disarmed);
    router.handle(Input::Node(NodeIn::Follow(Follow::Arm)));
    assert_eq!(router.safety_state(), Safety::Armed);
    assert!(sent_states(&mut out).is_empty(), "a follower's changes are its own");
    // Stopping is always allowed here.
    assert_eq!(refusal(host(&mut router, ControlRequest::Disarm)), None);
    assert_eq!(router.safety_state(), Safety::Disarmed);
    assert_eq!(refusal(host(&mut router, ControlRequest::ForceDisarm)), None);
}

#[test]
fn the_authority_s_disarm_stops_gated_work_here_from_another_node_mid_flight() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let (main, worker) = (router.main, router.procs.find(|p| p.role == rebeam_proto::Role::Worker).expect("a worker"));
    let _main_conn = connect(&mut router, main, 1 << 20);
    let _worker_conn = connect(&mut router, worker, 1 << 20);
    router.handle(Input::Node(NodeIn::Authority(Authority::Elsewhere(Some("a".into())))));
    let spec = ChildSpec {
        name: Some("arm".into()),
        label: "Arm".into(),
        restart: Restart::Temporary,
        shutdown_ms: None,
        code: ChildCode::Actor { class_name: "Arm".into(), instance: Payload::default() },
        group: None,
        node: Default::default(),
    };
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: Request::Spawn { child: spec.into() } }));
    let actor = router.actors.on(worker).next().expect("placed on the worker");
    let gating = Gating { handled: vec!["move".into()], subjects: vec!["move".into()], catch_all: false };
    router.handle(Input::Frame(worker, Frame::Event(Event::Started { actor, result: Ok(gating) })));
    let call = |query: u64| {
        let body = Request::Call {
            target: Target::Name("arm".into()),
            subject: "move".into(),
            sender: None,
            payload: Payload { data: Bytes::from_static(b"\x80\x05K\x02."), buffers: vec![] },
            timeout_ms: 5000,
        };
        let frame = Frame::Request { req: query, body }.into_encoded().expect("encodes").to_vec();
        Input::Node(NodeIn::Call { query, frame: Bytes::from(frame).slice(HEADER_BYTES..) })
    };
    let safety_failure = |out: &mut mpsc::UnboundedReceiver<NodeOut>, query: u64| match out.try_recv() {
        Ok(NodeOut::Answer { query: q, frame }) if q == query => {
            match rebeam_proto::decode_body(&frame[HEADER_BYTES..]).expect("a frame") {
                Frame::Response { body: Response::Call(Outcome::Failed(e)), .. } => Some((e.kind, e.message)),
                _ => None,
            }
        }
        _ => None,
    };
    router.handle(call(10));
    let (kind, _) = safety_failure(&mut out, 10).expect("refused before dispatch while disarmed");
    assert_eq!(kind, ErrorKind::Safety);
    router.handle(Input::Node(NodeIn::Follow(Follow::Arm)));
    router.handle(call(11));
    assert!(out.try_recv().is_err(), "armed: delivered, and not answered yet");
    router.handle(Input::Node(NodeIn::Follow(Follow::Disarm)));
    let (kind, message) = safety_failure(&mut out, 11).expect("the caller on the other node is answered at once");
    assert_eq!(kind, ErrorKind::Safety);
    assert!(message.contains("interrupted"), "{message}");
    assert_eq!(router.safety_state(), Safety::Disarming, "until the worker stops it");
}
