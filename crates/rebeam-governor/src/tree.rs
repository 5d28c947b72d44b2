//! Supervision trees in the governor: the I/O half of `rebeam_core::supervision`.
//!
//! `rebeam_core::supervision` decides (restart which children, or escalate) and
//! `rebeam_core::trees::Node` orders the starts and stops; this module carries each step
//! out:
//!
//! - `Step::Start(i)`: start child `i` (an actor in a worker, or a nested tree) and wait for it.
//! - `Step::Stop(i, _)`: stop child `i` politely, kill it after its shutdown timeout, wait.
//! - `Step::Started`: every child is up: the tree is running; answer whoever asked for it.
//! - `Step::Exit(reason)`: the tree ends; its parent (or, for a top-level tree, the run) decides.
//!
//! During the initial start a child that fails to start aborts the tree and the start fails
//! (as `supervisor:start_link` does). Exits that arrive before the tree is fully started are
//! handled once it is.

use std::collections::HashMap;
use std::time::Duration;

use rebeam_core::supervision::{
    Decision, ExitReason, FaultId, Intensity, Restart, Strategy, MAX_RESTARTS, MAX_RESTART_WINDOW,
};
use rebeam_core::trees::{adoptable, Ended, Node, Phase, Refusal, Roots, Step};
use rebeam_proto::{
    ActorId, ChildCode, ChildSpec, ChildStatus, ErrorInfo, ErrorKind, Exit, Frame, ReqId, Response, TreeSpec,
    TreeStatus,
};

use crate::actors::StartWaiter;
use crate::report;
use crate::router::{Input, ProcIdx, Router};

pub type TreeId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Running {
    Actor(ActorId),
    Tree(TreeId),
}

pub struct Tree {
    label: String,
    spec: TreeSpec,
    /// The slots, the start/stop queue and (once running) the supervisor.
    node: Node<Exit, Running>,
    parent: Option<(TreeId, usize)>,
    waiter: Option<(ProcIdx, ReqId)>,
    start_error: Option<ErrorInfo>,
}

#[derive(Default)]
pub struct Trees {
    map: HashMap<TreeId, Tree>,
    roots: Roots<TreeId>,
}

impl Trees {
    /// Top-level trees in start order; the first is the root.
    pub fn roots(&self) -> &[TreeId] {
        self.roots.list()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn root_failed(&self) -> bool {
        self.roots.failed
    }
}

fn shutdown_of(child: &ChildSpec) -> Option<Duration> {
    child.shutdown_ms.map(Duration::from_millis)
}

fn core_reason(exit: &Exit) -> ExitReason {
    match exit {
        Exit::Normal => ExitReason::Normal,
        Exit::Shutdown => ExitReason::Shutdown,
        Exit::Crashed(info) => ExitReason::Crashed(info.to_string()),
        Exit::Killed(why) => ExitReason::Killed(why.clone()),
    }
}

/// How a tree that gave up (too many restarts) ends, for its parent to decide upon.
fn escalation(label: &str, reason: ExitReason) -> Exit {
    let reason = match reason {
        ExitReason::Crashed(why) => why,
        other => other.to_string(),
    };
    Exit::Crashed(ErrorInfo::new(ErrorKind::Crashed, format!("supervisor {label} {reason}")))
}

/// The supervisor's parameters, within the governor's bounds. Strategies and restart kinds
/// arrive typed (rebeam-core's enums on the wire): a spelling Python did not know never leaves it.
fn parse(spec: &TreeSpec) -> Result<(Strategy, Intensity, Vec<Restart>), ErrorInfo> {
    let restarts = spec.children.iter().map(|c| c.restart).collect();
    let window = Duration::from_millis(spec.max_seconds_ms);
    if spec.max_restarts > MAX_RESTARTS || window.is_zero() || window > MAX_RESTART_WINDOW {
        let why = format!(
            "supervisor {}: max_restarts={} and max_seconds={}s must be within 0..={MAX_RESTARTS} and (0, {}]",
            spec.name.as_deref().unwrap_or("(unnamed)"),
            spec.max_restarts,
            window.as_secs_f64(),
            MAX_RESTART_WINDOW.as_secs()
        );
        return Err(ErrorInfo::new(ErrorKind::BadRequest, why));
    }
    Ok((spec.strategy, Intensity::new(spec.max_restarts, window), restarts))
}

impl Router {
    pub fn start_top_level_tree(&mut self, proc: ProcIdx, req: ReqId, spec: TreeSpec) {
        match self.create_tree(spec, None, Some((proc, req))) {
            Ok(id) => {
                self.trees.roots.push(id);
                self.advance(id);
            }
            Err(info) => self.send_response(proc, req, Response::TreeStarted(Err(info))),
        }
    }

