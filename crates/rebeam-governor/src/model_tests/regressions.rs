//! Bugs the model test found, each pinned by a directed test on a router with the fake OS.

use std::path::PathBuf;
use std::time::Duration;

use rebeam_proto::{
    decode_body, ChildCode, ChildSpec, Event, Frame, Gating, Payload, Request, Response, Restart, Strategy, Target,
    TreeSpec, HEADER_BYTES, PROTOCOL_VERSION,
};
use tokio::sync::oneshot;

use super::fake::{FakeOs, LIBRARY_PARENT};
use crate::listener::Hello;
use crate::outbox::{outbox, Drain, HUNG_AFTER};
use crate::process::ProcessExit;
use crate::router::{Input, ProcIdx, ProcState, Router};
use crate::{Config, Program, SafetyMode};

fn library_router(os: &FakeOs) -> Router {
    router(os, Program::Library { parent: LIBRARY_PARENT, token: "t".into(), ready_fd: None, host: false })
}

fn script_router(os: &FakeOs) -> Router {
    let argv0 = std::ffi::OsString::from("main.py");
    router(os, Program::Script { script: "/nonexistent/main.py".into(), argv0, args: vec![] })
}

pub(super) fn router(os: &FakeOs, program: Program) -> Router {
    router_with(os, program, SafetyMode::Marked)
}

/// As `router`, under safety mode `safety`.
pub(super) fn router_with(os: &FakeOs, program: Program, safety: SafetyMode) -> Router {
    router_with_pool(os, program, safety, 1, 0)
}

/// As `router_with`, with `workers` pool workers and `spares` spares.
pub(super) fn router_with_pool(
    os: &FakeOs,
    program: Program,
    safety: SafetyMode,
    workers: usize,
    spares: usize,
) -> Router {
    let config = Config {
        python: PathBuf::from("/nonexistent/python"),
        program,
        workers,
        spares,
        max_message_bytes: 64,
        shutdown_timeout: Duration::from_secs(10),
        log_filter: String::new(),
        safety,
        safety_grace: Duration::from_millis(200),
        allow_publish: vec![],
        control_socket: None,
        python_user: None,
        main_restart: Default::default(),
        zygote: false,
    };
    let bus = crate::bus::Bus::new(&[]).expect("no patterns");
    let paths = (PathBuf::from("/nonexistent/run.sock"), PathBuf::from("/nonexistent/ctl.sock"));
    let mut router = Router::new(config, Box::new(os.clone()), paths.0, paths.1, bus);
    router.start_processes().expect("the fake OS starts every process");
    router
}

/// SIGINT to a library-mode governor (its own process group: only an explicit `kill` reaches
/// it) was forwarded to the user's Python process, which rebeam did not start.
#[test]
fn interrupt_in_library_mode_does_not_signal_the_users_process() {
    let os = FakeOs::default();
    let mut router = library_router(&os);
    router.on_interrupt(1);
    let signals = std::mem::take(&mut os.world().signals);
    assert!(router.is_shutting_down());
    assert!(
        signals.iter().all(|&(pid, _, _)| pid != LIBRARY_PARENT),
        "the governor signalled the library-mode main process: {signals:?}"
    );
}

/// Every frame the router has queued for a fake connection, decoded.
pub(super) fn frames(conn: &mut Drain) -> Vec<Frame> {
    std::iter::from_fn(|| conn.try_recv())
        .filter_map(|bytes| decode_body(&bytes.to_vec()[HEADER_BYTES..]).ok())
        .collect()
}

/// Says Hello and Ready for process `proc`, with an outbox of `budget` bytes.
pub(super) fn connect(router: &mut Router, proc: ProcIdx, budget: u64) -> Drain {
    let p = &router.procs[proc];
    let (writer, drain) = outbox(budget);
    let (accept, mut accepted) = oneshot::channel();
    let (role, token, pid) = (p.role, p.token.clone(), p.pid);
    router.handle(Input::Hello(Hello { version: PROTOCOL_VERSION, role, token, pid, writer, accept }));
    assert_eq!(accepted.try_recv().expect("answered").expect("accepted"), proc);
    router.handle(Input::Frame(proc, Frame::Ready));
    drain
}

