//! The host as one node of a system of several: the [`Builder`](crate::Builder)'s node
//! settings, passed to `rebeam serve` as the options `rebeam --node` takes, and
//! [`Runtime::nodes`].
//!
//! Rules:
//! - every setting but the name needs the name ([`Builder::node`]); the start refuses it
//!   otherwise, before any process runs, as the command line does;
//! - the cookie never travels as an argument: [`Builder::cookie_file`], else `REBEAM_COOKIE`
//!   in this process's environment, which the governor inherits, reads and keeps from the run's
//!   Python processes;
//! - the governor checks the rest (the name, the endpoints, the cookie file's mode) and says
//!   why in its log when it refuses; the start then fails with [`Error::Start`].

use std::path::PathBuf;
use std::time::Duration;

use rebeam_proto::{Request, Response};

use crate::{Builder, Error, Runtime};

/// A node's settings, as `rebeam --node NAME …` takes them.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeSettings {
    name: Option<String>,
    listen: Vec<String>,
    connect: Vec<String>,
    cookie_file: Option<PathBuf>,
    join_timeout: Option<Duration>,
    lease: Option<Duration>,
    authority: bool,
    tls: Option<[PathBuf; 3]>,
}

impl NodeSettings {
    /// The `rebeam serve` options for these settings, or why they make no node.
    pub(crate) fn serve_args(&self) -> Result<Vec<String>, Error> {
        let Some(name) = &self.name else {
            let given = !self.listen.is_empty()
                || !self.connect.is_empty()
                || self.cookie_file.is_some()
                || self.join_timeout.is_some()
                || self.lease.is_some()
                || self.authority
                || self.tls.is_some();
            return match given {
                true => Err(Error::Settings("the node settings need a node's name: call Builder::node too".into())),
                false => Ok(Vec::new()),
            };
        };
        let mut args = vec!["--node".to_string(), name.clone()];
        for endpoint in &self.listen {
            args.extend(["--listen".into(), endpoint.clone()]);
        }
        for endpoint in &self.connect {
            args.extend(["--connect".into(), endpoint.clone()]);
        }
        if let Some(path) = &self.cookie_file {
            args.extend(["--cookie-file".into(), path.display().to_string()]);
        }
        if let Some(timeout) = self.join_timeout {
            args.extend(["--join-timeout".into(), timeout.as_secs_f64().to_string()]);
        }
        if let Some(lease) = self.lease {
            args.extend(["--lease".into(), lease.as_secs_f64().to_string()]);
        }
        if self.authority {
            args.push("--authority".into());
        }
        if let Some([ca, cert, key]) = &self.tls {
            for (flag, path) in [("--tls-ca", ca), ("--tls-cert", cert), ("--tls-key", key)] {
                args.extend([flag.into(), path.display().to_string()]);
            }
        }
        Ok(args)
    }

    /// Beyond the usual start, how long the governor may take to join the other nodes.
    pub(crate) fn join_wait(&self) -> Duration {
        self.join_timeout.unwrap_or_default()
    }
}

impl Builder {
    /// Run as the node `name` of a system of several, as `rebeam --node NAME` does (letters,
    /// digits, '-', '_', '.'): names registered on any node are callable from this host, and
    /// the host's own are callable from every node.
    pub fn node(mut self, name: impl Into<String>) -> Self {
        self.node.name = Some(name.into());
        self
    }

    /// Take links from other nodes at this endpoint (`tcp/HOST:PORT`); call again for more.
    pub fn listen(mut self, endpoint: impl Into<String>) -> Self {
        self.node.listen.push(endpoint.into());
        self
    }

    /// Join the node listening at this endpoint (`tcp/HOST:PORT`); call again for more.
    pub fn connect(mut self, endpoint: impl Into<String>) -> Self {
        self.node.connect.push(endpoint.into());
        self
    }

    /// The file (readable by this user only) whose first line is the system's shared secret;
    /// default `REBEAM_COOKIE`.
    pub fn cookie_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.node.cookie_file = Some(path.into());
        self
    }

    /// How long to keep trying the [`Builder::connect`] endpoints before the start fails.
    pub fn join_timeout(mut self, timeout: Duration) -> Self {
        self.node.join_timeout = Some(timeout);
        self
    }

    /// How long a node whose packets stop coming is still taken for up.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.node.lease = Some(lease);
        self
    }

    /// This node is the system's arming authority: the host arms and disarms every node.
    pub fn authority(mut self) -> Self {
        self.node.authority = true;
        self
    }

    /// TLS links (`tls/HOST:PORT` endpoints): the CA every node's certificate is checked
    /// against, and this node's certificate and key (PEM files).
    pub fn tls(mut self, ca: impl Into<PathBuf>, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.node.tls = Some([ca.into(), cert.into(), key.into()]);
        self
    }
}

impl Runtime {
    /// The nodes of the system that are up, this one included, sorted; empty when the run is
    /// not a node.
    pub fn nodes(&self) -> Result<Vec<String>, Error> {
        match self.client.request(Request::Nodes, None)? {
            Response::Nodes(nodes) => Ok(nodes),
            other => Err(Error::Unexpected(format!("{other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_name_is_no_node_and_a_setting_without_one_is_refused() {
        assert!(Builder::default().node.serve_args().unwrap().is_empty());
        for builder in [
            Builder::default().connect("tcp/127.0.0.1:7447"),
            Builder::default().cookie_file("/k/cookie"),
            Builder::default().lease(Duration::from_secs(1)),
            Builder::default().authority(),
            Builder::default().tls("ca", "cert", "key"),
        ] {
            let err = builder.node.serve_args().unwrap_err();
            assert!(err.to_string().contains("Builder::node"), "{err}");
        }
    }

    #[test]
    fn every_setting_becomes_its_command_line_option() {
        let builder = Builder::default()
            .node("h")
            .listen("tcp/127.0.0.1:7448")
            .connect("tcp/127.0.0.1:7447")
            .connect("tcp/127.0.0.1:7449")
            .cookie_file("/k/cookie")
            .join_timeout(Duration::from_millis(2500))
            .lease(Duration::from_secs(3))
            .authority()
            .tls("/k/ca.pem", "/k/h.pem", "/k/h.key");
        let args = builder.node.serve_args().unwrap();
        let want = [
            "--node",
            "h",
            "--listen",
            "tcp/127.0.0.1:7448",
            "--connect",
            "tcp/127.0.0.1:7447",
            "--connect",
            "tcp/127.0.0.1:7449",
            "--cookie-file",
            "/k/cookie",
            "--join-timeout",
            "2.5",
            "--lease",
            "3",
            "--authority",
            "--tls-ca",
            "/k/ca.pem",
            "--tls-cert",
            "/k/h.pem",
            "--tls-key",
            "/k/h.key",
        ];
        assert_eq!(args, want);
        assert_eq!(builder.node.join_wait(), Duration::from_millis(2500));
    }
}
