//! Calls and casts in flight without a thread waiting for each (`Connection.call_start`,
//! `cast_start`, `next_completion`, `forget`), and the one conversion of a call's answer that
//! the blocking `Connection.call` shares with them.
//!
//! The rules:
//! - A started call or cast is answered once, through rebeam-client's completion queue, as
//!   exactly what the blocking form gives: a call's `("ok" | "error", data, buffers)` or
//!   `("failed", exception)` (its backstop deadline is the blocking call's, and its timeout says
//!   the same words), a cast's bool. Where the blocking form would raise (the governor is gone),
//!   the completion is that exception instance instead.
//! - What each tag was (call or cast, and what a call's timeout message names) is recorded under
//!   one lock taken around the start, so a completion drained at once still finds its record.
//! - A forgotten tag has no record and gets no completion.

use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rebeam_client::{ClientError, Tag};
use rebeam_proto::{ErrorInfo, ErrorKind, Outcome, Response, Status};

use crate::convert;
use crate::errors::{to_exception, to_pyerr};

/// What a tag in flight was started as.
pub enum Started {
    /// A call: its target as shown in messages, and its timeout in seconds as given.
    Call {
        shown: String,
        timeout: f64,
    },
    Cast,
}

/// The records of the tags in flight.
#[derive(Default)]
pub struct Inflight(Mutex<HashMap<Tag, Started>>);

impl Inflight {
    /// Runs `start` (which sends the request and returns its tag) and records the tag as
    /// `started`, both under the lock, so no completion can be looked up in between.
    pub fn start(
        &self,
        started: Started,
        start: impl FnOnce() -> Result<Tag, ClientError>,
    ) -> Result<Tag, ClientError> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let tag = start()?;
        map.insert(tag, started);
        Ok(tag)
    }

    /// Takes the record of `tag` (None for a tag forgotten or never started here).
    pub fn take(&self, tag: Tag) -> Option<Started> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&tag)
    }
}

/// The timeout a call reports when no answer came: it names the actor and the wait.
pub fn call_timeout(shown: &str, timeout: f64) -> ErrorInfo {
    ErrorInfo::new(ErrorKind::Timeout, format!("no reply from actor {shown} within {timeout} s"))
}

/// A call's outcome as `Connection.call` returns it.
pub fn outcome_to_py<'py>(py: Python<'py>, outcome: Outcome) -> PyResult<Bound<'py, PyTuple>> {
    match outcome {
        Outcome::Reply { status, payload } => {
            let status = match status {
                Status::Ok => "ok",
                Status::Error => "error",
            };
            let (data, buffers) = convert::payload_to_py(py, payload, crate::shared::Use::Message)?;
            PyTuple::new(py, [status.into_pyobject(py)?.into_any(), data, buffers])
        }
        Outcome::Failed(info) => PyTuple::new(py, ["failed".into_pyobject(py)?.into_any(), to_exception(py, info)]),
    }
}

/// A governor response no request of this kind expects, as the failure to report.
pub fn unexpected(resp: &Response) -> ErrorInfo {
    match resp {
        Response::Refused(info) => info.clone(),
        other => ErrorInfo::new(ErrorKind::BadRequest, format!("unexpected response from the governor: {other:?}")),
    }
}

/// A completion as Python gets it: what the blocking form returns, or the exception it raises.
pub fn completion_to_py<'py>(
    py: Python<'py>,
    started: Started,
    result: Result<Response, ClientError>,
) -> PyResult<Bound<'py, PyAny>> {
    let raised = |info: ErrorInfo| to_pyerr(py, info).into_value(py).into_bound(py).into_any();
    Ok(match (started, result) {
        (Started::Call { .. }, Ok(Response::Call(outcome))) => outcome_to_py(py, outcome)?.into_any(),
        (Started::Call { shown, timeout }, Err(ClientError::Timeout)) => {
            outcome_to_py(py, Outcome::Failed(call_timeout(&shown, timeout)))?.into_any()
        }
        (Started::Call { .. }, Ok(other)) => outcome_to_py(py, Outcome::Failed(unexpected(&other)))?.into_any(),
        (Started::Cast, Ok(Response::Cast { delivered })) => delivered.into_pyobject(py)?.to_owned().into_any(),
        (Started::Cast, Ok(other)) => raised(unexpected(&other)),
        (_, Err(e)) => raised(e.into_info()),
    })
}
