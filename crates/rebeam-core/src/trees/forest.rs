//! The machine: every tree by id, the top-level list, and the effects of the input being
//! handled. The rules are the [`crate::trees`] module doc's; each input runs to completion
//! (nested trees included) and returns its effects in the order they arose.

use std::collections::HashMap;
use std::time::Instant;

use super::{
    adoptable, ChildSpec, Code, Effect, Ended, Ending, ErrorClass, Failed, Host, Log, Node, Phase, Refusal, Report,
    Roots, Running, Step, TreeId, TreeSpec, Turn,
};
use crate::supervision::{Decision, ExitReason, FaultId, Intensity, Strategy};

/// One tree: its spec, its node, and who hears of it.
pub struct Tree<H: Host> {
    label: String,
    spec: TreeSpec<H::Spec>,
    node: Node<H::Exit, Running<H::Actor>>,
    parent: Option<(TreeId, usize)>,
    requester: Option<H::Requester>,
    /// Why the initial start failed: what the requester, or the parent's start, is told.
    start_error: Option<H::Error>,
}

impl<H: Host> Tree<H> {
    /// `'name'` or `Supervisor<id>`.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn strategy(&self) -> Strategy {
        self.node.strategy()
    }

    pub fn intensity(&self) -> Intensity {
        self.node.intensity()
    }

    pub fn restarts_in_window(&self, now: Instant) -> u32 {
        self.node.restarts_in_window(now)
    }

    pub fn children(&self) -> &[ChildSpec<H::Spec>] {
        &self.spec.children
    }

    /// What runs in each slot, in spec order.
    pub fn slots(&self) -> &[Option<Running<H::Actor>>] {
        self.node.slots()
    }

    pub fn parent(&self) -> Option<(TreeId, usize)> {
        self.parent
    }

    /// The slot whose start is in flight.
    pub fn starting(&self) -> Option<usize> {
        self.node.starting()
    }

    pub fn phase(&self) -> Phase {
        self.node.phase()
    }
}

/// Every supervision tree of a run: feed it inputs, carry out the effects each returns.
pub struct Forest<H: Host> {
    map: HashMap<TreeId, Tree<H>>,
    roots: Roots<TreeId>,
    /// The root tree failed once it was up (the run ends with a failure code).
    root_failed: bool,
    /// The effects of the input being handled.
    out: Vec<Effect<H>>,
}

impl<H: Host> Default for Forest<H> {
    fn default() -> Self {
        Self { map: HashMap::new(), roots: Roots::default(), root_failed: false, out: Vec::new() }
    }
}

/// How a tree that gave up (too many restarts) ends, for its parent to decide upon.
fn escalation<H: Host>(label: &str, reason: ExitReason) -> H::Exit {
    let reason = match reason {
        ExitReason::Crashed(why) => why,
        other => other.to_string(),
    };
    H::crashed(H::error(ErrorClass::Crashed, format!("supervisor {label} {reason}")))
}

