//! What a node is told at start, and the Zenoh configuration made of it.
//!
//! The rules: explicit endpoints only (multicast scouting off); peer mode, so nodes link to
//! one another with no router; every link authenticated by user/password with the cookie as
//! the password; a node that has `--connect` endpoints must reach one within its join
//! timeout, else it does not start (Zenoh would otherwise retry forever, silently).
//! - **TLS** ([`Tls`]): with a CA, a certificate and its key, every link is TLS with both
//!   sides' certificates checked against the CA (mutual TLS), and so are the endpoints: only
//!   `tls/` ones are taken, and Zenoh is told to open and accept no other kind of link. A node
//!   whose certificate the CA did not sign gets no link. The cookie is still asked for on top:
//!   TLS says who may link, the cookie which system they belong to. Without the files,
//!   `tls/` endpoints are refused (there would be nothing to check a peer against).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::NodeError;

/// The environment variable that may hold the cookie (instead of `--cookie-file`).
pub const COOKIE_ENV: &str = "REBEAM_COOKIE";

/// How long a node tries its `--connect` endpoints before it gives up.
pub const DEFAULT_JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a node whose packets stop coming (a silent cut: nothing closes the link) is still
/// taken for up: Zenoh's own default lease. Its keep-alives go out four times a lease.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// The environment variable Zenoh reads its runtimes' settings from, once, when it first
/// starts one.
pub const ZENOH_RUNTIME_ENV: &str = "ZENOH_RUNTIME";

/// A node's Zenoh runtimes, unless `ZENOH_RUNTIME` says otherwise: every one of them (receiving,
/// sending, accepting, the network's own tasks) handed over to its application runtime, one
/// thread. By default Zenoh runs each on threads of its own, and a message crosses several of
/// them on its way in and out: each crossing is a thread's wake-up, which costs 10-30 us on a
/// small machine with no idle core. Measured on a 2-core VM (2026-12-02, loopback, 3000
/// queries): Zenoh's own query p50 97-117 us this way, 180-248 us by default; a rebeam call to
/// another node 427-454 us, 507-597 us by default; casts to another node 7.3-8.2k/s, 3.6-4.3k/s.
pub const ZENOH_RUNTIME: &str =
    "(rx: (handover: app), acc: (handover: app), tx: (handover: app), net: (handover: app))";

/// Gives this process [`ZENOH_RUNTIME`] unless the user set `ZENOH_RUNTIME` (which then wins,
/// as Zenoh documents it). It sets an environment variable: call it before the process starts
/// a thread, as a node's `rebeam` does before its runtime.
pub fn use_node_runtimes() {
    if std::env::var_os(ZENOH_RUNTIME_ENV).is_none() {
        std::env::set_var(ZENOH_RUNTIME_ENV, ZENOH_RUNTIME);
    }
}

/// How a TLS endpoint begins.
const TLS_PREFIX: &str = "tls/";

/// The user name of the handshake: every node is the same user; the cookie tells them apart
/// from strangers.
const HANDSHAKE_USER: &str = "rebeam";

/// The first wait between connect attempts (Zenoh's default, 1 s, makes a node started a
/// moment before its peer wait a whole second); attempts back off to `RETRY_MAX_MS`.
const RETRY_INIT_MS: u64 = 50;
const RETRY_MAX_MS: u64 = 1000;

/// The files a node's TLS links are made with (PEM): the CA every node's certificate is
/// signed by, and this node's certificate and private key (used both to listen and to dial).
#[derive(Debug, Clone)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One node's start-up settings.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub name: String,
    /// Endpoints to listen on (`tcp/HOST:PORT`).
    pub listen: Vec<String>,
    /// Endpoints of nodes to join.
    pub connect: Vec<String>,
    /// The shared secret.
    pub cookie: String,
    pub join_timeout: Duration,
    /// This node is the system's arming authority (`--authority`; see [`crate::authority`]).
    pub authority: bool,
    /// How long a silent link is taken for up (`--lease`; [`DEFAULT_LEASE`]).
    pub lease: Duration,
    /// TLS links (`--tls-ca`, `--tls-cert`, `--tls-key`), or plain TCP.
    pub tls: Option<Tls>,
}

