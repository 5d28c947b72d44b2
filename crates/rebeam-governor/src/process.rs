//! Starting, reaping and killing the governor's child processes.
//!
//! Why safe wrappers: every call into the kernel here goes through rustix (waitpid, kill, killpg,
//! prctl) and the token comes from `getrandom`; the only `unsafe` left is `pre_exec` itself, which
//! std marks unsafe because the closure runs between fork and exec.
//!
//! Why a dedicated spawner thread: PR_SET_PDEATHSIG fires when the *thread* that forked the
//! child exits, not the process. Children forked from a short-lived thread (a tokio blocking
//! task, say) would be killed when that thread retires. One thread that lives as long as the
//! governor forks every child.
//!
//! Why a reaper thread calling `waitpid(-1)`: the governor is a child subreaper, so orphaned
//! grandchildren (a worker's own subprocesses) are re-parented to it and must be reaped too, not
//! left as zombies. One loop reaps everything and reports the exits it cares about. When it has
//! no child at all (ECHILD), it sleeps on [`SPAWNS`] until the spawner starts one: every process
//! below the governor descends from a living child (an orphan is re-parented to us the moment its
//! parent dies, before we reap that parent), so no child means nothing can appear to reap until
//! the next spawn.
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
use std::sync::{mpsc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

use crate::router::Input;

/// Bytes of randomness in a child's token (128 bits: not guessable by another local process).
const TOKEN_BYTES: usize = 16;
/// How a child exits if the governor died before the child could tie itself to the governor's
/// life (EX_SOFTWARE, as the governor's own internal errors).
const ORPHANED_CHILD_STATUS: i32 = rebeam_core::defaults::INTERNAL_ERROR_EXIT_STATUS;

/// The status of a governor that panicked (EX_SOFTWARE: an internal error).
pub const PANIC_EXIT_STATUS: i32 = rebeam_core::defaults::INTERNAL_ERROR_EXIT_STATUS;

/// Process groups started and not yet reaped: what the panic guard kills.
static STARTED_GROUPS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
/// How many children the spawner has started: the reaper, out of children, waits for it to grow.
static SPAWNS: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());
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
    /// Creates a direct channel between processes `a` and `b` (`channels.rs`): `a`'s end first.
    fn open_channel(&self, a: u32, b: u32) -> io::Result<(crate::channels::EndFds, crate::channels::EndFds)>;

    /// What process `pid` uses of the machine, for the status report (`None`: unknown; a
    /// fake process uses nothing that can be read).
    fn usage(&self, _pid: u32) -> Option<rebeam_proto::ProcessUsage> {
        None
    }

    /// Starts a zygote with `cmd` (see zygote.rs); `None`: this OS forks no workers, so every
    /// worker is spawned.
    fn start_zygote(&self, _cmd: Command, _generation: u32) -> io::Result<Option<crate::zygote::Zygote>> {
        Ok(None)
    }

    /// A child that the governor did not spawn itself (a worker forked by the zygote, re-parented
    /// to it) is one of its processes from now on: its group is killed if the governor panics.
    fn adopted(&self, _pid: u32) {}
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

    fn open_channel(&self, a: u32, b: u32) -> io::Result<(crate::channels::EndFds, crate::channels::EndFds)> {
        crate::channels::create(a, b, crate::channels::CHANNEL_RING_BYTES)
    }

    fn usage(&self, pid: u32) -> Option<rebeam_proto::ProcessUsage> {
        crate::usage::read(pid)
    }

    fn start_zygote(&self, cmd: Command, generation: u32) -> io::Result<Option<crate::zygote::Zygote>> {
        crate::zygote::start(cmd, generation, |cmd| self.spawner.spawn(cmd), self.inputs.clone()).map(Some)
    }

    fn adopted(&self, pid: u32) {
        guarded(&STARTED_GROUPS, |g| {
            g.insert(pid);
        });
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
        let governor = rustix::process::getpid();
        cmd.stdin(Stdio::inherit()).process_group(0);
        // SAFETY: only async-signal-safe calls (the prctl and getppid syscalls, _exit) run
        // between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // The governor may have died between fork and prctl; then no signal will come.
                if rustix::process::getppid() != Some(governor) {
                    libc::_exit(ORPHANED_CHILD_STATUS);
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
        guarded(&SPAWNS.0, |n| *n += 1);
        SPAWNS.1.notify_all();
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
            // Read before waiting: a spawn after this read makes the wait below return at once.
            let spawns = *SPAWNS.0.lock().unwrap_or_else(|p| p.into_inner());
            match rustix::process::wait(WaitOptions::empty()) {
                Ok(Some((pid, status))) => {
                    let pid = pid.as_raw_nonzero().get() as u32;
                    // Once reaped, the pid (and so the group id) may be reused by someone else's process.
                    guarded(&STARTED_GROUPS, |g| {
                        g.remove(&pid);
                    });
                    on_exit(pid, exit_of(status));
                }
                // ECHILD: no child yet, or all are gone; nothing can appear before the next spawn.
                Err(rustix::io::Errno::CHILD) => wait_for_spawn(spawns),
                // EINTR (or `wait` without WNOHANG returning no pid, which it does not): again.
                Ok(None) | Err(_) => {}
            }
        })
        .expect("spawn the reaper thread");
}

/// Blocks until the spawner has started more than `seen` children.
fn wait_for_spawn(seen: u64) {
    let (count, grew) = &SPAWNS;
    let guard = count.lock().unwrap_or_else(|p| p.into_inner());
    let _guard = grew.wait_while(guard, |n| *n == seen).unwrap_or_else(|p| p.into_inner());
}

fn exit_of(status: WaitStatus) -> ProcessExit {
    match (status.terminating_signal(), status.exit_status()) {
        (Some(sig), _) => ProcessExit::Signal(sig),
        (None, Some(code)) => ProcessExit::Code(code),
        // `wait` without WUNTRACED/WCONTINUED reports only ended children; keep the old reading.
        (None, None) => ProcessExit::Code(0),
    }
}

/// Makes the governor the reaper of every orphan below it; whether it is.
pub fn become_subreaper() -> bool {
    match rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("cannot become the reaper of orphaned processes: {e}");
            false
        }
    }
}

/// Sends `sig` to a whole process group (the child and everything it started).
fn kill_group(pgid: u32, sig: i32) {
    // A stale group at worst gives ESRCH: it is gone already, which is what the caller wanted.
    if let (Some(pgid), Some(sig)) = (pid_of(pgid), Signal::from_named_raw(sig)) {
        let _ = rustix::process::kill_process_group(pgid, sig);
    }
}

fn kill(pid: u32, sig: i32) {
    if let (Some(pid), Some(sig)) = (pid_of(pid), Signal::from_named_raw(sig)) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// A child's pid as rustix names it (`None` for 0 or one past `i32`: never a child of ours).
fn pid_of(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

/// A random hex token (the one-time credential a child presents in its Hello).
///
/// Panics if the kernel has no randomness to give: a guessable token would let any local
/// process pose as a worker, and there is no safe fallback.
pub fn random_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).expect("the kernel's random source (getrandom) failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hex_of_the_documented_length_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 2 * TOKEN_BYTES);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn pids_outside_the_kernel_range_are_never_signalled() {
        assert_eq!(pid_of(0), None);
        assert_eq!(pid_of(u32::MAX), None);
        assert_eq!(pid_of(1).map(Pid::as_raw_nonzero).map(|p| p.get()), Some(1));
    }
}
