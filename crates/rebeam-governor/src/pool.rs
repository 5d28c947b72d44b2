//! The process pool: spawning the main process and the workers, their handshakes, their
//! deaths, and their replacement.
//!
//! The rules (placement, warming, replacement, early deaths) are `rebeam_core::pool`'s; this
//! file turns them into spawns and frames. The main process and the pool's workers start at
//! once (the workers forked by the zygote when there is one: see zygote.rs); the ready workers are told to preload when all of those workers are ready, and the
//! spares start once, besides, the main process is ready, the first actor start has ended and
//! no actor is starting, so neither competes for the cores with what the first placement and
//! the first reply wait for. A worker that dies is replaced by the warm spare
//! (which is ready, so restarts do not wait for Python to start) and a new spare is started.
//! Past `MAX_EARLY_WORKER_DEATHS` workers dying before they were ready, the run stops with a
//! message that says which interpreter cannot `import rebeam._rebeam`.
//!
//! A death is handled in one place, `proc_died`: it marks the process dead, has every part of
//! the state forget it (`forget_dead_proc`, one line per part), then ends its actors.

use std::process::Command;

use rebeam_proto::{
    env, ActorId, Command as Cmd, ErrorInfo, ErrorKind, Frame, Outcome, ProtoError, Response, Role, PROTOCOL_VERSION,
};

use crate::listener::{Hello, Refusal};
use crate::process::{self, ProcessExit};
use rebeam_core::pool;

use crate::router::{Input, Proc, ProcIdx, ProcState, Router, LOST_GRACE};
use crate::{GovernorError, Program, READY_TIMEOUT};

impl Router {
    pub(crate) fn start_processes(&mut self) -> Result<(), GovernorError> {
        // The zygote first, then the main process beside it: the zygote's imports are the
        // longer way to the first reply (a worker is a fork of it), so it gets the head start
        // of the main process's spawn. The workers are forks of it.
        self.start_zygote();
        self.main = match &self.config.program {
            Program::Script { .. } => self.spawn_process(Role::Main, 0, false)?,
            Program::Library { parent, token, .. } => self.procs.insert(Proc {
                role: Role::Main,
                index: 0,
                pid: *parent,
                token: token.clone(),
                state: ProcState::Spawned,
                tx: None,
                spare: false,
                lost: false,
                external: true,
                reaped: false,
            }),
        };
        for i in 0..self.config.workers {
            self.spawn_process(Role::Worker, i as u32 + 1, false)?;
        }
        self.spares_pending = self.config.spares;
        self.start_due_spares();
        tracing::info!(
            "started {} with {} workers (+{} spare) using {}; control socket {}",
            self.config.program.describe(),
            self.config.workers,
            self.config.spares,
            self.config.python.display(),
            self.control_path.display()
        );
        Ok(())
    }

    pub(crate) fn spawn_process(&mut self, role: Role, index: u32, spare: bool) -> Result<ProcIdx, GovernorError> {
        let token = process::random_token();
        // A worker is forked by the zygote when there is one (see zygote.rs), its pid known later.
        let pid = if role == Role::Worker && self.fork_worker(&token, index) {
            crate::zygote::NOT_FORKED_YET
        } else {
            let module = if role == Role::Main { "rebeam._main" } else { "rebeam._worker" };
            let cmd = self.python_command(role, module, Some((&token, index)));
            let what = match role {
                Role::Main => "the main process".to_string(),
                Role::Worker => format!("worker {index}"),
            };
            self.os.spawn(cmd).map_err(|source| GovernorError::Spawn {
                what,
                python: self.config.python.clone(),
                source,
            })?
        };
        self.last_index = self.last_index.max(index);
        let idx = self.procs.insert(Proc {
            role,
            index,
            pid,
            token,
            state: ProcState::Spawned,
            tx: None,
            spare,
            lost: false,
            external: false,
            reaped: false,
        });
        match pid {
            crate::zygote::NOT_FORKED_YET => tracing::debug!("asked the zygote for worker {index}"),
            _ => tracing::debug!("spawned {}", self.procs[idx].describe()),
        }
        self.after(READY_TIMEOUT, Input::ReadyDeadline(idx));
        Ok(idx)
    }

