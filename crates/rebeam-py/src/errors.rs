//! Rust failures → Python exceptions, in one exhaustive match. The classes themselves are
//! declared once, in Python (`rebeam/errors.py`), so users read and subclass plain Python.

use pyo3::prelude::*;
use rebeam_proto::{ErrorInfo, ErrorKind};

fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NoProcess => "NoProcess",
        ErrorKind::ActorDown => "ActorDown",
        ErrorKind::Crashed => "RemoteError",
        ErrorKind::Timeout => "CallTimeout",
        ErrorKind::TooLarge => "MessageTooLarge",
        ErrorKind::StartFailed => "StartError",
        ErrorKind::BadRequest => "InvalidRequest",
        ErrorKind::ShuttingDown => "ShuttingDown",
        ErrorKind::NoMailbox => "NoMailbox",
        ErrorKind::Safety => "SafetyError",
        ErrorKind::Reserved => "ReservedTopic",
        ErrorKind::Full => "CapacityError",
        ErrorKind::NoQueue => "NoQueue",
    }
}

pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NoProcess => "no_process",
        ErrorKind::ActorDown => "actor_down",
        ErrorKind::Crashed => "crashed",
        ErrorKind::Timeout => "timeout",
        ErrorKind::TooLarge => "too_large",
        ErrorKind::StartFailed => "start_failed",
        ErrorKind::BadRequest => "bad_request",
        ErrorKind::ShuttingDown => "shutting_down",
        ErrorKind::NoMailbox => "no_mailbox",
        ErrorKind::Safety => "safety",
        ErrorKind::Reserved => "reserved",
        ErrorKind::Full => "full",
        ErrorKind::NoQueue => "no_queue",
    }
}

pub fn kind_from_name(name: &str) -> Option<ErrorKind> {
    Some(match name {
        "no_process" => ErrorKind::NoProcess,
        "actor_down" => ErrorKind::ActorDown,
        "crashed" => ErrorKind::Crashed,
        "timeout" => ErrorKind::Timeout,
        "too_large" => ErrorKind::TooLarge,
        "start_failed" => ErrorKind::StartFailed,
        "bad_request" => ErrorKind::BadRequest,
        "shutting_down" => ErrorKind::ShuttingDown,
        "no_mailbox" => ErrorKind::NoMailbox,
        "safety" => ErrorKind::Safety,
        "reserved" => ErrorKind::Reserved,
        "full" => ErrorKind::Full,
        "no_queue" => ErrorKind::NoQueue,
        _ => return None,
    })
}

/// An exception instance for `info`, with `remote_type` and `remote_traceback` attributes.
pub fn to_exception(py: Python<'_>, info: ErrorInfo) -> Bound<'_, PyAny> {
    let build = || -> PyResult<Bound<'_, PyAny>> {
        let module = py.import("rebeam.errors")?;
        let cls = module.getattr(class_name(info.kind))?;
        cls.call_method1("_from_remote", (info.message.clone(), info.exc_type.clone(), info.traceback.clone()))
    };
    build().unwrap_or_else(|e| e.value(py).clone().into_any())
}

pub fn to_pyerr(py: Python<'_>, info: ErrorInfo) -> PyErr {
    PyErr::from_value(to_exception(py, info))
}
