//! Several rebeam nodes as one system, over Zenoh: joining, calls and casts by name or pid,
//! monitors, one arming authority.
//!
//! A node is one `rebeam --node NAME …` run: its governor, its processes, and one Zenoh session
//! in peer mode that this crate owns and feeds to the governor through its node seam
//! (`rebeam_governor::node`), as one more source of inputs.
//!
//! The rules:
//! - **Joining.** Endpoints are explicit (`--listen`, `--connect`); multicast scouting is off,
//!   so a node joins only the nodes it is told of (and, through Zenoh's gossip, the nodes
//!   those know). A node with `--connect` endpoints that reaches none of them within its join
//!   timeout does not start.
//! - **The cookie.** Every link is authenticated by Zenoh's user/password handshake, with the
//!   cookie as the password (an HMAC challenge: the cookie itself never crosses the link). A
//!   node with another cookie gets no link, so it can call nothing and nothing can call it;
//!   it does not start, and says why; the node that refused it logs the refusal
//!   ([`refusals`]). A cookie file must be readable by its owner only.
//! - **TLS.** Given a CA, a certificate and its key, links are TLS only, each side's
//!   certificate checked against the CA; the cookie is still asked for on top (`config`).
//! - **Names.** A node's liveliness token (`rebeam/node/NAME`) says it is up; two nodes of one
//!   name are refused at join. `rebeam.nodes()` is the set of tokens seen, this node's included.
//! - **Calls by name.** A call for a name nothing on this node has is a Zenoh query: to the
//!   node that answered for that name last (cached), else to every other node at once
//!   (`rebeam/call/*`). Each asked node answers once: the call's outcome, or "not here" (a
//!   reply error). The first outcome wins. A cached node that says "not here" loses the cache
//!   entry and the call is asked of every node once more.
//! - **Failure.** A node that is lost (its link closes, or its token goes) gives every call
//!   waiting on it `ActorDown` at once: Zenoh ends a query whose link closed, and a query that
//!   ends without an answer from a node that was asked is that node's loss, never a hang.
//!   No answer from anyone, and every asked node said "not here": `NoProcess` naming the name.
//! - **Arming.** One node, the one started with `--authority`, arms the system; every other
//!   node gates by its state, and disarms itself when it loses contact with it ([`authority`]
//!   has the rules).
//! - **Partitions.** When the links between two groups of nodes are cut, each side sees the
//!   other side's nodes go (their tokens): at once when the links close (a reset, a closed
//!   proxy, a killed node), or after the link's lease (`--lease`, 10 s by default) when packets
//!   only stop coming (a silent cut: a node stopped, a cable pulled, a firewall dropping).
//!   Then:
//!   - *calls across the cut* are answered with errors, never left to hang: one in flight to a
//!     node across the cut gets `ActorDown` when that node is seen to go; one made after that
//!     gets `NoProcess` at once, as a name is asked only of the nodes this side reaches. Over
//!     a silent cut, a call made before the lease runs out ends at its own timeout
//!     (`CallTimeout`) or at the lease, whichever comes first.
//!   - *names*: each side has its own nodes' names only. There is no registry of the whole
//!     system, so while cut both sides may register the same name; after the heal a call
//!     takes a name here first, else the node it reached last, else whichever answers first.
//!   - *safety*: the side without the authority disarms itself (its gated work is stopped by
//!     the ladder); the side with it stays as the host left it.
//!   - *the heal*: the nodes that dialled (`--connect`) dial again (every second at most), the
//!     tokens come back, and calls by name cross again. Safety does not heal by itself: the
//!     nodes that were cut off stay disarmed until the host arms the system again.
//!
//! - **Bus topics** across nodes: a Python process's publication reaches the subscribers of
//!   every node, in order per publishing node, waiting for none (`bus.rs`; which topics may
//!   cross is the governor's rule, in its node seam's doc).
//! - **`whereis`** of a name on another node gives a ProcessID naming that node (`names.rs`);
//!   names are first-wins, not unique across the system (the governor's node seam has why).
//! - **Casts, process ids, monitors** across nodes: see `casts.rs`, `monitors.rs` and
//!   `rebeam_proto::remote` (a pid of another node is asked of its node alone).
//! - **Placement** of a spawned actor or a tree child on a named node, and a supervisor's
//!   restarts on the nodes that remain: see `placement.rs`, and the governor's
//!   `node_placement.rs` for the rules.
//! - **Library mode and the Rust host** join as `rebeam --node` does (`rebeam.init(node=...)`,
//!   the `rebeam` crate's `Builder::node`), with the same options and the same rules.

mod arming;
pub mod authority;
mod config;
mod refusals;
mod session;
mod tally;

pub use config::{
    read_cookie, use_node_runtimes, valid_node_name, NodeOptions, Tls, COOKIE_ENV, DEFAULT_JOIN_TIMEOUT, DEFAULT_LEASE,
    ZENOH_RUNTIME, ZENOH_RUNTIME_ENV,
};
pub use refusals::{refusals, Refusals};
pub use session::{join, open_session, Node};
pub use tally::{Tally, Verdict};

/// Key expressions, under one root so that rebeam's traffic never meets another Zenoh user's.
pub mod keys {
    /// The root of every key.
    pub const ROOT: &str = "rebeam";