/// The outbox noted when it went over budget on the wall clock, while the sweep that kills hung
/// workers asks with the router's clock: with the two apart (the model's virtual clock; any
/// `Os` whose clock is not `Instant::now`), a worker was killed as hung at once, or never.
#[test]
fn a_full_outbox_is_timed_on_the_routers_clock() {
    let os = FakeOs::default();
    let mut router = script_router(&os);
    let main = router.main;
    let worker = router.procs.find(|p| p.role == rebeam_proto::Role::Worker).expect("one worker");
    let _main_conn = connect(&mut router, main, 1 << 20);
    let _stalled = connect(&mut router, worker, 512);
    let spec = ChildSpec {
        name: Some("slow".into()),
        label: "Slow".into(),
        restart: Restart::Temporary,
        shutdown_ms: None,
        code: ChildCode::Actor { class_name: "Slow".into(), instance: Payload::default() },
        group: None,
        node: Default::default(),
    };
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: Request::Spawn { child: spec.into() } }));
    let actor = router.actors.on(worker).next().expect("the actor is placed on the worker");
    router.handle(Input::Frame(worker, Frame::Event(Event::Started { actor, result: Ok(Gating::default()) })));
    // The router's clock is an hour past the wall clock's when the worker stops reading.
    os.world().now_ms = 3_600_000;
    let mut refused = false;
    for req in 2..100 {
        let cast = Request::Cast {
            target: Target::Name("slow".into()),
            subject: "ping".into(),
            sender: None,
            payload: Payload { data: vec![0x80; 32].into(), buffers: vec![] },
        };
        router.handle(Input::Frame(main, Frame::Request { req, body: cast }));
        if router.procs[worker].tx.as_ref().is_some_and(|tx| tx.over_for(router.os.now()).is_some()) {
            refused = true;
            break;
        }
    }
    assert!(refused, "the worker's outbox of 512 bytes never filled");
    let killed = |os: &FakeOs| os.world().signals.iter().any(|&(_, sig, _)| sig == libc::SIGKILL);
    router.handle(Input::Sweep);
    assert!(!killed(&os), "the worker was killed as hung the moment its outbox filled");
    os.world().now_ms += HUNG_AFTER.as_millis() as u64;
    router.handle(Input::Sweep);
    assert!(killed(&os), "the worker stayed over budget for {HUNG_AFTER:?} on the router's clock and lives on");
}

/// `queue=0` passed the governor's bound (only `> MAX_QUEUE` was refused) and was quietly
/// taken as 1, while Python refuses it: a peer is told the bounds, whichever side checks.
#[test]
fn a_subscription_with_queue_0_is_refused() {
    let os = FakeOs::default();
    let mut router = library_router(&os);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    for (req, queue) in [(1, 0), (2, u32::MAX), (3, 1)] {
        let body = Request::Subscribe { actor: None, pattern: "sensors.*".into(), throttle_ms: 0, queue };
        router.handle(Input::Frame(main, Frame::Request { req, body }));
    }
    let answers: Vec<_> = frames(&mut conn)
        .into_iter()
        .filter_map(|frame| match frame {
            Frame::Response { req, body: Response::Subscribed(r) } => Some((req, r.map(|_| ()).map_err(|e| e.message))),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 3, "every subscribe is answered: {answers:?}");
    assert!(answers[0].1.as_ref().is_err_and(|m| m.contains("queue=0")), "queue=0: {answers:?}");
    assert!(answers[1].1.is_err(), "queue=u32::MAX: {answers:?}");
    assert!(answers[2].1.is_ok(), "queue=1: {answers:?}");
}

/// Adopting the adopter itself was refused as "already part of another tree", and adopting an
/// ancestor still starting as "not running": the peer was told the wrong reason.
#[test]
fn a_supervisor_adopting_itself_or_its_ancestor_is_told_so() {
    let os = FakeOs::default();
    let mut router = library_router(&os);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    let spec = |children| TreeSpec {
        name: None,
        strategy: Strategy::OneForOne,
        max_restarts: 3,
        max_seconds_ms: 5000,
        children,
    };
    let child = |code| ChildSpec {
        name: None,
        label: "Sup".into(),
        restart: Restart::Permanent,
        shutdown_ms: None,
        code,
        group: None,
        node: Default::default(),
    };
    // The id the router hands the new tree next: the one a confused peer would name.
    let itself = router.next_id + 1;
    let flat = spec(vec![child(ChildCode::Adopt { tree: itself })]);
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: Request::StartTree { spec: flat } }));
    let ancestor = router.next_id + 1;
    let nested = spec(vec![child(ChildCode::Tree(spec(vec![child(ChildCode::Adopt { tree: ancestor })])))]);
    router.handle(Input::Frame(main, Frame::Request { req: 2, body: Request::StartTree { spec: nested } }));
    let answers: Vec<_> = frames(&mut conn)
        .into_iter()
        .filter_map(|frame| match frame {
            Frame::Response { body: Response::TreeStarted(r), .. } => Some(r.map_err(|e| e.message)),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 2, "both starts are answered: {answers:?}");
    for answer in &answers {
        assert!(answer.as_ref().is_err_and(|m| m.contains("nested inside itself")), "{answers:?}");
    }
}

