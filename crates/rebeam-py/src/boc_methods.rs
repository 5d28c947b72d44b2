//! Behaviour-oriented concurrency: cowns, code, schedules, the noticeboard and tagged messages.
//!
//! Code is defined once per process and then named by id; a `@when` carries only its captures
//! and cown ids.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rebeam_client::HELD_FRAME_MAX_BYTES;
use rebeam_proto::{ErrorKind, Event, Payload, Request, Response};

use crate::convert::payload_from_py;
use crate::errors::to_pyerr;
use crate::inflight::unexpected;
use crate::{client_err, convert, numbers, shared, Connection};

impl Connection {
    /// Sends an event about cowns now, or held (`flusher.rs`).
    fn send_cowns_event(&self, py: Python<'_>, event: Event, held: bool) -> PyResult<()> {
        if held && !self.flusher.stopped() {
            self.flusher.ensure(&self.client);
            return self.hold(py, |c| c.hold_event(event));
        }
        self.send_event(py, event)
    }

    /// Holds a frame with `hold`; a full batch is sent without the GIL.
    fn hold(
        &self,
        py: Python<'_>,
        hold: impl FnOnce(&rebeam_client::Client) -> Result<bool, rebeam_client::ClientError>,
    ) -> PyResult<()> {
        match hold(&self.client) {
            Ok(false) => Ok(()),
            Ok(true) => self.flush_held(py),
            Err(e) => Err(client_err(py, e)),
        }
    }
}

#[pymethods]
impl Connection {
    /// Announces a cown whose value this process holds.
    fn cown_created(&self, py: Python<'_>, cown: u64, pinned: bool) -> PyResult<()> {
        self.send_event(py, Event::CownCreated { cown, pinned })
    }

    /// This process dropped its last handles to these cowns it made (see `rebeam.boc._cowns`).
    /// With `held`, held to go with the frames after it (a worker's, before its "done").
    #[pyo3(signature = (cowns, held=false))]
    fn drop_cowns(&self, py: Python<'_>, cowns: Vec<u64>, held: bool) -> PyResult<()> {
        self.send_cowns_event(py, Event::DropCowns { cowns }, held)
    }

    /// This process made these cowns, and a `@when` here requested each: its handle is
    /// garbage, and they are freed once no behaviour is queued on them (see `rebeam.boc._cowns`).
    #[pyo3(signature = (cowns, held=false))]
    fn release_cowns(&self, py: Python<'_>, cowns: Vec<u64>, held: bool) -> PyResult<()> {
        self.send_cowns_event(py, Event::ReleaseCowns { cowns }, held)
    }

    /// This process keeps handles to these cowns past their behaviour: never freed.
    #[pyo3(signature = (cowns, held=false))]
    fn keep_cowns(&self, py: Python<'_>, cowns: Vec<u64>, held: bool) -> PyResult<()> {
        self.send_cowns_event(py, Event::KeepCowns { cowns }, held)
    }

    /// Hands over a cown's value that the governor asked for (`surrender`).
    fn cown_value(
        &self,
        py: Python<'_>,
        cown: u64,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let payload = payload_from_py(py, data, buffers)?;
        self.send_event(py, Event::CownValue { cown, payload })
    }

    /// Tells the governor this (the main) process's `sys.path`, for the workers.
    fn sys_path(&self, py: Python<'_>, paths: Vec<String>) -> PyResult<()> {
        self.send_event(py, Event::SysPath { paths })
    }

    /// Defines a behaviour's code once, under `id`, for every worker (see `rebeam.boc._code`).
    fn define_code(
        &self,
        py: Python<'_>,
        id: u64,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let code = payload_from_py(py, data, buffers)?;
        self.check_size(py, &"a behaviour's code", code.len())?;
        self.send_event(py, Event::DefineCode { id, code })
    }

