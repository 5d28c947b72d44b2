//! Rust failures → Python exceptions, in one exhaustive match. The classes themselves are
//! declared once, in Python (`rebeam/errors.py`), so users read and subclass plain Python.
//!
//! The other direction, a failure Python reports to the governor (a handler raised, a start
//! failed), is an [`Info`] (`_rebeam.ErrorInfo`): a frozen class whose kind is checked when it
//! is built, so a misspelt kind fails where it was written, not in the governor.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rebeam_proto::{ErrorInfo, ErrorKind};

/// `_rebeam.ErrorInfo(kind, message, exc_type=None, traceback=None)`: a failure to report.
#[pyclass(frozen, name = "ErrorInfo", module = "rebeam._rebeam")]
pub struct Info(ErrorInfo);

#[pymethods]
impl Info {
    #[new]
    #[pyo3(signature = (kind, message, exc_type=None, traceback=None))]
    fn new(kind: &str, message: String, exc_type: Option<String>, traceback: Option<String>) -> PyResult<Self> {
        let kind = kind_from_name(kind).ok_or_else(|| {
            let valid: Vec<&str> = KINDS.iter().map(|k| kind_name(*k)).collect();
            PyValueError::new_err(format!("error kind must be one of {}, not '{kind}'", valid.join(", ")))
        })?;
        Ok(Info(ErrorInfo { kind, message, exc_type, traceback }))
    }

    #[getter]
    fn kind(&self) -> &'static str {
        kind_name(self.0.kind)
    }

    #[getter]
    fn message(&self) -> &str {
        &self.0.message
    }

    #[getter]
    fn exc_type(&self) -> Option<&str> {
        self.0.exc_type.as_deref()
    }

    #[getter]
    fn traceback(&self) -> Option<&str> {
        self.0.traceback.as_deref()
    }

    fn __repr__(&self) -> String {
        format!("ErrorInfo({:?}, {:?}, {:?})", kind_name(self.0.kind), self.0.message, self.0.exc_type)
    }
}

/// The ErrorInfo in `obj`, which must be an `_rebeam.ErrorInfo`.
pub fn info_from_py(obj: &Bound<'_, PyAny>) -> PyResult<ErrorInfo> {
    Ok(obj.cast::<Info>()?.get().0.clone())
}

/// Every error kind, in the order of `ErrorKind`'s declaration (`_rebeam.ERROR_KINDS`).
pub const KINDS: [ErrorKind; 13] = [
    ErrorKind::NoProcess,
    ErrorKind::ActorDown,
    ErrorKind::Crashed,
    ErrorKind::Timeout,
    ErrorKind::TooLarge,
    ErrorKind::StartFailed,
    ErrorKind::BadRequest,
    ErrorKind::ShuttingDown,
    ErrorKind::NoMailbox,
    ErrorKind::Safety,
    ErrorKind::Reserved,
    ErrorKind::Full,
    ErrorKind::NoQueue,
];

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The position of `kind` in [`KINDS`], by an exhaustive match: a new `ErrorKind` does not
    /// compile until it is placed, and the test below then fails until `KINDS` lists it.
    fn position(kind: ErrorKind) -> usize {
        match kind {
            ErrorKind::NoProcess => 0,
            ErrorKind::ActorDown => 1,
            ErrorKind::Crashed => 2,
            ErrorKind::Timeout => 3,
            ErrorKind::TooLarge => 4,
            ErrorKind::StartFailed => 5,
            ErrorKind::BadRequest => 6,
            ErrorKind::ShuttingDown => 7,
            ErrorKind::NoMailbox => 8,
            ErrorKind::Safety => 9,
            ErrorKind::Reserved => 10,
            ErrorKind::Full => 11,
            ErrorKind::NoQueue => 12,
        }
    }

    #[test]
    fn kinds_lists_every_kind_once() {
        for (i, kind) in KINDS.iter().enumerate() {
            assert_eq!(position(*kind), i, "{kind:?}");
        }
    }

    #[test]
    fn every_kind_name_parses_back() {
        for kind in KINDS {
            assert_eq!(kind_from_name(kind_name(kind)), Some(kind));
        }
        assert_eq!(kind_from_name("no_such_kind"), None);
    }
}
