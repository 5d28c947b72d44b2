//! Workers forked by the zygote, on a router with the fake OS (see zygote.rs): asked for
//! without a pid, named by the zygote or their Hello, reaped before anyone knew their pid,
//! started afresh when the zygote fails, and not waited for at shutdown if never forked.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use rebeam_proto::{Role, PROTOCOL_VERSION};
use tokio::sync::oneshot;

use super::fake::FakeOs;
use crate::listener::Hello;
use crate::outbox::outbox;
use crate::process::ProcessExit;
use crate::router::{Input, ProcIdx, ProcState, Router};
use crate::zygote::{Event, MAX_ZYGOTE_STARTS, NOT_FORKED_YET};
use crate::{Config, Program, SafetyMode};

/// A script's router with two pool workers, no spare, and a zygote.
fn router(os: &FakeOs) -> Router {
    os.world().zygote = true;
    let argv0 = std::ffi::OsString::from("main.py");
    let config = Config {
        python: PathBuf::from("/nonexistent/python"),
        program: Program::Script { script: "/nonexistent/main.py".into(), argv0, args: vec![] },
        workers: 2,
        spares: 0,
        max_message_bytes: 64,
        shutdown_timeout: Duration::from_secs(10),
        log_filter: String::new(),
        safety: SafetyMode::Marked,
        safety_grace: Duration::from_millis(200),
        allow_publish: vec![],
        control_socket: None,
        python_user: None,
        main_restart: Default::default(),
        zygote: true,
    };
    let bus = crate::bus::Bus::new(&[]).expect("no patterns");
    let paths = (PathBuf::from("/nonexistent/run.sock"), PathBuf::from("/nonexistent/ctl.sock"));
    let mut router = Router::new(config, Box::new(os.clone()), paths.0, paths.1, bus);
    router.subreaper = true;
    router.start_processes().expect("the fake OS starts every process");
    router
}

fn workers(router: &Router) -> Vec<ProcIdx> {
    router.procs.iter().filter(|(_, p)| p.role == Role::Worker).map(|(i, _)| i).collect()
}

/// What the zygote of generation `n` (1, 2, ...) was asked so far.
fn requests(os: &FakeOs, n: usize) -> Vec<String> {
    let mut w = os.world();
    let sock = &mut w.zygotes[n - 1];
    sock.set_nonblocking(true).expect("nonblocking");
    let mut text = String::new();
    let _ = sock.read_to_string(&mut text);
    text.lines().map(str::to_string).collect()
}

fn hello(router: &mut Router, proc: ProcIdx, pid: u32) -> Result<ProcIdx, String> {
    let (writer, _drain) = outbox(1 << 20);
    let (accept, mut accepted) = oneshot::channel();
    let token = router.procs[proc].token.clone();
    router.handle(Input::Hello(Hello { version: PROTOCOL_VERSION, role: Role::Worker, token, pid, writer, accept }));
    accepted.try_recv().expect("answered").map_err(|r| r.why)
}

fn generation(router: &Router) -> u32 {
    router.zygote.as_ref().expect("a zygote").generation
}

#[test]
fn workers_are_asked_of_the_zygote_and_named_by_its_reply_or_their_hello() {
    let os = FakeOs::default();
    let mut router = router(&os);
    assert_eq!(os.world().spawned, 2, "the main process and the zygote; no worker spawned");
    let ws = workers(&router);
    assert_eq!(ws.len(), 2);
    assert!(ws.iter().all(|&w| router.procs[w].pid == NOT_FORKED_YET));
    let asked = requests(&os, 1);
    let tokens: Vec<String> = ws.iter().map(|&w| router.procs[w].token.clone()).collect();
    assert_eq!(asked, vec![format!("fork {} 1", tokens[0]), format!("fork {} 2", tokens[1])]);

    let g = generation(&router);
    router.handle(Input::Zygote(g, Event::Ready));
    router.handle(Input::Zygote(g, Event::Forked { token: tokens[0].clone(), pid: 7001 }));
    assert_eq!(router.procs[ws[0]].pid, 7001);
    // The second one's Hello comes before the zygote's word: it names it.
    assert_eq!(hello(&mut router, ws[1], 7002), Ok(ws[1]));
    assert_eq!(router.procs[ws[1]].pid, 7002);
    router.handle(Input::Zygote(g, Event::Forked { token: tokens[1].clone(), pid: 7002 }));
    assert_eq!(router.procs[ws[1]].pid, 7002);
    // Another pid presenting a token is still refused.
    assert!(hello(&mut router, ws[0], 9999).is_err());
}

