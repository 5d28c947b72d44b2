//! `rebeam._rebeam`: the private native half of the rebeam Python package.
//!
//! The connection to the governor (handshake, request matching, the reader thread, the command
//! queue) is `rebeam-client`'s; this module is the PyO3 layer over it. Every blocking wait
//! releases the GIL, so a handler blocked in `call()` does not stall its neighbours, and on the
//! main thread a wait is cut in slices so that signal handlers run in between.
//! The public API is the plain-Python package around it; see `_rebeam.pyi` for this surface.

mod commands;
mod constants;
mod convert;
mod errors;
mod exits;
mod inflight;
mod numbers;
mod shared;
mod value;

use std::path::Path;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rebeam_client::{Client, ClientError, Tag};
use rebeam_proto::{
    encode, ActorId, ErrorInfo, ErrorKind, Event, Frame, Gating, Outcome, Payload, Request, Response, Role, Safety,
    Status,
};

use commands::command_to_py;
use convert::{child_from_py, payload_from_py, target_from_py, tree_from_py};
use errors::{info_from_py, to_pyerr};
use inflight::{call_timeout, completion_to_py, outcome_to_py, unexpected, Inflight, Started};

/// The connection of this process to its governor.
#[pyclass(frozen, module = "rebeam._rebeam")]
struct Connection {
    client: Client,
    #[pyo3(get)]
    index: u32,
    #[pyo3(get)]
    max_message_bytes: u64,
    /// The run's worker count.
    #[pyo3(get)]
    workers: u32,
    /// Calls and casts started without a waiting thread (`call_start`, `cast_start`).
    inflight: Inflight,
}

/// How long a wait on the main thread blocks before it looks for signals: Ctrl-C must raise
/// `KeyboardInterrupt` in a blocked `call()` at once, not when the reply comes.
const SIGNAL_SLICE: Duration = Duration::from_millis(20);

/// The most commands one `next_commands()` hands over: a burst of casts then costs one wake-up
/// and one hold of the GIL per this many, and the list stays small.
const COMMAND_BATCH: usize = 256;

/// How long `shutdown()` waits for the governor to acknowledge: it answers at once, so a
/// longer wait means it is gone or wedged, and the caller exits anyway.
const SHUTDOWN_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request got no response: the governor said no (or is gone), or a signal handler
/// raised while this thread waited (`KeyboardInterrupt`, or rebeam's own stop).
enum Failed {
    Info(ErrorInfo),
    Py(PyErr),
}

impl Failed {
    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            Failed::Info(info) => to_pyerr(py, info),
            Failed::Py(err) => err,
        }
    }
}

fn client_err(py: Python<'_>, e: ClientError) -> PyErr {
    to_pyerr(py, e.into_info())
}

/// Whether this is the process's main thread, the only one Python runs signal handlers on.
fn on_main_thread() -> bool {
    // SAFETY: both calls only read the calling thread's and process's ids.
    unsafe { libc::gettid() == libc::getpid() }
}