    fn send_response(&self, proc: ProcIdx, req: ReqId, body: Response) {
        self.send(proc, Frame::Response { req, body });
    }

    fn create_tree(
        &mut self,
        spec: TreeSpec,
        parent: Option<(TreeId, usize)>,
        waiter: Option<(ProcIdx, ReqId)>,
    ) -> Result<TreeId, ErrorInfo> {
        let (strategy, intensity, restarts) = parse(&spec)?;
        let id = self.next_id();
        let label = match &spec.name {
            Some(n) => format!("'{n}'"),
            None => format!("Supervisor<{id}>"),
        };
        let n = spec.children.len();
        tracing::debug!("supervisor {label} ({strategy}) starting {n} children");
        self.trees.map.insert(
            id,
            Tree { label, spec, node: Node::new(strategy, intensity, restarts), parent, waiter, start_error: None },
        );
        Ok(id)
    }

    /// Runs queued operations until one has to wait for a worker or a child.
    fn advance(&mut self, id: TreeId) {
        loop {
            let Some(tree) = self.trees.map.get_mut(&id) else {
                return;
            };
            let Some(step) = tree.node.seq.next_step() else {
                return;
            };
            match step {
                Step::Start(slot) => self.start_child(id, slot),
                Step::Stop(slot, running) => {
                    let timeout = shutdown_of(&tree.spec.children[slot]);
                    match running {
                        Running::Actor(actor) => self.stop_actor(actor, timeout),
                        Running::Tree(sub) => self.stop_tree(sub, ExitReason::Shutdown),
                    }
                }
                Step::Started => return self.tree_started(id),
                Step::Exit(exit) => return self.finish_tree(id, exit),
            }
        }
    }

    fn start_child(&mut self, id: TreeId, slot: usize) {
        let Some(child) = self.trees.map.get(&id).and_then(|t| t.spec.children.get(slot)).cloned() else {
            return;
        };
        let result = match child.code {
            ChildCode::Tree(spec) => self.create_tree(spec, Some((id, slot)), None).map(|sub| self.advance(sub)),
            ChildCode::Adopt { tree } => return self.adopt(id, slot, tree),
            _ => self.create_actor(&child, Some((id, slot)), StartWaiter::Tree { tree: id, slot }).map(|_| ()),
        };
        if let Err(info) = result {
            self.tree_child_start_failed(id, slot, info);
        }
    }

    /// Makes a running top-level tree child `slot` of `id`.
    fn adopt(&mut self, id: TreeId, slot: usize, sub: TreeId) {
        if let Err(why) = self.adoptable(id, sub) {
            let info = ErrorInfo::new(ErrorKind::BadRequest, why);
            return self.tree_child_start_failed(id, slot, info);
        }
        let Some(subtree) = self.trees.map.get_mut(&sub) else { return };
        subtree.parent = Some((id, slot));
        let sub_spec = subtree.spec.clone();
        self.trees.roots.take_place_of(id, sub);
        let Some(tree) = self.trees.map.get_mut(&id) else { return };
        // Restarts of this child rebuild it from its spec.
        tree.spec.children[slot].code = ChildCode::Tree(sub_spec);
        self.tree_child_started(id, slot, Running::Tree(sub));
    }

    /// Whether `id` may adopt `sub` (the rule is `rebeam_core::trees::adoptable`'s).
    fn adoptable(&self, id: TreeId, sub: TreeId) -> Result<(), String> {
        let map = &self.trees.map;
        let view = |t: TreeId| map.get(&t).map(|t| (t.parent.map(|(parent, _)| parent), t.node.seq.phase()));
        let label = || map.get(&sub).map_or(String::new(), |t| t.label.clone());
        adoptable(id, sub, &self.trees.roots, map.len(), view).map_err(|refusal| match refusal {
            Refusal::OwnAncestor => "a Supervisor cannot be nested inside itself".into(),
            Refusal::Unknown => format!("no supervision tree {sub} is running"),
            Refusal::Nested => format!(
                "supervisor {} is already part of another tree (a Supervisor can be nested in only one)",
                label()
            ),
            Refusal::NotRunning => format!("supervisor {} is not running (it is starting or stopping)", label()),
        })
    }