#[test]
fn a_worker_reaped_before_its_pid_was_known_dies_when_it_is() {
    let os = FakeOs::default();
    let mut router = router(&os);
    let ws = workers(&router);
    let token = router.procs[ws[0]].token.clone();
    router.handle(Input::Reaped(7001, ProcessExit::Signal(libc::SIGKILL)));
    assert_eq!(router.procs[ws[0]].pid, NOT_FORKED_YET, "nobody knew the pid yet");
    let g = generation(&router);
    router.handle(Input::Zygote(g, Event::Forked { token, pid: 7001 }));
    assert!(router.procs.get(ws[0]).is_none(), "its death was handled and the process forgotten");
    assert_eq!(workers(&router).len(), 2, "a replacement was asked for");
    assert_eq!(requests(&os, 1).len(), 3);
}

#[test]
fn when_the_zygote_fails_its_unforked_workers_start_afresh_and_a_new_zygote_starts() {
    let os = FakeOs::default();
    let mut router = router(&os);
    let ws = workers(&router);
    let g = generation(&router);
    router.handle(Input::Zygote(g, Event::Forked { token: router.procs[ws[0]].token.clone(), pid: 7001 }));
    router.handle(Input::Zygote(g, Event::Gone));
    assert_eq!(router.procs[ws[0]].pid, 7001, "a worker it forked stays");
    assert_ne!(router.procs[ws[1]].pid, NOT_FORKED_YET, "the one it owed was spawned");
    // Main, the first zygote, the spawned worker, the second zygote.
    assert_eq!(os.world().spawned, 4);
    assert_eq!(generation(&router), g + 1);
    // A late event of the first zygote changes nothing.
    router.handle(Input::Zygote(g, Event::Gone));
    assert_eq!(generation(&router), g + 1);
    // Zygotes are started a bounded number of times.
    for _ in 0..MAX_ZYGOTE_STARTS {
        if let Some(z) = router.zygote.as_ref().map(|z| z.generation) {
            router.handle(Input::Zygote(z, Event::Gone));
        }
    }
    assert!(router.zygote.is_none());
    assert_eq!(router.zygote_starts, MAX_ZYGOTE_STARTS);
}

#[test]
fn a_fork_that_failed_is_spawned_and_an_unfit_zygote_is_not_started_again() {
    let os = FakeOs::default();
    let mut router = router(&os);
    let ws = workers(&router);
    let g = generation(&router);
    let token = router.procs[ws[0]].token.clone();
    router.handle(Input::Zygote(g, Event::Failed { token, why: "no memory".into() }));
    assert_ne!(router.procs[ws[0]].pid, NOT_FORKED_YET);
    assert_eq!(router.procs[ws[1]].pid, NOT_FORKED_YET, "the other is still the zygote's");
    router.handle(Input::Zygote(g, Event::Unfit("2 threads".into())));
    assert!(router.zygote.is_none(), "no second zygote: its imports would start a thread too");
    assert_ne!(router.procs[ws[1]].pid, NOT_FORKED_YET);
}

#[test]
fn a_fork_nobody_waits_for_is_killed_and_shutdown_does_not_wait_for_unforked_workers() {
    let os = FakeOs::default();
    let mut router = router(&os);
    let ws = workers(&router);
    let token = router.procs[ws[0]].token.clone();
    router.begin_shutdown(0, "test");
    // The main process is gone: only the workers are left.
    let main = router.main;
    router.handle(Input::Reaped(router.procs[main].pid, ProcessExit::Code(0)));
    assert!(!router.finished, "the zygote is still to be reaped");
    let zygote = router.zygote.as_ref().expect("the zygote").pid;
    assert!(os.world().signals.contains(&(zygote, libc::SIGKILL, true)), "the zygote is killed");
    router.handle(Input::Reaped(zygote, ProcessExit::Signal(libc::SIGKILL)));
    assert!(router.finished, "no worker was forked: nothing else to wait for");
    assert!(ws.iter().all(|&w| router.procs.get(w).is_none_or(|p| p.state == ProcState::Dead)));
    os.world().signals.clear();
    router.handle(Input::Zygote(1, Event::Forked { token, pid: 7001 }));
    assert!(os.world().signals.contains(&(7001, libc::SIGKILL, true)), "the late fork is killed");
}
