//! The rebeam governor: a pure-Rust parent for Python processes.
//!
//! It starts the main process (the user's script) and a pool of worker processes, keeps one warm
//! spare, routes every message between them, runs the supervision trees the script builds, and
//! ends the run with a meaningful status. It never links or starts a Python interpreter in its
//! own process, so a crash in Python costs a worker, never the governor.
//!
//! Lifecycle of a run:
//! 1. Listen on a private Unix socket (`$XDG_RUNTIME_DIR/rebeam` or `/tmp/rebeam-<uid>`, 0700).
//! 2. Spawn the main process and the zygote from one long-lived thread, each in its own process
//!    group, each with PR_SET_PDEATHSIG so it dies with the governor; the zygote forks the
//!    `workers + spares` workers, each re-parented to the governor and tied to it the same way
//!    (without a zygote, the thread spawns them too; see zygote.rs).
//! 3. Route frames until the root tree ends, `rebeam.shutdown()` is called, the script body ends
//!    with no tree, or SIGINT/SIGTERM arrives.
//! 4. Shut down in reverse start order: trees (children in reverse order, polite stop, timeout,
//!    kill), then the main process, then workers; kill every process group that remains.

mod actors;
mod boc;
mod bus;
mod channels;
mod conn;
mod control;
mod delivery;
mod lent;
mod lifecycle;
mod listener;
mod main_restart;
mod messages;
#[cfg(test)]
mod model_tests;
pub mod node;
mod notices;
mod outbox;
mod pool;
mod process;
mod python;
mod report;
mod router;
mod safety;
mod status;
mod tree;
mod usage;
mod user;
mod zygote;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub use control::{find_socket as find_control_socket, request as control_request};
pub use main_restart::MainRestartPolicy;
pub use python::find_python;
pub use user::PythonUser;

/// How long a process may take to connect and say Ready before it is declared failed.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time the whole system gets to stop politely before everything is killed.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Warm spare workers kept ready so a crashed worker's actors restart without waiting for Python.
pub const DEFAULT_SPARES: usize = 1;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Python interpreter for the main process and workers.
    pub python: PathBuf,
    /// What runs as the main process.
    pub program: Program,
    /// Worker processes hosting actors.
    pub workers: usize,
    /// Warm spares beyond `workers`.
    pub spares: usize,
    /// Limit on one message's payload.
    pub max_message_bytes: u64,
    /// Time the whole system gets to stop politely.
    pub shutdown_timeout: Duration,
    /// Log filter handed to Python processes (`REBEAM_LOG`).
    pub log_filter: String,
    /// Which Python work needs the system armed.
    pub safety: SafetyMode,
    /// On disarm, how long interrupted gated work has before its worker is killed.
    pub safety_grace: Duration,
    /// Topic patterns under reserved prefixes that Python may publish on anyway.
    pub allow_publish: Vec<String>,
    /// Where the host wants the control socket (`--control-socket`); by default
    /// `ctl-<pid>.sock` in the runtime directory. Never told to Python.
    pub control_socket: Option<PathBuf>,
    /// Run the main process and the workers as this user (`--python-user`; see user.rs).
    pub python_user: Option<PythonUser>,
    /// Whether and how often the script is run again when it ends (`--restart`).
    pub main_restart: MainRestartPolicy,
    /// Fork workers from a zygote, a Python imported once (`--zygote`; see zygote.rs).
    pub zygote: bool,
}

/// What the main process is.
#[derive(Debug, Clone)]
pub enum Program {
    /// `rebeam main.py`: the governor starts the main process, running the script.
    Script {
        /// The user's script (absolute).
        script: PathBuf,
        /// The script as the user typed it (`sys.argv[0]`, as with `python main.py`).
        argv0: OsString,
        /// Arguments for the script (`sys.argv[1:]`).
        args: Vec<OsString>,
    },
    /// Library mode (`import rebeam` in plain `python`): the Python process that started this
    /// governor is the main process. It is not the governor's child, so the governor never
    /// signals it; when it exits (its connection closes, or it is no longer our parent), the
    /// governor shuts everything down.
    Library {
        /// Its pid (our parent).
        parent: u32,
        /// The token it will present in its Hello.
        token: String,
        /// A pipe to write the process socket's path to (a `REBEAM_SOCKET=…` line), then
        /// close. Not stdout: workers inherit stdout, and the user should see what they
        /// print. The control socket's path is not written: Python has no use for it.
        ready_fd: Option<i32>,
        /// The main process is a host program that runs no Python (`rebeam serve --host`, a
        /// Rust application with the `rebeam` crate): it may change the safety state itself.
        host: bool,
    },
}

impl Program {
    /// How logs name what runs.
    pub fn describe(&self) -> String {
        match self {
            Program::Script { script, .. } => script.display().to_string(),
            Program::Library { parent, .. } => format!("library mode for pid {parent}"),
        }
    }
}

/// Which Python work is gated by the safety state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SafetyMode {
    /// Only handlers marked `@requires_armed`.
    #[default]
    Marked,
    /// Every message to every actor (`rebeam --safety require-armed`).
    RequireArmed,
}

/// Default time interrupted gated work gets to stop before its worker is killed.
pub const DEFAULT_SAFETY_GRACE: Duration = Duration::from_millis(200);
/// After SIGKILL, how long a worker may take to be reaped before the safety state is `error`.
pub const KILL_CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// Errors that stop the governor from running at all (everything after start-up is handled and
/// reported inside the run).
#[derive(Debug, thiserror::Error)]
pub enum GovernorError {
    #[error("cannot create the runtime directory {path}: {source}")]
    RuntimeDir { path: PathBuf, source: std::io::Error },
    #[error("cannot listen on {path}: {source}")]
    Listen { path: PathBuf, source: std::io::Error },
    #[error("refusing to put the control socket at {path}: {why}")]
    ControlSocket { path: PathBuf, why: String },
    #[error("cannot start {what} with {python}: {source}")]
    Spawn { what: String, python: PathBuf, source: std::io::Error },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("bad --allow-publish pattern: {0}")]
    Pattern(String),
}

/// Runs a program to its end and returns the process exit status.
pub async fn run(config: Config) -> Result<i32, GovernorError> {
    run_with(config, None).await
}

/// Runs a program as one node of several: as [`run`], with calls by name that no actor here
/// takes sent to the other nodes through `seam` (see [`node`]).
pub async fn run_node(config: Config, seam: node::Seam) -> Result<i32, GovernorError> {
    run_with(config, Some(seam)).await
}

async fn run_with(config: Config, seam: Option<node::Seam>) -> Result<i32, GovernorError> {
    process::install_panic_guard();
    if let Some(after) = process::test_panic_after() {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            panic!("REBEAM_TEST_PANIC_AFTER_MS: a deliberate panic after {after:?}, for tests");
        });
    }
    router::run(config, seam).await
}
