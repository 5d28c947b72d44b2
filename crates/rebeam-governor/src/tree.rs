//! Supervision trees in the governor: the I/O half of `rebeam_core::supervision`.
//!
//! The core decides (restart which children, or escalate); this module carries the decision
//! out. A tree works through a queue of operations, one at a time, because starting and
//! stopping children are asynchronous (a worker answers later):
//!
//! - `Start(i)`: start child `i` (an actor in a worker, or a nested tree) and wait for it.
//! - `Stop(i)`: stop child `i` politely, kill it after its shutdown timeout, wait for its exit.
//! - `Started`: every child is up: the tree is running; answer whoever asked for it.
//! - `Exit(reason)`: the tree ends; its parent (or, for a top-level tree, the run) decides.
//!
//! During the initial start a child that fails to start aborts the tree: the children already
//! started are stopped in reverse order and the start fails (as `supervisor:start_link` does).
//! Exits that arrive before the tree is fully started are handled once it is.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rebeam_core::supervision::{
    Decision, ExitReason, FaultId, Intensity, Restart, Strategy, Supervisor, MAX_RESTARTS, MAX_RESTART_WINDOW,
};
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

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Start(usize),
    Stop(usize),
    Started,
    Exit(Exit),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Running,
    Stopping,
}

pub struct Tree {
    label: String,
    spec: TreeSpec,
    strategy: Strategy,
    intensity: Intensity,
    restarts: Vec<Restart>,
    logic: Option<Supervisor>,
    slots: Vec<Option<Running>>,
    parent: Option<(TreeId, usize)>,
    phase: Phase,
    ops: VecDeque<Op>,
    current: Option<Op>,
    waiter: Option<(ProcIdx, ReqId)>,
    start_error: Option<ErrorInfo>,
    deferred: Vec<(usize, Exit, Option<FaultId>)>,
    /// A restart was decided and waits for its `Input::TreeRestart`: `advance` runs nothing
    /// until then (see `decide`).
    restart_held: bool,
}

impl Tree {
    /// Queues a stop of the child whose start is in flight (if any), to run once it is up,
    /// in its place among the queued stops (reverse start order).
    fn stop_starting_child_when_up(&mut self) {
        if let Some(Op::Start(starting)) = self.current {
            let at =
                self.ops.iter().position(|op| matches!(op, Op::Stop(j) if *j < starting)).unwrap_or(self.ops.len());
            self.ops.insert(at, Op::Stop(starting));
        }
    }
}

#[derive(Default)]
pub struct Trees {
    map: HashMap<TreeId, Tree>,
    /// Top-level trees in start order; the first is the root.
    roots: Vec<TreeId>,
    root_failed: bool,
}

impl Trees {
    /// The adopter takes the adopted tree's place among the top-level trees when that place is
    /// earlier than its own (so `Supervisor(modules=[Supervisor(...)])` becomes the root);
    /// the adopted tree leaves the list either way.
    fn take_place_of(&mut self, adopter: TreeId, adopted: TreeId) {
        let Some(pos) = self.roots.iter().position(|&r| r == adopted) else { return };
        match self.roots.iter().position(|&r| r == adopter) {
            Some(own) if own < pos => {
                self.roots.remove(pos);
            }
            Some(own) => {
                self.roots[pos] = adopter;
                self.roots.remove(own);
            }
            // A nested adopter is not a top-level tree; it gains no place of its own.
            None => {
                self.roots.remove(pos);
            }
        }
    }