    /// A node's liveliness token.
    pub fn node(name: &str) -> String {
        format!("{ROOT}/node/{name}")
    }

    /// Every node's liveliness token.
    pub fn nodes() -> String {
        format!("{ROOT}/node/*")
    }

    /// The queryable that takes calls for a node's actors (`*`: every node).
    pub fn calls(node: &str) -> String {
        format!("{ROOT}/call/{node}")
    }

    /// The arming authority's liveliness token (see [`crate::authority`]).
    pub fn authority(name: &str) -> String {
        format!("{ROOT}/authority/{name}")
    }

    /// Every arming authority's token (there is at most one).
    pub fn authorities() -> String {
        format!("{ROOT}/authority/*")
    }

    /// Where the arming authority publishes its safety state.
    pub fn safety(name: &str) -> String {
        format!("{ROOT}/safety/{name}")
    }

    /// Every authority's safety state.
    pub fn safeties() -> String {
        format!("{ROOT}/safety/*")
    }

    /// Where `from` puts the down notices of monitors `to` set on its actors (`*`: any node).
    pub fn downs(to: &str, from: &str) -> String {
        format!("{ROOT}/down/{to}/{from}")
    }

    /// Where other nodes' supervisors ask `node` to stop the children they placed there.
    pub fn stops(node: &str) -> String {
        format!("{ROOT}/stop/{node}")
    }

    /// Where `from` takes off monitors it set on `to`'s actors (`*`: any node).
    pub fn demonitors(to: &str, from: &str) -> String {
        format!("{ROOT}/demonitor/{to}/{from}")
    }

    /// Where a node puts its Python processes' bus publications.
    pub fn bus(node: &str) -> String {
        format!("{ROOT}/bus/{node}")
    }

    /// Every node's bus publications.
    pub fn buses() -> String {
        format!("{ROOT}/bus/*")
    }

    /// The node a key of [`node`], [`calls`], [`authority`] or [`safety`] names (for [`downs`],
    /// the sending node).
    pub fn node_of(key: &str) -> Option<&str> {
        key.rsplit('/').next().filter(|n| !n.is_empty() && *n != "*")
    }
}

/// Why a node cannot start or join.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("a node needs a cookie: give --cookie-file PATH (a file only you can read) or set {env}", env = COOKIE_ENV)]
    NoCookie,
    #[error("cannot read the cookie file {path}: {source}")]
    CookieFile { path: std::path::PathBuf, source: std::io::Error },
    #[error("the cookie file {path} is readable by others (mode {mode:o}); make it yours alone: chmod 600 {path}")]
    CookieOpen { path: std::path::PathBuf, mode: u32 },
    #[error("the cookie is empty; put a secret shared by every node in it")]
    EmptyCookie,
    #[error("'{0}' is not a node name: use letters, digits, '-', '_' and '.'")]
    BadName(String),
    #[error("{}", endpoint_error(endpoint, *tls))]
    Endpoint { endpoint: String, tls: bool },
    #[error("bad Zenoh setting {key}: {why}")]
    Config { key: String, why: String },
    #[error("cannot write the handshake's password file: {0}")]
    Dictionary(std::io::Error),
    #[error(
        "node {node} cannot join: no node at {endpoints} took its link within {secs} s. Check that one listens there and that every node has the same cookie (a node with another cookie is refused)"
    )]
    Join { node: String, endpoints: String, secs: f64 },
    #[error("node {0} cannot start: {1}")]
    Open(String, String),
    #[error("a node named {0} is up already; give this one another --node name")]
    Duplicate(String),
    #[error(
        "node {0} cannot be the arming authority: node {1} is already; a system has one (start this node without --authority)"
    )]
    TwoAuthorities(String, String),
}

fn endpoint_error(endpoint: &str, tls: bool) -> String {
    if tls {
        format!("the endpoint {endpoint} is not a TLS one: with --tls-ca, --tls-cert and --tls-key every link is TLS (tls/HOST:PORT)")
    } else {
        format!(
            "the endpoint {endpoint} needs TLS files: give --tls-ca, --tls-cert and --tls-key, or use tcp/HOST:PORT"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::keys;

    #[test]
    fn keys_name_their_node() {
        assert_eq!(keys::node_of(&keys::node("a")), Some("a"));
        assert_eq!(keys::node_of(&keys::calls("b.1")), Some("b.1"));
        assert_eq!(keys::node_of(&keys::authority("c")), Some("c"));
        assert_eq!(keys::node_of(&keys::safety("d")), Some("d"));
        assert_eq!(keys::node_of(&keys::calls("*")), None, "a wildcard names no node");
        assert_eq!(keys::node_of(&keys::safeties()), None, "a wildcard names no node");
        assert_eq!(keys::node_of(&keys::downs("a", "b")), Some("b"), "a down notice names its sender");
        assert_eq!(keys::node_of(&keys::stops("c")), Some("c"));
        assert_eq!(keys::node_of(&keys::bus("e")), Some("e"), "a publication names its node");
        assert_eq!(keys::node_of(&keys::demonitors("a", "f")), Some("f"), "a demonitor names its sender");
    }
}