    /// The command that runs `python -m module` as a process of the run in `role`, with the
    /// environment every one of them gets; `id` is its token and index (none for the zygote:
    /// each worker it forks gets its own).
    pub(crate) fn python_command(&self, role: Role, module: &str, id: Option<(&str, u32)>) -> Command {
        let mut cmd = Command::new(&self.config.python);
        cmd.args(["-m", module]);
        // A worker may import the script (code sent by reference): its module level then
        // sees the `sys.argv` the main process saw, as multiprocessing's spawn does.
        if let Program::Script { argv0, args, .. } = &self.config.program {
            cmd.arg(argv0).args(args);
        }
        if let Some((token, index)) = id {
            cmd.env(env::TOKEN, token).env(env::INDEX, index.to_string());
        }
        cmd.env(env::SOCKET, &self.socket_path)
            // The control socket's path stays with the host (see control.rs).
            .env_remove(env::CONTROL)
            .env(env::ROLE, if role == Role::Main { "main" } else { "worker" })
            .env(
                env::SCRIPT,
                match &self.config.program {
                    Program::Script { script, .. } => script.as_os_str(),
                    Program::Library { .. } => std::ffi::OsStr::new(""),
                },
            )
            .env(env::GOVERNOR_PID, std::process::id().to_string())
            .env(env::LOG, &self.config.log_filter)
            .env(
                env::SAFETY,
                match self.config.safety {
                    crate::SafetyMode::Marked => "marked",
                    crate::SafetyMode::RequireArmed => "require-armed",
                },
            );
        if let Some(user) = &self.config.python_user {
            // std sets these between fork and exec, before our pre_exec hook (PDEATHSIG).
            use std::os::unix::process::CommandExt;
            cmd.uid(user.uid).gid(user.gid).env("HOME", &user.home).env("USER", &user.name).env("LOGNAME", &user.name);
        }
        cmd
    }

    pub(crate) fn on_hello(&mut self, hello: Hello) {
        let found = self.procs.find(|p| p.token == hello.token && p.state == ProcState::Spawned);
        let verdict = match found {
            _ if hello.version != PROTOCOL_VERSION => Err(format!(
                "protocol version {} (this governor speaks {PROTOCOL_VERSION}); the Python package and the rebeam binary are from different builds",
                hello.version
            )),
            None => Err("unknown or reused token".to_string()),
            // A forked worker's Hello may come before the zygote's word of its pid: its token
            // is the credential.
            Some(idx)
                if self.procs[idx].role != hello.role
                    || (self.procs[idx].pid != hello.pid && self.procs[idx].pid != crate::zygote::NOT_FORKED_YET) =>
            {
                Err(format!("token of {} presented by pid {}", self.procs[idx].describe(), hello.pid))
            }
            Some(idx) => Ok(idx),
        };
        if let Ok(idx) = verdict {
            if self.procs[idx].pid == crate::zygote::NOT_FORKED_YET {
                self.learn_pid(idx, hello.pid);
                if !self.is_live(idx) {
                    // It was reaped before anyone knew its pid (see zygote.rs).
                    let late = self.shutdown.is_some();
                    let _ = hello.accept.send(Err(Refusal { why: "it has died already".to_string(), late }));
                    return;
                }
            }
            let p = &mut self.procs[idx];
            p.tx = Some(hello.writer);
            p.state = ProcState::Connected;
            let welcome = Frame::Welcome {
                index: p.index,
                max_message_bytes: self.config.max_message_bytes,
                workers: self.config.workers as u32,
            };
            self.send(idx, welcome);
        }
        let late = self.shutdown.is_some();
        let _ = hello.accept.send(verdict.map_err(|why| Refusal { why, late }));
    }

    pub(crate) fn on_ready(&mut self, proc: ProcIdx) {
        let p = &mut self.procs[proc];
        p.state = ProcState::Ready;
        tracing::debug!("{} is ready", p.describe());
        let state = self.safety_state();
        self.send(proc, Frame::Command(Cmd::Safety { state }));
        let p = &self.procs[proc];
        if p.role == Role::Worker {
            self.early_deaths.ready();
            self.send_sys_path(proc);
            self.send_codes(proc);
            self.preloads_pending.push(proc);
            self.send_due_preloads();
            self.dispatch_queued_starts();
            self.dispatch_waiting_behaviours();
        }
        // Last: a spawn holds this loop up until the new process has started.
        self.start_due_spares();
    }

    pub(crate) fn on_lost(&mut self, proc: ProcIdx, err: ProtoError) {
        let Some(p) = self.procs.get_mut(proc).filter(|p| p.state != ProcState::Dead) else {
            return;
        };
        p.tx = None;
        match err {
            // A process that dies mid-write leaves a reset or a half frame behind: that is a
            // death, not a protocol violation. Wait for its exit status to name the cause.
            ProtoError::Closed | ProtoError::Truncated { .. } | ProtoError::Io(_) => {
                tracing::debug!("lost the connection of {} ({err})", p.describe());
                p.lost = true;
                self.after(LOST_GRACE, Input::LostGrace(proc));
            }
            err @ (ProtoError::Malformed(_) | ProtoError::TooLarge { .. }) => {
                tracing::warn!("{} sent a bad frame ({err}); dropping it", p.describe());
                self.drop_peer(proc, "it sent a malformed frame");
            }
        }
    }

