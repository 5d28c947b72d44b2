//! Direct channels handed out by a router on the fake OS, with real rings: the test plays both
//! the asking main process and the fake worker hosting the actor.

use std::time::Duration;

use rebeam_proto::{
    decode_body, ChannelGrant, ChildCode, ChildSpec, Command, ErrorKind, Event, Frame, Gating, Payload, Request,
    Response, Restart, Role, Route, Target, CHANNEL_FDS, HEADER_BYTES,
};
use rebeam_shm::{ChannelFds, PeerWatch, Receiver, Sender};

use super::fake::FakeOs;
use super::regressions::{connect, router_with};
use crate::outbox::Drain;
use crate::router::{Input, ProcIdx, Router};
use crate::{Program, SafetyMode};

/// Every frame queued for a fake connection, decoded, with the fds that go with it.
fn frames(conn: &mut Drain) -> Vec<(Frame, Vec<std::os::fd::OwnedFd>)> {
    std::iter::from_fn(|| conn.try_recv_with_fds())
        .map(|out| (decode_body(&out.bytes.to_vec()[HEADER_BYTES..]).expect("decodes"), out.fds))
        .collect()
}

struct Run {
    os: FakeOs,
    router: Router,
    main: ProcIdx,
    worker: ProcIdx,
    main_conn: Drain,
    worker_conn: Drain,
}

/// A run whose one worker hosts actor "counter", started and declaring `gating`.
fn run(gating: Gating) -> Run {
    run_with(gating, SafetyMode::Marked)
}

fn run_with(gating: Gating, safety: SafetyMode) -> Run {
    let os = FakeOs::default();
    os.world().channels = true;
    let argv0 = std::ffi::OsString::from("main.py");
    let program = Program::Script { script: "/nonexistent/main.py".into(), argv0, args: vec![] };
    let mut router = router_with(&os, program, safety);
    let main = router.main;
    let worker = router.procs.find(|p| p.role == Role::Worker).expect("one worker");
    let main_conn = connect(&mut router, main, 1 << 20);
    let worker_conn = connect(&mut router, worker, 1 << 20);
    let spec = ChildSpec {
        name: Some("counter".into()),
        label: "'counter'".into(),
        restart: Restart::Temporary,
        shutdown_ms: None,
        code: ChildCode::Actor { class_name: "Counter".into(), instance: Payload::default() },
        group: None,
        node: Default::default(),
    };
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: Request::Spawn { child: spec.into() } }));
    let actor = router.actors.on(worker).next().expect("placed on the worker");
    router.handle(Input::Frame(worker, Frame::Event(Event::Started { actor, result: Ok(gating) })));
    let mut run = Run { os, router, main, worker, main_conn, worker_conn };
    frames(&mut run.main_conn);
    frames(&mut run.worker_conn);
    run
}

fn ask_route(router: &mut Router, from: ProcIdx, req: u64, target: Target) {
    router.handle(Input::Frame(from, Frame::Request { req, body: Request::Route { target } }));
}

type Fds = Vec<std::os::fd::OwnedFd>;

/// The route answering request `req` among `frames`, and the fds that came with it.
fn route_answer(frames: Vec<(Frame, Fds)>, req: u64) -> (Result<Route, ErrorKind>, Fds) {
    for (frame, fds) in frames {
        if let Frame::Response { req: r, body: Response::Route(route) } = frame {
            if r == req {
                return (route.map_err(|e| e.kind), fds);
            }
        }
    }
    panic!("request {req} was not answered");
}