impl Connection {
    /// Sends a request and waits (without the GIL) for its response. On the main thread the
    /// wait is cut in slices so that signal handlers run in between, as they do in
    /// `time.sleep`: otherwise Ctrl-C would wait for the reply.
    fn roundtrip(&self, py: Python<'_>, body: Request, timeout: Option<Duration>) -> Result<Response, Failed> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let slice = on_main_thread().then_some(SIGNAL_SLICE);
        let pending = py.detach(|| self.client.start_request(body)).map_err(|e| Failed::Info(e.into_info()))?;
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let wait = match (left, slice) {
                (Some(l), Some(s)) => Some(l.min(s)),
                (l, s) => l.or(s),
            };
            match py.detach(|| pending.wait(wait)) {
                Ok(response) => return Ok(response),
                Err(ClientError::Timeout) if left.is_some_and(|l| Some(l) == wait) => {
                    return Err(Failed::Info(ErrorInfo::new(ErrorKind::Timeout, "")));
                }
                Err(ClientError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        return Err(Failed::Py(e));
                    }
                }
                Err(e) => return Err(Failed::Info(e.into_info())),
            }
        }
    }

    /// A call's request, checked: also how long to wait for it, and its target as shown.
    #[allow(clippy::too_many_arguments)] // mirrors the Python call; a struct would only rename it
    fn call_request(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        subject: String,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
        sender: Option<ActorId>,
        timeout: f64,
    ) -> PyResult<(Request, Duration, String)> {
        let target = target_from_py(target)?;
        let wait = numbers::timeout(&format!("call({target}, {subject:?})"), timeout)?;
        let timeout_ms = numbers::timeout_ms("call()", timeout)?;
        let payload = payload_from_py(py, data, buffers)?;
        self.check_size(py, &target, payload.len())?;
        let shown = target.to_string();
        Ok((Request::Call { target, subject, sender, payload, timeout_ms }, wait, shown))
    }

    /// A cast's request, checked.
    fn cast_request(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        subject: String,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
        sender: Option<ActorId>,
    ) -> PyResult<Request> {
        let target = target_from_py(target)?;
        let payload = payload_from_py(py, data, buffers)?;
        self.check_size(py, &target, payload.len())?;
        Ok(Request::Cast { target, subject, sender, payload })
    }

    /// Sends `body` with a completion (see `inflight`), recorded as `started`.
    fn start(&self, py: Python<'_>, body: Request, started: Started, wait: Option<Duration>) -> PyResult<Tag> {
        py.detach(|| {
            let deadline = wait.and_then(|w| Instant::now().checked_add(w));
            self.inflight.start(started, || self.client.start_completion(body, deadline))
        })
        .map_err(|e| client_err(py, e))
    }

    fn request(&self, py: Python<'_>, body: Request, timeout: Option<Duration>) -> PyResult<Response> {
        self.roundtrip(py, body, timeout).map_err(|f| f.into_pyerr(py))
    }

    /// A noticeboard value (None: delete), within the size limit.
    fn notice_payload(
        &self,
        py: Python<'_>,
        key: &str,
        data: Option<&Bound<'_, PyAny>>,
        buffers: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Payload>> {
        let payload = data.map(|d| payload_from_py(py, d, buffers)).transpose()?;
        if let Some(p) = &payload {
            self.check_size(py, &format!("noticeboard key {key:?}"), p.len())?;
        }
        Ok(payload)
    }

    fn send_quiet(&self, py: Python<'_>, body: Request) -> PyResult<()> {
        py.detach(|| self.client.send_quiet(body)).map_err(|e| client_err(py, e))
    }

    fn send_event(&self, py: Python<'_>, event: Event) -> PyResult<()> {
        py.detach(|| self.client.send_event(event)).map_err(|e| client_err(py, e))
    }

    /// Refuses a payload over the limit; `what` names its destination in the message.
    fn check_size(&self, py: Python<'_>, what: &dyn std::fmt::Display, len: u64) -> PyResult<()> {
        if len > self.max_message_bytes {
            let info = ErrorInfo::new(
                ErrorKind::TooLarge,
                format!(
                    "a message of {len} bytes for {what} exceeds the limit of {} bytes; send less, or raise it with `rebeam --max-message-bytes`",
                    self.max_message_bytes
                ),
            );
            return Err(to_pyerr(py, info));
        }
        Ok(())
    }
}

#[pymethods]
impl Connection {
    /// Connects to the governor at `socket` and introduces this process with its token.
    #[staticmethod]
    fn connect(py: Python<'_>, socket: &str, token: &str, role: &str) -> PyResult<Self> {
        let role = match role {
            "main" => Role::Main,
            "worker" => Role::Worker,
            other => return Err(pyo3::exceptions::PyValueError::new_err(format!("unknown role {other:?}"))),
        };
        let client = py.detach(|| Client::connect(Path::new(socket), token, role)).map_err(|e| client_err(py, e))?;
        let welcome = client.welcome();
        Ok(Connection {
            client,
            index: welcome.index,
            max_message_bytes: welcome.max_message_bytes,
            workers: welcome.workers,
            inflight: Inflight::default(),
        })
    }

