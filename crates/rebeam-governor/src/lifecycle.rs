//! How a run ends: Ctrl-C, a shutdown in reverse start order (trees, then the main process,
//! then the workers), and the check after every input of whether everything has stopped.

use rebeam_proto::{ActorId, Command as Cmd, Frame, Role};

use crate::router::{Input, ProcState, Router};

impl Router {
    pub(crate) fn on_interrupt(&mut self, count: u32) {
        if count > 1 {
            tracing::warn!("interrupted again; killing everything now");
            self.kill_everything();
            self.answer_node_calls_at_exit();
            self.shutdown.get_or_insert(130);
            self.finished = true;
            return;
        }
        // As with `python main.py`, Ctrl-C raises KeyboardInterrupt in the script. Not in
        // library mode: the user's process is not ours to signal (its terminal has its own Ctrl-C).
        if let Some(main) = self.procs.get(self.main).filter(|m| m.state != ProcState::Dead && !m.external) {
            self.os.kill(main.pid, libc::SIGINT);
        }
        self.begin_shutdown(130, "interrupted (Ctrl-C again to kill at once)");
    }

    /// Stops the system in reverse start order: trees, then the main process, then workers.
    pub fn begin_shutdown(&mut self, code: i32, why: &str) {
        if self.shutdown.is_some() {
            return;
        }
        if code == 0 {
            tracing::debug!("shutting down: {why}");
        } else {
            tracing::info!("shutting down: {why}");
        }
        self.shutdown = Some(code);
        self.after(self.config.shutdown_timeout, Input::ShutdownDeadline);
        self.stop_program();
        self.check_finished();
    }

    /// Stops everything the script started: its trees in reverse start order, then the actors
    /// it spawned outside any tree.
    pub(crate) fn stop_program(&mut self) {
        for tree in self.trees.roots().iter().rev().copied().collect::<Vec<_>>() {
            self.stop_tree(tree);
        }
        let unsupervised: Vec<ActorId> =
            self.actors.iter().filter(|(_, a)| a.parent.is_none()).map(|(&id, _)| id).collect();
        for id in unsupervised {
            self.stop_actor(id, Some(rebeam_core::supervision::DEFAULT_SHUTDOWN));
        }
    }

    /// Once trees have stopped: dismiss the main process, then the workers; done when all are dead.
    pub(crate) fn check_finished(&mut self) {
        self.continue_main_restart();
        let Some(code) = self.shutdown else { return };
        if self.finished || !self.trees.is_empty() || self.actors.values().any(|a| a.parent.is_none()) {
            return;
        }
        let main = self.main;
        if self.procs.get(main).is_some_and(|m| m.state != ProcState::Dead) {
            if !self.procs[main].lost {
                self.send(main, Frame::Command(Cmd::Shutdown { code }));
                self.procs[main].lost = true;
            }
            if !self.procs[main].external {
                return;
            }
            // Library mode: the user's process goes on without us; nothing to wait for.
            self.procs[main].state = ProcState::Dead;
        }
        let mut alive = self.stop_zygote();
        for i in self.procs.ids() {
            if self.procs[i].state != ProcState::Dead {
                alive = true;
                if !self.procs[i].lost {
                    self.procs[i].lost = true;
                    // A spare, or a worker still starting, has hosted nothing: no actor's output
                    // to flush. Killed at once, as a Shutdown would wait for the end of its start
                    // (its imports) before it is read, and the run's exit with it.
                    let idle = self.procs[i].role == Role::Worker
                        && (self.procs[i].spare || self.procs[i].state != ProcState::Ready);
                    if idle || !self.send(i, Frame::Command(Cmd::Shutdown { code })) {
                        self.kill_proc(i);
                    }
                }
            }
        }
        if !alive {
            self.finished = true;
        }
    }
}
