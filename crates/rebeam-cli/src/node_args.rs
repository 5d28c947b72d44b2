//! The options that make a run one node of a system of several (`--node` and the rest): one
//! definition, flattened into both `rebeam run` and `rebeam serve` (library mode and the Rust
//! host), so that every way of starting a node takes the same options, checks them the same
//! way and says the same thing when they are wrong.
//!
//! Rules:
//! - every option but `--node` requires `--node` (clap refuses it otherwise, before anything runs);
//! - the cookie comes from `--cookie-file`, else `REBEAM_COOKIE`, which is then taken out of the
//!   governor's environment, so the run's Python processes never see it;
//! - `REBEAM_NODE` is set for the run's processes only when this run is a node.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::seconds;

/// Joining other rebeam runs as one system over Zenoh (`--node`).
#[derive(Args)]
#[command(next_help_heading = "Several nodes")]
pub(crate) struct NodeArgs {
    /// Run as the node NAME of a system of several (letters, digits, '-', '_', '.'): names
    /// registered on any node are callable from every node, and rebeam.nodes() lists them.
    #[arg(long, value_name = "NAME")]
    node: Option<String>,

    /// With --node: take links from other nodes at this endpoint (tcp/HOST:PORT); repeat for
    /// more. Nothing is found by multicast: each node is told where to listen and connect.
    #[arg(long, value_name = "ENDPOINT", requires = "node")]
    listen: Vec<String>,

    /// With --node: join the node listening at this endpoint (tcp/HOST:PORT); repeat for more.
    /// Nodes that one of them knows are joined too.
    #[arg(long, value_name = "ENDPOINT", requires = "node")]
    connect: Vec<String>,

    /// With --node: the shared secret every node of the system has (its first line), in a
    /// file only you can read; a node with another cookie is refused [default: REBEAM_COOKIE].
    #[arg(long, value_name = "PATH", requires = "node")]
    cookie_file: Option<PathBuf>,

    /// With --node and --connect: seconds to keep trying the --connect endpoints before giving up.
    #[arg(long, value_name = "SECONDS", requires = "node",
          default_value_t = rebeam_node::DEFAULT_JOIN_TIMEOUT.as_secs_f64(), value_parser = seconds)]
    join_timeout: f64,

    /// With --node: this node is the system's arming authority. The host arms and disarms the
    /// whole system here (`rebeam ctl` on this node's control socket); every other node follows
    /// its state, refuses `arm` on its own control socket, and disarms itself if it hears
    /// nothing from the authority for a second. A system has at most one authority; without
    /// one it is never armed.
    #[arg(long, requires = "node")]
    authority: bool,

    /// With --node: seconds a node whose packets stop coming (nothing closes its link) is
    /// still taken for up; then its callers get ActorDown and its monitors fire.
    #[arg(long, value_name = "SECONDS", requires = "node",
          default_value_t = rebeam_node::DEFAULT_LEASE.as_secs_f64(), value_parser = seconds)]
    lease: f64,

    /// With --node: links are TLS (tls/HOST:PORT endpoints only), each node's certificate
    /// checked against this CA (PEM); give --tls-cert and --tls-key too. The cookie is still
    /// asked for on top.
    #[arg(long, value_name = "PATH", requires_all = ["node", "tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,

    /// With --tls-ca: this node's certificate (PEM), signed by the CA.
    #[arg(long, value_name = "PATH", requires = "tls_ca")]
    tls_cert: Option<PathBuf>,

    /// With --tls-ca: this node's certificate's private key (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_ca")]
    tls_key: Option<PathBuf>,
}

impl NodeArgs {
    /// The node's settings, or None when this run is not a node; the cookie is taken out of
    /// the environment, so the run's Python processes never see it.
    pub(crate) fn options(&self) -> Result<Option<rebeam_node::NodeOptions>, rebeam_node::NodeError> {
        let env = std::env::var(rebeam_node::COOKIE_ENV).ok();
        std::env::remove_var(rebeam_node::COOKIE_ENV);
        // Not inherited from a run this one was started in: only a node's processes name theirs.
        std::env::remove_var(rebeam_proto::env::NODE);
        let Some(name) = self.node.clone() else { return Ok(None) };
        if !rebeam_node::valid_node_name(&name) {
            return Err(rebeam_node::NodeError::BadName(name));
        }
        // Every Python process of the run inherits it, so that a ProcessID pickled here names
        // this node (the governor's children inherit its environment).
        std::env::set_var(rebeam_proto::env::NODE, &name);
        // Before the runtime starts a thread (and Zenoh its own).
        rebeam_node::use_node_runtimes();
        let cookie = rebeam_node::read_cookie(self.cookie_file.as_deref(), env)?;
        Ok(Some(rebeam_node::NodeOptions {
            name,
            listen: self.listen.clone(),
            connect: self.connect.clone(),
            cookie,
            join_timeout: Duration::from_secs_f64(self.join_timeout),
            authority: self.authority,
            lease: Duration::from_secs_f64(self.lease),
            tls: self.tls(),
        }))
    }

    fn tls(&self) -> Option<rebeam_node::Tls> {
        let (ca, cert, key) = (self.tls_ca.clone()?, self.tls_cert.clone()?, self.tls_key.clone()?);
        Some(rebeam_node::Tls { ca, cert, key })
    }
}

#[cfg(test)]
#[path = "node_args_tests.rs"]
mod tests;
