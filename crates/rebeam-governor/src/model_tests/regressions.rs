//! Bugs the model test found, each pinned by a directed test on a router with the fake OS.

use std::path::PathBuf;
use std::time::Duration;

use super::fake::{FakeOs, LIBRARY_PARENT};
use crate::router::Router;
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
