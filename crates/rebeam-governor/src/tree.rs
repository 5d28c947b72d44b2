//! Supervision trees in the governor: the I/O half of `rebeam_core::trees::Forest`.
//!
//! The machine owns every tree (its slots, start/stop sequencing, supervisor and adoption);
//! this module turns the router's inputs into its inputs and carries out its effects, in the
//! order it returns them:
//!
//! - `Effect::Start`: create the actor child (placed on a worker, or queued for one); a
//!   refusal (its name is taken) is a failed start at once.
//! - `Effect::Stop`: stop the actor politely, kill its worker after its shutdown budget.
//! - `Effect::RestartTurn`: `Input::TreeRestart` through the timer queue, so that other inputs
//!   run first.
//! - `Effect::Answer`: the `TreeStarted` reply to whoever asked for the tree.
//! - `Effect::Ended`: a top-level tree ended; the run may end with it (see `tree_ended`).
//! - `Effect::Log`: a log line, crash reports included.

use std::collections::HashMap;
use std::time::Duration;

use rebeam_core::supervision::{ExitReason, FaultId};
use rebeam_core::trees::{self, Effect, Ending, ErrorClass, Forest, Host, Log, Turn};
use rebeam_proto::{
    ActorId, ChildCode, ChildSpec, ChildStatus, ErrorInfo, ErrorKind, Exit, Frame, ReqId, Response, TreeSpec,
    TreeStatus,
};

use crate::actors::StartWaiter;
use crate::report;
use crate::router::{Input, ProcIdx, Router};

pub type TreeId = trees::TreeId;
pub type Running = trees::Running<ActorId>;

/// The governor's types as the machine sees them.
#[derive(Debug, PartialEq)]
pub struct Governed;

impl Host for Governed {
    type Spec = ChildSpec;
    type Actor = ActorId;
    type Requester = (ProcIdx, ReqId);
    type Exit = Exit;
    type Error = ErrorInfo;

    fn reading(exit: &Exit) -> ExitReason {
        match exit {
            Exit::Normal => ExitReason::Normal,
            Exit::Shutdown => ExitReason::Shutdown,
            Exit::Crashed(info) => ExitReason::Crashed(info.to_string()),
            Exit::Killed(why) => ExitReason::Killed(why.clone()),
        }
    }

    fn normal() -> Exit {
        Exit::Normal
    }

    fn shutdown() -> Exit {
        Exit::Shutdown
    }

    fn crashed(error: ErrorInfo) -> Exit {
        Exit::Crashed(error)
    }

    fn error(class: ErrorClass, message: String) -> ErrorInfo {
        let kind = match class {
            ErrorClass::BadRequest => ErrorKind::BadRequest,
            ErrorClass::StartFailed => ErrorKind::StartFailed,
            ErrorClass::Crashed => ErrorKind::Crashed,
        };
        ErrorInfo::new(kind, message)
    }
}

/// The router's trees: the machine, and what the router and its tests read of it.
#[derive(Default)]
pub struct Trees {
    forest: Forest<Governed>,
    /// Each actor child's starts and last crash, for the status report, by (tree, slot).
    history: HashMap<(TreeId, usize), ChildHistory>,
    /// `history`'s size at which entries of trees that are gone are dropped (tree ids are
    /// never reused, so an entry of a gone tree is never read again).
    prune_at: usize,
}

/// What the status report says of one child across its incarnations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChildHistory {
    pub starts: u32,
    pub last_crash: Option<String>,
}

/// The smallest `Trees::prune_at`: below it, pruning would cost more than it saves.
pub(crate) const MIN_PRUNE_AT: usize = 64;

impl Trees {
    /// The history of (tree, slot), made on first use; drops the entries of gone trees once
    /// they could be half of all (so the work is amortised and the size stays bounded by
    /// twice the live children).
    fn history_of(&mut self, tree: TreeId, slot: usize) -> &mut ChildHistory {
        if !self.history.contains_key(&(tree, slot)) && self.history.len() >= self.prune_at {
            let forest = &self.forest;
            self.history.retain(|(t, _), _| forest.get(*t).is_some());
            self.prune_at = MIN_PRUNE_AT.max(2 * self.history.len());
        }
        self.history.entry((tree, slot)).or_default()
    }

    /// Top-level trees in start order; the first is the root.
    pub fn roots(&self) -> &[TreeId] {
        self.forest.roots()
    }

    pub fn is_empty(&self) -> bool {
        self.forest.is_empty()
    }

    pub fn root_failed(&self) -> bool {
        self.forest.root_failed()
    }
}

/// The machine's form of a tree spec: an actor child keeps its whole wire spec, to start from.
fn core_spec(spec: TreeSpec) -> trees::TreeSpec<ChildSpec> {
    trees::TreeSpec {
        name: spec.name,
        strategy: spec.strategy,
        max_restarts: spec.max_restarts,
        max_seconds: Duration::from_millis(spec.max_seconds_ms),
        children: spec.children.into_iter().map(core_child).collect(),
    }
}

