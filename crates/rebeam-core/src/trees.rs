//! Supervision trees as one machine, free of processes: [`Forest`] takes the inputs a host sees
//! (a tree spec to start and who asked, a child started, failed to start or ended, a restart
//! turn, a stop) and returns the [`Effect`]s the host carries out (start this actor child in
//! this slot, stop this actor within its shutdown budget, schedule a restart turn, answer this
//! requester, this top-level tree ended, log this). It never does I/O and never sees the host;
//! the host's types come in through [`Host`].
//!
//! `supervision` decides what to restart; the parts below sequence the decision:
//! [`Sequence`] one tree's slots and start/stop queue, [`Node`] a sequence joined to its
//! supervisor, [`Roots`] the top-level trees, [`adoptable`] adoption's rule.
//!
//! ## Sequencing
//!
//! Starting and stopping a child is asynchronous (a worker answers later), so a tree runs one
//! operation at a time:
//!
//! - A new tree starts its children in spec order, then it runs and its requester (or its
//!   parent) hears that it is up.
//! - A start waits for its child to be up or to fail; a stop waits for its child to be down.
//!   Nothing else runs in that tree meanwhile.
//! - A start of a slot that is already occupied, or any start once the tree is stopping, is
//!   skipped; so is a stop of an empty slot.
//! - A child that fails during the initial start aborts the tree: the children already started
//!   are stopped in reverse order, then the tree exits and its start fails with that child's
//!   error (as `supervisor:start_link` does), for its requester or its parent.
//! - A restart queues its stops, then its starts, and holds the queue until a restart turn
//!   ([`Effect::RestartTurn`], then [`Forest::restart_turn`]): a child that ends as it starts
//!   (an empty nested tree, a failing adoption) then restarts on a later turn rather than
//!   recursing within its own end, as OTP's supervisor casts itself `try_again_restart`.
//!   Starts still queued from an earlier restart are redone in the new one's order.
//! - A child whose start is in flight when the tree must stop it (a restart or an escalation
//!   that includes it, or a stop of the tree) is stopped once it is up, in its place in reverse
//!   start order, so that it cannot outlive the tree.
//! - An escalation or a stop of the tree stops the running children in reverse start order,
//!   then exits; a stop of a tree whose exit is already queued changes nothing, and a stop
//!   makes a held restart moot. A nested tree is stopped as a child: its own children first.
//! - A running tree whose children have all ended for good, with nothing queued, ends normally.
//!
//! ## Ends
//!
//! - A nested tree's end is an exit of its slot in its parent, which decides as for any child
//!   (so an escalation fails upward one level at a time); a nested tree whose initial start
//!   failed fails its parent's start of that slot instead.
//! - A tree that ends before it was up answers its requester with its start error, or with
//!   "stopped while starting".
//! - A top-level tree's end is [`Effect::Ended`], with what it means for the run ([`Ending`]):
//!   the root (the first top-level tree) failing fails the run, except that a failed initial
//!   start was already answered to its requester.
//!
//! ## Adoption
//!
//! A child spec may name a tree the host's peer started first ([`Code::Adopt`]): only a running
//! top-level tree outside the adopter's line of ancestors may be adopted (anything else fails
//! that child's start). The adopted tree leaves the top-level list, the adopter takes its place
//! when that place is earlier, and restarts of the slot rebuild the tree from its spec.
//!
//! Tree ids come from the host's counter ([`Turn::last_id`]), shared with whatever else it
//! numbers, so that a tree and an actor never share an id.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use crate::supervision::{Decision, ExitReason, Intensity, Strategy};

mod forest;
mod node;
mod roots;
mod sequence;
mod spec;

pub use forest::{Forest, Tree};
pub use node::{DeferredExit, Ended, Failed, Node};
pub use roots::{adoptable, Refusal, Roots};
pub use sequence::{Phase, Sequence, Step};
pub use spec::{ChildSpec, Code, TreeSpec};

pub type TreeId = u64;

