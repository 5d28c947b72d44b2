//! Starting and owning a run: the [`Builder`], and the [`Runtime`] handle that ends the run
//! when dropped.
//!
//! Start-up, in order:
//! 1. Find the `rebeam` command: [`Builder::governor`], else `REBEAM_BIN`, else `rebeam`
//!    beside the Python interpreter (a virtualenv's `bin/`), else on `PATH`.
//! 2. Make a private directory (0700) for the control socket, so that only this user can reach
//!    it and its path is never told to Python.
//! 3. Run `rebeam serve --parent-pid <our pid> --ready-fd <pipe>` with a fresh token in
//!    `REBEAM_MAIN_TOKEN`, its stderr piped into `tracing` (see `logs`), and a node's options
//!    when [`Builder::node`] names one (see `node`: it joins the other nodes before it listens).
//! 4. Read `REBEAM_SOCKET=<path>` from the pipe (end of file first means the governor failed:
//!    its exit status is in the error), connect as the main process and say Ready.
//!
//! Shutdown, on drop: ask the governor to shut down (as `rebeam.shutdown(0)` does), wait for it
//! to exit up to its shutdown timeout plus [`EXIT_MARGIN`], then kill it; its workers die with
//! it (each has the governor's death signal), so nothing is left behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rebeam_client::Client;
use rebeam_proto::{env, Frame, Request, Role, Safety};

use crate::Error;

/// How long the governor may take to listen before the start is abandoned.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Beyond the shutdown timeout, how long the governor may take to exit before it is killed.
pub const EXIT_MARGIN: Duration = Duration::from_secs(2);
/// How long the governor has to acknowledge a shutdown request.
pub const SHUTDOWN_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// The governor's own default for `shutdown_timeout`, so the drop's wait matches it.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a dropped runtime checks whether the governor has exited.
const EXIT_POLL: Duration = Duration::from_millis(5);

/// Which Python work needs the system armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SafetyMode {
    /// Only handlers marked `@requires_armed` (the default).
    #[default]
    Marked,
    /// Every message to every actor.
    RequireArmed,
}

/// How to start a [`Runtime`]; every setting has the governor's default unless set.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    python: Option<PathBuf>,
    governor: Option<PathBuf>,
    workers: Option<usize>,
    spares: Option<usize>,
    safety: SafetyMode,
    safety_grace: Option<Duration>,
    allow_publish: Vec<String>,
    shutdown_timeout: Option<Duration>,
    log_filter: Option<String>,
    /// Set by the node methods (see the `node` module).
    pub(crate) node: crate::node::NodeSettings,
}

impl Builder {
    /// The Python interpreter for the workers.
    pub fn python(mut self, path: impl Into<PathBuf>) -> Self {
        self.python = Some(path.into());
        self
    }

    /// A virtualenv: its `bin/python` runs the workers, and its `bin/rebeam` (if there) is the
    /// governor unless [`Builder::governor`] names another.
    pub fn venv(self, dir: impl AsRef<Path>) -> Self {
        let bin = dir.as_ref().join("bin");
        let rebeam = bin.join("rebeam");
        let with_python = self.python(bin.join("python"));
        if with_python.governor.is_none() && rebeam.is_file() {
            return with_python.governor(rebeam);
        }
        with_python
    }

    /// The `rebeam` command that runs the governor.
    pub fn governor(mut self, path: impl Into<PathBuf>) -> Self {
        self.governor = Some(path.into());
        self
    }

    /// Worker processes hosting actors (default: one per core).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Warm spare workers beyond `workers`, so a crashed worker's actors restart at once.
    pub fn spares(mut self, n: usize) -> Self {
        self.spares = Some(n);
        self
    }

    /// Which Python work needs the system armed.
    pub fn safety(mut self, mode: SafetyMode) -> Self {
        self.safety = mode;
        self
    }

    /// On disarm, how long interrupted gated work has before its worker is killed.
    pub fn safety_grace(mut self, grace: Duration) -> Self {
        self.safety_grace = Some(grace);
        self
    }

    /// A topic pattern under a reserved prefix (`safety.`, `actuator.`, …) that Python may
    /// publish on anyway; call again for more.
    pub fn allow_publish(mut self, pattern: impl Into<String>) -> Self {
        self.allow_publish.push(pattern.into());
        self
    }

    /// How long the whole run gets to stop politely when the runtime is dropped.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// The governor's and Python's log filter (`error`, `warn`, `info`, `debug`, `trace`);
    /// default `REBEAM_LOG`, else `warn`. What passes it arrives as `tracing` events.
    pub fn log_filter(mut self, filter: impl Into<String>) -> Self {
        self.log_filter = Some(filter.into());
        self
    }

    /// Starts the governor and its workers and connects to them as the host.
    pub fn start(self) -> Result<Runtime, Error> {
        crate::start::start(self)
    }

    pub(crate) fn command(&self) -> Result<PathBuf, Error> {
        find_governor(self.governor.as_deref(), self.python.as_deref())
    }

