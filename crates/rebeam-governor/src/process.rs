//! Starting, reaping and killing the governor's child processes.
//!
//! Why a dedicated spawner thread: PR_SET_PDEATHSIG fires when the *thread* that forked the
//! child exits, not the process. Children forked from a short-lived thread (a tokio blocking
//! task, say) would be killed when that thread retires. One thread that lives as long as the
//! governor forks every child.
//!
//! Why a reaper thread calling `waitpid(-1)`: the governor is a child subreaper, so orphaned
//! grandchildren (a worker's own subprocesses) are re-parented to it and must be reaped too, not
//! left as zombies. One loop reaps everything and reports the exits it cares about.
//!
//! Why a panic guard: PR_SET_PDEATHSIG kills a child when the governor dies, but not the
//! child's own subprocesses, and a panic in a tokio task would not even end the governor.
//! So a panic anywhere kills every process group the governor started (kept in a global that
//! the spawner and the reaper update), removes its sockets, and exits with
//! [`PANIC_EXIT_STATUS`] and a clear message.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::router::Input;

/// The status of a governor that panicked (EX_SOFTWARE: an internal error).
pub const PANIC_EXIT_STATUS: i32 = rebeam_core::defaults::INTERNAL_ERROR_EXIT_STATUS;

/// Process groups started and not yet reaped: what the panic guard kills.
static STARTED_GROUPS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
/// Socket files the panic guard removes.
static SOCKETS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn guarded<T>(global: &Mutex<T>, f: impl FnOnce(&mut T)) {
    f(&mut global.lock().unwrap_or_else(|p| p.into_inner()));
}

/// Another thread holds these locks only for an insert or a removal, so waiting a little gets
/// them; the panicking thread itself may hold one, so it must not wait forever.
fn lock_in_panic<T>(global: &Mutex<T>) -> Option<std::sync::MutexGuard<'_, T>> {
    for _ in 0..100 {
        match global.try_lock() {
            Ok(guard) => return Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => thread::sleep(Duration::from_millis(1)),
        }
    }
    None
}

/// Names the socket files to remove if the governor panics.
pub fn guard_sockets(paths: &[&std::path::Path]) {
    guarded(&SOCKETS, |s| s.extend(paths.iter().map(|p| p.to_path_buf())));
}

/// Installs the panic guard (see the module doc). Call once, before any child is started.
pub fn install_panic_guard() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        eprintln!(
            "rebeam: the governor hit an internal error (a bug in rebeam; please report it with the message above); \
             killing every process it started and exiting with status {PANIC_EXIT_STATUS}"
        );
        if let Some(groups) = lock_in_panic(&STARTED_GROUPS) {
            for &pgid in groups.iter() {
                kill_group(pgid, libc::SIGKILL);
            }
        }
        if let Some(sockets) = lock_in_panic(&SOCKETS) {
            for path in sockets.iter() {
                let _ = std::fs::remove_file(path);
            }
        }
        std::process::exit(PANIC_EXIT_STATUS);
    }));
}

/// The hidden test hook `REBEAM_TEST_PANIC_AFTER_MS`, read once at start-up: panic on purpose
/// after that long, so tests can check that the guard leaves no process behind.
pub fn test_panic_after() -> Option<Duration> {
    std::env::var(rebeam_proto::env::TEST_PANIC_AFTER_MS).ok()?.parse().ok().map(Duration::from_millis)
}

type SpawnJob = (Command, mpsc::Sender<io::Result<u32>>);

/// Everything the router does to the world outside its own state: start a process, signal a
/// process or a group, ask to be woken later, and read the clock. The router does all of it through this one
/// trait, so a test can drive a `Router` with a recording fake and no real process is ever
/// touched; [`RealOs`] is the only implementation that reaches the kernel.
pub trait Os: Send {
    /// Starts `cmd` (see [`Spawner::spawn`]); returns its pid.
    fn spawn(&self, cmd: Command) -> io::Result<u32>;
    /// Sends `sig` to one process.
    fn kill(&self, pid: u32, sig: i32);
    /// Sends `sig` to a whole process group (the child and everything it started).
    fn kill_group(&self, pgid: u32, sig: i32);
    /// Hands `input` back to the router after `delay`.
    fn after(&self, delay: Duration, input: Input);
    /// The monotonic clock (call deadlines, restart windows, throttles).
    fn now(&self) -> Instant;
}

