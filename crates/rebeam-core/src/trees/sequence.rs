//! One tree's slots and the queue of start and stop operations it works through (the rules
//! are in the [`crate::trees`] module doc, under "Sequencing").

use std::collections::VecDeque;

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

#[cfg(test)]
mod tests;
