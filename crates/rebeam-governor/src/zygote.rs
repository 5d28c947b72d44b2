//! The zygote: one Python process, started beside the main process and imported once, that
//! forks the run's workers (python/rebeam/_zygote.py is its other half).
//!
//! Why: most of a worker's start is an interpreter starting and importing rebeam; a fork of a
//! process that did both is ready in a few milliseconds, and on a machine with few cores the
//! run then starts two interpreters (main and zygote) where it started one per worker.
//!
//! The rules:
//! - The zygote is spawned as a worker is (the same command, by the spawner: its own group,
//!   dying with the governor), with a worker's environment less the token and index, plus
//!   `ZYGOTE_FD`: its end of a socket pair. Requests (`fork TOKEN INDEX`) and replies (`ready`, `unfit WHY`,
//!   `forked TOKEN PID`, `failed TOKEN WHY`) are one line each, replies in request order; a
//!   thread reads the replies into the router's inputs, and the socket's end is [`Event::Gone`].
//! - A worker asked of the zygote is a process of the run at once, with no pid until `forked`
//!   (or its Hello, whichever comes first) names it. The zygote forks twice, so the worker is
//!   re-parented to the governor, a child subreaper: the governor reaps it, and so sees its death
//!   at once with its exit status, and kills its group, as for a worker it spawned itself.
//!   A reap of a pid the router does not know yet is kept a little (`UNMATCHED_REAPS_KEPT`) for
//!   the `forked` line that may still come.
//! - Only a subreaper may use a zygote (else its workers would be re-parented to init).
//! - When the zygote fails (it dies, is unfit, cannot fork), every worker it had not forked yet
//!   is started as a fresh interpreter, as is every later worker until a new zygote is ready; a
//!   zygote is started again up to `MAX_ZYGOTE_STARTS` times in a run.

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rebeam_proto::Role;

use crate::router::{Input, ProcIdx, ProcState, Router};

/// How many zygotes a run starts at most (the first and its replacements): one that keeps
/// failing costs a start each time, which fresh interpreters do not.
pub const MAX_ZYGOTE_STARTS: u32 = 3;
/// Reaps of unknown pids kept for a `forked` line still on its way (a worker that dies within
/// moments of its fork); more than a few at once would be forks failing in a burst.
pub const UNMATCHED_REAPS_KEPT: usize = 16;

/// What the zygote says (one line each), and the end of its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// It has imported what workers need and serves requests.
    Ready,
    /// It cannot fork safely (a thread was started by an import); it exits.
    Unfit(String),
    Forked {
        token: String,
        pid: u32,
    },
    Failed {
        token: String,
        why: String,
    },
    /// Its socket closed: it died, or exited.
    Gone,
}

/// One reply line as an event (`None`: not a line the zygote writes).
pub fn parse(line: &str) -> Option<Event> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        "ready" if rest.is_empty() => Some(Event::Ready),
        "unfit" => Some(Event::Unfit(rest.to_string())),
        "forked" => {
            let (token, pid) = rest.split_once(' ')?;
            Some(Event::Forked { token: token.to_string(), pid: pid.parse().ok().filter(|&p| p > 0)? })
        }
        "failed" => {
            let (token, why) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(Event::Failed { token: token.to_string(), why: why.to_string() })
        }
        _ => None,
    }
}

/// The request line for one worker.
pub fn request_line(token: &str, index: u32) -> String {
    format!("fork {token} {index}\n")
}

/// The governor's end of a zygote.
pub struct Zygote {
    pub pid: u32,
    /// Which of the run's zygotes this is: a late event of an earlier one is ignored.
    pub generation: u32,
    pub ready: bool,
    /// Killed at shutdown: the run ends once it is reaped too.
    pub killed: bool,
    sock: UnixStream,
}

impl Zygote {
    /// The governor's end of zygote `pid`, which reads requests from the other end of `sock`.
    pub fn new(pid: u32, generation: u32, sock: UnixStream) -> Zygote {
        Zygote { pid, generation, ready: false, killed: false, sock }
    }

    /// Asks for a worker. An error means the zygote is gone (its `Gone` follows).
    pub fn request(&mut self, token: &str, index: u32) -> io::Result<()> {
        self.sock.write_all(request_line(token, index).as_bytes())
    }
}

