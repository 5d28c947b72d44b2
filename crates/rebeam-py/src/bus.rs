//! The safety state as this process last heard it, and the bus: subscribe, unsubscribe, publish.
//!
//! The state is only read here: arming is the host's, and nothing in this module sends it.

use pyo3::prelude::*;
use rebeam_proto::{ActorId, Request, Response, Safety};

use crate::convert::payload_from_py;
use crate::errors::to_pyerr;
use crate::inflight::unexpected;
use crate::Connection;

#[pymethods]
impl Connection {
    /// The safety state: "disarmed", "armed", "disarming" or "error".
    fn safety_state(&self) -> &'static str {
        match self.client.safety() {
            Safety::Armed => "armed",
            Safety::Disarming => "disarming",
            Safety::Error => "error",
            Safety::Disarmed => "disarmed",
        }
    }

    /// Subscribes `actor` (None: this process) to `pattern`; returns the subscription id.
    fn subscribe(
        &self,
        py: Python<'_>,
        actor: Option<ActorId>,
        pattern: String,
        throttle_ms: u64,
        queue: u32,
    ) -> PyResult<u64> {
        match self.request(py, Request::Subscribe { actor, pattern, throttle_ms, queue }, None)? {
            Response::Subscribed(Ok(id)) => Ok(id),
            Response::Subscribed(Err(info)) | Response::Refused(info) => Err(to_pyerr(py, info)),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    fn unsubscribe(&self, py: Python<'_>, subscription: u64) -> PyResult<()> {
        self.request(py, Request::Unsubscribe { subscription }, None).map(|_| ())
    }

    /// Publishes on the bus; raises ReservedTopic for a topic closed to Python.
    fn publish(
        &self,
        py: Python<'_>,
        topic: String,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let payload = payload_from_py(py, data, buffers)?;
        self.check_size(py, &format!("topic {topic:?}"), payload.len())?;
        match self.request(py, Request::Publish { topic, payload }, None)? {
            Response::Done => Ok(()),
            Response::Refused(info) => Err(to_pyerr(py, info)),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }
}
