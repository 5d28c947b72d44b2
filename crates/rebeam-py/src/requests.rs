//! Requests to the governor: calls, casts, spawning, trees, names and monitors.
//!
//! A call waits without the GIL (`roundtrip`); `call_start`/`cast_start` leave the answer to
//! `next_completion`, so an asyncio loop never blocks on one.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rebeam_client::{ClientError, Tag};
use rebeam_proto::{ActorId, ErrorKind, Outcome, Request, Response};

use crate::convert::{child_from_py, target_from_py, tree_from_py};
use crate::errors::to_pyerr;
use crate::inflight::{call_timeout, completion_to_py, outcome_to_py, unexpected, Started};
use crate::{client_err, numbers, Connection, Failed, SHUTDOWN_ACK_TIMEOUT};

#[pymethods]
impl Connection {
    /// Calls an actor. Returns `("ok" | "error", data, buffers)` for a handler's answer, or
    /// `("failed", exception)` when the call itself failed (timeout, no such actor, crash).
    #[pyo3(signature = (target, subject, data, buffers, sender, timeout))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python call; a struct would only rename it
    fn call<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
        subject: String,
        data: &Bound<'py, PyAny>,
        buffers: &Bound<'py, PyAny>,
        sender: Option<ActorId>,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (body, wait, shown) = self.call_request(py, target, subject, data, buffers, sender, timeout)?;
        let outcome = match self.roundtrip(py, body, Some(wait)) {
            Ok(Response::Call(outcome)) => outcome,
            Ok(other) => Outcome::Failed(unexpected(&other)),
            Err(Failed::Info(info)) if info.kind == ErrorKind::Timeout => {
                Outcome::Failed(call_timeout(&shown, timeout))
            }
            Err(failed) => return Err(failed.into_pyerr(py)),
        };
        outcome_to_py(py, outcome)
    }

    /// Starts a call without waiting; its answer comes from `next_completion` under the
    /// returned tag, as `call` would have returned it (or the exception it would have raised).
    #[pyo3(signature = (target, subject, data, buffers, sender, timeout))]
    #[allow(clippy::too_many_arguments)] // mirrors `call`
    fn call_start(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        subject: String,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
        sender: Option<ActorId>,
        timeout: f64,
    ) -> PyResult<Tag> {
        let (body, wait, shown) = self.call_request(py, target, subject, data, buffers, sender, timeout)?;
        self.start(py, body, Started::Call { shown, timeout }, Some(wait))
    }

    /// Starts a cast without waiting; `next_completion` gives its `delivered` under the tag.
    #[pyo3(signature = (target, subject, data, buffers, sender))]
    fn cast_start(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        subject: String,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
        sender: Option<ActorId>,
    ) -> PyResult<Tag> {
        let body = self.cast_request(py, target, subject, data, buffers, sender)?;
        // No backstop: the governor answers a cast at once, and the close answers it otherwise.
        self.start(py, body, Started::Cast, None)
    }

    /// The next answer to a `call_start` or `cast_start`: `(tag, result)`, or None after
    /// `timeout` seconds (None waits until there is one). Raises ShuttingDown once the
    /// connection is closed and every answer has been taken.
    #[pyo3(signature = (timeout=None))]
    fn next_completion<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<(Tag, Bound<'py, PyAny>)>> {
        let timeout = timeout.map(|t| numbers::timeout("next_completion()", t)).transpose()?;
        loop {
            let completion = match py.detach(|| self.client.next_completion(timeout)) {
                Ok(c) => c,
                Err(ClientError::Timeout) => return Ok(None),
                Err(e) => return Err(client_err(py, e)),
            };
            // A tag forgotten after its completion was queued has no record: skip it.
            if let Some(started) = self.inflight.take(completion.tag) {
                return Ok(Some((completion.tag, completion_to_py(py, started, completion.result)?)));
            }
        }
    }

    /// Forgets a started call or cast: `next_completion` gives no answer for it from now on (a
    /// late one is dropped). True if so; False if it had already given the answer out.
    fn forget(&self, tag: Tag) -> bool {
        let recorded = self.inflight.take(tag).is_some();
        self.client.forget(tag);
        recorded
    }

    /// Sends a message without waiting for an answer; True if it reached a live mailbox.
    #[pyo3(signature = (target, subject, data, buffers, sender))]
    fn cast(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        subject: String,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
        sender: Option<ActorId>,
    ) -> PyResult<bool> {
        let body = self.cast_request(py, target, subject, data, buffers, sender)?;
        // With the GIL held: a ring write that cannot wait costs less than letting it go.
        let Some(body) = self.client.try_cast(body) else { return Ok(true) };
        match self.request(py, body, None)? {
            Response::Cast { delivered } => Ok(delivered),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// Starts an actor or task outside any tree; returns `(id, name)`.
    fn spawn(&self, py: Python<'_>, child: &Bound<'_, PyDict>) -> PyResult<(ActorId, Option<String>)> {
        let child = child_from_py(py, child)?;
        match self.request(py, Request::Spawn { child: Box::new(child) }, None)? {
            Response::Spawned(Ok(r)) => Ok((r.id, r.name)),
            Response::Spawned(Err(info)) | Response::Refused(info) => Err(to_pyerr(py, info)),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// Starts a supervision tree and waits until every child is up; returns the tree id.
    fn start_tree(&self, py: Python<'_>, spec: &Bound<'_, PyDict>) -> PyResult<u64> {
        let spec = tree_from_py(py, spec)?;
        match self.request(py, Request::StartTree { spec }, None)? {
            Response::TreeStarted(Ok(id)) => Ok(id),
            Response::TreeStarted(Err(info)) | Response::Refused(info) => Err(to_pyerr(py, info)),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// Stops top-level tree `tree` (its children in reverse start order), without waiting.
    fn stop_tree(&self, py: Python<'_>, tree: u64) -> PyResult<()> {
        match self.request(py, Request::StopTree { tree }, None)? {
            Response::Done => Ok(()),
            Response::Refused(info) => Err(to_pyerr(py, info)),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// The actor named `name`; for a group's name, its first present member.
    fn whereis(&self, py: Python<'_>, name: String) -> PyResult<Option<(ActorId, Option<String>)>> {
        match self.request(py, Request::Whereis { name }, None)? {
            Response::Whereis(found) => Ok(found.map(|r| (r.id, r.name))),
            Response::Group(members) => Ok(members.into_iter().flatten().next().map(|r| (r.id, r.name))),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// The members of group `name` by position (`None` where one is restarting); `None` if
    /// `name` is not a group's (an actor's, or nobody's).
    fn members(&self, py: Python<'_>, name: String) -> PyResult<Option<Vec<Option<ActorId>>>> {
        match self.request(py, Request::Whereis { name }, None)? {
            Response::Whereis(_) => Ok(None),
            Response::Group(members) => Ok(Some(members.into_iter().map(|m| m.map(|r| r.id)).collect())),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    #[pyo3(signature = (watcher, target))]
    fn monitor(&self, py: Python<'_>, watcher: Option<ActorId>, target: &Bound<'_, PyAny>) -> PyResult<u64> {
        let target = target_from_py(target)?;
        match self.request(py, Request::Monitor { watcher, target }, None)? {
            Response::Monitored(Ok(id)) => Ok(id),
            Response::Monitored(Err(info)) | Response::Refused(info) => Err(to_pyerr(py, info)),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    fn demonitor(&self, py: Python<'_>, monitor: u64) -> PyResult<()> {
        self.request(py, Request::Demonitor { monitor }, None).map(|_| ())
    }

    fn shutdown(&self, py: Python<'_>, code: i32) -> PyResult<()> {
        self.request(py, Request::Shutdown { code }, Some(SHUTDOWN_ACK_TIMEOUT)).map(|_| ())
    }
}