/// Whether `name` can name a node: it is one chunk of a key expression, and readable in logs.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The cookie: the file's first line, else `REBEAM_COOKIE`. A file others can read is refused,
/// as a cookie anyone can read guards nothing.
pub fn read_cookie(file: Option<&Path>, env: Option<String>) -> Result<String, NodeError> {
    let cookie = match file {
        Some(path) => {
            use std::os::unix::fs::PermissionsExt;
            let err = |source| NodeError::CookieFile { path: path.to_path_buf(), source };
            let mode = std::fs::metadata(path).map_err(err)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(NodeError::CookieOpen { path: path.to_path_buf(), mode: mode & 0o777 });
            }
            let text = std::fs::read_to_string(path).map_err(err)?;
            text.lines().next().unwrap_or_default().trim().to_string()
        }
        None => env.ok_or(NodeError::NoCookie)?.trim().to_string(),
    };
    if cookie.is_empty() {
        return Err(NodeError::EmptyCookie);
    }
    Ok(cookie)
}

impl NodeOptions {
    /// The Zenoh configuration for this node; `dictionary` is the file that holds the
    /// handshake's one user and password (Zenoh reads its accepted passwords from a file).
    pub(crate) fn zenoh_config(&self, dictionary: &Path) -> Result<zenoh::Config, NodeError> {
        use serde_json::Value;
        let json = |v: Value| v.to_string();
        let join_ms = self.join_timeout.as_millis().to_string();
        let lease_ms = self.lease.as_millis().max(1).to_string();
        let settings: [(&str, String); 12] = [
            ("mode", json("peer".into())),
            ("scouting/multicast/enabled", "false".into()),
            ("listen/endpoints", json(self.listen.clone().into())),
            ("connect/endpoints", json(self.connect.clone().into())),
            ("connect/timeout_ms", join_ms),
            ("connect/exit_on_failure", "true".into()),
            (
                "connect/retry",
                format!(
                    r#"{{"period_init_ms": {RETRY_INIT_MS}, "period_max_ms": {RETRY_MAX_MS}, "period_increase_factor": 2}}"#
                ),
            ),
            ("transport/auth/usrpwd/user", json(HANDSHAKE_USER.into())),
            ("transport/auth/usrpwd/password", json(self.cookie.as_str().into())),
            ("transport/auth/usrpwd/dictionary_file", json(dictionary.display().to_string().into())),
            ("transport/link/tx/lease", lease_ms),
            // The admin space would answer anyone's queries about this node; nobody needs it.
            ("adminspace/enabled", "false".into()),
        ];
        self.check_endpoints()?;
        let mut config = zenoh::Config::default();
        let tls = self.tls.iter().flat_map(tls_settings);
        for (key, value) in settings.into_iter().chain(tls) {
            config
                .insert_json5(key, &value)
                .map_err(|e| NodeError::Config { key: key.to_string(), why: e.to_string() })?;
        }
        Ok(config)
    }

    /// With TLS, only `tls/` endpoints; without it, none.
    fn check_endpoints(&self) -> Result<(), NodeError> {
        let tls = self.tls.is_some();
        let wrong = self.listen.iter().chain(&self.connect).find(|e| e.starts_with(TLS_PREFIX) != tls);
        match wrong {
            Some(endpoint) => Err(NodeError::Endpoint { endpoint: endpoint.clone(), tls }),
            None => Ok(()),
        }
    }

    /// The handshake's dictionary line: the one user, with the cookie as its password.
    pub(crate) fn dictionary_line(&self) -> String {
        format!("{HANDSHAKE_USER}:{}\n", self.cookie)
    }

    /// A private path for the dictionary file, removed once the session is open.
    pub(crate) fn dictionary_path(&self) -> PathBuf {
        std::env::temp_dir().join(format!("rebeam-node-{}-{}.auth", self.name, std::process::id()))
    }
}

/// Zenoh's TLS settings for `tls`: mutual TLS against the CA, and no link of another kind.
fn tls_settings(tls: &Tls) -> Vec<(&'static str, String)> {
    let path = |p: &Path| serde_json::Value::from(p.display().to_string()).to_string();
    vec![
        ("transport/link/protocols", r#"["tls"]"#.to_string()),
        ("transport/link/tls/root_ca_certificate", path(&tls.ca)),
        ("transport/link/tls/listen_certificate", path(&tls.cert)),
        ("transport/link/tls/listen_private_key", path(&tls.key)),
        ("transport/link/tls/connect_certificate", path(&tls.cert)),
        ("transport/link/tls/connect_private_key", path(&tls.key)),
        ("transport/link/tls/enable_mtls", "true".to_string()),
    ]
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
