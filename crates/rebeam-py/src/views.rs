//! What this process can see of the system: nodes, per-process behaviour counts, notices,
//! counters, and shared memory to build arrays in.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rebeam_proto::{Request, Response};

use crate::errors::to_pyerr;
use crate::inflight::unexpected;
use crate::{convert, shared, Connection};

#[pymethods]
impl Connection {
    /// The nodes of the system that are up, this one included; empty when not a node.
    fn nodes(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        match self.request(py, Request::Nodes, None)? {
            Response::Nodes(nodes) => Ok(nodes),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// `[(index, pid, behaviours run)]` per live process (index 0: the main process).
    fn boc_stats(&self, py: Python<'_>) -> PyResult<Vec<(u32, u32, u64)>> {
        match self.request(py, Request::BocStats, None)? {
            Response::BocStats(stats) => Ok(stats),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// The noticeboard: `[(key, version, data, buffers)]`; `clear` empties it as well.
    fn notices<'py>(&self, py: Python<'py>, clear: bool) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        match self.request(py, Request::Notices { clear }, None)? {
            Response::Notices(entries) => entries
                .into_iter()
                .map(|(key, version, payload)| {
                    let (data, buffers) = convert::payload_to_py(py, payload, shared::Use::State)?;
                    PyTuple::new(
                        py,
                        [key.into_pyobject(py)?.into_any(), version.into_pyobject(py)?.into_any(), data, buffers],
                    )
                })
                .collect(),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// How many commands have arrived for `next_command` so far. Read after a response, it
    /// counts every command the governor sent before that response (frames arrive in order).
    #[getter]
    fn commands_received(&self) -> u64 {
        self.client.commands_received()
    }

    /// Direct casts from this process dropped because the actor's ring stayed full.
    #[getter]
    fn casts_dropped(&self) -> u64 {
        self.client.direct_drops()
    }

    /// Whether the governor connection is gone.
    #[getter]
    fn closed(&self) -> bool {
        self.client.closed()
    }

    /// `nbytes` of shared memory that calls and casts lend with no copy (`rebeam.shared_array`).
    fn shared_buffer(&self, nbytes: usize) -> PyResult<shared::SharedBuffer> {
        match self.client.shared_block(nbytes.max(1)) {
            Some(block) => Ok(shared::SharedBuffer::new(block, nbytes)),
            None => Err(pyo3::exceptions::PyMemoryError::new_err(format!(
                "no shared memory for {nbytes} bytes: this process's segments are at their bound, or the system has none"
            ))),
        }
    }
}
