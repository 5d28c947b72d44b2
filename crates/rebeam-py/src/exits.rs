//! `_rebeam.Exit`: how an actor ended, as a worker reports it (`Connection.exited`).
//!
//! Built only through its constructors, so that a crash always carries its error and no
//! spelling of a reason is read on the way to the governor. `kind` is the spelling an actor's
//! `terminate(reason)` hook is given.

use pyo3::prelude::*;
use rebeam_proto::Exit;

use crate::errors::info_from_py;

/// `_rebeam.Exit.normal()`, `.shutdown()` or `.crashed(error)`: an actor's end to report.
#[pyclass(frozen, eq, name = "Exit", module = "rebeam._rebeam")]
#[derive(PartialEq)]
pub struct PyExit(Exit);

#[pymethods]
impl PyExit {
    /// The actor returned, or its task ended without an error.
    #[staticmethod]
    fn normal() -> Self {
        PyExit(Exit::Normal)
    }

    /// The actor stopped because it was asked to.
    #[staticmethod]
    fn shutdown() -> Self {
        PyExit(Exit::Shutdown)
    }

    /// The actor raised `error` (an `_rebeam.ErrorInfo`).
    #[staticmethod]
    fn crashed(error: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyExit(Exit::Crashed(info_from_py(error)?)))
    }

    /// "normal", "shutdown" or "crashed".
    #[getter]
    fn kind(&self) -> &'static str {
        match self.0 {
            Exit::Normal => "normal",
            Exit::Shutdown => "shutdown",
            Exit::Crashed(_) => "crashed",
            // The governor's own verdict on a dead worker; Python never builds it.
            Exit::Killed(_) => "killed",
        }
    }

    fn __repr__(&self) -> String {
        match &self.0 {
            Exit::Crashed(info) => format!("Exit.crashed({:?})", info.message),
            _ => format!("Exit.{}()", self.kind()),
        }
    }
}

impl PyExit {
    pub fn exit(&self) -> Exit {
        self.0.clone()
    }
}