    /// Tells the governor this process can take work.
    fn ready(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.client.send(&Frame::Ready)).map_err(|e| client_err(py, e))
    }

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
        match self.request(py, Request::Spawn { child }, None)? {
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
    /// The actor named `name`: its id, name and node (None for this node's own).
    #[allow(clippy::type_complexity)]
    fn whereis(&self, py: Python<'_>, name: String) -> PyResult<Option<(ActorId, Option<String>, Option<String>)>> {
        match self.request(py, Request::Whereis { name }, None)? {
            Response::Whereis(found) => Ok(found.map(|r| (r.id, r.name, None))),
            Response::WhereisAt { actor, node } => Ok(Some((actor.id, actor.name, Some(node)))),
            Response::Group(members) => Ok(members.into_iter().flatten().next().map(|r| (r.id, r.name, None))),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
    }

    /// The members of group `name` by position (`None` where one is restarting); `None` if
    /// `name` is not a group's (an actor's, or nobody's).
    fn members(&self, py: Python<'_>, name: String) -> PyResult<Option<Vec<Option<ActorId>>>> {
        match self.request(py, Request::Whereis { name }, None)? {
            Response::Whereis(_) | Response::WhereisAt { .. } => Ok(None),
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

    /// The next command for this process, or None after `timeout` seconds (None waits forever).
    #[pyo3(signature = (timeout=None))]
    fn next_command<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let timeout = timeout.map(|t| numbers::timeout("next_command()", t)).transpose()?;
        match py.detach(|| self.client.next_command(timeout)) {
            Some(cmd) => command_to_py(py, cmd),
            None => Ok(None),
        }
    }

    /// A direct call's delivery reached its live actor's mailbox (see `Client::took`).
    fn took(&self, delivery: u64) {
        self.client.took(delivery);
    }

    /// From now on each delivery counts against the process's bound until `handled` reports
    /// it (see `Client::count_handled`).
    fn count_handled(&self) {
        self.client.count_handled();
    }

    /// This worker is done with `n` deliveries: handled, refused, or dropped with their actor.
    #[pyo3(signature = (n=1))]
    fn handled(&self, n: usize) {
        self.client.handled(n);
    }

    /// Deliveries waiting in this process now, as the bound counts them.
    fn backlog(&self) -> usize {
        self.client.backlog()
    }

    /// Gives up the command role to run what this thread took (see `Client::step_aside`).
    fn step_aside(&self) {
        self.client.step_aside();
    }

    /// Takes the command role back; False if a standby claimed it meanwhile.
    fn resume(&self) -> bool {
        self.client.resume()
    }

    /// Waits (without the GIL) until this thread claims the free command role for a command
    /// that arrived; False after `timeout` seconds (None waits forever).
    #[pyo3(signature = (timeout=None))]
    fn standby(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout = timeout.map(|t| numbers::timeout("standby()", t)).transpose()?;
        Ok(py.detach(|| self.client.standby(timeout)))
    }

    /// The next commands, as a list (empty after `timeout` seconds): the first as
    /// `next_command` gives it, then the casts queued right behind it, converted under one hold
    /// of the GIL.
    #[pyo3(signature = (timeout=None))]
    fn next_commands<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let timeout = timeout.map(|t| numbers::timeout("next_commands()", t)).transpose()?;
        let batch = py.detach(|| self.client.next_commands(timeout, COMMAND_BATCH));
        let mut commands = Vec::with_capacity(batch.len());
        for cmd in batch {
            commands.extend(command_to_py(py, cmd)?);
        }
        Ok(commands)
    }

    /// Answers a delivered call with a handler's result.
    fn reply(
        &self,
        py: Python<'_>,
        delivery: u64,
        ok: bool,
        data: &Bound<'_, PyAny>,
        buffers: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let payload = payload_from_py(py, data, buffers)?;
        let status = if ok { Status::Ok } else { Status::Error };
        self.send_event(py, Event::Replied { delivery, outcome: Outcome::Reply { status, payload } })
    }

    /// Answers a delivered call with a failure: `info` is `(kind, message, exc_type, traceback)`.
    fn reply_failure(&self, py: Python<'_>, delivery: u64, info: &Bound<'_, PyAny>) -> PyResult<()> {
        let info = info_from_py(info)?;
        self.send_event(py, Event::Replied { delivery, outcome: Outcome::Failed(info) })
    }

    /// Reports that an actor started (`error` None) or failed to start. `gating` is
    /// `(handled subjects, gated subjects, catch-all gated)`.
    #[pyo3(signature = (actor, error=None, gating=None))]
    fn started(
        &self,
        py: Python<'_>,
        actor: ActorId,
        error: Option<&Bound<'_, PyAny>>,
        gating: Option<(Vec<String>, Vec<String>, bool)>,
    ) -> PyResult<()> {
        let result = match error {
            None => {
                let (handled, subjects, catch_all) = gating.unwrap_or_default();
                Ok(Gating { handled, subjects, catch_all })
            }
            Some(info) => Err(info_from_py(info)?),
        };
        self.send_event(py, Event::Started { actor, result })
    }

    /// Reports that an actor ended, as an `_rebeam.Exit`, and the highest governor delivery
    /// id this process had taken in when it died (`None`: it cannot say, so every delivery to
    /// the actor ends with it; see the governor's `calls` rules).
    #[pyo3(signature = (actor, exit, taken_up_to=None))]
    fn exited(
        &self,
        py: Python<'_>,
        actor: ActorId,
        exit: &Bound<'_, exits::PyExit>,
        taken_up_to: Option<u64>,
    ) -> PyResult<()> {
        let taken_up_to = taken_up_to.unwrap_or(u64::MAX);
        self.send_event(py, Event::Exited { actor, reason: exit.get().exit(), taken_up_to })
    }

    /// The main process finished the script body (`error` if it raised, `exit` if it called
    /// `sys.exit(exit)`).
    #[pyo3(signature = (error=None, exit=None))]
    fn body_done(&self, py: Python<'_>, error: Option<&Bound<'_, PyAny>>, exit: Option<i32>) -> PyResult<()> {
        let error = error.map(info_from_py).transpose()?;
        self.send_event(py, Event::BodyDone { error, exit })
    }

    /// Writes raw bytes on the socket, bypassing the codec. For tests of the governor's
    /// handling of malformed frames; never needed by programs.
    fn _send_raw(&self, py: Python<'_>, bytes: Vec<u8>) -> PyResult<()> {
        py.detach(|| self.client.send_raw(&bytes))
            .map_err(|e| to_pyerr(py, ErrorInfo::new(ErrorKind::ShuttingDown, e.to_string())))
    }

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

    /// Announces a cown whose value this process holds.
    fn cown_created(&self, py: Python<'_>, cown: u64, pinned: bool) -> PyResult<()> {
        self.send_event(py, Event::CownCreated { cown, pinned })
    }

    /// The main process dropped its last handles to these cowns (see `rebeam.boc._cowns`).
    fn drop_cowns(&self, py: Python<'_>, cowns: Vec<u64>) -> PyResult<()> {
        self.send_event(py, Event::DropCowns { cowns })
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
    /// it hands it to one of them and back (a context switch each way).
    fn behaviour_done(&self, py: Python<'_>, behaviour: u64) -> PyResult<()> {
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
        let body = Request::Schedule { behaviour, cowns, result, code, at_main, gated, quiet: !wait };
        if !wait {
            return self.send_quiet(py, body);
        }
        match self.request(py, body, None)? {
            Response::Done => Ok(()),
            Response::Refused(info) => Err(to_pyerr(py, info)),
            other => Err(to_pyerr(py, unexpected(&other))),
        }
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

/// A control frame as the host would send it ("arm", "disarm", "force-disarm", "status"),
/// encoded. For tests proving that the governor refuses one from a Python process.
#[pyfunction]
fn _control_frame(action: &str) -> PyResult<Vec<u8>> {
    let request = match action {
        "arm" => rebeam_proto::ControlRequest::Arm,
        "disarm" => rebeam_proto::ControlRequest::Disarm,
        "force-disarm" => rebeam_proto::ControlRequest::ForceDisarm,
        "status" => rebeam_proto::ControlRequest::Status,
        other => return Err(pyo3::exceptions::PyValueError::new_err(format!("unknown action {other:?}"))),
    };
    encode(&Frame::Control(request)).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

#[pymodule]
fn _rebeam(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Connection>()?;
    m.add_function(wrap_pyfunction!(_control_frame, m)?)?;
    m.add_class::<errors::Info>()?;
    m.add_class::<exits::PyExit>()?;
    m.add_class::<shared::SharedBytes>()?;
    m.add_class::<shared::SharedBuffer>()?;
    commands::add_classes(m)?;
    constants::add(m)?;
    value::add(m)?;
    Ok(())
}
