//! The status report shows what a live view needs: per-actor mailbox, deliveries, restarts
//! and last crash; per-process pid; the safety history; the bus.

use rebeam_proto::{
    ChildCode, ChildSpec, ChildStatus, Command, ControlRequest, ControlResponse, ErrorInfo, ErrorKind, Event, Exit,
    Frame, Payload, Request, Restart, Safety, StatusReport, Strategy, Target, TreeSpec, STATUS_VERSION,
};
use tokio::sync::oneshot;

use super::fake::{FakeOs, LIBRARY_PARENT};
use super::regressions::{connect, frames, router};
use crate::control::Peer;
use crate::router::{Input, Router};
use crate::Program;

fn ask(router: &mut Router, request: ControlRequest) -> ControlResponse {
    // The host: a shell outside the run.
    let peer = Peer { pid: Some(1_000_000), ancestry: Ok(vec![1_000_000, 1]) };
    let (reply, mut answer) = oneshot::channel();
    router.handle(Input::Control(request, peer, reply));
    answer.try_recv().expect("a control request is answered within its input")
}

fn report(router: &mut Router) -> StatusReport {
    match ask(router, ControlRequest::Status) {
        ControlResponse::Status { report, .. } => report,
        other => panic!("status answered {other:?}"),
    }
}

/// The only actor child of the only tree: (its id, mailbox, delivered, restarts, last crash).
fn the_child(report: &StatusReport) -> (Option<u64>, u32, u64, u32, Option<String>) {
    match &report.trees[..] {
        [tree] => match &tree.children[..] {
            [ChildStatus::Actor { running, mailbox, delivered, restarts, last_crash, .. }] => {
                (running.as_ref().map(|r| r.0), *mailbox, *delivered, *restarts, last_crash.clone())
            }
            other => panic!("children {other:?}"),
        },
        other => panic!("trees {other:?}"),
    }
}

/// The actor the worker was last told to start.
fn started_on(conn: &mut crate::outbox::Drain) -> u64 {
    let starts = frames(conn).into_iter().filter_map(|f| match f {
        Frame::Command(Command::Start { actor, .. }) => Some(actor),
        _ => None,
    });
    starts.last().expect("the worker was told to start the child")
}

#[test]
fn the_report_counts_deliveries_restarts_and_crashes_and_keeps_the_safety_history() {
    let os = FakeOs::default();
    let mut router =
        router(&os, Program::Library { parent: LIBRARY_PARENT, token: "t".into(), ready_fd: None, host: false });
    let main = router.main;
    let _main_conn = connect(&mut router, main, 1 << 20);
    let worker = router.procs.ids().into_iter().find(|&p| p != main).expect("one worker");
    let mut worker_conn = connect(&mut router, worker, 1 << 20);

    let spec = one_actor_tree(Some("counter"), "Counter", Restart::Permanent);
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: Request::StartTree { spec } }));
    let first = started_on(&mut worker_conn);
    router.handle(Input::Frame(worker, Frame::Event(Event::Started { actor: first, result: Ok(Default::default()) })));

    let report1 = report(&mut router);
    assert_eq!(report1.version, STATUS_VERSION);
    assert_eq!(the_child(&report1), (Some(first), 0, 0, 0, None), "started once, nothing sent yet");
    let pids: Vec<u32> = report1.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, router.procs.values().map(|p| p.pid).collect::<Vec<_>>());
    assert!(report1.processes.iter().all(|p| p.usage.is_none()), "the fake OS reads no /proc");

    let crash = ErrorInfo::new(ErrorKind::Crashed, "ZeroDivisionError: division by zero");
    router.handle(Input::Frame(
        worker,
        Frame::Event(Event::Exited { actor: first, reason: Exit::Crashed(crash), taken_up_to: u64::MAX }),
    ));
    // The restart runs on its own input.
    let due = std::mem::take(&mut os.world().timers);
    for (_, input) in due {
        if matches!(input, Input::TreeRestart(_)) {
            router.handle(input);
        }
    }
    let second = started_on(&mut worker_conn);
    assert_ne!(second, first);
    router.handle(Input::Frame(worker, Frame::Event(Event::Started { actor: second, result: Ok(Default::default()) })));
    let (_, mailbox, delivered, restarts, last_crash) = the_child(&report(&mut router));
    assert_eq!((mailbox, delivered, restarts), (0, 0, 1));
    let last_crash = last_crash.expect("the crash is remembered");
    assert!(last_crash.contains("ZeroDivisionError: division by zero"), "{last_crash}");

    // A call waits in the mailbox until answered; a cast is counted but not waited for.
    let target = || Target::Name("counter".into());
    let call = Request::Call {
        target: target(),
        subject: "add".into(),
        sender: None,
        payload: Payload::default(),
        timeout_ms: 60_000,
    };
    let cast = Request::Cast { target: target(), subject: "note".into(), sender: None, payload: Payload::default() };
    router.handle(Input::Frame(main, Frame::Request { req: 2, body: call }));
    router.handle(Input::Frame(main, Frame::Request { req: 3, body: cast }));
    let (_, mailbox, delivered, ..) = the_child(&report(&mut router));
    assert_eq!((mailbox, delivered), (1, 2));

    assert!(matches!(ask(&mut router, ControlRequest::Arm), ControlResponse::Safety { state: Safety::Armed, .. }));
    ask(&mut router, ControlRequest::Disarm);
    let moves: Vec<(Safety, Safety)> =
        report(&mut router).transitions.iter().map(|t| (t.transition.from, t.transition.to)).collect();
    assert_eq!(
        moves,
        [(Safety::Disarmed, Safety::Armed), (Safety::Armed, Safety::Disarming), (Safety::Disarming, Safety::Disarmed)]
    );
    for _ in 0..rebeam_proto::RECENT_TRANSITIONS {
        ask(&mut router, ControlRequest::Arm);
        ask(&mut router, ControlRequest::Disarm);
    }
    let kept = report(&mut router).transitions;
    assert_eq!(kept.len(), rebeam_proto::RECENT_TRANSITIONS, "the history is bounded");
    assert!(kept.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "oldest first");
}