fn core_child(child: ChildSpec) -> trees::ChildSpec<ChildSpec> {
    let (name, label, restart) = (child.name.clone(), child.label.clone(), child.restart);
    let shutdown = child.shutdown_ms.map(Duration::from_millis);
    let code = match child.code {
        ChildCode::Tree(spec) => trees::Code::Tree(core_spec(spec)),
        ChildCode::Adopt { tree } => trees::Code::Adopt(tree),
        _ => trees::Code::Actor(child),
    };
    trees::ChildSpec { name, label, restart, shutdown, code }
}

/// The machine's view of this moment: the clock, and the id counter it shares with actors
/// (a macro, so that it borrows those two fields and not the whole router).
macro_rules! turn {
    ($router:expr) => {
        Turn { now: $router.os.now(), last_id: &mut $router.next_id }
    };
}

impl Router {
    pub fn start_top_level_tree(&mut self, proc: ProcIdx, req: ReqId, spec: TreeSpec) {
        let effects = self.trees.forest.start(core_spec(spec), (proc, req), turn!(self));
        self.carry_out_trees(effects);
    }

    pub fn tree_child_started(&mut self, tree: TreeId, slot: usize, actor: ActorId) {
        let history = self.trees.history_of(tree, slot);
        history.starts = history.starts.saturating_add(1);
        let effects = self.trees.forest.child_started(tree, slot, actor, turn!(self));
        self.carry_out_trees(effects);
    }

    pub fn tree_child_start_failed(&mut self, tree: TreeId, slot: usize, info: ErrorInfo) {
        let effects = self.trees.forest.start_failed(tree, slot, info, turn!(self));
        self.carry_out_trees(effects);
    }

    /// A child ended; `fault` names the worker death that took it, if one did.
    pub fn tree_child_ended_in_fault(&mut self, tree: TreeId, slot: usize, exit: Exit, fault: Option<FaultId>) {
        if matches!(exit, Exit::Crashed(_) | Exit::Killed(_)) {
            self.trees.history_of(tree, slot).last_crash = Some(crate::status::crash_line(&exit));
        }
        let effects = self.trees.forest.child_ended(tree, slot, exit, fault, turn!(self));
        self.carry_out_trees(effects);
    }

    pub fn tree_restart(&mut self, tree: TreeId) {
        let effects = self.trees.forest.restart_turn(tree, turn!(self));
        self.carry_out_trees(effects);
    }

    /// Stops a tree's children in reverse start order, then the tree.
    pub fn stop_tree(&mut self, tree: TreeId) {
        let effects = self.trees.forest.stop(tree, turn!(self));
        self.carry_out_trees(effects);
    }

    /// Carries out effects in order. One may answer at once (a start refused, a stop of an
    /// actor not yet placed): that input's effects are carried out before the rest, which is
    /// safe because the machine recorded what it waits for when it asked.
    fn carry_out_trees(&mut self, effects: Vec<Effect<Governed>>) {
        for effect in effects {
            match effect {
                Effect::Start { tree, slot, spec } => {
                    // A child placed on another node starts there (`node_placement.rs`).
                    let Some(spec) = self.start_child_elsewhere(tree, slot, spec) else { continue };
                    if let Err(info) = self.create_actor(&spec, Some((tree, slot)), StartWaiter::Tree { tree, slot }) {
                        self.tree_child_start_failed(tree, slot, info);
                    }
                }
                Effect::Stop { actor, shutdown } => {
                    if !self.stop_child_elsewhere(actor, shutdown) {
                        self.stop_actor(actor, shutdown);
                    }
                }
                Effect::RestartTurn(tree) => self.after(Duration::ZERO, Input::TreeRestart(tree)),
                Effect::Answer { requester: (proc, req), result } => {
                    self.send(proc, Frame::Response { req, body: Response::TreeStarted(result) });
                }
                Effect::Ended { label, exit, start_failed, ending, .. } => {
                    self.tree_ended(&label, &exit, start_failed, ending)
                }
                Effect::Log(line) => log(line),
            }
        }
    }

    /// A top-level tree ended: the run ends when the root fails, when the root ends once the
    /// script body is done, or when the last tree ends once it is done.
    fn tree_ended(&mut self, label: &str, exit: &Exit, start_failed: bool, ending: Ending) {
        match exit {
            // A failed start was told to the script, which reports it.
            Exit::Crashed(info) if !start_failed => tracing::error!("{}", info.message),
            Exit::Killed(why) => tracing::error!("supervisor {label} was killed: {why}"),
            _ => {}
        }
        match ending {
            // While the script is being restarted its trees are stopping on purpose.
            _ if self.main_restarting() => {}
            Ending::RootFailed => self.program_ended(1, "the root supervisor failed"),
            Ending::RootEnded if self.body_done() => self.program_ended(0, "the root supervision tree ended"),
            _ if self.trees.roots().is_empty() && self.body_done() => {
                let code = if self.trees.root_failed() { 1 } else { 0 };
                self.program_ended(code, "every supervision tree has ended");
            }
            _ => {}
        }
    }
}