/// Opens one end from its grant and fds, as a client's reader does.
fn open_end(grant: &ChannelGrant, fds: Fds) -> (Sender, Receiver) {
    let mut fds = fds.into_iter();
    let mut take = |len: u64| ChannelFds::from_fds(fds.by_ref().take(3).collect(), len as usize).expect("three fds");
    let (send, recv) = (take(grant.send_len), take(grant.recv_len));
    let peer = PeerWatch::from_pidfd(fds.next().expect("a pidfd")).expect("a pidfd");
    assert_eq!(peer.pid(), grant.peer_pid);
    let sender = Sender::open(send, peer.try_clone().expect("dup")).expect("opens");
    (sender, Receiver::open(recv, peer).expect("opens"))
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn a_route_hands_each_end_its_fds_and_the_rings_connect_them() {
    let gating = Gating { handled: vec!["fire".into()], subjects: vec!["fire".into()], catch_all: false };
    let mut run = run(gating.clone());
    // A cast the old way first: the worker must see it before it learns of the channel.
    let payload = Payload::default();
    let cast = Request::Cast { target: Target::Name("counter".into()), subject: "x".into(), sender: None, payload };
    run.router.handle(Input::Frame(run.main, Frame::Request { req: 2, body: cast }));
    ask_route(&mut run.router, run.main, 3, Target::Name("counter".into()));

    let mut worker_frames = frames(&mut run.worker_conn).into_iter();
    let first = worker_frames.next().expect("the delivery");
    assert!(matches!(first, (Frame::Command(Command::Deliver { .. }), ref fds) if fds.is_empty()), "{first:?}");
    let (worker_grant, worker_fds) = match worker_frames.next() {
        Some((Frame::Command(Command::ChannelOpened(grant)), fds)) => (grant, fds),
        other => panic!("expected the channel after the delivery, got {other:?}"),
    };
    assert_eq!(worker_fds.len(), CHANNEL_FDS);

    let (route, main_fds) = route_answer(frames(&mut run.main_conn), 3);
    let route = route.expect("routed");
    assert_eq!(main_fds.len(), CHANNEL_FDS);
    assert!(route.fresh);
    assert_eq!(route.channel.id, worker_grant.id);
    assert_eq!(route.gating, gating);
    assert_eq!(route.actor.name.as_deref(), Some("counter"));
    assert_eq!(Some(route.actor.id), run.router.actors.on(run.worker).next());

    // Both ways across the rings, as a caller and the fake worker would use them.
    let (mut main_tx, mut main_rx) = open_end(&route.channel, main_fds);
    let (mut worker_tx, mut worker_rx) = open_end(&worker_grant, worker_fds);
    main_tx.send(&[b"call"], WAIT).expect("room");
    assert_eq!(worker_rx.recv(WAIT).expect("a record").to_vec(), b"call");
    worker_tx.send(&[b"reply"], WAIT).expect("room");
    assert_eq!(main_rx.recv(WAIT).expect("a record").to_vec(), b"reply");
}

#[test]
fn a_second_route_over_the_same_pair_names_the_channel_without_fds() {
    let mut run = run(Gating::default());
    ask_route(&mut run.router, run.main, 2, Target::Name("counter".into()));
    let (first, _) = route_answer(frames(&mut run.main_conn), 2);
    let actor = first.expect("routed").actor.id;
    ask_route(&mut run.router, run.main, 3, Target::Actor(actor));
    let (second, fds) = route_answer(frames(&mut run.main_conn), 3);
    let second = second.expect("routed");
    assert!(!second.fresh && fds.is_empty());
    assert_eq!(run.os.world().channels_opened, 1);
    let opened = frames(&mut run.worker_conn);
    assert_eq!(opened.len(), 1, "the worker is told of the channel once: {opened:?}");
}

#[test]
fn a_route_is_refused_for_no_actor_an_actor_in_the_asker_or_no_shared_memory() {
    let mut run = run(Gating::default());
    ask_route(&mut run.router, run.main, 2, Target::Name("nobody".into()));
    assert_eq!(route_answer(frames(&mut run.main_conn), 2).0.err(), Some(ErrorKind::NoProcess));
    ask_route(&mut run.router, run.worker, 3, Target::Name("counter".into()));
    assert_eq!(route_answer(frames(&mut run.worker_conn), 3).0.err(), Some(ErrorKind::BadRequest));
    run.os.world().channels = false;
    ask_route(&mut run.router, run.main, 4, Target::Name("counter".into()));
    let (refused, fds) = route_answer(frames(&mut run.main_conn), 4);
    assert_eq!((refused.err(), fds.len()), (Some(ErrorKind::BadRequest), 0));
    assert!(frames(&mut run.worker_conn).is_empty(), "a refused route opens nothing at the worker");
}

#[test]
fn a_channel_is_forgotten_and_its_peer_told_why_when_its_worker_dies() {
    let mut run = run(Gating::default());
    ask_route(&mut run.router, run.main, 2, Target::Name("counter".into()));
    assert!(route_answer(frames(&mut run.main_conn), 2).0.expect("routed").fresh);
    assert_eq!(run.router.channels.len(), 1);
    let lost = rebeam_proto::ProtoError::Closed;
    run.router.handle(Input::Lost(run.worker, lost));
    run.router.handle(Input::LostGrace(run.worker));
    assert_eq!(run.router.channels.len(), 0);
    let told = frames(&mut run.main_conn).into_iter().find_map(|(f, _)| match f {
        Frame::Command(Command::ChannelClosed { why, .. }) => Some(why),
        _ => None,
    });
    let why = told.expect("the peer is told its channel closed");
    assert!(why.starts_with("worker 1 (pid ") && why.contains(" died: "), "{why}");
}

#[test]
fn under_require_armed_a_route_marks_every_subject_gated() {
    let mut run = run_with(Gating::default(), SafetyMode::RequireArmed);
    ask_route(&mut run.router, run.main, 2, Target::Name("counter".into()));
    let g = route_answer(frames(&mut run.main_conn), 2).0.expect("routed").gating;
    assert!(rebeam_core::gate::marks(&g.subjects, g.catch_all, &g.handled, "any subject at all"), "{g:?}");
}

/// A direct call's reply sent the governor's way, for request `req` on `channel`.
fn direct_reply(channel: u64, req: u64) -> rebeam_proto::Routed {
    let outcome = rebeam_proto::Outcome::Reply { status: rebeam_proto::Status::Ok, payload: Payload::default() };
    let replied = Frame::Event(Event::Replied { delivery: 0, outcome });
    rebeam_proto::Routed::from_frame(replied).expect("hot").into_direct_reply(channel, req)
}

#[test]
fn a_direct_reply_the_governors_way_answers_at_its_channels_other_end_only() {
    let mut run = run(Gating::default());
    ask_route(&mut run.router, run.main, 3, Target::Name("counter".into()));
    frames(&mut run.main_conn);
    frames(&mut run.worker_conn);
    let (channel, other) = run.router.channels.of(run.worker).pop().expect("the route's channel");
    assert_eq!(other, run.main);
    run.router.handle(Input::Hot(run.worker, direct_reply(channel, 42)));
    let answers: Vec<Frame> = frames(&mut run.main_conn).into_iter().map(|(f, _)| f).collect();
    assert!(
        matches!(
            answers.as_slice(),
            [Frame::Response { req: 42, body: Response::Call(rebeam_proto::Outcome::Reply { .. }) }]
        ),
        "{answers:?}"
    );
    // Only the replier's own channels: the main process answers nothing on the worker's behalf.
    run.router.handle(Input::Hot(run.main, direct_reply(channel + 1000, 43)));
    run.router.handle(Input::Hot(run.worker, direct_reply(channel + 1000, 44)));
    assert!(frames(&mut run.main_conn).is_empty() && frames(&mut run.worker_conn).is_empty());
}