    /// Cuts off a misbehaving process: kills it and treats it as dead.
    pub(crate) fn drop_peer(&mut self, proc: ProcIdx, why: &str) {
        self.kill_proc(proc);
        self.proc_died(proc, format!("dropped by the governor because {why}"), None);
    }

    pub(crate) fn on_reaped(&mut self, pid: u32, exit: ProcessExit) {
        let found = self.procs.find(|p| p.pid == pid);
        match found {
            Some(proc) => {
                // Kill what the process left behind in its group (its own subprocesses).
                self.os.kill_group(pid, libc::SIGKILL);
                if self.procs[proc].state != ProcState::Dead {
                    self.proc_died(proc, exit.to_string(), Some(exit));
                }
                self.procs[proc].reaped = true;
                // A reaped worker can do nothing more (its pid may be someone else's soon): its
                // slot is freed, and its id, wherever it is still held, finds nothing. The main
                // process stays: the run's end reads its state.
                if self.procs[proc].role == Role::Worker {
                    self.procs.remove(proc);
                }
            }
            None => self.reaped_unknown(pid, exit),
        }
    }

    pub(crate) fn proc_died(&mut self, proc: ProcIdx, why: String, exit: Option<ProcessExit>) {
        let p = &mut self.procs[proc];
        let was = p.state;
        p.state = ProcState::Dead;
        p.tx = None;
        let role = p.role;
        let spare = p.spare;
        let desc = p.describe();
        let actors: Vec<ActorId> = self.actors.take_on(proc);
        self.channels_peer_died(proc, &format!("{desc} died: {why}"));
        self.forget_dead_proc(proc);

        if role == Role::Main {
            // The old run of a script being restarted: its end was already counted.
            if self.shutdown.is_none() && !self.main_restarting() {
                let code = exit.map(ProcessExit::shell_status).filter(|&c| c != 0).unwrap_or(1);
                if was == ProcState::Ready {
                    tracing::error!("the main process died unexpectedly ({why})");
                } else {
                    tracing::error!(
                        "the main process exited before it was ready ({why}); check that {} can `import rebeam` \
                         (install rebeam into that environment, or choose another with --python / REBEAM_PYTHON)",
                        self.config.python.display()
                    );
                }
                self.program_ended(code, "the main process died");
            }
            return;
        }
        if self.shutdown.is_some() {
            for a in actors {
                self.actor_ended(a, rebeam_proto::Exit::Killed(format!("{desc} exited during shutdown")));
            }
            return;
        }
        if was != ProcState::Ready {
            tracing::error!("{desc} died before it was ready ({why})");
            if self.early_deaths.died() {
                tracing::error!(
                    // The same words as the main process's early death: whichever is noticed
                    // first, the user is told the one thing to check.
                    "workers keep dying at start-up; check that {} can `import rebeam` and its native module \
                     `rebeam._rebeam` (install rebeam into that environment, or choose another with --python / \
                     REBEAM_PYTHON)",
                    self.config.python.display()
                );
                self.begin_shutdown(1, "workers cannot start");
                return;
            }
        } else {
            tracing::warn!("{desc} died ({why}); restarting its {} actor(s) elsewhere", actors.len());
        }
        self.replace_worker(spare);
        let fault = self.next_id();
        for a in actors {
            self.actor_ended_in_fault(a, rebeam_proto::Exit::Killed(format!("{desc} died: {why}")), Some(fault));
        }
    }

    /// The one place a dead process is forgotten: every part of the state that remembers a
    /// process on its own behalf (not through one of its actors: those end one by one after
    /// this, with the supervisors' fault accounting) has its line here, so none is missed. A
    /// new part that holds a `ProcIdx` adds its line; the model test's invariants check that
    /// nothing names a dead process afterwards.
    fn forget_dead_proc(&mut self, proc: ProcIdx) {
        // Calls it made: nobody is left to read their replies (gated work it asked for runs on).
        self.calls.proc_died(proc);
        // Calls it had yet to answer itself, to actors that had ended there (see `calls`).
        let owed = self.calls.worker_died(proc);
        let who = self.procs.get(proc).map_or_else(|| "its worker".to_string(), |p| p.describe());
        for caller in owed.callers {
            let info = ErrorInfo::new(ErrorKind::ActorDown, format!("{who} died before it answered"));
            self.send(caller.proc, Frame::Response { req: caller.req, body: Response::Call(Outcome::Failed(info)) });
        }
        if owed.gated {
            self.gated_work_ended();
        }
        // Behaviours running or gathering their cowns there: their cowns are lost.
        self.boc_proc_died(proc);
        // Its `receive()` waits.
        self.messages_proc_died(proc);
        // Its bus subscriptions.
        self.unsubscribe_proc(proc);
        // Monitors it set from outside any actor: nobody is left to notify.
        self.monitors.retain(|_, m| m.watcher_proc != proc);
        // A Preload it was waiting for.
        self.preloads_pending.retain(|&p| p != proc);
        // Its channels: a process that replaces it gets new ones.
        self.channels.proc_died(proc);
    }

