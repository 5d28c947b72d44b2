//! Monitors and process ids across nodes on a router with the fake OS (see node.rs's rules).

use rebeam_proto::{ActorRef, Command, Event, Exit, Frame, Payload, Request, Response, Target};

use super::fake::FakeOs;
use super::nodes::{decoded, encoded, node_router, with_counter};
use super::regressions::{connect, frames};
use crate::node::{NodeIn, NodeOut};
use crate::router::Input;

#[test]
fn a_monitor_on_a_name_elsewhere_is_asked_of_the_other_nodes_and_fires_when_they_say() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    let monitor = |name: &str| Request::Monitor { watcher: None, target: Target::Name(name.into()) };
    router.handle(Input::Frame(main, Frame::Request { req: 7, body: monitor("far") }));
    let Ok(NodeOut::Monitor { monitor: reference, name, frame }) = out.try_recv() else {
        panic!("no monitor went out")
    };
    assert_eq!(name, "far");
    assert!(matches!(decoded(&frame), Frame::Request { body: Request::Monitor { .. }, .. }));
    let answers = frames(&mut conn);
    assert!(answers.contains(&Frame::Response { req: 7, body: Response::Monitored(Ok(reference)) }), "{answers:?}");
    assert!(!answers.iter().any(|f| matches!(f, Frame::Command(Command::Down { .. }))), "no notice yet");
    let reason = Exit::Killed("node lost: node a was lost".into());
    router.handle(Input::Node(NodeIn::Down { monitor: reference, actor: None, node: None, reason: reason.clone() }));
    router.handle(Input::Node(NodeIn::Down { monitor: reference, actor: None, node: None, reason: Exit::Normal }));
    let downs: Vec<_> =
        frames(&mut conn).into_iter().filter(|f| matches!(f, Frame::Command(Command::Down { .. }))).collect();
    let actor = ActorRef { id: 0, name: Some("far".into()) };
    assert_eq!(
        downs,
        [Frame::Command(Command::Down { monitor: reference, watcher: None, actor, node: None, reason })],
        "one notice, naming the actor as it was named"
    );
    // A demonitor forgets it: a late notice reaches nobody.
    router.handle(Input::Frame(main, Frame::Request { req: 8, body: monitor("far") }));
    let Ok(NodeOut::Monitor { monitor: second, .. }) = out.try_recv() else { panic!("no monitor went out") };
    router.handle(Input::Frame(main, Frame::Request { req: 9, body: Request::Demonitor { monitor: second } }));
    router.handle(Input::Node(NodeIn::Down { monitor: second, actor: None, node: None, reason: Exit::Normal }));
    assert!(!frames(&mut conn).iter().any(|f| matches!(f, Frame::Command(Command::Down { .. }))));
}

#[test]
fn another_node_s_monitor_and_calls_by_pid_reach_the_actor_here() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let (_main_conn, mut worker_conn, worker, actor) = with_counter(&mut router);
    let by_pid = Target::Name(rebeam_proto::remote::pid_name(actor, "here"));
    let cast =
        Request::Cast { target: by_pid.clone(), subject: "push".into(), sender: None, payload: Payload::default() };
    router.handle(Input::Node(NodeIn::Call { query: 61, frame: encoded(cast) }));
    assert!(
        frames(&mut worker_conn)
            .iter()
            .any(|f| matches!(f, Frame::Command(Command::Deliver { subject, .. }) if subject == "push")),
        "a cast by this node's pid reaches its actor"
    );
    match out.try_recv() {
        Ok(NodeOut::Answer { query: 61, frame }) => {
            assert_eq!(decoded(&frame), Frame::Response { req: 61, body: Response::Cast { delivered: true } })
        }
        other => panic!("expected the cast's answer: {other:?}"),
    }
    router.handle(Input::Node(NodeIn::Call {
        query: 62,
        frame: encoded(Request::Monitor { watcher: None, target: by_pid }),
    }));
    let reference = match out.try_recv() {
        Ok(NodeOut::Answer { query: 62, frame }) => match decoded(&frame) {
            Frame::Response { body: Response::Monitored(Ok(m)), .. } => m,
            other => panic!("{other:?}"),
        },
        other => panic!("expected the monitor's answer: {other:?}"),
    };
    let missing = Request::Monitor { watcher: None, target: Target::Name("nobody".into()) };
    router.handle(Input::Node(NodeIn::Call { query: 63, frame: encoded(missing) }));
    assert!(matches!(out.try_recv(), Ok(NodeOut::NotHere { query: 63 })), "a name not here");
    router.handle(Input::Frame(
        worker,
        Frame::Event(Event::Exited { actor, reason: Exit::Normal, taken_up_to: u64::MAX }),
    ));
    let down = std::iter::from_fn(|| out.try_recv().ok()).find_map(|o| match o {
        NodeOut::Down { monitor, frame } => Some((monitor, decoded(&frame))),
        _ => None,
    });
    match down {
        Some((m, Frame::Command(Command::Down { monitor, actor: a, reason: Exit::Normal, .. }))) => {
            assert_eq!((m, monitor, a.id), (reference, reference, actor), "the notice goes to the node that set it");
        }
        other => panic!("expected the actor's end for the other node: {other:?}"),
    }
}
