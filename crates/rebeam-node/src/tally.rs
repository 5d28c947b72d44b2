//! What one call across nodes has heard, and what its caller is told when the answers end.
//!
//! The rules: each asked node answers once, with the call's outcome or "not here". The first
//! outcome is the answer. When the replies end with no outcome:
//! - past the caller's timeout: `Timeout` (the caller has given up already; this is for logs);
//! - an asked node that did not answer (or was lost meanwhile): `ActorDown`, naming it, since
//!   it may have had the actor and died with the call;
//! - the call went to one node (the cache) and it said "not here": ask every node once more;
//! - every node asked said "not here": `NoProcess`, naming the name;
//! - a process id of another node (asked of its node alone, as a cached name is, and lost at
//!   once with it) whose node is not up: `NoProcess`, naming the node.

use std::collections::BTreeSet;

use rebeam_proto::{ErrorInfo, ErrorKind};

/// One call's replies so far.
#[derive(Debug, Clone)]
pub struct Tally {
    name: String,
    /// Asked of the one node that answered for this name last.
    cached: bool,
    asked: BTreeSet<String>,
    not_here: BTreeSet<String>,
}

/// What to do once the replies have ended with no outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ask every node (the cached one did not have the name any more).
    AskAll,
    /// Tell the caller.
    Fail(ErrorInfo),
}

impl Tally {
    /// A call for `name` asked of `asked` (the nodes up, other than this one, or the cached
    /// node alone).
    pub fn new(name: &str, asked: BTreeSet<String>, cached: bool) -> Tally {
        Tally { name: name.to_string(), cached, asked, not_here: BTreeSet::new() }
    }

    /// Whether one node alone is asked, and it is up: its cached node, or a pid's node.
    pub fn one_node_up(&self) -> bool {
        (self.cached || self.is_pid()) && self.asked.len() == 1
    }

    pub fn not_here(&mut self, node: &str) {
        self.not_here.insert(node.to_string());
    }

    /// `node` was lost: whether the caller is to be told at once (`lost_error`), which is when
    /// the call went to that one node. A call asked of every node waits for the others, which
    /// may have the name (Zenoh ends the query once they have all answered).
    pub fn node_lost(&self, node: &str) -> bool {
        (self.cached || self.is_pid()) && self.asked.contains(node) && !self.not_here.contains(node)
    }

    /// Whether the call names an actor of another node by its process id
    /// (`rebeam_proto::remote`): it is asked of that node alone, as a cached name is.
    pub fn is_pid(&self) -> bool {
        rebeam_proto::remote::parse_pid_name(&self.name).is_some()
    }

    /// The error for a caller whose node was lost mid-call.
    pub fn lost_error(&self, node: &str) -> ErrorInfo {
        ErrorInfo::new(
            ErrorKind::ActorDown,
            format!("node {node} was lost while it handled a call to '{}' (its link closed)", self.name),
        )
    }

    /// The replies ended with no outcome (`timed_out`: the caller's timeout has passed).
    pub fn end(&self, timed_out: bool) -> Verdict {
        if timed_out {
            return Verdict::Fail(ErrorInfo::new(
                ErrorKind::Timeout,
                format!("no node answered the call to '{}' within its timeout", self.name),
            ));
        }
        let silent: Vec<&str> = self.asked.iter().filter(|n| !self.not_here.contains(*n)).map(String::as_str).collect();
        if let Some(node) = silent.first() {
            if silent.len() == 1 {
                return Verdict::Fail(self.lost_error(node));
            }
            return Verdict::Fail(ErrorInfo::new(
                ErrorKind::ActorDown,
                format!(
                    "nodes {} were lost during a call to '{}' (their links closed); one may have had it",
                    silent.join(", "),
                    self.name
                ),
            ));
        }
        if let Some((id, node)) = rebeam_proto::remote::parse_pid_name(&self.name) {
            // Its node answers a pid's call itself, even with a failure: no answer means no node.
            return Verdict::Fail(ErrorInfo::new(
                ErrorKind::NoProcess,
                format!("actor <{id}> ran on node {node}, which is not up (it left, or its link was lost)"),
            ));
        }
        if self.cached {
            return Verdict::AskAll;
        }
        let nodes: Vec<&str> = self.asked.iter().map(String::as_str).collect();
        let elsewhere = if nodes.is_empty() {
            "no other node is up".to_string()
        } else {
            format!("nor on the other nodes up ({})", nodes.join(", "))
        };
        Verdict::Fail(ErrorInfo::new(
            ErrorKind::NoProcess,
            format!("no actor named '{}' is running on this node, {elsewhere}", self.name),
        ))
    }
}

#[cfg(test)]
#[path = "tally_tests.rs"]
mod tests;
