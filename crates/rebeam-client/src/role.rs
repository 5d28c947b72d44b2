//! Which thread takes this process's commands: one at a time, and the one that took a message
//! for an idle actor may run it itself while another takes the next commands.
//!
//! The rules:
//! - **One holder.** Commands are taken off the queue ([`Client::next_commands`]) only by the
//!   thread holding the role, so they are handled in arrival order, as by one thread.
//! - **Stepping aside.** The holder may give the role up ([`Client::step_aside`]), to run what it
//!   took (a worker's command thread running a call for an idle actor: no hand-off to another
//!   thread on the call's way). The role is then free, and nobody takes commands until either
//!   the holder takes it back ([`Client::resume`]: no wake-up at all when nothing came in the
//!   meantime) or a command arrives: then a thread waiting in [`Client::standby`] claims the role
//!   and takes it, so a handler that runs long (or waits for a call to a neighbour in its own
//!   process) never holds up the process's other commands. A holder that finds the role taken
//!   on its way back becomes a standby itself.
//! - **No lost wake-up, no timer.** Whoever queues a command looks whether the role is free
//!   after the command is in, and the holder stepping aside looks whether a command is queued
//!   after the role is free (both behind a `SeqCst` fence, so at least one of the two sees the
//!   other); a standby checks both under its lock before it sleeps, and is woken under it.
//! - **An idle holder may sleep on the rings** (`idle.rs`) instead of the queue: it says so
//!   ([`CommandRole::rings_waiting`]) before it looks at the queue a last time, and whoever
//!   queues a command looks at that after the command is in (the same fence), ringing the
//!   role's doorbell, which that holder sleeps on beside the rings.
//!
//! [`Client::next_commands`]: crate::Client::next_commands
//! [`Client::step_aside`]: crate::Client::step_aside
//! [`Client::resume`]: crate::Client::resume
//! [`Client::standby`]: crate::Client::standby

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use rebeam_proto::Command;
use rebeam_shm::Doorbell;

use crate::backlog::Backlog;
use crate::client::lock;

/// The command role of one process (see the module doc).
pub(crate) struct CommandRole {
    /// Nobody holds the role: the next command goes to a standby.
    free: AtomicBool,
    /// Standbys sleep on `wake` under this lock.
    standby: Mutex<()>,
    wake: Condvar,
    /// The holder sleeps on the rings and on `bell` (see `idle.rs`): a queued command rings it.
    pub(crate) rings_waiting: AtomicBool,
    /// None if no eventfd could be made: the holder then always sleeps on the queue.
    pub(crate) bell: Option<Doorbell>,
}

impl Default for CommandRole {
    fn default() -> CommandRole {
        CommandRole {
            free: AtomicBool::new(false),
            standby: Mutex::new(()),
            wake: Condvar::new(),
            rings_waiting: AtomicBool::new(false),
            bell: Doorbell::new().ok(),
        }
    }
}

impl CommandRole {
    /// A command was queued: a standby claims the role if it is free, and a holder asleep on
    /// the rings is woken.
    fn pushed(&self) {
        fence(Ordering::SeqCst);
        if self.free.load(Ordering::SeqCst) {
            let _guard = lock(&self.standby);
            self.wake.notify_one();
        }
        if self.rings_waiting.load(Ordering::SeqCst) {
            if let Some(bell) = &self.bell {
                let _ = bell.ring();
            }
        }
    }

    /// The holder gives the role up; `queued` says whether a command waits already (then a
    /// standby is woken for it).
    pub(crate) fn step_aside(&self, queued: impl Fn() -> bool) {
        self.free.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if queued() {
            let _guard = lock(&self.standby);
            self.wake.notify_one();
        }
    }

    /// Takes the role back if nobody claimed it meanwhile.
    pub(crate) fn resume(&self) -> bool {
        self.free.compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Waits until a command is queued while the role is free, and claims the role; false if
    /// `timeout` (None: for ever) passed first.
    pub(crate) fn standby(&self, queued: impl Fn() -> bool, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut guard = lock(&self.standby);
        loop {
            if self.free.load(Ordering::SeqCst) && queued() && self.resume() {
                return true;
            }
            guard = match deadline {
                None => self.wake.wait(guard).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.wake.wait_timeout(guard, left).unwrap_or_else(|p| p.into_inner()).0
                }
            };
        }
    }
}

/// The sending side of the command queue: every command queued goes through here, so that a
/// free role is claimed for it.
#[derive(Clone)]
pub(crate) struct Commands {
    tx: Sender<Command>,
    role: Arc<CommandRole>,
    /// Deliveries count from here (see the `backlog` module).
    backlog: Arc<Backlog>,
}

impl Commands {
    pub(crate) fn new(tx: Sender<Command>, role: Arc<CommandRole>, backlog: Arc<Backlog>) -> Commands {
        Commands { tx, role, backlog }
    }

    /// Queues a command; false if nobody takes commands any more (the client is gone).
    pub(crate) fn send(&self, command: Command) -> bool {
        let delivery = matches!(command, Command::Deliver { .. });
        if self.tx.send(command).is_err() {
            return false;
        }
        if delivery {
            self.backlog.queued();
        }
        self.role.pushed();
        true
    }
}