    fn tree_started(&mut self, id: TreeId) {
        let Some(tree) = self.trees.map.get_mut(&id) else { return };
        let deferred = tree.node.mark_running();
        let waiter = tree.waiter.take();
        let parent = tree.parent;
        tracing::debug!("supervisor {} is up", tree.label);
        if let Some((proc, req)) = waiter {
            self.send_response(proc, req, Response::TreeStarted(Ok(id)));
        }
        if let Some((p, slot)) = parent {
            self.tree_child_started(p, slot, Running::Tree(id));
        }
        for (slot, exit, fault) in deferred {
            self.tree_child_ended_in_fault(id, slot, exit, fault);
        }
        self.check_tree_finished(id);
    }

    pub fn tree_child_started(&mut self, id: TreeId, slot: usize, running: Running) {
        let Some(tree) = self.trees.map.get_mut(&id) else {
            return;
        };
        tree.node.child_up(slot, running);
        self.advance(id);
    }

    pub fn tree_child_start_failed(&mut self, id: TreeId, slot: usize, info: ErrorInfo) {
        let now = self.os.now();
        let Some(tree) = self.trees.map.get_mut(&id) else {
            return;
        };
        let child = tree.spec.children[slot].label.clone();
        match tree.node.seq.phase() {
            Phase::Starting => {
                tree.node.seq.start_failed(slot);
                // A start failure names its actor already; other refusals need the child's name.
                match info.kind {
                    ErrorKind::StartFailed => tracing::error!("supervisor {}: {info}", tree.label),
                    _ => tracing::error!("supervisor {}: child {child} failed to start: {info}", tree.label),
                }
                tree.node.seq.abort_start(slot, Exit::Crashed(info.clone()));
                tree.start_error = Some(info);
            }
            Phase::Running => {
                let exit = Exit::Crashed(info);
                let label = &tree.label;
                let decision = tree.node.restart_failed(slot, &core_reason(&exit), now, |r| escalation(label, r));
                return self.decided(id, slot, exit, decision);
            }
            Phase::Stopping => tree.node.seq.start_failed(slot),
        }
        self.advance(id);
    }

    pub fn tree_child_ended(&mut self, id: TreeId, slot: usize, exit: Exit) {
        self.tree_child_ended_in_fault(id, slot, exit, None);
    }

    pub fn tree_child_ended_in_fault(&mut self, id: TreeId, slot: usize, exit: Exit, fault: Option<FaultId>) {
        let now = self.os.now();
        let Some(tree) = self.trees.map.get_mut(&id) else {
            return;
        };
        let label = &tree.label;
        match tree.node.child_ended(slot, exit.clone(), &core_reason(&exit), now, fault, |r| escalation(label, r)) {
            Ended::Awaited => {
                self.advance(id);
                self.check_tree_finished(id);
            }
            Ended::Deferred => {}
            Ended::Noted => self.advance(id),
            Ended::Decided(decision) => self.decided(id, slot, exit, decision),
        }
    }

    /// Reports a decision the supervisor took about `slot`'s exit (its steps are queued), then
    /// carries it out.
    fn decided(&mut self, id: TreeId, slot: usize, exit: Exit, decision: Decision) {
        let now = self.os.now();
        let Some(tree) = self.trees.map.get_mut(&id) else { return };
        let child = &tree.spec.children[slot];
        if matches!(exit, Exit::Crashed(_) | Exit::Killed(_)) {
            let r = report::CrashReport {
                supervisor: &tree.label,
                strategy: tree.node.strategy(),
                child: &child.label,
                name: child.name.as_deref(),
                exit: &exit,
                restarts: tree.node.restarts_in_window(now),
                intensity: tree.node.intensity(),
                decision: &decision,
            };
            tracing::error!("{}", r.render());
        } else {
            tracing::debug!("supervisor {}: child {} ended ({:?})", tree.label, child.label, exit);
        }
        // A restart waits for an input of its own, as OTP's supervisor casts itself
        // `try_again_restart`: a child that ends as it starts (an empty nested Supervisor, a
        // failing adoption) would otherwise restart within its own end, recursing once per
        // restart allowed, and the router would serve nothing else meanwhile.
        if matches!(decision, Decision::Restart { .. }) {
            return self.after(Duration::ZERO, Input::TreeRestart(id));
        }
        self.advance(id);
        self.check_tree_finished(id);
    }

    pub fn tree_restart(&mut self, id: TreeId) {
        let Some(tree) = self.trees.map.get_mut(&id) else { return };
        tree.node.seq.release();
        self.advance(id);
        self.check_tree_finished(id);
    }