/// A running tree restarted a child that ends as it starts (a nested Supervisor with no
/// children) from within the handling of that end: with a large `max_restarts` the restarts
/// recursed until the governor's stack overflowed (and, iterated, would never yield).
#[test]
fn a_child_that_ends_as_it_starts_is_restarted_on_a_later_input_not_recursively() {
    let os = FakeOs::default();
    let mut router = library_router(&os);
    let main = router.main;
    let mut conn = connect(&mut router, main, 1 << 20);
    let empty =
        TreeSpec { name: None, strategy: Strategy::OneForOne, max_restarts: 0, max_seconds_ms: 1, children: vec![] };
    let child = ChildSpec {
        name: None,
        label: "Empty".into(),
        restart: Restart::Permanent,
        shutdown_ms: None,
        code: ChildCode::Tree(empty),
        group: None,
        node: Default::default(),
    };
    let spec = TreeSpec {
        name: Some("outer".into()),
        strategy: Strategy::OneForOne,
        max_restarts: rebeam_core::supervision::MAX_RESTARTS,
        max_seconds_ms: 60_000,
        children: vec![child],
    };
    router.handle(Input::Frame(main, Frame::Request { req: 1, body: Request::StartTree { spec } }));
    let started = frames(&mut conn)
        .into_iter()
        .any(|frame| matches!(frame, Frame::Response { req: 1, body: Response::TreeStarted(Ok(_)) }));
    assert!(started, "the outer tree was not reported started");
    // Each restart waits for an input of its own: the router goes on with the rest meanwhile.
    for _ in 0..100 {
        let due = std::mem::take(&mut os.world().timers);
        let restarts: Vec<Input> =
            due.into_iter().map(|(_, input)| input).filter(|i| matches!(i, Input::TreeRestart(_))).collect();
        assert_eq!(restarts.len(), 1, "one restart of the outer tree's child is scheduled at a time");
        restarts.into_iter().for_each(|input| router.handle(input));
    }
    assert_eq!(router.trees.roots().len(), 1, "the outer tree runs on");
}

/// A worker's slot is reused once the worker is reaped: a timer set for the old worker (here
/// its ready deadline, which kills a worker that is not ready) must find nothing, not the new
/// worker now starting in the same slot. With ids that were plain slots, it killed the new one.
#[test]
fn a_timer_for_a_reaped_worker_never_reaches_the_next_worker_in_its_slot() {
    let os = FakeOs::default();
    let mut router = script_router(&os);
    let worker = |r: &Router| {
        r.procs.find(|p| p.role == rebeam_proto::Role::Worker && p.state != ProcState::Dead).expect("a live worker")
    };
    let first = worker(&router);
    // Two deaths: the first frees `first`'s slot (its replacement took a new one), the second
    // worker's replacement reuses it.
    for _ in 0..2 {
        let w = worker(&router);
        router.handle(Input::Reaped(router.procs[w].pid, ProcessExit::Code(1)));
    }
    let reused = worker(&router);
    assert_eq!(reused.slot(), first.slot(), "the test needs the slot reused");
    assert_ne!(reused, first);
    os.world().signals.clear();
    router.handle(Input::ReadyDeadline(first));
    router.handle(Input::LostGrace(first));
    router.handle(Input::KillConfirm(first));
    let new_pid = router.procs[reused].pid;
    let signals = std::mem::take(&mut os.world().signals);
    assert!(signals.iter().all(|&(pid, _, _)| pid != new_pid), "the new worker was signalled: {signals:?}");
    assert_eq!(router.procs[reused].state, ProcState::Spawned);
}

/// A Hello the router cannot match is refused; during the shutdown (a spare started just before
/// it, connecting just after) that is expected, and the refusal says so, so that the listener
/// logs it quietly instead of warning the user of a stranger.
#[test]
fn a_hello_refused_during_the_shutdown_is_marked_late_and_one_refused_before_is_not() {
    let os = FakeOs::default();
    let mut router = script_router(&os);
    let say_hello = |router: &mut Router| {
        let (writer, _drain) = outbox(1 << 20);
        let (accept, mut accepted) = oneshot::channel();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            role: rebeam_proto::Role::Worker,
            token: "nobody's".into(),
            pid: 4242,
            writer,
            accept,
        };
        router.handle(Input::Hello(hello));
        accepted.try_recv().expect("answered")
    };
    let before = say_hello(&mut router).expect_err("an unknown token is refused");
    assert!(!before.late, "{before:?}");
    router.begin_shutdown(0, "the test ends the run");
    let during = say_hello(&mut router).expect_err("an unknown token is refused");
    assert!(during.late, "{during:?}");
    assert_eq!(during.why, before.why);
}
