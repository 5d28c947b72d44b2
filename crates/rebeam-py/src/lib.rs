//! `rebeam._rebeam`: the private native half of the rebeam Python package.
//!
//! The connection to the governor (handshake, request matching, the reader thread, the command
//! queue) is `rebeam-client`'s; this module is the PyO3 layer over it. Every blocking wait
//! releases the GIL, so a handler blocked in `call()` does not stall its neighbours, and on the
//! main thread a wait is cut in slices so that signal handlers run in between.
//! The public API is the plain-Python package around it; see `_rebeam.pyi` for this surface.
//!
//! `Connection`'s Python methods are grouped by concern, one `#[pymethods]` block per module
//! (PyO3's `multiple-pymethods`): `requests` (calls, casts, names, monitors), `worker_side`
//! (commands in, replies out), `bus` (safety state, topics), `boc_methods` (cowns, behaviours,
//! the noticeboard) and `views` (nodes, counters, shared memory). This file keeps the type,
//! its waiting helpers and the module's registration.

mod boc_methods;
mod bus;
mod casts;
mod commands;
mod constants;
mod convert;
mod errors;
mod exits;
mod flusher;
mod inflight;
mod numbers;
mod plain;
mod requests;
mod shared;
mod value;
mod views;
mod worker_side;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use rebeam_client::{Client, ClientError, Tag};
use rebeam_proto::{encode, ActorId, ErrorInfo, ErrorKind, Event, Frame, Payload, Request, Response, Role};

use convert::{payload_from_py, target_from_py};
use errors::to_pyerr;
use flusher::Flusher;
use inflight::{Inflight, Started};

/// The connection of this process to its governor.
#[pyclass(frozen, module = "rebeam._rebeam")]
struct Connection {
    client: Arc<Client>,
    #[pyo3(get)]
    index: u32,
    #[pyo3(get)]
    max_message_bytes: u64,
    /// The run's worker count.
    #[pyo3(get)]
    workers: u32,
    /// Calls and casts started without a waiting thread (`call_start`, `cast_start`).
    inflight: Inflight,
    /// Sends held frames once the burst that held them is over (`flusher.rs`).
    flusher: Flusher,
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
/// Asked once per thread and process: every call asks it, and its two system calls cost more
/// than the rest of a small call's bookkeeping. A fork starts a new generation (the forking
/// thread is the child's main thread, whatever it was in the parent), so the child asks again.
fn on_main_thread() -> bool {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    static FORKS: AtomicU64 = AtomicU64::new(0);
    static WATCH_FORKS: std::sync::Once = std::sync::Once::new();
    extern "C" fn forked() {
        FORKS.fetch_add(1, Ordering::Relaxed);
    }
    thread_local! {
        /// The answer, and the generation it was given in.
        static ASKED: Cell<Option<(u64, bool)>> = const { Cell::new(None) };
    }
    // SAFETY: `forked` only bumps an atomic, which is async-signal-safe, as a fork handler
    // must be.
    WATCH_FORKS.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(forked));
    });
    let generation = FORKS.load(Ordering::Relaxed);
    ASKED.with(|asked| match asked.get() {
        Some((g, main)) if g == generation => main,
        _ => {
            // SAFETY: both calls only read the calling thread's and process's ids.
            let main = unsafe { libc::gettid() == libc::getpid() };
            asked.set(Some((generation, main)));
            main
        }
    })
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
        // Words made only for a bad timeout: a good one is checked with no allocation.
        let wait = numbers::timeout(format_args!("call({target}, {subject:?})"), timeout)?;
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
            client: Arc::new(client),
            index: welcome.index,
            max_message_bytes: welcome.max_message_bytes,
            workers: welcome.workers,
            inflight: Inflight::default(),
            flusher: Flusher::default(),
        })
    }

    /// Tells the governor this process can take work.
    fn ready(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.client.send(&Frame::Ready)).map_err(|e| client_err(py, e))
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
    plain::add(m)?;
    Ok(())
}