#[test]
fn the_report_lists_subscriptions_with_their_owner_queue_and_drops() {
    let os = FakeOs::default();
    let mut router =
        router(&os, Program::Library { parent: LIBRARY_PARENT, token: "t".into(), ready_fd: None, host: false });
    let main = router.main;
    let _conn = connect(&mut router, main, 1 << 20);
    let subscribe = Request::Subscribe { actor: None, pattern: "sensor.*".into(), throttle_ms: 0, queue: 8 };
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: subscribe }));
    let bus = report(&mut router).bus;
    assert_eq!(bus.len(), 1, "{bus:?}");
    assert_eq!((bus[0].pattern.as_str(), bus[0].capacity, bus[0].queued, bus[0].dropped), ("sensor.*", 8, 0, 0));
    assert_eq!(bus[0].owner, router.procs[main].describe());
}

#[test]
fn the_history_of_children_of_trees_that_ended_is_dropped() {
    let os = FakeOs::default();
    let mut router =
        router(&os, Program::Library { parent: LIBRARY_PARENT, token: "t".into(), ready_fd: None, host: false });
    let main = router.main;
    let _main_conn = connect(&mut router, main, 1 << 20);
    let worker = router.procs.ids().into_iter().find(|&p| p != main).expect("one worker");
    let mut worker_conn = connect(&mut router, worker, 1 << 20);
    // Trees of one temporary child each, which ends at once: each tree ends with it.
    for req in 1..=500 {
        let spec = one_actor_tree(None, "Once", Restart::Temporary);
        router.handle(Input::Frame(main, Frame::Request { req, body: Request::StartTree { spec } }));
        let actor = started_on(&mut worker_conn);
        router.handle(Input::Frame(worker, Frame::Event(Event::Started { actor, result: Ok(Default::default()) })));
        router.handle(Input::Frame(
            worker,
            Frame::Event(Event::Exited { actor, reason: Exit::Normal, taken_up_to: u64::MAX }),
        ));
    }
    assert!(router.trees.roots().is_empty(), "every tree ended");
    let kept = router.trees.history_len();
    assert!(kept <= crate::tree::MIN_PRUNE_AT, "{kept} histories kept for 500 trees that ended");
}

/// A one-for-one tree (3 restarts in 5 s) of one actor child of class `class`.
fn one_actor_tree(name: Option<&str>, class: &str, restart: Restart) -> TreeSpec {
    let child = ChildSpec {
        name: name.map(str::to_owned),
        label: class.into(),
        restart,
        shutdown_ms: None,
        code: ChildCode::Actor { class_name: class.into(), instance: Payload::default() },
        group: None,
        node: Default::default(),
    };
    TreeSpec { name: None, strategy: Strategy::OneForOne, max_restarts: 3, max_seconds_ms: 5000, children: vec![child] }
}
