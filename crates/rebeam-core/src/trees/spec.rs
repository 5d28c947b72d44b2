//! What a tree is built from: a supervisor's parameters and its children, in start order.
//!
//! The machine reads only what supervision needs (restart kind, shutdown budget, labels, and
//! whether a child is a nested tree or an adopted one); an actor child's own spec is the
//! host's (`S`), handed back untouched in [`super::Effect::Start`].

use std::time::Duration;

use crate::supervision::{Intensity, Restart, Strategy, MAX_RESTARTS, MAX_RESTART_WINDOW};

use super::TreeId;

/// A supervisor and its children, in start order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeSpec<S> {
    pub name: Option<String>,
    /// Which siblings are restarted with a failed child.
    pub strategy: Strategy,
    pub max_restarts: u32,
    pub max_seconds: Duration,
    pub children: Vec<ChildSpec<S>>,
}

/// One child of a supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSpec<S> {
    /// Registered name, if any (for crash reports and status).
    pub name: Option<String>,
    /// How logs and crash reports name the child.
    pub label: String,
    /// When the child is started again after it ends.
    pub restart: Restart,
    /// Polite-stop budget; `None` waits forever, zero kills at once.
    pub shutdown: Option<Duration>,
    pub code: Code<S>,
}

/// What runs in a child's slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code<S> {
    /// An actor or task, started by the host from this spec.
    Actor(S),
    /// A nested supervisor, built by the machine.
    Tree(TreeSpec<S>),
    /// A running top-level tree to adopt as this child (the host's peer built it first).
    Adopt(TreeId),
}

impl<S> TreeSpec<S> {
    /// The supervisor's intensity, within the bounds `supervision` sets (an unbounded count is
    /// unbounded memory; a zero window would make every restart the first); the error says
    /// which tree and what the bounds are.
    pub fn intensity(&self) -> Result<Intensity, String> {
        let window = self.max_seconds;
        if self.max_restarts > MAX_RESTARTS || window.is_zero() || window > MAX_RESTART_WINDOW {
            return Err(format!(
                "supervisor {}: max_restarts={} and max_seconds={}s must be within 0..={MAX_RESTARTS} and (0, {}]",
                self.name.as_deref().unwrap_or("(unnamed)"),
                self.max_restarts,
                window.as_secs_f64(),
                MAX_RESTART_WINDOW.as_secs()
            ));
        }
        Ok(Intensity::new(self.max_restarts, window))
    }

    pub fn restarts(&self) -> Vec<Restart> {
        self.children.iter().map(|c| c.restart).collect()
    }
}