/// Starts a zygote with `spawn` (the spawner: the zygote is tied to the governor's life as any
/// child is): `cmd` is the zygote's command but for its socket, which this adds. Its events
/// come back as `Input::Zygote(generation, event)`.
pub fn start(
    mut cmd: Command,
    generation: u32,
    spawn: impl FnOnce(Command) -> io::Result<u32>,
    inputs: tokio::sync::mpsc::UnboundedSender<Input>,
) -> io::Result<Zygote> {
    // Both ends close on exec; the child's end is made inheritable between fork and exec.
    let (ours, theirs) = UnixStream::pair()?;
    let fd = theirs.as_raw_fd();
    cmd.env(rebeam_proto::env::ZYGOTE_FD, fd.to_string());
    // SAFETY: fcntl is async-signal-safe, and `fd` stays open in the parent until after spawn.
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let pid = spawn(cmd)?;
    drop(theirs);
    let reader = ours.try_clone()?;
    std::thread::Builder::new().name("rebeam-zygote".into()).spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            match parse(&line) {
                Some(event) => {
                    if inputs.send(Input::Zygote(generation, event)).is_err() {
                        return;
                    }
                }
                None => tracing::warn!("the zygote wrote a line it should not: {line:?}"),
            }
        }
        let _ = inputs.send(Input::Zygote(generation, Event::Gone));
    })?;
    Ok(Zygote::new(pid, generation, ours))
}

/// A worker the zygote was asked for has no pid until it is forked.
pub const NOT_FORKED_YET: u32 = 0;

impl Router {
    /// Starts a zygote if this run may use one (see the module doc); without one, workers start
    /// as fresh interpreters.
    pub(crate) fn start_zygote(&mut self) {
        if !self.config.zygote || !self.subreaper || self.zygote_starts >= MAX_ZYGOTE_STARTS || self.shutdown.is_some()
        {
            return;
        }
        self.zygote_starts += 1;
        // A worker's command: with `ZYGOTE_FD` set, the worker module is the zygote instead.
        let cmd = self.python_command(Role::Worker, "rebeam._worker", None);
        match self.os.start_zygote(cmd, self.zygote_starts) {
            Ok(zygote) => {
                if let Some(z) = &zygote {
                    tracing::debug!("started the zygote (pid {})", z.pid);
                }
                self.zygote = zygote;
            }
            Err(e) => tracing::warn!("cannot start the zygote ({e}); workers start as fresh interpreters"),
        }
    }

    /// Asks the zygote for a worker; false if there is none to ask (then spawn it).
    pub(crate) fn fork_worker(&mut self, token: &str, index: u32) -> bool {
        let Some(z) = self.zygote.as_mut() else { return false };
        match z.request(token, index) {
            Ok(()) => true,
            Err(e) => {
                self.zygote_failed(&format!("cannot write to it: {e}"), true);
                false
            }
        }
    }

    pub(crate) fn on_zygote(&mut self, generation: u32, event: Event) {
        let current = self.zygote.as_ref().is_some_and(|z| z.generation == generation);
        match event {
            // A fork an earlier zygote made before it failed still names its worker.
            Event::Forked { token, pid } => self.on_forked(&token, pid),
            _ if !current => {}
            Event::Ready => {
                tracing::debug!("the zygote is ready");
                if let Some(z) = &mut self.zygote {
                    z.ready = true;
                }
            }
            Event::Unfit(why) => {
                // An import started a thread: so would the next zygote's.
                self.zygote_starts = MAX_ZYGOTE_STARTS;
                self.zygote_failed(&format!("it cannot fork safely: {why}"), false);
            }
            Event::Failed { token, why } => {
                tracing::warn!("the zygote could not fork a worker ({why}); starting it as a fresh interpreter");
                if let Some(idx) = self.procs.find(|p| p.token == token && p.pid == NOT_FORKED_YET) {
                    self.spawn_unforked(idx);
                }
            }
            Event::Gone => self.zygote_failed("it exited", true),
        }
    }

    /// The zygote is of no more use: the workers it owed start as fresh interpreters, and a
    /// new zygote starts (if `again`, and the run has starts left).
    fn zygote_failed(&mut self, why: &str, again: bool) {
        let Some(z) = self.zygote.take() else { return };
        self.os.kill_group(z.pid, libc::SIGKILL);
        if self.shutdown.is_some() {
            // Nothing starts now: the workers it owed were let go (see `stop_zygote`).
            return;
        }
        tracing::warn!(
            "the zygote (pid {}) failed: {why}; workers start as fresh interpreters until another is ready",
            z.pid
        );
        let owed: Vec<ProcIdx> = self
            .procs
            .iter()
            .filter(|(_, p)| p.pid == NOT_FORKED_YET && p.state == ProcState::Spawned)
            .map(|(i, _)| i)
            .collect();
        for idx in owed {
            self.spawn_unforked(idx);
        }
        if again {
            self.start_zygote();
        }
    }