impl<H: Host> Forest<H> {
    /// Top-level trees in start order; the first is the root.
    pub fn roots(&self) -> &[TreeId] {
        self.roots.list()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The root tree failed once it was up (the run ends with a failure code).
    pub fn root_failed(&self) -> bool {
        self.root_failed
    }

    pub fn get(&self, id: TreeId) -> Option<&Tree<H>> {
        self.map.get(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (TreeId, &Tree<H>)> {
        self.map.iter().map(|(&id, t)| (id, t))
    }

    /// Starts a top-level tree for `requester`, answered once it is up or has failed.
    pub fn start(&mut self, spec: TreeSpec<H::Spec>, requester: H::Requester, mut cx: Turn) -> Vec<Effect<H>> {
        match spec.intensity() {
            Ok(intensity) => {
                let id = self.create(spec, intensity, None, Some(requester), &mut cx);
                self.roots.push(id);
                self.advance(id, &mut cx);
            }
            Err(why) => self.out.push(Effect::Answer { requester, result: Err(H::error(ErrorClass::BadRequest, why)) }),
        }
        std::mem::take(&mut self.out)
    }

    /// The actor started as child `slot` of `tree` is up.
    pub fn child_started(&mut self, tree: TreeId, slot: usize, actor: H::Actor, mut cx: Turn) -> Vec<Effect<H>> {
        self.child_up(tree, slot, Running::Actor(actor), &mut cx);
        std::mem::take(&mut self.out)
    }

    /// The actor child `slot` of `tree` could not be started.
    pub fn start_failed(&mut self, tree: TreeId, slot: usize, error: H::Error, mut cx: Turn) -> Vec<Effect<H>> {
        self.child_start_failed(tree, slot, error, &mut cx);
        std::mem::take(&mut self.out)
    }

    /// The actor child `slot` of `tree` ended; `fault` names the event that took it (a worker's
    /// death), which its supervisor counts once however many children it took.
    pub fn child_ended(
        &mut self,
        tree: TreeId,
        slot: usize,
        exit: H::Exit,
        fault: Option<FaultId>,
        mut cx: Turn,
    ) -> Vec<Effect<H>> {
        self.ended(tree, slot, exit, fault, &mut cx);
        std::mem::take(&mut self.out)
    }

    /// The restart turn [`Effect::RestartTurn`] asked for.
    pub fn restart_turn(&mut self, tree: TreeId, mut cx: Turn) -> Vec<Effect<H>> {
        if let Some(t) = self.map.get_mut(&tree) {
            t.node.release();
            self.advance(tree, &mut cx);
            self.check_finished(tree, &mut cx);
        }
        std::mem::take(&mut self.out)
    }

    /// Stops a tree: its children in reverse start order, then the tree, with `Shutdown`.
    pub fn stop(&mut self, tree: TreeId, mut cx: Turn) -> Vec<Effect<H>> {
        self.stop_tree(tree, H::shutdown(), &mut cx);
        std::mem::take(&mut self.out)
    }

    fn create(
        &mut self,
        spec: TreeSpec<H::Spec>,
        intensity: Intensity,
        parent: Option<(TreeId, usize)>,
        requester: Option<H::Requester>,
        cx: &mut Turn,
    ) -> TreeId {
        let id = cx.next_id();
        let label = match &spec.name {
            Some(n) => format!("'{n}'"),
            None => format!("Supervisor<{id}>"),
        };
        let children = spec.children.len();
        self.out.push(Effect::Log(Log::Starting { label: label.clone(), strategy: spec.strategy, children }));
        let node = Node::new(spec.strategy, intensity, spec.restarts());
        self.map.insert(id, Tree { label, spec, node, parent, requester, start_error: None });
        id
    }

    /// Runs queued operations until one has to wait for the host or a child.
    fn advance(&mut self, id: TreeId, cx: &mut Turn) {
        loop {
            let Some(tree) = self.map.get_mut(&id) else { return };
            let Some(step) = tree.node.next_step() else { return };
            match step {
                Step::Start(slot) => self.start_child(id, slot, cx),
                Step::Stop(slot, Running::Actor(actor)) => {
                    let shutdown = tree.spec.children[slot].shutdown;
                    self.out.push(Effect::Stop { actor, shutdown });
                }
                Step::Stop(_, Running::Tree(sub)) => self.stop_tree(sub, H::shutdown(), cx),
                Step::Started => return self.tree_started(id, cx),
                Step::Exit(exit) => return self.finish(id, exit, cx),
            }
        }
    }

    fn start_child(&mut self, id: TreeId, slot: usize, cx: &mut Turn) {
        let Some(code) = self.map.get(&id).and_then(|t| t.spec.children.get(slot)).map(|c| c.code.clone()) else {
            return;
        };
        match code {
            Code::Actor(spec) => self.out.push(Effect::Start { tree: id, slot, spec }),
            Code::Tree(spec) => match spec.intensity() {
                Ok(intensity) => {
                    let sub = self.create(spec, intensity, Some((id, slot)), None, cx);
                    self.advance(sub, cx);
                }
                Err(why) => self.child_start_failed(id, slot, H::error(ErrorClass::BadRequest, why), cx),
            },
            Code::Adopt(sub) => self.adopt(id, slot, sub, cx),
        }
    }

    /// Makes a running top-level tree child `slot` of `id`.
    fn adopt(&mut self, id: TreeId, slot: usize, sub: TreeId, cx: &mut Turn) {
        if let Err(why) = self.adoptable(id, sub) {
            return self.child_start_failed(id, slot, H::error(ErrorClass::BadRequest, why), cx);
        }
        let Some(subtree) = self.map.get_mut(&sub) else { return };
        subtree.parent = Some((id, slot));
        let sub_spec = subtree.spec.clone();
        self.roots.take_place_of(id, sub);
        let Some(tree) = self.map.get_mut(&id) else { return };
        // Restarts of this child rebuild it from its spec.
        tree.spec.children[slot].code = Code::Tree(sub_spec);
        self.child_up(id, slot, Running::Tree(sub), cx);
    }

    /// Whether `id` may adopt `sub` (the rule is [`adoptable`]'s), and if not, why, in words.
    fn adoptable(&self, id: TreeId, sub: TreeId) -> Result<(), String> {
        let map = &self.map;
        let view = |t: TreeId| map.get(&t).map(|t| (t.parent.map(|(parent, _)| parent), t.node.phase()));
        let label = || map.get(&sub).map_or(String::new(), |t| t.label.clone());
        adoptable(id, sub, &self.roots, map.len(), view).map_err(|refusal| match refusal {
            Refusal::OwnAncestor => "a Supervisor cannot be nested inside itself".into(),
            Refusal::Unknown => format!("no supervision tree {sub} is running"),
            Refusal::Nested => format!(
                "supervisor {} is already part of another tree (a Supervisor can be nested in only one)",
                label()
            ),
            Refusal::NotRunning => format!("supervisor {} is not running (it is starting or stopping)", label()),
        })
    }

    fn tree_started(&mut self, id: TreeId, cx: &mut Turn) {
        let Some(tree) = self.map.get_mut(&id) else { return };
        let deferred = tree.node.mark_running();
        let requester = tree.requester.take();
        let parent = tree.parent;
        self.out.push(Effect::Log(Log::Up { label: tree.label.clone() }));
        if let Some(requester) = requester {
            self.out.push(Effect::Answer { requester, result: Ok(id) });
        }
        if let Some((p, slot)) = parent {
            self.child_up(p, slot, Running::Tree(id), cx);
        }
        for (slot, exit, fault) in deferred {
            self.ended(id, slot, exit, fault, cx);
        }
        self.check_finished(id, cx);
    }

    fn child_up(&mut self, id: TreeId, slot: usize, running: Running<H::Actor>, cx: &mut Turn) {
        let Some(tree) = self.map.get_mut(&id) else { return };
        tree.node.child_up(slot, running);
        self.advance(id, cx);
    }

    fn child_start_failed(&mut self, id: TreeId, slot: usize, error: H::Error, cx: &mut Turn) {
        let Some(tree) = self.map.get_mut(&id) else { return };
        let exit = H::crashed(error.clone());
        let label = &tree.label;
        match tree.node.start_failed(slot, exit.clone(), &H::reading(&exit), cx.now, |r| escalation::<H>(label, r)) {
            Failed::Aborted => {
                let child = tree.spec.children[slot].label.clone();
                self.out.push(Effect::Log(Log::StartFailed { label: tree.label.clone(), child, error: error.clone() }));
                tree.start_error = Some(error);
                self.advance(id, cx);
            }
            Failed::Noted => self.advance(id, cx),
            Failed::Decided(decision) => self.decided(id, slot, exit, decision, cx),
        }
    }

    fn ended(&mut self, id: TreeId, slot: usize, exit: H::Exit, fault: Option<FaultId>, cx: &mut Turn) {
        let Some(tree) = self.map.get_mut(&id) else { return };
        let label = &tree.label;
        let reason = H::reading(&exit);
        match tree.node.child_ended(slot, exit.clone(), &reason, cx.now, fault, |r| escalation::<H>(label, r)) {
            Ended::Awaited => {
                self.advance(id, cx);
                self.check_finished(id, cx);
            }
            Ended::Deferred => {}
            Ended::Noted => self.advance(id, cx),
            Ended::Decided(decision) => self.decided(id, slot, exit, decision, cx),
        }
    }

    /// Reports a decision the supervisor took about `slot`'s exit (its steps are queued), then
    /// carries it out, a restart on its own turn.
    fn decided(&mut self, id: TreeId, slot: usize, exit: H::Exit, decision: Decision, cx: &mut Turn) {
        let Some(tree) = self.map.get(&id) else { return };
        let child = &tree.spec.children[slot];
        let restart = matches!(decision, Decision::Restart { .. });
        self.out.push(Effect::Log(Log::ChildEnded(Report {
            supervisor: tree.label.clone(),
            strategy: tree.node.strategy(),
            child: child.label.clone(),
            name: child.name.clone(),
            exit,
            restarts: tree.node.restarts_in_window(cx.now),
            intensity: tree.node.intensity(),
            decision,
        })));
        if restart {
            return self.out.push(Effect::RestartTurn(id));
        }
        self.advance(id, cx);
        self.check_finished(id, cx);
    }

    fn check_finished(&mut self, id: TreeId, cx: &mut Turn) {
        let Some(tree) = self.map.get(&id) else { return };
        if tree.node.finished() {
            self.out.push(Effect::Log(Log::AllEnded { label: tree.label.clone() }));
            self.finish(id, H::normal(), cx);
        }
    }

    fn stop_tree(&mut self, id: TreeId, exit: H::Exit, cx: &mut Turn) {
        let Some(tree) = self.map.get_mut(&id) else { return };
        // A stop of a tree already on its way out changes nothing.
        if tree.node.stop(exit) {
            self.advance(id, cx);
        }
    }

    fn finish(&mut self, id: TreeId, exit: H::Exit, cx: &mut Turn) {
        let Some(tree) = self.map.remove(&id) else { return };
        if let Some(requester) = tree.requester {
            let error = tree.start_error.clone().unwrap_or_else(|| {
                H::error(ErrorClass::StartFailed, format!("supervisor {} stopped while starting", tree.label))
            });
            self.out.push(Effect::Answer { requester, result: Err(error) });
        }
        if let Some((parent, slot)) = tree.parent {
            let starting = self.map.get(&parent).is_some_and(|p| p.node.starting() == Some(slot));
            if let (true, Some(error)) = (starting, tree.start_error) {
                return self.child_start_failed(parent, slot, error, cx);
            }
            return self.ended(parent, slot, exit, None, cx);
        }
        let root = self.roots.is_root(id);
        self.roots.remove(id);
        let failed = !H::reading(&exit).is_normal();
        let start_failed = tree.start_error.is_some();
        let ending = if root && failed && !start_failed {
            self.root_failed = true;
            Ending::RootFailed
        } else if root && !failed {
            Ending::RootEnded
        } else {
            Ending::Another
        };
        self.out.push(Effect::Ended { tree: id, label: tree.label, exit, start_failed, ending });
    }
}