/// The real processes, signals and timers of a run.
pub struct RealOs {
    spawner: Spawner,
    inputs: tokio::sync::mpsc::UnboundedSender<Input>,
}

impl RealOs {
    pub fn new(inputs: tokio::sync::mpsc::UnboundedSender<Input>) -> Self {
        RealOs { spawner: Spawner::start(), inputs }
    }
}

impl Os for RealOs {
    fn spawn(&self, cmd: Command) -> io::Result<u32> {
        self.spawner.spawn(cmd)
    }

    fn kill(&self, pid: u32, sig: i32) {
        kill(pid, sig);
    }

    fn kill_group(&self, pgid: u32, sig: i32) {
        kill_group(pgid, sig);
    }

    fn after(&self, delay: Duration, input: Input) {
        let tx = self.inputs.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(input);
        });
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Handle to the long-lived spawner thread.
#[derive(Clone)]
pub struct Spawner {
    jobs: mpsc::Sender<SpawnJob>,
}

impl Spawner {
    pub fn start() -> Self {
        let (jobs, rx) = mpsc::channel::<SpawnJob>();
        thread::Builder::new()
            .name("rebeam-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn().map(|child| child.id()));
                }
            })
            .expect("spawn the spawner thread");
        Spawner { jobs }
    }

    /// Spawns `cmd` in its own process group, tied to the governor's life. Returns its pid.
    pub fn spawn(&self, mut cmd: Command) -> io::Result<u32> {
        let governor = std::process::id() as libc::pid_t;
        cmd.stdin(Stdio::inherit()).process_group(0);
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The governor may have died between fork and prctl; then no signal will come.
                if libc::getppid() != governor {
                    libc::_exit(rebeam_core::defaults::INTERNAL_ERROR_EXIT_STATUS);
                }
                Ok(())
            });
        }
        let (tx, rx) = mpsc::channel();
        self.jobs.send((cmd, tx)).map_err(|_| io::Error::other("spawner thread is gone"))?;
        let pid = rx.recv().map_err(|_| io::Error::other("spawner thread is gone"))??;
        guarded(&STARTED_GROUPS, |g| {
            g.insert(pid);
        });
        Ok(pid)
    }
}

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessExit {
    Code(i32),
    Signal(i32),
}

impl ProcessExit {
    /// The status a shell would report for it.
    pub fn shell_status(self) -> i32 {
        match self {
            ProcessExit::Code(c) => c,
            ProcessExit::Signal(s) => 128 + s,
        }
    }
}

impl std::fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessExit::Code(c) => write!(f, "exit status {c}"),
            ProcessExit::Signal(s) => write!(f, "killed by {}", signal_name(*s)),
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// Starts the reaper thread; `on_exit` is called for every reaped pid.
pub fn start_reaper(on_exit: impl Fn(u32, ProcessExit) + Send + 'static) {
    thread::Builder::new()
        .name("rebeam-reaper".into())
        .spawn(move || loop {
            let mut status: libc::c_int = 0;
            // SAFETY: plain syscall with a valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
            if pid < 0 {
                // ECHILD: nothing to reap yet; children are spawned later or all are gone.
                thread::sleep(Duration::from_millis(5));
                continue;
            }
            // Once reaped, the pid (and so the group id) may be reused by someone else's process.
            guarded(&STARTED_GROUPS, |g| {
                g.remove(&(pid as u32));
            });
            let exit = if libc::WIFSIGNALED(status) {
                ProcessExit::Signal(libc::WTERMSIG(status))
            } else {
                ProcessExit::Code(libc::WEXITSTATUS(status))
            };
            on_exit(pid as u32, exit);
        })
        .expect("spawn the reaper thread");
}

/// Makes the governor the reaper of every orphan below it.
pub fn become_subreaper() {
    // SAFETY: plain prctl on our own process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// Sends `sig` to a whole process group (the child and everything it started).
fn kill_group(pgid: u32, sig: i32) {
    // SAFETY: plain syscall; a stale pgid at worst returns ESRCH.
    unsafe {
        libc::killpg(pgid as libc::pid_t, sig);
    }
}

fn kill(pid: u32, sig: i32) {
    // SAFETY: plain syscall.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// A random hex token (the one-time credential a child presents in its Hello).
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut bytes)).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes[..16].copy_from_slice(&t.as_nanos().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