    /// Starts a worker the zygote was asked for, and did not fork, as a fresh interpreter.
    fn spawn_unforked(&mut self, idx: ProcIdx) {
        let (index, token) = (self.procs[idx].index, self.procs[idx].token.clone());
        let cmd = self.python_command(Role::Worker, "rebeam._worker", Some((&token, index)));
        match self.os.spawn(cmd) {
            Ok(pid) => self.procs[idx].pid = pid,
            Err(e) => {
                tracing::error!("cannot start worker {index}: {e}");
                self.proc_died(idx, format!("it could not be started: {e}"), None);
                self.procs.remove(idx);
            }
        }
    }

    /// The zygote forked the worker that presents `token`.
    fn on_forked(&mut self, token: &str, pid: u32) {
        let found = self.procs.find(|p| p.token == token && !p.external);
        match found {
            Some(idx) if self.procs[idx].pid == NOT_FORKED_YET && self.procs[idx].state != ProcState::Dead => {
                self.learn_pid(idx, pid);
            }
            // Its Hello came first and named it.
            Some(idx) if self.procs[idx].pid == pid => {}
            // Nobody waits for it any more (it ended before its fork, or was started afresh).
            _ => {
                tracing::debug!("killing forked worker pid {pid}: no process of the run is waiting for it");
                self.os.kill_group(pid, libc::SIGKILL);
            }
        }
    }

    /// A forked worker's pid is known (from the zygote, or its Hello): if it was reaped
    /// already, its death is handled now.
    pub(crate) fn learn_pid(&mut self, idx: ProcIdx, pid: u32) {
        self.procs[idx].pid = pid;
        match self.unmatched_reaps.iter().position(|&(p, _)| p == pid) {
            Some(at) => {
                let (_, exit) = self.unmatched_reaps.remove(at).expect("found just now");
                self.on_reaped(pid, exit);
            }
            None => self.os.adopted(pid),
        }
    }

    /// At shutdown: the workers the zygote has not forked are let go (a late fork is killed),
    /// and the zygote is killed; whether the run still waits for its reap. Waiting for it, as
    /// for any process, lets the last replies (the main process's `shutdown()`) be written.
    pub(crate) fn stop_zygote(&mut self) -> bool {
        for i in self.procs.ids() {
            if self.procs[i].pid == NOT_FORKED_YET && self.procs[i].state == ProcState::Spawned {
                self.procs[i].state = ProcState::Dead;
            }
        }
        let Some(z) = &mut self.zygote else { return false };
        if !z.killed {
            z.killed = true;
            self.os.kill_group(z.pid, libc::SIGKILL);
        }
        true
    }

    /// A reap of a pid no process of the run has (yet): kept for a `forked` line on its way.
    pub(crate) fn reaped_unknown(&mut self, pid: u32, exit: crate::process::ProcessExit) {
        if self.zygote.as_ref().is_some_and(|z| z.pid == pid) {
            // Its socket's end may come before or after: whichever is first ends this zygote.
            tracing::debug!("reaped the zygote ({exit})");
            self.zygote_failed(&format!("it died ({exit})"), true);
            return;
        }
        tracing::debug!("reaped orphan pid {pid} ({exit})");
        if self.unmatched_reaps.len() == UNMATCHED_REAPS_KEPT {
            self.unmatched_reaps.pop_front();
        }
        self.unmatched_reaps.push_back((pid, exit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_the_zygote_writes_is_read() {
        assert_eq!(parse("ready"), Some(Event::Ready));
        assert_eq!(
            parse("unfit 3 threads after the imports"),
            Some(Event::Unfit("3 threads after the imports".into()))
        );
        assert_eq!(parse("forked ab12 4242"), Some(Event::Forked { token: "ab12".into(), pid: 4242 }));
        assert_eq!(
            parse("failed ab12 [Errno 11] Resource temporarily unavailable"),
            Some(Event::Failed { token: "ab12".into(), why: "[Errno 11] Resource temporarily unavailable".into() })
        );
    }

    #[test]
    fn lines_it_does_not_write_are_not_events() {
        for line in ["", "ready now", "forked ab12", "forked ab12 x", "forked ab12 0", "fork ab12 1", "hello"] {
            assert_eq!(parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn a_request_is_one_line_the_zygote_splits_in_three() {
        let line = request_line("ab12", 7);
        assert_eq!(line, "fork ab12 7\n");
        assert_eq!(line.trim_end().split(' ').count(), 3);
    }
}
