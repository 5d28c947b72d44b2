//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in this crate. Each message says what happened, to what, and
/// what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `rebeam` command was found to start the governor.
    #[error(
        "cannot find the `rebeam` command to start the runtime (looked in {looked}); install rebeam \
         into the Python environment, or name the command with Builder::governor or REBEAM_BIN"
    )]
    NoGovernor { looked: String },
    /// The governor could not be started, or ended before it was listening.
    #[error("the rebeam governor {command} did not start: {why}")]
    Start { command: PathBuf, why: String },
    /// The control socket could not be reached or answered nonsense.
    #[error("the rebeam control socket failed: {0}; the run may have ended")]
    Control(String),
    /// The safety state machine refused the request (the message says why and what to do).
    #[error("{0}")]
    Safety(String),
    /// Connecting to the governor failed, or the connection broke.
    #[error("the connection to the rebeam governor failed: {0}")]
    Client(#[from] rebeam_client::ClientError),
}
