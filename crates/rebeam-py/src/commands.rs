//! The governor's commands as Python sees them: one frozen class per `Command` variant,
//! built by [`command_to_py`] (the only decoder) and dispatched by the one table in
//! `python/rebeam/_dispatch.py`. Payloads arrive as `(bytes, list[bytearray])` pairs, ready
//! for `rebeam._runtime.loads`; ids are plain ints; actor references are `(id, name)` pairs.
//!
//! `Command::Safety` never reaches Python: the reader thread keeps the state itself (see
//! `Connection.safety_state`), so [`command_to_py`] answers None for it, as for no command.
//! A lost connection arrives as `Shutdown(code=-1)` (rebeam-client makes it).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use rebeam_proto::{ActorId, ActorRef, ChildCode, Command, ErrorInfo, Exit};

use crate::convert::payload_to_py;
use crate::errors::kind_name;
use crate::shared::Use;

type Ref = (ActorId, Option<String>);

/// A message for an actor of this worker; `delivery` is None for a cast.
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct Deliver {
    delivery: Option<u64>,
    actor: ActorId,
    subject: String,
    sender: Option<Ref>,
    data: Py<PyAny>,
    buffers: Py<PyAny>,
}

/// Start an actor, task or script child here. `kind` is "actor", "task" or "script"; for a
/// script, `data` is its path.
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct Start {
    actor: ActorId,
    name: Option<String>,
    label: String,
    kind: &'static str,
    data: Py<PyAny>,
    buffers: Py<PyAny>,
    class_name: String,
}

/// Stop one actor or task politely.
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct Stop {
    actor: ActorId,
}

/// Warm the imports every start needs.
#[pyclass(frozen, module = "rebeam._rebeam")]
pub struct Preload;

/// A monitored actor ended. `reason` is `(kind, detail)`: ("normal", None), ("shutdown",
/// None), ("crashed", ErrorInfo tuple) or ("killed", why).
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct Down {
    monitor: u64,
    watcher: Option<ActorId>,
    /// Id, name, and node (None for this node's own), as a ProcessID takes them.
    actor: (ActorId, Option<String>, Option<String>),
    reason: Py<PyAny>,
}

/// The run ends; `code` is -1 when the connection to the governor was lost.
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct Shutdown {
    code: i32,
}

/// Send this cown's value to the governor: a behaviour elsewhere needs it.
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct Surrender {
    cown: u64,
}

/// Run a behaviour here. `values` holds `(cown, data, buffers)` for the cowns moved in;
/// `refused` is the exception to raise in it instead, if the governor refused it.
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct RunBehaviour {
    behaviour: u64,
    cowns: Vec<u64>,
    result: u64,
    values: Py<PyAny>,
    lost: Vec<u64>,
    code: Py<PyAny>,
    code_buffers: Py<PyAny>,
    refused: Py<PyAny>,
    /// A disarm may cancel it: only then does the process keep it for a cancel to find.
    gated: bool,
}

#[pymethods]
impl RunBehaviour {
    /// The arguments of `rebeam.boc._cowns.run_behaviour` after the connection, in order.
    #[getter]
    fn job<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        (
            self.behaviour,
            self.cowns.clone(),
            self.result,
            self.values.clone_ref(py),
            self.lost.clone(),
            self.code.clone_ref(py),
            self.code_buffers.clone_ref(py),
            self.refused.clone_ref(py),
            self.gated,
        )
            .into_pyobject(py)
    }
}

/// Let these cowns' values go: nothing can reach them any more.
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct ForgetCowns {
    cowns: Vec<u64>,
}

/// A disarm cancelled this gated behaviour.
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct CancelBehaviour {
    behaviour: u64,
}

/// A disarm cancelled this gated delivery to `actor`.
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct Cancel {
    actor: ActorId,
    delivery: u64,
}

/// The main process's import path, to put in front of this worker's.
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct SysPath {
    paths: Vec<String>,
}

/// A behaviour's code, to keep under `id` (the behaviours that name it follow).
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct DefineCode {
    id: u64,
    data: Py<PyAny>,
    buffers: Py<PyAny>,
}

/// A publication for subscription `subscription` (of `actor`, or of the main process when
/// None); `dropped` counts those its full queue dropped so far.
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct Publication {
    subscription: u64,
    actor: Option<ActorId>,
    topic: String,
    data: Py<PyAny>,
    buffers: Py<PyAny>,
    dropped: u64,
}

pub fn add_classes(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Deliver>()?;
    m.add_class::<Start>()?;
    m.add_class::<Stop>()?;
    m.add_class::<Preload>()?;
    m.add_class::<Down>()?;
    m.add_class::<Shutdown>()?;
    m.add_class::<Surrender>()?;
    m.add_class::<RunBehaviour>()?;
    m.add_class::<CancelBehaviour>()?;
    m.add_class::<ForgetCowns>()?;
    m.add_class::<Cancel>()?;
    m.add_class::<SysPath>()?;
    m.add_class::<DefineCode>()?;
    m.add_class::<Publication>()?;
    m.add_class::<crate::casts::Casts>()?;
    Ok(())
}

