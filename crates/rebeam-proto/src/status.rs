//! What the control socket answers, as data: `rebeam ctl` renders it for a person, and a Rust
//! host reads the fields it needs instead of parsing text.

use serde::{Deserialize, Serialize};

use crate::{ActorId, Safety, Strategy};

/// One safety transition a host command caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyTransition {
    pub from: Safety,
    pub to: Safety,
    pub reason: String,
}

/// `rebeam ctl status`: the program, its live processes and its supervision trees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub program: ProgramStatus,
    /// Live processes, in index order.
    pub processes: Vec<ProcessStatus>,
    /// Top-level trees in start order; the first is the root.
    pub trees: Vec<TreeStatus>,
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
    },
}