    /// Said by the thread that ran the behaviour, which goes on to the next one: a write that
    /// cannot block is made holding the GIL, since letting it go while other threads wait for
    /// it hands it to one of them and back (a context switch each way). With `held`, it is held
    /// to go with the next ones (a worker's run of behaviours, which calls `flush_held()` when
    /// the run ends; see `flusher.rs`). With `wake=False` too, the flusher is not woken for it:
    /// the caller flushes itself, even if the run blocks (a worker's command thread).
    #[pyo3(signature = (behaviour, held=false, wake=true))]
    fn behaviour_done(&self, py: Python<'_>, behaviour: u64, held: bool, wake: bool) -> PyResult<()> {
        if held && !wake && !self.flusher.stopped() {
            return self.hold(py, |c| c.hold_event_unwoken(Event::BehaviourDone { behaviour }));
        }
        if held && !self.flusher.stopped() {
            self.flusher.ensure(&self.client);
            return self.hold(py, |c| c.hold_event(Event::BehaviourDone { behaviour }));
        }
        match self.client.try_send_event(Event::BehaviourDone { behaviour }) {
            Ok(None) => Ok(()),
            Ok(Some(event)) => self.send_event(py, event),
            Err(e) => Err(client_err(py, e)),
        }
    }

    /// Schedules a behaviour on `cowns`; its result goes to the new cown `result`. `at_main`
    /// places it in this (the main) process (`Cown.acquire`); `gated` is `@requires_armed`.
    /// With `wait=False` it does not wait, and the governor answers only a refusal, raised by
    /// the next `raise_refused()` (frames on one connection are handled in order, so what
    /// follows still sees this behaviour scheduled).
    #[pyo3(signature = (behaviour, cowns, result, data, buffers, at_main=false, gated=false, wait=true))]
    #[allow(clippy::too_many_arguments)]
    fn schedule(
        &self,
        py: Python<'_>,
        behaviour: u64,
        cowns: Vec<u64>,
        result: u64,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
        at_main: bool,
        gated: bool,
        wait: bool,
    ) -> PyResult<()> {
        let code = payload_from_py(py, data, buffers)?;
        self.check_size(py, &"a behaviour (its code and captures)", code.len())?;
        let small = code.len() <= HELD_FRAME_MAX_BYTES as u64;
        let body = Request::Schedule { behaviour, cowns, result, code, at_main, gated, quiet: !wait };
        if !wait && small && !self.flusher.stopped() {
            // Held to go with the @whens after it: one write for a burst (see `flusher.rs`).
            self.flusher.ensure(&self.client);
            return self.hold(py, |c| c.hold_request(body));
        }
        if !wait {
            return self.send_quiet(py, body);
        }
        match self.request(py, body, None)? {
            Response::Done => Ok(()),
            Response::Refused(info) => Err(to_pyerr(py, info)),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// Sends the frames held so far (`flusher.rs`): a worker's run of behaviours is over.
    fn flush_held(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.client.flush_held()).map_err(|e| client_err(py, e))
    }

    /// Stops the flusher and sends what is held: called at exit, before the interpreter
    /// finalises (`flusher.rs`); from then on nothing is held.
    fn stop_flusher(&self, py: Python<'_>) {
        py.detach(|| self.flusher.stop(&self.client));
    }

    /// Waits until no behaviour is pending; False if `timeout` seconds passed first.
    #[pyo3(signature = (timeout=None))]
    fn quiesce(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout_ms = timeout.map(|t| numbers::timeout_ms("quiesce()", t)).transpose()?;
        match self.request(py, Request::Quiesce { timeout_ms }, None)? {
            Response::Done => Ok(true),
            Response::Refused(info) if info.kind == ErrorKind::Timeout => Ok(false),
            Response::Refused(info) => Err(to_pyerr(py, info)),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// bocpy messaging: queues `data` under `tag`.
    fn send_tagged(
        &self,
        py: Python<'_>,
        tag: String,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let payload = payload_from_py(py, data, buffers)?;
        self.check_size(py, &format!("tag {tag:?}"), payload.len())?;
        match self.request(py, Request::SendTagged { tag, payload }, None)? {
            Response::Done => Ok(()),
            Response::Refused(info) => Err(to_pyerr(py, info)),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// The oldest message under any of `tags`: `(tag, data, buffers)`, or None after `timeout`.
    #[pyo3(signature = (tags, timeout=None))]
    fn receive<'py>(
        &self,
        py: Python<'py>,
        tags: Vec<String>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let timeout_ms = timeout.map(|t| numbers::timeout_ms(&format!("receive({tags:?})"), t)).transpose()?;
        match self.request(py, Request::Receive { tags, timeout_ms }, None)? {
            Response::Received(Some((tag, payload))) => {
                let (data, buffers) = convert::payload_to_py(py, payload, shared::Use::Message)?;
                PyTuple::new(py, [tag.into_pyobject(py)?.into_any(), data, buffers]).map(Some)
            }
            Response::Received(None) => Ok(None),
            Response::Refused(info) => Err(to_pyerr(py, info)),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    fn drain(&self, py: Python<'_>, tags: Vec<String>) -> PyResult<()> {
        self.request(py, Request::Drain { tags }, None).map(|_| ())
    }

    /// A plain `@when` on one cown, the common case, in one call: `raise_refused()`, then
    /// `schedule(behaviour, [cown], result, data, [], wait=False)`. Nothing is sent when an
    /// earlier behaviour's refusal is raised, as on the long path.
    fn schedule_one(
        &self,
        py: Python<'_>,
        behaviour: u64,
        cown: u64,
        result: u64,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.raise_refused(py)?;
        let code = Payload { data: shared::bytes_of(py, data)?, buffers: Vec::new() };
        self.check_size(py, &"a behaviour (its code and captures)", code.len())?;
        let small = code.len() <= HELD_FRAME_MAX_BYTES as u64;
        let body =
            Request::Schedule { behaviour, cowns: vec![cown], result, code, at_main: false, gated: false, quiet: true };
        if small && !self.flusher.stopped() {
            self.flusher.ensure(&self.client);
            return self.hold(py, |c| c.hold_request(body));
        }
        self.send_quiet(py, body)
    }

    /// Raises the first refusal of an unawaited request since the last call (and forgets the rest).
    fn raise_refused(&self, py: Python<'_>) -> PyResult<()> {
        match self.client.take_refused().into_iter().next() {
            Some(mut info) => {
                info.message = format!("a behaviour scheduled earlier was refused: {}", info.message);
                Err(to_pyerr(py, info))
            }
            None => Ok(()),
        }
    }

    /// bocpy's `set_tags`: these tags get the queues, empty (none: assigned on first use).
    fn set_tags(&self, py: Python<'_>, tags: Vec<String>) -> PyResult<()> {
        match self.request(py, Request::SetTags { tags }, None)? {
            Response::Done => Ok(()),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// Writes (`data` None: deletes) a noticeboard entry, without waiting.
    #[pyo3(signature = (key, data, buffers))]
    fn notice(
        &self,
        py: Python<'_>,
        key: String,
        data: Option<&Bound<'_, PyAny>>,
        buffers: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let payload = self.notice_payload(py, &key, data, buffers)?;
        self.send_event(py, Event::Notice { key, payload })
    }

    /// Writes a noticeboard entry and waits until it is applied.
    fn notice_seed(
        &self,
        py: Python<'_>,
        key: String,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let payload = payload_from_py(py, data, buffers)?;
        self.check_size(py, &format!("noticeboard key {key:?}"), payload.len())?;
        match self.request(py, Request::NoticeSeed { key, payload }, None)? {
            Response::Done => Ok(()),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// Compare-and-set on a noticeboard entry's version (0: absent); `data` None deletes.
    /// Returns whether it applied.
    #[pyo3(signature = (key, expected, data, buffers))]
    fn notice_update(
        &self,
        py: Python<'_>,
        key: String,
        expected: u64,
        data: Option<&Bound<'_, PyAny>>,
        buffers: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let payload = self.notice_payload(py, &key, data, buffers)?;
        match self.request(py, Request::NoticeUpdate { key, expected, payload }, None)? {
            Response::Updated(applied) => Ok(applied),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }
}
