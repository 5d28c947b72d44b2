//! Supervision trees' bookkeeping, free of processes: one tree's slots and the queue of start
//! and stop operations it works through, and the list of top-level trees.
//!
//! `supervision` decides what to restart; this module sequences the decision. Starting and
//! stopping a child is asynchronous (a worker answers later), so a tree runs one operation at
//! a time, and [`Sequence::next_step`] hands out the next one to carry out. The rules:
//!
//! - A new tree starts its children in spec order, then reports [`Step::Started`].
//! - A start waits for its child to be up ([`Sequence::child_up`]) or to fail
//!   ([`Sequence::start_failed`]); a stop waits for its child to be down
//!   ([`Sequence::child_down`]). Nothing else runs meanwhile.
//! - A start of a slot that is already occupied, or any start once the tree is stopping, is
//!   skipped; so is a stop of an empty slot.
//! - A child that fails during the initial start aborts the tree: the children already started
//!   are stopped in reverse order, then the tree exits ([`Sequence::abort_start`]).
//! - A restart queues its stops, then its starts, and holds the queue until the governor's
//!   restart turn ([`Sequence::release`]): a child that ends as it starts then restarts on a
//!   later turn rather than recursing within its own end. Starts still queued from an earlier
//!   restart are redone in the new one's order.
//! - A child whose start is in flight when the tree must stop it (a restart or an escalation
//!   that includes it, or a stop of the tree) is stopped once it is up, in its place in reverse
//!   start order, so that it cannot outlive the tree.
//! - An escalation or a stop of the tree stops the running children in the given (reverse)
//!   order, then exits; a stop of a tree whose exit is already queued changes nothing, and a
//!   stop makes a held restart moot.
//!
//! [`Node`] joins a tree's `Sequence` to its `supervision::Supervisor` (see its rules).
//! [`Roots`] keeps the top-level trees in start order (the first is the root) and implements
//! adoption's rule for that list (see [`Roots::take_place_of`]); [`adoptable`] says which
//! trees may be adopted.
//!
//! `X` is the exit reason a tree ends with and `R` what runs in a slot; the governor picks both.

use std::collections::VecDeque;

mod node;
pub use node::{DeferredExit, Ended, Node};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Running,
    Stopping,
}

#[derive(Debug, Clone, PartialEq)]
enum Op<X> {
    Start(usize),
    Stop(usize),
    Started,
    Exit(X),
}

/// The operation in flight: what the tree waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    Start(usize),
    Stop(usize),
}

/// What the governor must do next for a tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<X, R> {
    /// Start the child in this slot from its spec, then report `child_up` or `start_failed`.
    Start(usize),
    /// Stop what runs in this slot (after its shutdown timeout, kill it), then `child_down`.
    Stop(usize, R),
    /// Every child is up: the tree runs (the caller then calls [`Sequence::mark_running`]).
    Started,
    /// The tree ends with this reason.
    Exit(X),
}

/// One tree's slots and operation queue.
#[derive(Debug, Clone)]
pub struct Sequence<X, R> {
    phase: Phase,
    slots: Vec<Option<R>>,
    ops: VecDeque<Op<X>>,
    current: Option<Busy>,
    /// A restart was queued and waits for [`Sequence::release`].
    held: bool,
}

