//! Placement on a named node on a router with the fake OS: `spawn(node=)`, a tree child on
//! another node restarted on one that remains, and children run here for another node's
//! supervisor (see node_placement.rs for the rules).

use rebeam_proto::{
    ActorRef, ChildCode, ChildSpec, Command, ErrorKind, Event, Exit, Frame, Payload, Placement, Request, Response,
    Restart, Strategy, TreeSpec,
};
use tokio::sync::mpsc;

use super::fake::FakeOs;
use super::nodes::{decoded, encoded, with_counter};
use super::regressions::{connect, frames, router};
use crate::node::{Link, NodeIn, NodeOut};
use crate::router::{Input, Router};
use crate::Program;

/// A router that is node "a" of a system whose nodes up are `up`.
fn node_a(os: &FakeOs, up: &[&str]) -> (Router, mpsc::UnboundedReceiver<NodeOut>) {
    let argv0 = std::ffi::OsString::from("main.py");
    let mut router = router(os, Program::Script { script: "/nonexistent/main.py".into(), argv0, args: vec![] });
    let (out, rx) = mpsc::unbounded_channel();
    router.node = Some(Link::named(out, "a"));
    router.handle(Input::Node(NodeIn::Up(up.iter().map(|n| n.to_string()).collect())));
    (router, rx)
}

fn child(name: &str, node: Placement) -> ChildSpec {
    ChildSpec {
        name: Some(name.into()),
        label: "Counter".into(),
        restart: Restart::Permanent,
        shutdown_ms: Some(250),
        code: ChildCode::Actor { class_name: "Counter".into(), instance: Payload::default() },
        group: None,
        node,
    }
}

fn nodes(names: &[&str]) -> Placement {
    Placement::Nodes(names.iter().map(|n| n.to_string()).collect())
}

/// Runs the inputs the router put on its timers (restart turns).
fn run_timers(os: &FakeOs, router: &mut Router) {
    loop {
        let timers = std::mem::take(&mut os.world().timers);
        if timers.is_empty() {
            return;
        }
        for (_, input) in timers {
            router.handle(input);
        }
    }
}

/// The spawn the router sent out: its call number, node, whether supervised, and child.
fn spawn_sent(out: &mut mpsc::UnboundedReceiver<NodeOut>) -> (u64, String, bool, ChildSpec) {
    loop {
        match out.try_recv() {
            Ok(NodeOut::Spawn { call, node, supervised, frame }) => match decoded(&frame) {
                Frame::Request { body: Request::Spawn { child }, .. } => return (call, node, supervised, *child),
                other => panic!("not a spawn: {other:?}"),
            },
            Ok(_) => continue,
            Err(e) => panic!("no spawn went out: {e:?}"),
        }
    }
}

#[test]
fn a_spawn_on_a_named_node_goes_to_it_and_its_answer_or_failure_comes_back_naming_it() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_a(&os, &["a", "b"]);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    let spawn = |req, node| Frame::Request { req, body: Request::Spawn { child: child("far", node).into() } };
    router.handle(Input::Frame(main, spawn(7, nodes(&["b"]))));
    let (call, node, supervised, sent) = spawn_sent(&mut out);
    assert_eq!((node.as_str(), supervised), ("b", false));
    assert_eq!(sent.node, Placement::Here, "read there as placed there: never sent on");
    assert_eq!(sent.name.as_deref(), Some("far"));
    assert!(router.names.resolve("far").is_none(), "its name is the other node's");
    router.handle(Input::Node(NodeIn::Spawned { call, result: Ok(ActorRef { id: 12, name: Some("far".into()) }) }));
    router.handle(Input::Node(NodeIn::Spawned { call, result: Ok(ActorRef { id: 13, name: None }) }));

    router.handle(Input::Frame(main, spawn(8, nodes(&["b"]))));
    let (call, ..) = spawn_sent(&mut out);
    let refused = rebeam_proto::ErrorInfo::new(ErrorKind::StartFailed, "the name 'far' is already registered");
    router.handle(Input::Node(NodeIn::Spawned { call, result: Err(refused) }));

    router.handle(Input::Frame(main, spawn(9, nodes(&["z"]))));
    // This node named: started here, as a plain spawn.
    router.handle(Input::Frame(main, spawn(10, nodes(&["a"]))));
    assert!(router.names.resolve("far").is_some(), "a placement on this node starts it here");
    assert!(out.try_recv().is_err(), "nothing goes out for a node not up, nor for this node");
    // Any node: the first up in name order, this one included.
    router.handle(Input::Frame(main, spawn(11, Placement::Any)));
    assert!(out.try_recv().is_err(), "a is the first node up: started here");
    router.handle(Input::Node(NodeIn::Up(vec!["0".into(), "a".into(), "b".into()])));
    router.handle(Input::Frame(main, spawn(12, Placement::Any)));
    assert_eq!(spawn_sent(&mut out).1, "0");

    let answers: Vec<_> = frames(&mut conn).into_iter().filter(|f| matches!(f, Frame::Response { .. })).collect();
    assert_eq!(
        answers[0],
        Frame::Response { req: 7, body: Response::Spawned(Ok(ActorRef { id: 12, name: Some("far".into()) })) },
        "answered once: {answers:?}"
    );
    let failure = |req| {
        answers.iter().find_map(|f| match f {
            Frame::Response { req: r, body: Response::Spawned(Err(e)) } if *r == req => Some(e.clone()),
            _ => None,
        })
    };
    let refused = failure(8).expect("the refusal is answered");
    assert!(refused.message.starts_with("on node b: "), "{}", refused.message);
    let not_up = failure(9).expect("a node not up is answered at once");
    assert_eq!(not_up.kind, ErrorKind::StartFailed);
    assert!(not_up.message.contains("node z is not up") && not_up.message.contains("a, b"), "{}", not_up.message);
    assert_eq!(answers.iter().filter(|f| matches!(f, Frame::Response { req: 7, .. })).count(), 1);
}