    /// Promotes the warm spare into the pool (or starts a new worker) and starts a new spare.
    pub(crate) fn replace_worker(&mut self, dead_was_spare: bool) {
        let next_index = self.last_index + 1;
        let plan = pool::replace(dead_was_spare, self.workers());
        if let Some(s) = plan.promote {
            self.procs[s].spare = false;
        }
        if plan.spawn_worker {
            if let Err(e) = self.spawn_process(Role::Worker, next_index, false) {
                tracing::error!("cannot replace a dead worker: {e}");
            }
        }
        if plan.spawn_spare {
            if let Err(e) = self.spawn_process(Role::Worker, next_index, true) {
                tracing::error!("cannot start a spare worker: {e}");
            }
        }
        // The dead worker may have been the last one still starting.
        self.send_due_preloads();
        self.start_due_spares();
        self.dispatch_queued_starts();
    }

    /// Sends Preload to the ready workers once no pool worker is still starting: until then
    /// the CPU goes to the workers' own start, which the first placement waits for.
    fn send_due_preloads(&mut self) {
        if self.pool_warming() {
            return;
        }
        for proc in std::mem::take(&mut self.preloads_pending) {
            self.send(proc, Frame::Command(Cmd::Preload));
        }
    }

    /// The hold on the first spares is over (`pool::SPARES_HOLD`).
    pub(crate) fn on_spares_hold(&mut self) {
        self.spares_hold_over = true;
        self.start_due_spares();
    }

    /// Starts the spares that were held back while the run started (see `pool::spares_due`).
    /// Called whenever that may have changed: a process is ready or dead, an actor started
    /// or ended.
    pub(crate) fn start_due_spares(&mut self) {
        // Only the first spares are ever held back: once none is pending there is nothing to
        // look at (so the scan of the actors costs nothing after start-up).
        if self.shutdown.is_some() || self.spares_pending == 0 {
            return;
        }
        let main_starting = self.procs.get(self.main).is_some_and(|m| m.state == ProcState::Spawned);
        let actor_starting = self.actors.values().any(|a| !a.started);
        let first = self.first_start_ended;
        if pool::begin_hold(main_starting, actor_starting, self.pool_warming(), first, self.spares_hold_begun) {
            self.spares_hold_begun = true;
            self.after(pool::SPARES_HOLD, Input::SparesHold);
        }
        let settled = pool::settled(main_starting, actor_starting, first, self.spares_hold_over);
        for _ in 0..pool::spares_due(self.spares_pending, settled, self.workers()) {
            self.spares_pending -= 1;
            if let Err(e) = self.spawn_process(Role::Worker, self.last_index + 1, true) {
                tracing::error!("cannot start a spare worker: {e}");
            }
        }
    }

    /// True while a (non-spare) pool worker has been spawned but is not ready yet.
    pub fn pool_warming(&self) -> bool {
        // Asked for every behaviour scheduled or done: no list made for it.
        pool::warming(self.live_workers())
    }

    /// The ready, non-spare worker with the fewest actors.
    pub fn place(&self) -> Option<ProcIdx> {
        pool::place(self.workers())
    }

    /// The live workers as the pool's rules see them, in slot order.
    fn workers(&self) -> Vec<pool::Worker<ProcIdx>> {
        self.live_workers().collect()
    }

    fn live_workers(&self) -> impl Iterator<Item = pool::Worker<ProcIdx>> + '_ {
        self.procs.iter().filter(|(_, p)| p.role == Role::Worker && p.state != ProcState::Dead).map(|(id, p)| {
            pool::Worker { id, spare: p.spare, ready: p.state == ProcState::Ready, load: self.actors.count_on(id) }
        })
    }

    pub(crate) fn kill_everything(&mut self) {
        // Process groups outlive their leader: dead ones may have stragglers too.
        for proc in self.procs.ids() {
            self.kill_proc(proc);
        }
        if let Some(z) = &self.zygote {
            self.os.kill_group(z.pid, libc::SIGKILL);
        }
    }

    /// SIGKILLs a process and its group, unless it is not ours to kill (library mode's main).
    /// A worker the zygote has not forked yet has no pid: nothing to signal (see zygote.rs).
    pub fn kill_proc(&self, proc: ProcIdx) {
        if let Some(p) = self.procs.get(proc).filter(|p| !p.external) {
            self.os.kill_group(p.pid, libc::SIGKILL);
        }
    }
}