    pub fn roots(&self) -> &[TreeId] {
        &self.roots
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn root_failed(&self) -> bool {
        self.root_failed
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
        let mut ops: VecDeque<Op> = (0..n).map(Op::Start).collect();
        ops.push_back(Op::Started);
        tracing::debug!("supervisor {label} ({strategy}) starting {n} children");
        self.trees.map.insert(
            id,
            Tree {
                label,
                spec,
                strategy,
                intensity,
                restarts,
                logic: None,
                slots: vec![None; n],
                parent,
                phase: Phase::Starting,
                ops,
                current: None,
                waiter,
                start_error: None,
                deferred: Vec::new(),
                restart_held: false,
            },
        );
        Ok(id)
    }

    /// Runs queued operations until one has to wait for a worker or a child.
    fn advance(&mut self, id: TreeId) {
        loop {
            let Some(tree) = self.trees.map.get_mut(&id) else {
                return;
            };
            if tree.current.is_some() || tree.restart_held {
                return;
            }
            let Some(op) = tree.ops.pop_front() else {
                return;
            };
            match op {
                Op::Start(slot) => {
                    if tree.phase == Phase::Stopping || tree.slots[slot].is_some() {
                        continue;
                    }
                    tree.current = Some(Op::Start(slot));
                    self.start_child(id, slot);
                }
                Op::Stop(slot) => {
                    let Some(running) = tree.slots[slot] else {
                        continue;
                    };
                    tree.current = Some(Op::Stop(slot));
                    let timeout = shutdown_of(&tree.spec.children[slot]);
                    match running {
                        Running::Actor(actor) => self.stop_actor(actor, timeout),
                        Running::Tree(sub) => self.stop_tree(sub, ExitReason::Shutdown),
                    }
                }
                Op::Started => return self.tree_started(id),
                Op::Exit(exit) => return self.finish_tree(id, exit),
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
        self.trees.take_place_of(id, sub);
        let Some(tree) = self.trees.map.get_mut(&id) else { return };
        // Restarts of this child rebuild it from its spec.
        tree.spec.children[slot].code = ChildCode::Tree(sub_spec);
        self.tree_child_started(id, slot, Running::Tree(sub));
    }

    /// Only a running top-level tree that is not `id`'s own ancestor can become its child: any
    /// other tree id (a peer can send any number) would make a tree its own parent, or give a
    /// tree two parents.
    fn adoptable(&self, id: TreeId, sub: TreeId) -> Result<(), String> {
        // (Bounded, so that even a cycle, which no path should make, cannot hang the governor.)
        let mut up = Some(id);
        for _ in 0..=self.trees.map.len() {
            let Some(tree) = up else { break };
            if tree == sub {
                return Err("a Supervisor cannot be nested inside itself".into());
            }
            up = self.trees.map.get(&tree).and_then(|t| t.parent).map(|(parent, _)| parent);
        }
        let Some(t) = self.trees.map.get(&sub) else {
            return Err(format!("no supervision tree {sub} is running"));
        };
        if !self.trees.roots.contains(&sub) {
            return Err(format!(
                "supervisor {} is already part of another tree (a Supervisor can be nested in only one)",
                t.label
            ));
        }
        if t.phase != Phase::Running {
            return Err(format!("supervisor {} is not running (it is starting or stopping)", t.label));
        }
        Ok(())
    }

    fn tree_started(&mut self, id: TreeId) {
        let Some(tree) = self.trees.map.get_mut(&id) else { return };
        tree.phase = Phase::Running;
        tree.logic = Some(Supervisor::new(tree.strategy, tree.intensity, tree.restarts.clone()));
        let waiter = tree.waiter.take();
        let parent = tree.parent;
        let deferred = std::mem::take(&mut tree.deferred);
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
        tree.slots[slot] = Some(running);
        if tree.current == Some(Op::Start(slot)) {
            tree.current = None;
        }
        if let Some(logic) = tree.logic.as_mut() {
            logic.child_started(slot);
        }
        self.advance(id);
    }

    pub fn tree_child_start_failed(&mut self, id: TreeId, slot: usize, info: ErrorInfo) {
        let Some(tree) = self.trees.map.get_mut(&id) else {
            return;
        };
        if tree.current == Some(Op::Start(slot)) {
            tree.current = None;
        }
        let child = tree.spec.children[slot].label.clone();
        match tree.phase {
            Phase::Starting => {
                // A start failure names its actor already; other refusals need the child's name.
                match info.kind {
                    ErrorKind::StartFailed => tracing::error!("supervisor {}: {info}", tree.label),
                    _ => tracing::error!("supervisor {}: child {child} failed to start: {info}", tree.label),
                }
                tree.phase = Phase::Stopping;
                tree.ops.clear();
                for j in (0..slot).rev() {
                    tree.ops.push_back(Op::Stop(j));
                }
                let exit = Exit::Crashed(info.clone());
                tree.start_error = Some(info);
                tree.ops.push_back(Op::Exit(exit));
            }
            Phase::Running => {
                // A restart that fails to start is a crash of that child: it counts toward
                // intensity, so a child that can never start ends in escalation, not a loop.
                let logic = tree.logic.as_mut().expect("a tree in Phase::Running has its logic (set in tree_started)");
                logic.child_started(slot);
                return self.decide(id, slot, Exit::Crashed(info), None);
            }
            Phase::Stopping => {}
        }
        self.advance(id);
    }

    pub fn tree_child_ended(&mut self, id: TreeId, slot: usize, exit: Exit) {
        self.tree_child_ended_in_fault(id, slot, exit, None);
    }

    pub fn tree_child_ended_in_fault(&mut self, id: TreeId, slot: usize, exit: Exit, fault: Option<FaultId>) {
        let Some(tree) = self.trees.map.get_mut(&id) else {
            return;
        };
        tree.slots[slot] = None;
        if tree.current == Some(Op::Stop(slot)) {
            tree.current = None;
            if let Some(logic) = tree.logic.as_mut() {
                logic.child_stopped(slot);
            }
            self.advance(id);
            return self.check_tree_finished(id);
        }
        match tree.phase {
            Phase::Starting => tree.deferred.push((slot, exit, fault)),
            Phase::Stopping => {
                if let Some(logic) = tree.logic.as_mut() {
                    logic.child_exited(slot, &core_reason(&exit), self.os.now());
                }
                self.advance(id);
            }
            Phase::Running => self.decide(id, slot, exit, fault),
        }
    }

    fn decide(&mut self, id: TreeId, slot: usize, exit: Exit, fault: Option<FaultId>) {
        let now = self.os.now();
        let Some(tree) = self.trees.map.get_mut(&id) else { return };
        let logic = tree.logic.as_mut().expect("only running trees decide, and a running tree has its logic");
        let decision = logic.child_exited_in_fault(slot, &core_reason(&exit), now, fault);
        let restarts = logic.restarts_in_window(now);
        let child = &tree.spec.children[slot];
        if matches!(exit, Exit::Crashed(_) | Exit::Killed(_)) {
            let r = report::CrashReport {
                supervisor: &tree.label,
                strategy: tree.strategy,
                child: &child.label,
                name: child.name.as_deref(),
                exit: &exit,
                restarts,
                intensity: tree.intensity,
                decision: &decision,
            };
            tracing::error!("{}", r.render());
        } else {
            tracing::debug!("supervisor {}: child {} ended ({:?})", tree.label, child.label, exit);
        }
        let restart = matches!(decision, Decision::Restart { .. });
        match decision {
            Decision::Ignore => {}
            Decision::Restart { stop, start } => {
                // Starts still queued from an earlier decision are redone in this one's order
                // (after the child that just failed), not before it.
                tree.ops.retain(|op| !matches!(op, Op::Start(j) if start.contains(j)));
                tree.ops.extend(stop.into_iter().map(Op::Stop));
                // A child to restart whose start is in flight is not running yet, so it is not
                // in `stop`; it was started before this failure: stop it once it is up, then
                // start it again in order.
                if matches!(tree.current, Some(Op::Start(s)) if start.contains(&s)) {
                    tree.stop_starting_child_when_up();
                }
                tree.ops.extend(start.into_iter().map(Op::Start));
            }
            Decision::Escalate { stop } => {
                tree.phase = Phase::Stopping;
                tree.ops.clear();
                tree.ops.extend(stop.into_iter().map(Op::Stop));
                // A child whose restart is in flight is not running yet, so it is not in
                // `stop`: stop it once it is up (in its place in reverse start order), or it
                // would outlive the tree and keep its name from the tree's next incarnation.
                tree.stop_starting_child_when_up();
                let reason = match tree.intensity.escalation_reason() {
                    ExitReason::Crashed(why) => why,
                    other => other.to_string(),
                };
                let info = ErrorInfo::new(ErrorKind::Crashed, format!("supervisor {} {reason}", tree.label));
                tree.ops.push_back(Op::Exit(Exit::Crashed(info)));
            }
        }
        // A restart waits for an input of its own, as OTP's supervisor casts itself
        // `try_again_restart`: a child that ends as it starts (an empty nested Supervisor, a
        // failing adoption) would otherwise restart within its own end, recursing once per
        // restart allowed, and the router would serve nothing else meanwhile.
        if restart {
            tree.restart_held = true;
            return self.after(Duration::ZERO, Input::TreeRestart(id));
        }
        self.advance(id);
        self.check_tree_finished(id);
    }

    pub fn tree_restart(&mut self, id: TreeId) {
        let Some(tree) = self.trees.map.get_mut(&id) else { return };
        tree.restart_held = false;
        self.advance(id);
        self.check_tree_finished(id);
    }

    /// A running tree whose children have all ended, with nothing left to do, ends normally.
    fn check_tree_finished(&mut self, id: TreeId) {
        let Some(tree) = self.trees.map.get(&id) else {
            return;
        };
        let idle = tree.current.is_none() && tree.ops.is_empty();
        if tree.phase == Phase::Running && idle && tree.logic.as_ref().is_some_and(Supervisor::finished) {
            tracing::debug!("supervisor {}: every child has ended; it ends too", tree.label);
            self.finish_tree(id, Exit::Normal);
        }
    }

    /// Stops a tree's children in reverse start order, then ends the tree with `reason`.
    pub fn stop_tree(&mut self, id: TreeId, reason: ExitReason) {
        let Some(tree) = self.trees.map.get_mut(&id) else {
            return;
        };
        if tree.phase == Phase::Stopping && tree.ops.iter().any(|op| matches!(op, Op::Exit(_))) {
            return;
        }
        tree.phase = Phase::Stopping;
        tree.ops.clear();
        // A stop does not wait for a restart it makes moot.
        tree.restart_held = false;
        let order: Vec<usize> = match tree.logic.as_mut() {
            Some(logic) => logic.begin_shutdown(),
            None => (0..tree.slots.len()).rev().collect(),
        };
        // A child still starting (the current op) is stopped once it is up.
        tree.ops.extend(order.into_iter().map(Op::Stop));
        if let Some(Op::Start(slot)) = tree.current {
            tree.ops.push_back(Op::Stop(slot));
        }
        let exit = match reason {
            ExitReason::Normal => Exit::Normal,
            _ => Exit::Shutdown,
        };
        tree.ops.push_back(Op::Exit(exit));
        self.advance(id);
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
            let starting = self.trees.map.get(&parent).is_some_and(|p| p.current == Some(Op::Start(slot)));
            if let (true, Some(info)) = (starting, tree.start_error.clone()) {
                return self.tree_child_start_failed(parent, slot, info);
            }
            return self.tree_child_ended(parent, slot, exit);
        }
        let is_root = self.trees.roots.first() == Some(&id);
        self.trees.roots.retain(|&r| r != id);
        match &exit {
            Exit::Crashed(info) if tree.start_error.is_none() => {
                tracing::error!("{}", info.message)
            }
            Exit::Killed(why) => tracing::error!("supervisor {} was killed: {why}", tree.label),
            _ => {}
        }
        if is_root && failed && tree.start_error.is_none() {
            self.trees.root_failed = true;
            self.begin_shutdown(1, "the root supervisor failed");
        } else if is_root && !failed && self.body_done() {
            self.begin_shutdown(0, "the root supervision tree ended");
        } else if self.trees.roots.is_empty() && self.body_done() {
            let code = if self.trees.root_failed { 1 } else { 0 };
            self.begin_shutdown(code, "every supervision tree has ended");
        }
    }
}

impl Router {
    /// The trees for `rebeam ctl status`, top-level ones in start order: each supervisor's
    /// restarts within its intensity window, and where each child runs.
    pub fn tree_status(&self) -> Vec<TreeStatus> {
        self.trees.roots.iter().filter_map(|&root| self.tree_node(root)).collect()
    }

    fn tree_node(&self, id: TreeId) -> Option<TreeStatus> {
        let t = self.trees.map.get(&id)?;
        let children = t
            .spec
            .children
            .iter()
            .enumerate()
            .filter_map(|(slot, child)| match t.slots[slot] {
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
            strategy: t.strategy,
            restarts_used: t.logic.as_ref().map_or(0, |l| l.restarts_in_window(self.os.now())),
            max_restarts: t.intensity.max_restarts,
            max_seconds_ms: u64::try_from(t.intensity.max_seconds.as_millis()).unwrap_or(u64::MAX),
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
        let starting = |t: &Tree| match t.current {
            Some(Op::Start(s)) => Some(s),
            _ => None,
        };
        self.map
            .iter()
            .map(|(&id, t)| (id, TreeView { parent: t.parent, slots: t.slots.clone(), starting: starting(t) }))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Trees;

    fn roots(list: &[u64]) -> Trees {
        Trees { roots: list.to_vec(), ..Trees::default() }
    }

    #[test]
    fn an_outer_tree_adopting_two_earlier_trees_becomes_the_only_root() {
        // `Supervisor(modules=[Supervisor(a), Supervisor(b), client])`: a and b start first.
        let mut t = roots(&[1, 2, 3]);
        t.take_place_of(3, 1);
        assert_eq!(t.roots, [3, 2]);
        t.take_place_of(3, 2);
        assert_eq!(t.roots, [3]);
    }

    #[test]
    fn an_adopter_keeps_its_earlier_place_and_a_nested_adopter_gains_none() {
        let mut t = roots(&[1, 2, 3]);
        t.take_place_of(1, 3);
        assert_eq!(t.roots, [1, 2]);
        t.take_place_of(9, 2);
        assert_eq!(t.roots, [1]);
        t.take_place_of(9, 7);
        assert_eq!(t.roots, [1]);
    }
}