    /// A running tree whose children have all ended, with nothing left to do, ends normally.
    fn check_tree_finished(&mut self, id: TreeId) {
        let Some(tree) = self.trees.map.get(&id) else {
            return;
        };
        if tree.node.finished() {
            tracing::debug!("supervisor {}: every child has ended; it ends too", tree.label);
            self.finish_tree(id, Exit::Normal);
        }
    }

    /// Stops a tree's children in reverse start order, then ends the tree with `reason`.
    pub fn stop_tree(&mut self, id: TreeId, reason: ExitReason) {
        let Some(tree) = self.trees.map.get_mut(&id) else {
            return;
        };
        let exit = match reason {
            ExitReason::Normal => Exit::Normal,
            _ => Exit::Shutdown,
        };
        // A stop of a tree already on its way out changes nothing.
        if tree.node.stop(exit) {
            self.advance(id);
        }
    }

    fn finish_tree(&mut self, id: TreeId, exit: Exit) {
        let Some(tree) = self.trees.map.remove(&id) else {
            return;
        };
        let failed = matches!(exit, Exit::Crashed(_) | Exit::Killed(_));
        if let Some((proc, req)) = tree.waiter {
            let info = tree.start_error.clone().unwrap_or_else(|| {
                ErrorInfo::new(ErrorKind::StartFailed, format!("supervisor {} stopped while starting", tree.label))
            });
            self.send_response(proc, req, Response::TreeStarted(Err(info)));
        }
        if let Some((parent, slot)) = tree.parent {
            let starting = self.trees.map.get(&parent).is_some_and(|p| p.node.seq.starting() == Some(slot));
            if let (true, Some(info)) = (starting, tree.start_error.clone()) {
                return self.tree_child_start_failed(parent, slot, info);
            }
            return self.tree_child_ended(parent, slot, exit);
        }
        let is_root = self.trees.roots.is_root(id);
        self.trees.roots.remove(id);
        match &exit {
            Exit::Crashed(info) if tree.start_error.is_none() => {
                tracing::error!("{}", info.message)
            }
            Exit::Killed(why) => tracing::error!("supervisor {} was killed: {why}", tree.label),
            _ => {}
        }
        if is_root && failed && tree.start_error.is_none() {
            self.trees.roots.failed = true;
            self.begin_shutdown(1, "the root supervisor failed");
        } else if is_root && !failed && self.body_done() {
            self.begin_shutdown(0, "the root supervision tree ended");
        } else if self.trees.roots().is_empty() && self.body_done() {
            let code = if self.trees.roots.failed { 1 } else { 0 };
            self.begin_shutdown(code, "every supervision tree has ended");
        }
    }
}

impl Router {
    /// The trees for `rebeam ctl status`, top-level ones in start order: each supervisor's
    /// restarts within its intensity window, and where each child runs.
    pub fn tree_status(&self) -> Vec<TreeStatus> {
        self.trees.roots().iter().filter_map(|&root| self.tree_node(root)).collect()
    }

    fn tree_node(&self, id: TreeId) -> Option<TreeStatus> {
        let t = self.trees.map.get(&id)?;
        let children = t
            .spec
            .children
            .iter()
            .enumerate()
            .filter_map(|(slot, child)| match t.node.seq.slots()[slot] {
                // A nested tree shows as itself; one that is gone shows nothing, as before.
                Some(Running::Tree(sub)) => self.tree_node(sub).map(ChildStatus::Tree),
                Some(Running::Actor(a)) => {
                    let place = self.actors.proc_of(a).and_then(|p| self.procs.get(p)).map(|p| p.describe());
                    Some(actor_child(child, Some((a, place))))
                }
                None => Some(actor_child(child, None)),
            })
            .collect();
        Some(TreeStatus {
            label: t.label.clone(),
            strategy: t.node.strategy(),
            restarts_used: t.node.restarts_in_window(self.os.now()),
            max_restarts: t.node.intensity().max_restarts,
            max_seconds_ms: u64::try_from(t.node.intensity().max_seconds.as_millis()).unwrap_or(u64::MAX),
            children,
        })
    }
}

fn actor_child(child: &ChildSpec, running: Option<(ActorId, Option<String>)>) -> ChildStatus {
    ChildStatus::Actor { name: child.name.clone(), label: child.label.clone(), running }
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
    pub(crate) fn view(&self) -> HashMap<TreeId, TreeView> {
        self.map
            .iter()
            .map(|(&id, t)| {
                (id, TreeView { parent: t.parent, slots: t.node.seq.slots().to_vec(), starting: t.node.seq.starting() })
            })
            .collect()
    }
}