#[test]
fn a_child_whose_node_is_lost_restarts_on_a_node_that_remains_and_is_stopped_there() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_a(&os, &["a", "b", "c"]);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    let spec = TreeSpec {
        name: None,
        strategy: Strategy::OneForOne,
        max_restarts: 3,
        max_seconds_ms: 5000,
        children: vec![child("svc", nodes(&["b", "c"]))],
    };
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: Request::StartTree { spec } }));
    let (call, node, supervised, _) = spawn_sent(&mut out);
    assert_eq!((node.as_str(), supervised), ("b", true), "the first node of its list that is up");
    router.handle(Input::Node(NodeIn::Spawned { call, result: Ok(ActorRef { id: 40, name: Some("svc".into()) }) }));
    let Ok(NodeOut::Monitor { monitor, name, .. }) = out.try_recv() else { panic!("the child is monitored there") };
    assert_eq!(name, rebeam_proto::remote::pid_name(40, "b"));
    assert!(
        frames(&mut conn).iter().any(|f| matches!(f, Frame::Response { req: 1, body: Response::TreeStarted(Ok(_)) })),
        "the tree is up once its child runs on b"
    );

    // Node b is lost: the router hears of it first, then the monitor fires.
    router.handle(Input::Node(NodeIn::Up(vec!["a".into(), "c".into()])));
    let lost = Exit::Killed("node lost: node b was lost (it left, or its link was lost)".into());
    router.handle(Input::Node(NodeIn::Down { monitor, actor: None, node: None, reason: lost }));
    run_timers(&os, &mut router);
    let (call, node, supervised, _) = spawn_sent(&mut out);
    assert_eq!((node.as_str(), supervised), ("c", true), "restarted on the node that remains");
    router.handle(Input::Node(NodeIn::Spawned { call, result: Ok(ActorRef { id: 7, name: Some("svc".into()) }) }));
    let Ok(NodeOut::Monitor { monitor, name, .. }) = out.try_recv() else { panic!("monitored on c") };
    assert_eq!(name, rebeam_proto::remote::pid_name(7, "c"));
    let status = router.tree_status();
    let rebeam_proto::ChildStatus::Actor { running: Some((_, Some(place))), restarts, last_crash, .. } =
        &status[0].children[0]
    else {
        panic!("{status:?}")
    };
    assert_eq!(place, "actor <7> on node c");
    assert_eq!(*restarts, 1);
    assert!(last_crash.as_deref().is_some_and(|c| c.contains("node lost")), "{last_crash:?}");

    // Stopping the tree asks c to stop it; its end comes back through the monitor.
    let tree = router.trees.roots()[0];
    router.stop_tree(tree);
    match out.try_recv() {
        Ok(NodeOut::Stop { node, actor: 7, shutdown_ms: Some(250) }) => assert_eq!(node, "c"),
        other => panic!("expected a stop for c: {other:?}"),
    }
    assert!(!router.trees.is_empty(), "the tree waits for its child's end");
    router.handle(Input::Node(NodeIn::Down { monitor, actor: None, node: None, reason: Exit::Shutdown }));
    assert!(router.trees.is_empty(), "the child's end ends the tree");

    // A tree stopped while its child starts elsewhere: once started, the child is stopped there.
    let spec = TreeSpec {
        name: None,
        strategy: Strategy::OneForOne,
        max_restarts: 3,
        max_seconds_ms: 5000,
        children: vec![child("late", nodes(&["c"]))],
    };
    router.handle(Input::Frame(main, Frame::Request { req: 2, body: Request::StartTree { spec } }));
    let (call, ..) = spawn_sent(&mut out);
    let tree = router.trees.roots()[0];
    router.stop_tree(tree);
    router.handle(Input::Node(NodeIn::Spawned { call, result: Ok(ActorRef { id: 9, name: Some("late".into()) }) }));
    let stopped = std::iter::from_fn(|| out.try_recv().ok()).find_map(|o| match o {
        NodeOut::Stop { node, actor, .. } => Some((node, actor)),
        _ => None,
    });
    assert_eq!(stopped, Some(("c".to_string(), 9)), "its tree is stopping: it does not keep running on c");
}