impl<X, R: Copy> Sequence<X, R> {
    /// A tree of `children` slots, about to start them in order.
    pub fn new(children: usize) -> Self {
        let mut ops: VecDeque<Op<X>> = (0..children).map(Op::Start).collect();
        ops.push_back(Op::Started);
        Self { phase: Phase::Starting, slots: (0..children).map(|_| None).collect(), ops, current: None, held: false }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn mark_running(&mut self) {
        self.phase = Phase::Running;
    }

    pub fn slots(&self) -> &[Option<R>] {
        &self.slots
    }

    /// The slot whose start is in flight.
    pub fn starting(&self) -> Option<usize> {
        match self.current {
            Some(Busy::Start(s)) => Some(s),
            _ => None,
        }
    }

    /// Nothing in flight and nothing queued.
    pub fn idle(&self) -> bool {
        self.current.is_none() && self.ops.is_empty()
    }

    /// The next operation to carry out, or `None` while one is in flight, a restart is held,
    /// or the queue is empty.
    pub fn next_step(&mut self) -> Option<Step<X, R>> {
        if self.current.is_some() || self.held {
            return None;
        }
        while let Some(op) = self.ops.pop_front() {
            match op {
                Op::Start(slot) => {
                    if self.phase == Phase::Stopping || self.slots[slot].is_some() {
                        continue;
                    }
                    self.current = Some(Busy::Start(slot));
                    return Some(Step::Start(slot));
                }
                Op::Stop(slot) => {
                    let Some(running) = self.slots[slot] else { continue };
                    self.current = Some(Busy::Stop(slot));
                    return Some(Step::Stop(slot, running));
                }
                Op::Started => return Some(Step::Started),
                Op::Exit(x) => return Some(Step::Exit(x)),
            }
        }
        None
    }

    /// The child in `slot` is up (its start ends, if it was in flight).
    pub fn child_up(&mut self, slot: usize, running: R) {
        self.slots[slot] = Some(running);
        if self.current == Some(Busy::Start(slot)) {
            self.current = None;
        }
    }

    /// The child in `slot` failed to start (its start ends, if it was in flight).
    pub fn start_failed(&mut self, slot: usize) {
        if self.current == Some(Busy::Start(slot)) {
            self.current = None;
        }
    }

    /// The child in `slot` is down. True if the tree was waiting for that stop.
    pub fn child_down(&mut self, slot: usize) -> bool {
        self.slots[slot] = None;
        let awaited = self.current == Some(Busy::Stop(slot));
        if awaited {
            self.current = None;
        }
        awaited
    }

    /// The initial start failed at `slot`: stop the children before it in reverse, then exit.
    pub fn abort_start(&mut self, slot: usize, exit: X) {
        self.phase = Phase::Stopping;
        self.ops.clear();
        self.ops.extend((0..slot).rev().map(Op::Stop));
        self.ops.push_back(Op::Exit(exit));
    }

    /// Queues a restart (stop `stop` in order, then start `start` in order) and holds it until
    /// [`Sequence::release`].
    pub fn restart(&mut self, stop: Vec<usize>, start: Vec<usize>) {
        self.ops.retain(|op| !matches!(op, Op::Start(j) if start.contains(j)));
        self.ops.extend(stop.into_iter().map(Op::Stop));
        if matches!(self.current, Some(Busy::Start(s)) if start.contains(&s)) {
            self.stop_starting_child_when_up();
        }
        self.ops.extend(start.into_iter().map(Op::Start));
        self.held = true;
    }

    /// The restart turn: a held restart may run.
    pub fn release(&mut self) {
        self.held = false;
    }

    /// Stops the running children in `stop`'s order (and the child still starting, once up),
    /// then exits with `exit`.
    pub fn escalate(&mut self, stop: Vec<usize>, exit: X) {
        self.phase = Phase::Stopping;
        self.ops.clear();
        self.ops.extend(stop.into_iter().map(Op::Stop));
        self.stop_starting_child_when_up();
        self.ops.push_back(Op::Exit(exit));
    }

    /// Whether the tree is already stopping with its exit queued (a further stop is moot).
    pub fn exit_queued(&self) -> bool {
        self.phase == Phase::Stopping && self.ops.iter().any(|op| matches!(op, Op::Exit(_)))
    }

    /// Stops the children in `order`, then the child still starting once it is up, then exits
    /// with `exit`. False (and nothing changes) if the exit is already queued.
    pub fn stop(&mut self, order: Vec<usize>, exit: X) -> bool {
        if self.exit_queued() {
            return false;
        }
        self.phase = Phase::Stopping;
        self.ops.clear();
        self.held = false;
        self.ops.extend(order.into_iter().map(Op::Stop));
        if let Some(Busy::Start(slot)) = self.current {
            self.ops.push_back(Op::Stop(slot));
        }
        self.ops.push_back(Op::Exit(exit));
        true
    }

    /// Queues a stop of the child whose start is in flight (if any), to run once it is up,
    /// in its place among the queued stops (reverse start order).
    fn stop_starting_child_when_up(&mut self) {
        if let Some(Busy::Start(starting)) = self.current {
            let at =
                self.ops.iter().position(|op| matches!(op, Op::Stop(j) if *j < starting)).unwrap_or(self.ops.len());
            self.ops.insert(at, Op::Stop(starting));
        }
    }
}

/// The top-level trees in start order; the first is the root.
#[derive(Debug, Clone, Default)]
pub struct Roots<T> {
    list: Vec<T>,
    /// The root tree failed (the run ends with a failure code).
    pub failed: bool,
}

impl<T: Copy + PartialEq> Roots<T> {
    pub fn list(&self) -> &[T] {
        &self.list
    }

    pub fn push(&mut self, tree: T) {
        self.list.push(tree);
    }

    pub fn contains(&self, tree: T) -> bool {
        self.list.contains(&tree)
    }

    pub fn is_root(&self, tree: T) -> bool {
        self.list.first() == Some(&tree)
    }

    pub fn remove(&mut self, tree: T) {
        self.list.retain(|&r| r != tree);
    }

    /// The adopter takes the adopted tree's place among the top-level trees when that place is
    /// earlier than its own (so `Supervisor(modules=[Supervisor(...)])` becomes the root);
    /// the adopted tree leaves the list either way.
    pub fn take_place_of(&mut self, adopter: T, adopted: T) {
        let Some(pos) = self.list.iter().position(|&r| r == adopted) else { return };
        match self.list.iter().position(|&r| r == adopter) {
            Some(own) if own < pos => {
                self.list.remove(pos);
            }
            Some(own) => {
                self.list[pos] = adopter;
                self.list.remove(own);
            }
            // A nested adopter is not a top-level tree; it gains no place of its own.
            None => {
                self.list.remove(pos);
            }
        }
    }
}

/// Why a tree cannot adopt another (see [`adoptable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The tree to adopt is the adopter or one of its ancestors.
    OwnAncestor,
    /// No such tree.
    Unknown,
    /// The tree is already some tree's child.
    Nested,
    /// The tree is still starting or already stopping.
    NotRunning,
}

/// Whether `adopter` may make `sub` its child: only a running top-level tree that is not
/// `adopter` itself or one of its ancestors can be (any other tree id, and a peer can send any
/// number, would make a tree its own parent or give a tree two parents). `tree` gives a tree's
/// parent and phase, or `None` for an unknown id; `count` bounds the walk up from `adopter`, so
/// that even a cycle, which nothing should make, cannot hang the caller.
pub fn adoptable<T: Copy + PartialEq>(
    adopter: T,
    sub: T,
    roots: &Roots<T>,
    count: usize,
    tree: impl Fn(T) -> Option<(Option<T>, Phase)>,
) -> Result<(), Refusal> {
    let mut up = Some(adopter);
    for _ in 0..=count {
        let Some(t) = up else { break };
        if t == sub {
            return Err(Refusal::OwnAncestor);
        }
        up = tree(t).and_then(|(parent, _)| parent);
    }
    let Some((_, phase)) = tree(sub) else { return Err(Refusal::Unknown) };
    if !roots.contains(sub) {
        return Err(Refusal::Nested);
    }
    if phase != Phase::Running {
        return Err(Refusal::NotRunning);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
