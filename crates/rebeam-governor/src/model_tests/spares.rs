//! When the first spares start, on a router with the fake OS: only once the pool's workers and
//! the main process are ready and the run's first actor start is over (or the hold has
//! passed with no actor), never while an actor is starting (see pool.rs).

use rebeam_proto::{ChildCode, ChildSpec, ErrorInfo, ErrorKind, Event, Frame, Gating, Payload, Request, Restart};

use super::fake::FakeOs;
use super::regressions::{connect, router_with_pool};
use crate::outbox::Drain;
use crate::router::{Input, ProcIdx, Router};
use crate::{Program, SafetyMode};

/// A script's router with two pool workers and one spare, every pool process connected and
/// ready: (router, its two workers, the connections to keep open).
fn ready_pool(os: &FakeOs) -> (Router, Vec<ProcIdx>, Vec<Drain>) {
    let argv0 = std::ffi::OsString::from("main.py");
    let program = Program::Script { script: "/nonexistent/main.py".into(), argv0, args: vec![] };
    let mut router = router_with_pool(os, program, SafetyMode::Marked, 2, 1);
    let workers: Vec<ProcIdx> = router.procs.ids().into_iter().filter(|&p| p != router.main).collect();
    let main = router.main;
    let mut conns = vec![connect(&mut router, main, 1 << 20)];
    for &w in &workers {
        conns.push(connect(&mut router, w, 1 << 20));
    }
    (router, workers, conns)
}

fn spawned(os: &FakeOs) -> u32 {
    os.world().spawned
}

/// The main process asks for an actor; returns it and the worker it was placed on.
fn spawn_actor(router: &mut Router, req: u64) -> (rebeam_proto::ActorId, ProcIdx) {
    let child = ChildSpec {
        name: None,
        label: "A".into(),
        restart: Restart::Temporary,
        shutdown_ms: None,
        code: ChildCode::Actor { class_name: "A".into(), instance: Payload::default() },
        group: None,
        node: Default::default(),
    };
    let main = router.main;
    router.handle(Input::Frame(main, Frame::Request { req, body: Request::Spawn { child: child.into() } }));
    let (&actor, _) = router.actors.iter().find(|(_, a)| !a.started).expect("an actor is starting");
    (actor, router.actors.proc_of(actor).expect("placed"))
}

#[test]
fn the_spare_waits_for_the_first_actor_start() {
    let os = FakeOs::default();
    let (mut router, _workers, _conns) = ready_pool(&os);
    assert_eq!(spawned(&os), 3, "the main process and two pool workers, no spare while nothing has started");
    let (actor, worker) = spawn_actor(&mut router, 1);
    router.handle(Input::SparesHold);
    assert_eq!(spawned(&os), 3, "an actor is starting: the hold's end does not start the spare");
    router.handle(Input::Frame(worker, Frame::Event(Event::Started { actor, result: Ok(Gating::default()) })));
    assert_eq!(spawned(&os), 4, "the first actor started: the spare starts");
}

#[test]
fn a_first_start_that_fails_releases_the_spare_too() {
    let os = FakeOs::default();
    let (mut router, _workers, _conns) = ready_pool(&os);
    let (actor, worker) = spawn_actor(&mut router, 1);
    let failed = Err(ErrorInfo::new(ErrorKind::StartFailed, "boom"));
    router.handle(Input::Frame(worker, Frame::Event(Event::Started { actor, result: failed })));
    assert_eq!(spawned(&os), 4);
}

#[test]
fn with_no_actor_the_spare_starts_when_the_hold_is_over() {
    let os = FakeOs::default();
    let (mut router, _workers, _conns) = ready_pool(&os);
    assert_eq!(spawned(&os), 3);
    let holds = os.world().timers.iter().filter(|(_, i)| matches!(i, Input::SparesHold)).count();
    assert_eq!(holds, 1, "the hold began once the pool's workers and the main process were ready");
    router.handle(Input::SparesHold);
    assert_eq!(spawned(&os), 4);
    router.handle(Input::SparesHold);
    assert_eq!(spawned(&os), 4, "one spare, once");
}
