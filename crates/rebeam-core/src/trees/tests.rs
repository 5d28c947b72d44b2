//! The machine driven by a host that starts and stops actors at once: each test reads the
//! trace of what the host was asked to do.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::{ChildSpec, Code, Effect, ErrorClass, Forest, Host, Log, Running, TreeId, TreeSpec, Turn};
use crate::supervision::{Decision, ExitReason, Restart, Strategy};

#[derive(Debug, PartialEq)]
struct H;

#[derive(Debug, Clone, PartialEq)]
enum X {
    Normal,
    Shutdown,
    Crashed(String),
}

impl Host for H {
    /// An actor child is its label.
    type Spec = &'static str;
    type Actor = u32;
    type Requester = &'static str;
    type Exit = X;
    type Error = String;

    fn reading(exit: &X) -> ExitReason {
        match exit {
            X::Normal => ExitReason::Normal,
            X::Shutdown => ExitReason::Shutdown,
            X::Crashed(why) => ExitReason::Crashed(why.clone()),
        }
    }
    fn normal() -> X {
        X::Normal
    }
    fn shutdown() -> X {
        X::Shutdown
    }
    fn crashed(error: String) -> X {
        X::Crashed(error)
    }
    fn error(class: ErrorClass, message: String) -> String {
        format!("{class:?}: {message}")
    }
}

/// A host whose actors start (or fail to) and stop as soon as asked.
#[derive(Default)]
struct World {
    forest: Forest<H>,
    last_id: u64,
    next_actor: u32,
    /// Each running actor's place and label.
    running: HashMap<u32, (TreeId, usize, &'static str)>,
    /// Labels of actors whose start fails.
    failing: HashSet<&'static str>,
    /// Starts wait in `held` until [`World::up`] (else an actor is up as soon as asked).
    hold: bool,
    held: Vec<(TreeId, usize, &'static str)>,
    turns: VecDeque<TreeId>,
    trace: Vec<String>,
    logs: Vec<Log<H>>,
}

macro_rules! cx {
    ($w:expr) => {
        Turn { now: Instant::now(), last_id: &mut $w.last_id }
    };
}

impl World {
    fn apply(&mut self, effects: Vec<Effect<H>>) {
        for effect in effects {
            match effect {
                Effect::Start { tree, slot, spec } if self.failing.contains(spec) => {
                    self.trace.push(format!("fail {spec}"));
                    let e = self.forest.start_failed(tree, slot, format!("{spec} failed"), cx!(self));
                    self.apply(e);
                }
                Effect::Start { tree, slot, spec } if self.hold => {
                    self.trace.push(format!("asked {spec}"));
                    self.held.push((tree, slot, spec));
                }
                Effect::Start { tree, slot, spec } => {
                    self.next_actor += 1;
                    let actor = self.next_actor;
                    self.running.insert(actor, (tree, slot, spec));
                    self.trace.push(format!("start {spec}"));
                    let e = self.forest.child_started(tree, slot, actor, cx!(self));
                    self.apply(e);
                }
                Effect::Stop { actor, shutdown } => {
                    let (tree, slot, spec) = self.running.remove(&actor).expect("only a running actor is stopped");
                    assert_eq!(shutdown, Some(Duration::from_secs(1)), "the child's own budget");
                    self.trace.push(format!("stop {spec}"));
                    let e = self.forest.child_ended(tree, slot, X::Shutdown, None, cx!(self));
                    self.apply(e);
                }
                Effect::RestartTurn(tree) => {
                    self.trace.push("turn".into());
                    self.turns.push_back(tree);
                }
                Effect::Answer { requester, result } => self.trace.push(format!("answer {requester}: {result:?}")),
                Effect::Ended { tree, exit, ending, .. } => {
                    self.trace.push(format!("ended {tree}: {exit:?} {ending:?}"))
                }
                Effect::Log(log) => self.logs.push(log),
            }
        }
    }

    fn start(&mut self, spec: TreeSpec<&'static str>, requester: &'static str) -> Vec<String> {
        let e = self.forest.start(spec, requester, cx!(self));
        self.apply(e);
        self.take()
    }

    /// Runs the restart turns asked for so far (not those they ask for in turn).
    fn turn(&mut self) -> Vec<String> {
        for tree in std::mem::take(&mut self.turns) {
            let e = self.forest.restart_turn(tree, cx!(self));
            self.apply(e);
        }
        self.take()
    }

    /// The held start of `label` is up.
    fn up(&mut self, label: &str) -> Vec<String> {
        let at = self.held.iter().position(|&(_, _, l)| l == label).expect("a held start of that label");
        let (tree, slot, spec) = self.held.remove(at);
        self.next_actor += 1;
        self.running.insert(self.next_actor, (tree, slot, spec));
        let e = self.forest.child_started(tree, slot, self.next_actor, cx!(self));
        self.apply(e);
        self.take()
    }

    fn exit(&mut self, label: &str, exit: X) -> Vec<String> {
        self.exit_in_fault(label, exit, None)
    }

    fn exit_in_fault(&mut self, label: &str, exit: X, fault: Option<u64>) -> Vec<String> {
        let (&actor, &(tree, slot, _)) =
            self.running.iter().find(|(_, (_, _, l))| *l == label).expect("a running actor of that label");
        self.running.remove(&actor);
        let e = self.forest.child_ended(tree, slot, exit, fault, cx!(self));
        self.apply(e);
        self.take()
    }

    fn crash(&mut self, label: &str) -> Vec<String> {
        self.exit(label, X::Crashed("boom".into()))
    }

    fn stop(&mut self, tree: TreeId) -> Vec<String> {
        let e = self.forest.stop(tree, cx!(self));
        self.apply(e);
        self.take()
    }

    fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.trace)
    }