    /// The arguments of `rebeam serve` for these settings.
    pub(crate) fn serve_args(&self, ready_fd: i32, control: &Path) -> Result<Vec<String>, Error> {
        let mut args = vec!["serve".into(), "--host".into(), "--parent-pid".into(), std::process::id().to_string()];
        args.extend(["--ready-fd".into(), ready_fd.to_string()]);
        args.extend(["--control-socket".into(), control.display().to_string()]);
        if let Some(python) = &self.python {
            args.extend(["--python".into(), python.display().to_string()]);
        }
        if let Some(n) = self.workers {
            args.extend(["--workers".into(), n.to_string()]);
        }
        if let Some(n) = self.spares {
            args.extend(["--spares".into(), n.to_string()]);
        }
        let mode = match self.safety {
            SafetyMode::Marked => "marked",
            SafetyMode::RequireArmed => "require-armed",
        };
        args.extend(["--safety".into(), mode.into()]);
        if let Some(grace) = self.safety_grace {
            args.extend(["--safety-grace".into(), grace.as_secs_f64().to_string()]);
        }
        for pattern in &self.allow_publish {
            args.extend(["--allow-publish".into(), pattern.clone()]);
        }
        args.extend(["--shutdown-timeout".into(), self.shutdown_wait().as_secs_f64().to_string()]);
        let filter = self.log_filter.clone().or_else(|| std::env::var(env::LOG).ok()).unwrap_or("warn".into());
        args.extend(["--log-level".into(), filter]);
        args.extend(self.node.serve_args()?);
        Ok(args)
    }

    /// How long the governor may take to listen: a node joins the others first.
    pub(crate) fn start_wait(&self) -> Duration {
        START_TIMEOUT + self.node.join_wait()
    }

    pub(crate) fn shutdown_wait(&self) -> Duration {
        self.shutdown_timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT)
    }
}

/// The `rebeam` command, in the order of the module doc.
fn find_governor(explicit: Option<&Path>, python: Option<&Path>) -> Result<PathBuf, Error> {
    let beside_python = python.and_then(Path::parent).map(|dir| dir.join("rebeam"));
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|dir| dir.join("rebeam")).collect::<Vec<_>>())
        .unwrap_or_default();
    let candidates: Vec<PathBuf> = explicit
        .map(Path::to_path_buf)
        .into_iter()
        .chain(std::env::var_os("REBEAM_BIN").filter(|p| !p.is_empty()).map(PathBuf::from))
        .chain(beside_python)
        .chain(on_path)
        .collect();
    if let Some(explicit) = explicit {
        // A command the host named is the one it wants: never fall back to another.
        return Ok(explicit.to_path_buf());
    }
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| Error::NoGovernor {
        looked: candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
    })
}

/// A running system owned by this process. Shared between threads by reference (it is
/// `Send + Sync`); dropping it shuts the run down and returns once the governor has exited.
pub struct Runtime {
    pub(crate) client: Arc<Client>,
    pub(crate) child: Option<Child>,
    pub(crate) control: PathBuf,
    pub(crate) private_dir: PathBuf,
    pub(crate) shutdown_wait: Duration,
    /// Where down notices and publications go (see the `monitors` module).
    pub(crate) tables: crate::monitors::Tables,
}

impl Runtime {
    /// A builder with the governor's defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// How many workers the run has (not counting spares).
    pub fn workers(&self) -> u32 {
        self.client.welcome().workers
    }

    /// The governor's process id.
    pub fn governor_pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The safety state, as last broadcast by the governor (no round trip).
    pub fn safety(&self) -> Safety {
        self.client.safety()
    }

    /// Whether the run has ended (the governor is gone).
    pub fn closed(&self) -> bool {
        self.client.closed()
    }

    /// The path of the run's control socket (for `rebeam ctl --socket`), private to this user.
    pub fn control_socket(&self) -> &Path {
        &self.control
    }
}

// The doc above promises it: a compile error here, not a surprise for users.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Runtime>();
};

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.client.request(Request::Shutdown { code: 0 }, Some(SHUTDOWN_ACK_TIMEOUT));
        if let Some(mut child) = self.child.take() {
            let deadline = std::time::Instant::now() + self.shutdown_wait + EXIT_MARGIN;
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if std::time::Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(EXIT_POLL);
            }
        }
        let _ = std::fs::remove_file(&self.control);
        let _ = std::fs::remove_dir(&self.private_dir);
    }
}

/// Says Ready as the main process: the governor starts the run's trees only after it.
pub(crate) fn say_ready(client: &Client) -> Result<(), Error> {
    client.send(&Frame::Ready).map_err(Error::Client)
}

/// Connects as the main process with `token`.
pub(crate) fn connect(socket: &Path, token: &str) -> Result<Client, Error> {
    Client::connect(socket, token, Role::Main).map_err(Error::Client)
}

pub(crate) fn spawn_governor(command: &Path, args: &[String], token: &str, write_end: i32) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(command);
    cmd.args(args).env(env::MAIN_TOKEN, token).stdin(Stdio::null()).stderr(Stdio::piped()).process_group(0);
    // SAFETY: the closure only clears the close-on-exec flag of one descriptor with fcntl,
    // which is async-signal-safe, so it may run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = rustix::fd::BorrowedFd::borrow_raw(write_end);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            Ok(())
        });
    }
    cmd.spawn()
}