fn actor_ref(r: ActorRef) -> Ref {
    (r.id, r.name)
}

fn info_to_py<'py>(py: Python<'py>, i: ErrorInfo) -> PyResult<Bound<'py, PyAny>> {
    Ok((kind_name(i.kind), i.message, i.exc_type, i.traceback).into_pyobject(py)?.into_any())
}

fn exit_to_py<'py>(py: Python<'py>, exit: Exit) -> PyResult<Bound<'py, PyAny>> {
    let none = py.None().into_bound(py);
    let (kind, detail) = match exit {
        Exit::Normal => ("normal", none),
        Exit::Shutdown => ("shutdown", none),
        Exit::Crashed(info) => ("crashed", info_to_py(py, info)?),
        Exit::Killed(why) => ("killed", why.into_pyobject(py)?.into_any()),
    };
    Ok((kind, detail).into_pyobject(py)?.into_any())
}

/// The one decoder of commands for Python: None for `Safety` (see the module doc).
pub fn command_to_py(py: Python<'_>, cmd: Command) -> PyResult<Option<Bound<'_, PyAny>>> {
    fn new<T: pyo3::PyClass + Into<pyo3::PyClassInitializer<T>>>(py: Python<'_>, v: T) -> PyResult<Bound<'_, PyAny>> {
        Ok(Bound::new(py, v)?.into_any())
    }
    let obj = match cmd {
        Command::Deliver { delivery, actor, subject, sender, payload } => {
            let (data, buffers) = payload_to_py(py, payload, Use::Message)?;
            let sender = sender.map(actor_ref);
            new(py, Deliver { delivery, actor, subject, sender, data: data.unbind(), buffers: buffers.unbind() })?
        }
        Command::Start { actor, name, label, code } => {
            let (kind, data, buffers, class_name) = match code {
                ChildCode::Actor { class_name, instance } => {
                    let (d, b) = payload_to_py(py, instance, Use::State)?;
                    ("actor", d, b, class_name)
                }
                ChildCode::Task { function } => {
                    let (d, b) = payload_to_py(py, function, Use::State)?;
                    ("task", d, b, String::new())
                }
                ChildCode::Script { path } => {
                    ("script", path.into_pyobject(py)?.into_any(), PyList::empty(py).into_any(), String::new())
                }
                ChildCode::Tree(_) | ChildCode::Adopt { .. } => {
                    return Err(PyValueError::new_err("the governor asked a worker to start a tree"))
                }
            };
            new(py, Start { actor, name, label, kind, data: data.unbind(), buffers: buffers.unbind(), class_name })?
        }
        Command::Stop { actor } => new(py, Stop { actor })?,
        Command::Preload => new(py, Preload)?,
        Command::Down { monitor, watcher, actor, node, reason } => {
            let actor = (actor.id, actor.name, node);
            new(py, Down { monitor, watcher, actor, reason: exit_to_py(py, reason)?.unbind() })?
        }
        Command::Shutdown { code } => new(py, Shutdown { code })?,
        Command::Safety { .. } => return Ok(None),
        // The reader keeps the channel's end (`Client::take_channel`); Python has no part in it.
        Command::ChannelOpened(_) | Command::ChannelClosed { .. } => return Ok(None),
        Command::Surrender { cown } => new(py, Surrender { cown })?,
        Command::RunBehaviour { behaviour, cowns, result, values, lost, code, refused, gated } => {
            let mut moved = Vec::new();
            for (cown, payload) in values {
                let (data, buffers) = payload_to_py(py, payload, Use::State)?;
                moved.push((cown, data, buffers).into_pyobject(py)?.into_any());
            }
            let (code, code_buffers) = payload_to_py(py, code, Use::State)?;
            let refused = match refused {
                Some(info) => crate::errors::to_exception(py, info),
                None => py.None().into_bound(py),
            };
            new(
                py,
                RunBehaviour {
                    behaviour,
                    cowns,
                    result,
                    values: PyList::new(py, moved)?.into_any().unbind(),
                    lost,
                    code: code.unbind(),
                    code_buffers: code_buffers.unbind(),
                    refused: refused.unbind(),
                    gated,
                },
            )?
        }
        Command::CancelBehaviour { behaviour } => new(py, CancelBehaviour { behaviour })?,
        Command::ForgetCowns { cowns } => new(py, ForgetCowns { cowns })?,
        Command::Cancel { actor, delivery } => new(py, Cancel { actor, delivery })?,
        Command::SysPath { paths } => new(py, SysPath { paths })?,
        Command::DefineCode { id, code } => {
            let (data, buffers) = payload_to_py(py, code, Use::State)?;
            new(py, DefineCode { id, data: data.unbind(), buffers: buffers.unbind() })?
        }
        Command::Publication { subscription, actor, topic, payload, dropped } => {
            let (data, buffers) = payload_to_py(py, payload, Use::Message)?;
            new(
                py,
                Publication { subscription, actor, topic, data: data.unbind(), buffers: buffers.unbind(), dropped },
            )?
        }
    };
    Ok(Some(obj))
}
