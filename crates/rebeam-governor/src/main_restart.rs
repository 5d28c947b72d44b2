//! Restarting the main process: `rebeam --restart never|on-failure|always main.py`.
//!
//! The script is supervised as OTP supervises a child: it is the one child of a one-for-one
//! [`Supervisor`] of rebeam-core, so the restart arithmetic (intensity, its window) is the same
//! as every tree's. The rules:
//! - A *program end* is this child's exit: the script raised, the main process died, the
//!   script finished with nothing left running, or its root supervisor failed. Exit status 0 is
//!   a normal exit, anything else a crash.
//! - `never`, `on-failure`, `always` are the restart kinds temporary, transient, permanent: a
//!   program end restarts the script unless the kind says no or the intensity is used up
//!   (`--max-restarts` within `--restart-window` seconds; past it rebeam gives up).
//! - A restart first stops everything the script started (trees in reverse start order, then
//!   actors it spawned alone), as a shutdown does but keeping the workers warm; then the old
//!   main process is told to exit (killed if it does not) and reaped, its process group killed,
//!   and a new one runs the script afresh. Each restart is logged with what ended the last run
//!   and how many restarts the window has left.
//! - `rebeam.shutdown(code)`, Ctrl-C and the signals, and workers that cannot start end the run
//!   as before: none of them is a failure of the script's to recover from.
//! - When rebeam gives up, or the kind does not restart, the run ends with the exit status of
//!   the last program end; giving up is logged with the intensity that was exceeded.

use std::time::Duration;

use rebeam_core::supervision::{Decision, ExitReason, Intensity, Restart, Strategy, Supervisor};
use rebeam_proto::{Command as Cmd, Frame, Role};

use crate::router::{ProcState, Router};

/// What the command line asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainRestartPolicy {
    pub restart: Restart,
    pub intensity: Intensity,
}

impl Default for MainRestartPolicy {
    fn default() -> Self {
        MainRestartPolicy { restart: Restart::Temporary, intensity: Intensity::default() }
    }
}

/// The script's supervisor, and the restart under way, if any.
pub(crate) struct MainSupervisor {
    sup: Supervisor,
    /// The exit status of the program end being recovered from, while the old run stops.
    restarting: Option<i32>,
}

impl MainSupervisor {
    pub(crate) fn new(policy: MainRestartPolicy) -> Self {
        MainSupervisor {
            sup: Supervisor::new(Strategy::OneForOne, policy.intensity, vec![policy.restart]),
            restarting: None,
        }
    }

    pub(crate) fn is_restarting(&self) -> bool {
        self.restarting.is_some()
    }
}

fn window(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

impl Router {
    /// The script's run ended with `code`: restart it if its policy says so, else end the run.
    pub(crate) fn program_ended(&mut self, code: i32, why: &str) {
        if self.shutdown.is_some() {
            return;
        }
        let now = self.os.now();
        let script = self.config.program.describe();
        if let Some(m) = self.main_sup.as_mut() {
            if m.restarting.is_some() {
                return; // the run being stopped for a restart ended on its way down
            }
            let reason = if code == 0 { ExitReason::Normal } else { ExitReason::Crashed(why.to_owned()) };
            match m.sup.child_exited(0, &reason, now) {
                Decision::Restart { .. } => {
                    let Intensity { max_restarts, max_seconds } = m.sup.intensity();
                    let used = m.sup.restarts_in_window(now);
                    tracing::warn!(
                        "restarting {script} ({why}, exit status {code}): restart {used} of at most \
                         {max_restarts} within {}",
                        window(max_seconds)
                    );
                    m.restarting = Some(code);
                    self.stop_program();
                    return;
                }
                Decision::Escalate { .. } => {
                    let Intensity { max_restarts, max_seconds } = m.sup.intensity();
                    tracing::error!(
                        "giving up on {script}: it ended more than {max_restarts} times within {} \
                         (--max-restarts, --restart-window); the last time {why}",
                        window(max_seconds)
                    );
                }
                Decision::Ignore => {}
            }
        }
        self.begin_shutdown(code, why);
    }

    /// Called after every input: once the old run has stopped, starts the script again.
    pub(crate) fn continue_main_restart(&mut self) {
        let Some(code) = self.main_sup.as_ref().and_then(|m| m.restarting) else { return };
        if self.shutdown.is_some() || !self.trees.is_empty() || self.actors.values().any(|a| a.parent.is_none()) {
            return;
        }
        let old = self.main;
        let Some(main) = self.procs.get(old) else { return };
        if main.state != ProcState::Dead {
            if !main.lost {
                self.procs[old].lost = true;
                if !self.send(old, Frame::Command(Cmd::Shutdown { code })) {
                    self.kill_proc(old);
                }
            }
            return;
        }
        if !main.reaped {
            return; // its pid, and so its process group, is still ours until it is reaped
        }
        self.procs.remove(old);
        match self.spawn_process(Role::Main, 0, false) {
            Ok(new) => {
                self.main = new;
                self.body_done = false;
                if let Some(m) = self.main_sup.as_mut() {
                    m.sup.child_started(0);
                    m.restarting = None;
                }
            }
            Err(e) => {
                if let Some(m) = self.main_sup.as_mut() {
                    m.restarting = None;
                }
                tracing::error!("cannot start the main process again: {e}");
                self.begin_shutdown(code, "the main process could not be restarted");
            }
        }
    }

    /// Whether a dead main process is on its way to a restart (its death is not the run's end).
    pub(crate) fn main_restarting(&self) -> bool {
        self.main_sup.as_ref().is_some_and(MainSupervisor::is_restarting)
    }
}