/// The host's types, and how the machine reads and builds its exits and errors.
pub trait Host {
    /// What the host starts for an actor child (opaque here, handed back in [`Effect::Start`]).
    type Spec: Clone + Debug + PartialEq;
    type Actor: Copy + Debug + PartialEq;
    /// Who asked for a top-level tree, answered once in [`Effect::Answer`].
    type Requester: Debug + PartialEq;
    type Exit: Clone + Debug + PartialEq;
    type Error: Clone + Debug + PartialEq;

    /// How supervision reads an exit (restart kinds and intensity see only this).
    fn reading(exit: &Self::Exit) -> ExitReason;
    fn normal() -> Self::Exit;
    fn shutdown() -> Self::Exit;
    /// The exit of a child, or a tree, that failed with `error`.
    fn crashed(error: Self::Error) -> Self::Exit;
    /// An error the machine raises itself.
    fn error(class: ErrorClass, message: String) -> Self::Error;
}

/// The kinds of error the machine raises itself; the host maps them to its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A spec out of bounds, or an adoption against the rules.
    BadRequest,
    /// A tree stopped before it was up.
    StartFailed,
    /// A tree gave up (too many restarts).
    Crashed,
}

/// What runs in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Running<A> {
    Actor(A),
    Tree(TreeId),
}

/// What one input needs besides itself: the time, and the host's id counter.
pub struct Turn<'a> {
    pub now: Instant,
    /// The last id the host handed out; a new tree takes the next.
    pub last_id: &'a mut u64,
}

impl Turn<'_> {
    fn next_id(&mut self) -> TreeId {
        *self.last_id += 1;
        *self.last_id
    }
}

/// What the host must do, in order.
#[derive(Debug, PartialEq)]
pub enum Effect<H: Host> {
    /// Start an actor from `spec` as child `slot` of `tree`; then report
    /// [`Forest::child_started`] or [`Forest::start_failed`].
    Start {
        tree: TreeId,
        slot: usize,
        spec: H::Spec,
    },
    /// Stop this actor politely; kill it if it has not stopped within `shutdown` (`None` waits
    /// forever, zero kills at once); then report [`Forest::child_ended`].
    Stop {
        actor: H::Actor,
        shutdown: Option<Duration>,
    },
    /// Call [`Forest::restart_turn`] for this tree on a later turn, after other inputs.
    RestartTurn(TreeId),
    /// Answer whoever asked for a top-level tree.
    Answer {
        requester: H::Requester,
        result: Result<TreeId, H::Error>,
    },
    /// A top-level tree ended.
    Ended {
        tree: TreeId,
        label: String,
        exit: H::Exit,
        start_failed: bool,
        ending: Ending,
    },
    Log(Log<H>),
}

/// What a top-level tree's end means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The root failed once it was up: the run fails.
    RootFailed,
    /// The root ended without failing.
    RootEnded,
    /// Another top-level tree ended, or the root's initial start failed (its requester heard).
    Another,
}

/// What happened, for the host's log.
#[derive(Debug, PartialEq)]
pub enum Log<H: Host> {
    /// A tree was created and starts its children.
    Starting { label: String, strategy: Strategy, children: usize },
    /// Every child of the tree is up.
    Up { label: String },
    /// A child failed the tree's initial start.
    StartFailed { label: String, child: String, error: H::Error },
    /// A child of a running tree ended and the supervisor decided (a crash report's matter).
    ChildEnded(Report<H>),
    /// Every child of the tree ended for good; it ends too.
    AllEnded { label: String },
}

/// A child's end as its supervisor saw it.
#[derive(Debug, PartialEq)]
pub struct Report<H: Host> {
    pub supervisor: String,
    pub strategy: Strategy,
    pub child: String,
    pub name: Option<String>,
    pub exit: H::Exit,
    /// Restarts within the intensity window, this one included.
    pub restarts: u32,
    pub intensity: Intensity,
    pub decision: Decision,
}

#[cfg(test)]
mod tests;
