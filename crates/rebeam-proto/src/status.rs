//! What the control socket answers, as data: `rebeam ctl` renders it for a person, `rebeam ctl
//! status --json` prints it for scripts, `rebeam top` draws it live, and a Rust host reads the
//! fields it needs instead of parsing text.
//!
//! The rules:
//!
//! - A report is a snapshot, cheap to take: every list is bounded by what the governor holds
//!   anyway (processes, trees, subscriptions), and the safety history by
//!   [`RECENT_TRANSITIONS`].
//! - Counters only grow (messages delivered, restarts, drops); rates are the viewer's to
//!   compute, from two reports and their `uptime_ms`.
//! - A report names its layout with [`STATUS_VERSION`] as its first field; a field is added
//!   only with the version raised, and field names stay (scripts read them as JSON).

use serde::{Deserialize, Serialize};

use crate::{ActorId, Safety, Strategy};

/// The layout of [`StatusReport`]; raised whenever a field is added or changes meaning (3: each
/// process's `cowns`).
pub const STATUS_VERSION: u32 = 3;

/// How many of the latest safety transitions a report carries.
pub const RECENT_TRANSITIONS: usize = 16;

/// One safety transition a host command caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyTransition {
    pub from: Safety,
    pub to: Safety,
    pub reason: String,
}

/// `rebeam ctl status`: the program, its live processes, its supervision trees, the safety
/// history and the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// [`STATUS_VERSION`] of the governor that took it.
    pub version: u32,
    /// When it was taken: milliseconds since the governor started (the clock rates use).
    pub uptime_ms: u64,
    pub program: ProgramStatus,
    /// Live processes, in index order.
    pub processes: Vec<ProcessStatus>,
    /// Top-level trees in start order; the first is the root.
    pub trees: Vec<TreeStatus>,
    /// The latest safety transitions, oldest first (at most [`RECENT_TRANSITIONS`]).
    pub transitions: Vec<TimedTransition>,
    /// Bus subscriptions, in subscription order.
    pub bus: Vec<SubscriptionStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgramStatus {
    /// `rebeam main.py`: the script's path.
    Script(String),
    /// `import rebeam` in another program: who the governor serves.
    Library(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStatus {
    /// "main process (pid N)" or "worker I (pid N)".
    pub describe: String,
    /// A started worker kept idle to replace one that dies.
    pub spare: bool,
    pub actors: u32,
    /// 0 for the main process, 1.. for workers.
    pub index: u32,
    pub pid: u32,
    /// Cowns whose value the governor places here: made or last used here, not yet freed.
    #[serde(default)]
    pub cowns: u32,
    /// What the kernel says it uses; `None` when that cannot be read (it is not our child's
    /// to read, or it just exited).
    pub usage: Option<ProcessUsage>,
}

/// A process's use of the machine, read from the kernel when the report is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// User plus system CPU time since it started.
    pub cpu_ms: u64,
    /// Resident memory.
    pub rss_bytes: u64,
}

/// A supervisor, its restart budget and its children in start order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeStatus {
    pub label: String,
    pub strategy: Strategy,
    /// Restarts within the intensity window now.
    pub restarts_used: u32,
    pub max_restarts: u32,
    pub max_seconds_ms: u64,
    pub children: Vec<ChildStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildStatus {
    /// A nested supervisor that runs.
    Tree(TreeStatus),
    /// An actor or task child.
    Actor {
        name: Option<String>,
        label: String,
        /// Its id and where it runs (`None`: waiting for a worker), if it runs.
        running: Option<(ActorId, Option<String>)>,
        /// Its mailbox as the governor sees it: calls (and gated casts) handed to it and not
        /// yet answered, plus messages held until it has a worker. 0 when it is not running.
        mailbox: u32,
        /// Messages routed to the running incarnation so far (the viewer's msg/s).
        delivered: u64,
        /// Times this child was started again after its first start.
        restarts: u32,
        /// Why it last crashed or was killed, if it ever was.
        last_crash: Option<String>,
    },
}

/// A safety transition and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedTransition {
    /// Milliseconds since the governor started, as [`StatusReport::uptime_ms`].
    pub at_ms: u64,
    pub transition: SafetyTransition,
}

/// One bus subscription (`rebeam.on(pattern, fn)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionStatus {
    pub id: u64,
    pub pattern: String,
    /// The actor's label, or the process that subscribed outside any actor.
    pub owner: String,
    /// Publications waiting for the throttle, and how many the queue holds.
    pub queued: u32,
    pub capacity: u32,
    /// Publications lost so far: the queue was full, the throttle skipped them, or the
    /// subscriber's outbox could not take them.
    pub dropped: u64,
}