    /// The decisions of the crash reports so far.
    fn decisions(&self) -> Vec<(String, Decision)> {
        let reports = self.logs.iter().filter_map(|l| match l {
            Log::ChildEnded(r) => Some((r.child.clone(), r.decision.clone())),
            _ => None,
        });
        reports.collect()
    }
}

fn actor(label: &'static str, restart: Restart) -> ChildSpec<&'static str> {
    let shutdown = Some(Duration::from_secs(1));
    ChildSpec { name: None, label: label.into(), restart, shutdown, code: Code::Actor(label) }
}

fn worker(label: &'static str) -> ChildSpec<&'static str> {
    actor(label, Restart::Permanent)
}

fn nested(label: &'static str, spec: TreeSpec<&'static str>) -> ChildSpec<&'static str> {
    ChildSpec { code: Code::Tree(spec), ..worker(label) }
}

fn adopt(label: &'static str, tree: TreeId) -> ChildSpec<&'static str> {
    ChildSpec { code: Code::Adopt(tree), ..worker(label) }
}

fn tree(strategy: Strategy, max_restarts: u32, children: Vec<ChildSpec<&'static str>>) -> TreeSpec<&'static str> {
    TreeSpec { name: None, strategy, max_restarts, max_seconds: Duration::from_secs(5), children }
}

fn abc(strategy: Strategy) -> TreeSpec<&'static str> {
    tree(strategy, 3, vec![worker("a"), worker("b"), worker("c")])
}

#[test]
fn children_start_in_spec_order_then_the_requester_hears() {
    let mut w = World::default();
    assert_eq!(w.start(abc(Strategy::OneForOne), "main"), ["start a", "start b", "start c", "answer main: Ok(1)"]);
    assert_eq!(w.forest.roots(), [1]);
}

#[test]
fn one_for_one_restarts_the_crashed_child_alone_on_a_later_turn() {
    let mut w = World::default();
    w.start(abc(Strategy::OneForOne), "main");
    assert_eq!(w.crash("b"), ["turn"], "nothing restarts within the exit itself");
    assert_eq!(w.turn(), ["start b"]);
    assert_eq!(w.decisions(), [("b".into(), Decision::Restart { stop: vec![], start: vec![1] })]);
}

#[test]
fn one_for_all_stops_the_others_in_reverse_then_starts_all_in_order() {
    let mut w = World::default();
    w.start(abc(Strategy::OneForAll), "main");
    w.crash("b");
    assert_eq!(w.turn(), ["stop c", "stop a", "start a", "start b", "start c"]);
}

#[test]
fn rest_for_one_restarts_the_crashed_child_and_those_started_after_it() {
    let mut w = World::default();
    w.start(tree(Strategy::RestForOne, 3, vec![worker("a"), worker("b"), worker("c"), worker("d")]), "main");
    w.crash("b");
    assert_eq!(w.turn(), ["stop d", "stop c", "start b", "start c", "start d"]);
}

#[test]
fn a_transient_child_restarts_only_after_a_crash_and_a_temporary_one_never() {
    let mut w = World::default();
    let spec = tree(Strategy::OneForOne, 3, vec![actor("t", Restart::Transient), actor("p", Restart::Temporary)]);
    w.start(spec, "main");
    assert_eq!(w.crash("t"), ["turn"]);
    assert_eq!(w.turn(), ["start t"]);
    assert!(w.crash("p").is_empty(), "a temporary child is not restarted");
    assert_eq!(w.exit("t", X::Normal), ["ended 1: Normal RootEnded"], "every child ended for good: the tree ends");
    assert!(w.forest.is_empty());
}

#[test]
fn exceeding_the_intensity_fails_the_nested_tree_upward_and_its_parent_rebuilds_it() {
    let mut w = World::default();
    let inner = tree(Strategy::OneForOne, 0, vec![worker("a"), worker("b")]);
    w.start(tree(Strategy::OneForOne, 3, vec![worker("x"), nested("inner", inner)]), "main");
    assert_eq!(w.forest.get(1).unwrap().slots()[1], Some(Running::Tree(2)));
    assert_eq!(w.crash("a"), ["stop b", "turn"], "the inner tree gives up; the outer one restarts it");
    let (child, decision) = w.decisions().pop().unwrap();
    assert_eq!((child.as_str(), decision), ("inner", Decision::Restart { stop: vec![], start: vec![1] }));
    let Some(Log::ChildEnded(report)) = w.logs.iter().rev().find(|l| matches!(l, Log::ChildEnded(_))) else {
        unreachable!()
    };
    assert!(
        matches!(&report.exit, X::Crashed(why) if why.starts_with("Crashed: supervisor Supervisor<2> reached max restart intensity")),
        "{:?}",
        report.exit
    );
    assert_eq!(w.turn(), ["start a", "start b"]);
    assert_eq!(w.forest.get(1).unwrap().slots()[1], Some(Running::Tree(3)), "a new tree in the same slot");
    assert!(w.forest.get(2).is_none());
}

#[test]
fn a_root_that_gives_up_fails_the_run() {
    let mut w = World::default();
    w.start(tree(Strategy::OneForOne, 0, vec![worker("a"), worker("b")]), "main");
    let trace = w.crash("a");
    assert_eq!(trace[0], "stop b");
    assert!(trace[1].starts_with("ended 1: Crashed(") && trace[1].ends_with("RootFailed"), "{trace:?}");
    assert!(w.forest.root_failed());
}

#[test]
fn two_nested_supervisors_adopted_by_an_outer_one_make_one_root_stopped_in_reverse() {
    // Python builds `Supervisor(modules=[Supervisor(a), Supervisor(b), c])` inside out.
    let mut w = World::default();
    w.start(tree(Strategy::OneForOne, 3, vec![worker("a")]), "first");
    w.start(tree(Strategy::OneForOne, 3, vec![worker("b")]), "second");
    assert_eq!(w.forest.roots(), [1, 2]);
    let outer = tree(Strategy::OneForOne, 3, vec![adopt("first", 1), adopt("second", 2), worker("c")]);
    assert_eq!(w.start(outer, "outer"), ["start c", "answer outer: Ok(3)"]);
    assert_eq!(w.forest.roots(), [3], "the outer tree takes the first one's place; the second leaves the list");
    assert_eq!(w.forest.get(1).unwrap().parent(), Some((3, 0)));
    assert_eq!(w.forest.get(2).unwrap().parent(), Some((3, 1)));
    assert_eq!(w.crash("b"), ["turn"]);
    assert_eq!(w.turn(), ["start b"], "the adopted tree restarts its own child");
    assert_eq!(w.stop(3), ["stop c", "stop b", "stop a", "ended 3: Shutdown RootEnded"]);
    assert!(w.forest.is_empty());
}

#[test]
fn a_stop_runs_in_reverse_start_order_through_nested_trees() {
    let mut w = World::default();
    let inner = tree(Strategy::OneForOne, 3, vec![worker("b"), worker("c")]);
    w.start(tree(Strategy::OneForAll, 3, vec![worker("a"), nested("inner", inner), worker("d")]), "main");
    assert_eq!(w.stop(1), ["stop d", "stop c", "stop b", "stop a", "ended 1: Shutdown RootEnded"]);
    assert!(w.stop(1).is_empty(), "the tree is gone");
}

#[test]
fn a_failed_initial_start_stops_what_started_and_answers_with_the_childs_error() {
    let mut w = World::default();
    w.failing.insert("b");
    let trace = w.start(abc(Strategy::OneForOne), "main");
    let err = "\"b failed\"";
    assert_eq!(
        trace,
        [
            "start a",
            "fail b",
            "stop a",
            &format!("answer main: Err({err})"),
            &format!("ended 1: Crashed({err}) Another")
        ]
    );
    assert!(!w.forest.root_failed(), "the requester heard; the run does not fail for it");
}

#[test]
fn a_nested_tree_that_fails_its_initial_start_fails_its_parents_start_of_it() {
    let mut w = World::default();
    w.failing.insert("b");
    let inner = tree(Strategy::OneForOne, 3, vec![worker("b")]);
    let trace = w.start(tree(Strategy::OneForOne, 3, vec![worker("a"), nested("inner", inner)]), "main");
    assert_eq!(trace[..3], ["start a", "fail b", "stop a"]);
    assert_eq!(trace[3], "answer main: Err(\"b failed\")");
}

#[test]
fn adoptions_against_the_rules_fail_the_start() {
    let mut w = World::default();
    let refused = |w: &mut World, spec, why: &str| {
        let trace = w.start(spec, "main");
        assert!(trace.iter().any(|t| t.contains("answer main: Err(\"BadRequest: ") && t.contains(why)), "{trace:?}");
    };
    refused(&mut w, tree(Strategy::OneForOne, 3, vec![adopt("x", 99)]), "no supervision tree 99 is running");
    // The tree gets id 2 next: naming it is naming itself.
    refused(&mut w, tree(Strategy::OneForOne, 3, vec![adopt("x", 2)]), "cannot be nested inside itself");
    w.start(tree(Strategy::OneForOne, 3, vec![worker("a")]), "main");
    w.start(tree(Strategy::OneForOne, 3, vec![adopt("x", 3)]), "main");
    refused(&mut w, tree(Strategy::OneForOne, 3, vec![adopt("x", 3)]), "is already part of another tree");
    assert_eq!(w.forest.roots(), [4], "the failed adopters are gone; the adopted tree stays nested");
}

#[test]
fn an_intensity_out_of_bounds_is_refused() {
    let mut w = World::default();
    let trace = w.start(tree(Strategy::OneForOne, 10_001, vec![worker("a")]), "main");
    assert_eq!(trace.len(), 1);
    assert!(trace[0].starts_with("answer main: Err(\"BadRequest: supervisor (unnamed): max_restarts=10001"));
    assert!(w.forest.is_empty());
}

#[test]
fn a_child_that_ends_as_it_starts_restarts_one_turn_at_a_time() {
    let mut w = World::default();
    let empty = tree(Strategy::OneForOne, 3, vec![]);
    assert_eq!(
        w.start(tree(Strategy::OneForOne, 3, vec![nested("empty", empty)]), "main"),
        ["answer main: Ok(1)", "turn"]
    );
    assert_eq!(w.turn(), ["turn"], "each restart of the empty tree waits for its own turn");
    assert_eq!(w.forest.roots(), [1]);
}

#[test]
fn an_exit_while_the_tree_starts_is_decided_once_it_is_up() {
    let mut w = World { hold: true, ..World::default() };
    assert_eq!(w.start(abc(Strategy::OneForOne), "main"), ["asked a"]);
    assert_eq!(w.up("a"), ["asked b"]);
    assert!(w.crash("a").is_empty(), "kept until the tree runs");
    assert_eq!(w.up("b"), ["asked c"]);
    assert_eq!(w.up("c"), ["answer main: Ok(1)", "turn"]);
    assert_eq!(w.turn(), ["asked a"]);
}

#[test]
fn a_tree_stopped_while_a_start_is_in_flight_stops_that_child_once_up_and_fails_its_start() {
    let mut w = World { hold: true, ..World::default() };
    w.start(abc(Strategy::OneForOne), "main");
    assert!(w.stop(1).is_empty(), "the start of a is in flight");
    let trace = w.up("a");
    assert_eq!(trace[0], "stop a", "it cannot outlive the tree");
    assert!(trace[1].starts_with("answer main: Err(\"StartFailed: supervisor Supervisor<1> stopped while starting"));
    assert_eq!(trace[2], "ended 1: Shutdown RootEnded");
}

#[test]
fn children_taken_by_one_fault_count_once_toward_the_intensity() {
    let mut w = World::default();
    w.start(tree(Strategy::OneForOne, 1, vec![worker("a"), worker("b")]), "main");
    let worker_died = Some(7);
    assert_eq!(w.exit_in_fault("a", X::Crashed("killed".into()), worker_died), ["turn"]);
    assert_eq!(w.exit_in_fault("b", X::Crashed("killed".into()), worker_died), ["turn"], "not an escalation");
    assert_eq!(w.turn(), ["start a", "start b"]);
    let trace = w.crash("a");
    assert!(trace.last().is_some_and(|t| t.ends_with("RootFailed")), "a second fault exceeds 1 restart: {trace:?}");
}

#[test]
fn exits_from_a_host_that_lost_track_change_nothing() {
    let mut w = World::default();
    w.start(abc(Strategy::OneForOne), "main");
    let e = w.forest.child_ended(9, 0, X::Normal, None, cx!(w));
    assert!(e.is_empty());
    let e = w.forest.restart_turn(9, cx!(w));
    assert!(e.is_empty());
    assert_eq!(w.forest.roots(), [1]);
}