fn log(line: Log<Governed>) {
    match line {
        Log::Starting { label, strategy, children } => {
            tracing::debug!("supervisor {label} ({strategy}) starting {children} children")
        }
        Log::Up { label } => tracing::debug!("supervisor {label} is up"),
        // A start failure names its actor already; other refusals need the child's name.
        Log::StartFailed { label, error, .. } if error.kind == ErrorKind::StartFailed => {
            tracing::error!("supervisor {label}: {error}")
        }
        Log::StartFailed { label, child, error } => {
            tracing::error!("supervisor {label}: child {child} failed to start: {error}")
        }
        Log::ChildEnded(r) if matches!(r.exit, Exit::Crashed(_) | Exit::Killed(_)) => {
            let report = report::CrashReport {
                supervisor: &r.supervisor,
                strategy: r.strategy,
                child: &r.child,
                name: r.name.as_deref(),
                exit: &r.exit,
                restarts: r.restarts,
                intensity: r.intensity,
                decision: &r.decision,
            };
            tracing::error!("{}", report.render());
        }
        Log::ChildEnded(r) => tracing::debug!("supervisor {}: child {} ended ({:?})", r.supervisor, r.child, r.exit),
        Log::AllEnded { label } => tracing::debug!("supervisor {label}: every child has ended; it ends too"),
    }
}

impl Router {
    /// The trees for `rebeam ctl status`, top-level ones in start order: each supervisor's
    /// restarts within its intensity window, and where each child runs.
    pub fn tree_status(&self) -> Vec<TreeStatus> {
        self.trees.roots().iter().filter_map(|&root| self.tree_node(root)).collect()
    }

    fn tree_node(&self, id: TreeId) -> Option<TreeStatus> {
        let t = self.trees.forest.get(id)?;
        let children = t
            .children()
            .iter()
            .zip(t.slots())
            .enumerate()
            .filter_map(|(slot, (child, running))| {
                let history = self.trees.history.get(&(id, slot)).cloned().unwrap_or_default();
                match *running {
                    // A nested tree shows as itself; one that is gone shows nothing, as before.
                    Some(Running::Tree(sub)) => self.tree_node(sub).map(ChildStatus::Tree),
                    Some(Running::Actor(a)) => Some(self.actor_child(child, Some(a), history)),
                    None => Some(self.actor_child(child, None, history)),
                }
            })
            .collect();
        Some(TreeStatus {
            label: t.label().to_owned(),
            strategy: t.strategy(),
            restarts_used: t.restarts_in_window(self.os.now()),
            max_restarts: t.intensity().max_restarts,
            max_seconds_ms: u64::try_from(t.intensity().max_seconds.as_millis()).unwrap_or(u64::MAX),
            children,
        })
    }
}

impl Router {
    /// One actor child as the report shows it: where it runs, its mailbox and counters.
    fn actor_child(&self, child: &trees::ChildSpec<ChildSpec>, actor: Option<ActorId>, h: ChildHistory) -> ChildStatus {
        let (running, mailbox, delivered) = match actor {
            Some(a) => {
                let place = self.actors.proc_of(a).and_then(|p| self.procs.get(p)).map(|p| p.describe());
                // A child placed on another node: its proxy here names where it runs.
                let place =
                    place.or_else(|| self.child_elsewhere(a).map(|(n, id)| format!("actor <{id}> on node {n}")));
                let (mailbox, delivered) = self.actors.get(&a).map_or((0, 0), |actor| {
                    let waiting = self.calls.of_actor(a).count() + actor.parked.len();
                    (u32::try_from(waiting).unwrap_or(u32::MAX), actor.delivered)
                });
                (Some((a, place)), mailbox, delivered)
            }
            None => (None, 0, 0),
        };
        ChildStatus::Actor {
            name: child.name.clone(),
            label: child.label.clone(),
            running,
            mailbox,
            delivered,
            restarts: h.starts.saturating_sub(1),
            last_crash: h.last_crash,
        }
    }
}

#[cfg(test)]
impl Trees {
    /// For the tests: how many children's histories are kept.
    pub(crate) fn history_len(&self) -> usize {
        self.history.len()
    }
}

/// What the model test may see of a tree: its parent, its slots, and the child being started.
#[cfg(test)]
pub(crate) struct TreeView {
    pub parent: Option<(TreeId, usize)>,
    pub slots: Vec<Option<Running>>,
    pub starting: Option<usize>,
}

#[cfg(test)]
impl Trees {
    pub(crate) fn view(&self) -> std::collections::HashMap<TreeId, TreeView> {
        self.forest
            .iter()
            .map(|(id, t)| (id, TreeView { parent: t.parent(), slots: t.slots().to_vec(), starting: t.starting() }))
            .collect()
    }
}