#[test]
fn a_child_of_one_node_that_is_lost_fails_to_start_and_its_supervisor_gives_up() {
    let os = FakeOs::default();
    let (mut router, mut out) = node_a(&os, &["a", "b"]);
    let main = router.main;
    let _conn = connect(&mut router, main, 1 << 20);
    let spec = TreeSpec {
        name: None,
        strategy: Strategy::OneForOne,
        max_restarts: 2,
        max_seconds_ms: 5000,
        children: vec![child("svc", nodes(&["b"]))],
    };
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: Request::StartTree { spec } }));
    let (call, ..) = spawn_sent(&mut out);
    router.handle(Input::Node(NodeIn::Spawned { call, result: Ok(ActorRef { id: 40, name: None }) }));
    let Ok(NodeOut::Monitor { monitor, .. }) = out.try_recv() else { panic!("monitored") };
    router.handle(Input::Node(NodeIn::Up(vec!["a".into()])));
    router.handle(Input::Node(NodeIn::Down {
        monitor,
        actor: None,
        node: None,
        reason: Exit::Killed("node lost: b".into()),
    }));
    run_timers(&os, &mut router);
    assert!(out.try_recv().is_err(), "no node of its spec is up: nothing is asked");
    assert!(router.trees.root_failed(), "each failed start counts, and the supervisor gave up");
}

#[test]
fn children_run_here_for_another_node_s_supervisor_stop_when_it_is_asked_or_that_node_is_lost() {
    let os = FakeOs::default();
    let (mut router, mut out) = super::nodes::node_router(&os);
    router.handle(Input::Node(NodeIn::Up(vec!["a".into(), "b".into()])));
    let (_main_conn, mut worker_conn, worker, _counter) = with_counter(&mut router);
    let mut start = |router: &mut Router, query, name: &str, supervisor: Option<&str>| {
        let frame = encoded(Request::Spawn { child: child(name, nodes(&["elsewhere"])).into() });
        router.handle(Input::Node(NodeIn::Spawn { query, supervisor: supervisor.map(str::to_string), frame }));
        let actor = frames(&mut worker_conn)
            .into_iter()
            .find_map(|f| match f {
                Frame::Command(Command::Start { actor, name: Some(n), .. }) if n == name => Some(actor),
                _ => None,
            })
            .expect("started on the worker, not sent on");
        router.handle(Input::Frame(worker, Frame::Event(Event::Started { actor, result: Ok(Default::default()) })));
        match out.try_recv() {
            Ok(NodeOut::Answer { query: q, frame }) if q == query => assert_eq!(
                decoded(&frame),
                Frame::Response {
                    req: query,
                    body: Response::Spawned(Ok(ActorRef { id: actor, name: Some(name.into()) }))
                }
            ),
            other => panic!("expected the start's answer: {other:?}"),
        }
        actor
    };
    let supervised = start(&mut router, 70, "sup", Some("a"));
    let plain = start(&mut router, 71, "plain", None);
    let stopped = start(&mut router, 72, "asked", Some("a"));
    router.handle(Input::Node(NodeIn::Stop { actor: stopped, shutdown_ms: None }));
    let stops = |conn: &mut crate::outbox::Drain| -> Vec<u64> {
        frames(conn)
            .into_iter()
            .filter_map(|f| match f {
                Frame::Command(Command::Stop { actor }) => Some(actor),
                _ => None,
            })
            .collect()
    };
    assert_eq!(stops(&mut worker_conn), [stopped], "asked by its supervisor's node");
    router.handle(Input::Node(NodeIn::Up(vec!["b".into()])));
    assert_eq!(stops(&mut worker_conn), [supervised], "its supervisor's node is lost; a plain spawn stays");
    assert!(router.actors.get(&plain).is_some());
    // Nothing was sent on to other nodes meanwhile.
    assert!(out.try_recv().is_err());
}

#[test]
fn a_placement_on_another_node_in_a_run_that_is_not_a_node_is_a_start_failure_saying_so() {
    let os = FakeOs::default();
    let argv0 = std::ffi::OsString::from("main.py");
    let mut router = router(&os, Program::Script { script: "/nonexistent/main.py".into(), argv0, args: vec![] });
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    let spawn = Request::Spawn { child: child("far", nodes(&["b"])).into() };
    router.handle(Input::Frame(main, Frame::Request { req: 3, body: spawn }));
    let failed = frames(&mut conn).into_iter().find_map(|f| match f {
        Frame::Response { req: 3, body: Response::Spawned(Err(e)) } => Some(e),
        _ => None,
    });
    let failed = failed.expect("answered at once");
    assert_eq!(failed.kind, ErrorKind::StartFailed);
    assert!(failed.message.contains("node b") && failed.message.contains("not a node"), "{}", failed.message);
    // Any node, in a run of one: this one.
    let any = Request::Spawn { child: child("near", Placement::Any).into() };
    router.handle(Input::Frame(main, Frame::Request { req: 4, body: any }));
    assert!(router.names.resolve("near").is_some(), "started here");
}
