//! `whereis` across nodes on a router with the fake OS (see node.rs's rules).

use rebeam_proto::{ActorRef, Event, Frame, Request, Response};

use super::fake::FakeOs;
use super::nodes::{decoded, encoded, node_router, with_counter};
use super::regressions::{connect, frames};
use crate::node::{NodeIn, NodeOut};
use crate::router::Input;

#[test]
fn whereis_of_a_name_not_here_is_asked_of_the_other_nodes_and_names_the_node_that_has_it() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    let whereis = |name: &str| Request::Whereis { name: name.into() };
    for (req, found) in [(7, true), (8, false)] {
        router.handle(Input::Frame(main, Frame::Request { req, body: whereis("far") }));
        let Ok(NodeOut::Whereis { call, name, frame }) = out.try_recv() else { panic!("no whereis went out") };
        assert_eq!(name, "far");
        assert_eq!(decoded(&frame), Frame::Request { req: 0, body: whereis("far") });
        assert!(!frames(&mut conn).iter().any(|f| matches!(f, Frame::Response { .. })), "no answer before theirs");
        let actor = ActorRef { id: 31, name: Some("far".into()) };
        let found = found.then(|| (actor.clone(), "b".to_string()));
        router.handle(Input::Node(NodeIn::Found { call, found: found.clone() }));
        router.handle(Input::Node(NodeIn::Found { call, found: None }));
        let want = match found {
            Some(_) => Response::WhereisAt { actor, node: "b".into() },
            None => Response::Whereis(None),
        };
        assert_eq!(frames(&mut conn), [Frame::Response { req, body: want }], "answered once");
    }
}

#[test]
fn another_node_s_whereis_is_answered_with_the_actor_here_or_not_here() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let (_main_conn, _worker_conn, _worker, actor) = with_counter(&mut router);
    router.handle(Input::Node(NodeIn::Call { query: 5, frame: encoded(Request::Whereis { name: "counter".into() }) }));
    let Ok(NodeOut::Answer { query: 5, frame }) = out.try_recv() else { panic!("no answer") };
    let want = Response::Whereis(Some(ActorRef { id: actor, name: Some("counter".into()) }));
    assert_eq!(decoded(&frame), Frame::Response { req: 5, body: want });
    router.handle(Input::Node(NodeIn::Call { query: 6, frame: encoded(Request::Whereis { name: "nobody".into() }) }));
    assert!(matches!(out.try_recv(), Ok(NodeOut::NotHere { query: 6 })), "a name not here is not here");
    assert!(out.try_recv().is_err(), "another node's whereis is never sent on");
}

#[test]
fn a_down_notice_from_another_node_names_that_node_and_a_demonitor_takes_the_monitor_off_there() {
    use rebeam_proto::{Command, Exit, Target};
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    let monitor = |target: Target| Request::Monitor { watcher: None, target };
    let by_pid = Target::Name(rebeam_proto::remote::pid_name(12, "c"));
    for (req, target) in [(7, Target::Name("far".into())), (8, by_pid)] {
        router.handle(Input::Frame(main, Frame::Request { req, body: monitor(target) }));
    }
    let mut refs = Vec::new();
    while let Ok(NodeOut::Monitor { monitor, .. }) = out.try_recv() {
        refs.push(monitor);
    }
    let [by_name, by_pid] = refs[..] else { panic!("two monitors went out: {refs:?}") };
    let actor = ActorRef { id: 40, name: Some("far".into()) };
    let down =
        NodeIn::Down { monitor: by_name, actor: Some(actor.clone()), node: Some("b".into()), reason: Exit::Normal };
    router.handle(Input::Node(down));
    // A pid's node is in its name, when the transport could not say (its node was lost).
    let reason = Exit::Killed("node lost: node c".into());
    router.handle(Input::Node(NodeIn::Down { monitor: by_pid, actor: None, node: None, reason: reason.clone() }));
    let downs: Vec<_> = frames(&mut conn)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Command(Command::Down { monitor, actor, node, .. }) => Some((monitor, actor, node)),
            _ => None,
        })
        .collect();
    let pid_actor = ActorRef { id: 12, name: None };
    assert_eq!(downs, [(by_name, actor, Some("b".into())), (by_pid, pid_actor, Some("c".into()))]);
    // A demonitor here goes to the transport, to be taken off the other node.
    router.handle(Input::Frame(main, Frame::Request { req: 9, body: monitor(Target::Name("far".into())) }));
    let Ok(NodeOut::Monitor { monitor: third, .. }) = out.try_recv() else { panic!("no monitor went out") };
    router.handle(Input::Frame(main, Frame::Request { req: 10, body: Request::Demonitor { monitor: third } }));
    assert!(matches!(out.try_recv(), Ok(NodeOut::Demonitor { monitor }) if monitor == third));
    router.handle(Input::Frame(main, Frame::Request { req: 11, body: Request::Demonitor { monitor: third } }));
    assert!(out.try_recv().is_err(), "a monitor is taken off once");
}

#[test]
fn another_node_s_demonitor_takes_its_monitor_off_here() {
    use rebeam_proto::{Command, Target};
    let os = FakeOs::default();
    let (mut router, mut out) = node_router(&os);
    let (_main_conn, _worker_conn, worker, actor) = with_counter(&mut router);
    let set = |query| {
        let body = Request::Monitor { watcher: None, target: Target::Name("counter".into()) };
        Input::Node(NodeIn::Call { query, frame: encoded(body) })
    };
    let mut theirs = Vec::new();
    for query in [21, 22] {
        router.handle(set(query));
        let Ok(NodeOut::Answer { frame, .. }) = out.try_recv() else { panic!("no answer") };
        let Frame::Response { body: Response::Monitored(Ok(monitor)), .. } = decoded(&frame) else { panic!("not set") };
        theirs.push(monitor);
    }
    router.handle(Input::Node(NodeIn::Demonitor { monitor: theirs[0] }));
    // The actor ends: only the monitor still set tells its node.
    let exited = Event::Exited { actor, reason: rebeam_proto::Exit::Normal, taken_up_to: u64::MAX };
    router.handle(Input::Frame(worker, Frame::Event(exited)));
    let downs: Vec<u64> = std::iter::from_fn(|| out.try_recv().ok())
        .filter_map(|o| match o {
            NodeOut::Down { monitor, frame } => {
                assert!(matches!(decoded(&frame), Frame::Command(Command::Down { .. })));
                Some(monitor)
            }
            _ => None,
        })
        .collect();
    assert_eq!(downs, [theirs[1]]);
}
