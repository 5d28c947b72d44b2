//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in this crate. Each message says what happened, to what, and
/// what to do next.
#[derive(Debug, thiserror::Error)]
// The fields are what each variant's message shows (target, subject, the governor's ErrorInfo).
#[allow(missing_docs)]
pub enum Error {
    /// No `rebeam` command was found to start the governor.
    #[error(
        "cannot find the `rebeam` command to start the runtime (looked in {looked}); install rebeam \
         into the Python environment, or name the command with Builder::governor or REBEAM_BIN"
    )]
    NoGovernor { looked: String },
    /// The builder's settings make no run (the message says which and what to do).
    #[error("cannot start rebeam with these settings: {0}")]
    Settings(String),
    /// The governor could not be started, or ended before it was listening.
    #[error("the rebeam governor {command} did not start: {why}")]
    Start { command: PathBuf, why: String },
    /// The control socket could not be reached or answered nonsense.
    #[error("the rebeam control socket failed: {0}; the run may have ended")]
    Control(String),
    /// The safety state machine refused the request (the message says why and what to do).
    #[error("{0}")]
    Safety(String),
    /// A value could not be put in the neutral model (the message says which and why).
    #[error("cannot send the value to Python: {0}")]
    Encode(String),
    /// What Python sent does not decode into the type asked for.
    #[error("cannot decode what Python sent at {path}: {why}")]
    Decode { path: String, why: String },
    /// An actor or tree could not be started (the Python error says why).
    #[error("cannot start {what}: {info}")]
    StartFailed { what: String, info: Box<rebeam_proto::ErrorInfo> },
    /// The call failed in Python or on its way (the actor raised, died, or does not exist);
    /// `info` has the kind, and for a raise the exception type and the remote traceback.
    #[error("{subject:?} to {target} failed: {info}")]
    Remote { target: String, subject: String, info: Box<rebeam_proto::ErrorInfo> },
    /// The handler answered with `response_error(value)`.
    #[error("{subject:?} to {target} answered an error: {value:?}")]
    ErrorReply { target: String, subject: String, value: crate::Value },
    /// No answer within the call's timeout (the call may still run in Python).
    #[error("{subject:?} to {target} got no answer within {timeout:?}")]
    Timeout { target: String, subject: String, timeout: std::time::Duration },
    /// The governor answered something this version does not expect (a version mismatch).
    #[error("an unexpected answer from the governor ({0}); are rebeam and the crate the same version?")]
    Unexpected(String),
    /// Connecting to the governor failed, or the connection broke.
    #[error("the connection to the rebeam governor failed: {0}")]
    Client(#[from] rebeam_client::ClientError),
}
