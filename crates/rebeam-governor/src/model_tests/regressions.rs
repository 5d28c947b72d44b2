//! Bugs the model test found, each pinned by a directed test on a router with the fake OS.

use std::path::PathBuf;
use std::time::Duration;

use super::fake::{FakeOs, LIBRARY_PARENT};
use crate::process::ProcessExit;
use crate::router::{Input, ProcState, Router};
use crate::{Config, Program, SafetyMode};

fn library_router(os: &FakeOs) -> Router {
    let config = Config {
        python: PathBuf::from("/nonexistent/python"),
        program: Program::Library { parent: LIBRARY_PARENT, token: "t".into(), ready_fd: None },
        workers: 1,
        spares: 0,
        max_message_bytes: 64,
        shutdown_timeout: Duration::from_secs(10),
        log_filter: String::new(),
        safety: SafetyMode::Marked,
        safety_grace: Duration::from_millis(200),
        allow_publish: vec![],
        control_socket: None,
        python_user: None,
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

fn script_router(os: &FakeOs) -> Router {
    let config = Config {
        python: PathBuf::from("/nonexistent/python"),
        program: Program::Script {
            script: "/nonexistent/main.py".into(),
            argv0: std::ffi::OsString::from("main.py"),
            args: vec![],
        },
        workers: 1,
        spares: 0,
        max_message_bytes: 64,
        shutdown_timeout: Duration::from_secs(10),
        log_filter: String::new(),
        safety: SafetyMode::Marked,
        safety_grace: Duration::from_millis(200),
        allow_publish: vec![],
        control_socket: None,
        python_user: None,
    };
    let bus = crate::bus::Bus::new(&[]).expect("no patterns");
    let paths = (PathBuf::from("/nonexistent/run.sock"), PathBuf::from("/nonexistent/ctl.sock"));
    let mut router = Router::new(config, Box::new(os.clone()), paths.0, paths.1, bus);
    router.start_processes().expect("the fake OS starts every process");
    router
}
