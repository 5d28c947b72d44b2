//! A burst of commands as a worker takes it (`Connection.next_commands`): each run of casts
//! for one actor becomes one [`Casts`], its items already in the form the actor's mailbox
//! holds, so that Python moves a run into a mailbox (or runs it) without one object and five
//! attribute lookups per cast. Every other command is [`command_to_py`]'s.
//!
//! The rules:
//! - **Runs.** A run is consecutive casts (deliveries with no delivery id) to one actor; it
//!   ends at anything else, so the commands keep their arrival order.
//! - **An item** is `("msg", None, subject, sender, data, buffers)`, as `Deliver` would give
//!   it. Consecutive casts with the same subject, or from the same sender, share one Python
//!   object for it (a burst from one sender builds its subject and sender once); a cast with
//!   no out-of-band buffers has the empty tuple as `buffers` (nothing to allocate).

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use pyo3::{intern, IntoPyObjectExt};
use rebeam_proto::{ActorId, ActorRef, Command, Payload};

use crate::commands::command_to_py;
use crate::shared::{self, Use};

/// Consecutive casts to one actor; `items` are its mailbox's items (see the module doc).
#[pyclass(frozen, get_all, module = "rebeam._rebeam")]
pub struct Casts {
    actor: ActorId,
    items: Py<PyList>,
}

/// The last subject and sender converted, kept for the next cast of the burst.
#[derive(Default)]
struct Shared {
    subject: Option<(String, Py<PyAny>)>,
    sender: Option<(Option<ActorRef>, Py<PyAny>)>,
}

impl Shared {
    fn subject(&mut self, py: Python<'_>, subject: String) -> Py<PyAny> {
        match &self.subject {
            Some((last, obj)) if *last == subject => obj.clone_ref(py),
            _ => {
                let obj = PyString::new(py, &subject).into_any().unbind();
                self.subject = Some((subject, obj.clone_ref(py)));
                obj
            }
        }
    }

    fn sender(&mut self, py: Python<'_>, sender: Option<ActorRef>) -> PyResult<Py<PyAny>> {
        if let Some((last, obj)) = &self.sender {
            if *last == sender {
                return Ok(obj.clone_ref(py));
            }
        }
        let obj = sender.as_ref().map(|r| (r.id, r.name.clone())).into_py_any(py)?;
        self.sender = Some((sender, obj.clone_ref(py)));
        Ok(obj)
    }
}

fn item<'py>(
    py: Python<'py>,
    shared_parts: &mut Shared,
    subject: String,
    sender: Option<ActorRef>,
    payload: Payload,
) -> PyResult<Bound<'py, PyAny>> {
    let data = shared::to_python(py, payload.data, false, Use::Message)?;
    let buffers = if payload.buffers.is_empty() {
        PyTuple::empty(py).into_any()
    } else {
        let views = payload.buffers.into_iter().map(|b| shared::to_python(py, b, true, Use::Message));
        PyList::new(py, views.collect::<PyResult<Vec<_>>>()?)?.into_any()
    };
    let parts = [
        intern!(py, "msg").clone().into_any(),
        py.None().into_bound(py),
        shared_parts.subject(py, subject).into_bound(py),
        shared_parts.sender(py, sender)?.into_bound(py),
        data,
        buffers,
    ];
    Ok(PyTuple::new(py, parts)?.into_any())
}

/// A batch of commands for Python: runs of casts to one actor as [`Casts`], the rest one
/// object each (`Safety` and channel commands, which Python never sees, are left out).
pub fn batch_to_py<'py>(py: Python<'py>, batch: Vec<Command>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let mut out = Vec::new();
    let mut run: Option<(ActorId, Vec<Bound<'py, PyAny>>)> = None;
    let mut parts = Shared::default();
    let flush = |run: &mut Option<(ActorId, Vec<Bound<'py, PyAny>>)>, out: &mut Vec<Bound<'py, PyAny>>| {
        if let Some((actor, items)) = run.take() {
            let items = PyList::new(py, items)?.unbind();
            out.push(Bound::new(py, Casts { actor, items })?.into_any());
        }
        PyResult::Ok(())
    };
    for cmd in batch {
        match cmd {
            Command::Deliver { delivery: None, actor, subject, sender, payload } => {
                if run.as_ref().is_some_and(|(a, _)| *a != actor) {
                    flush(&mut run, &mut out)?;
                }
                let it = item(py, &mut parts, subject, sender, payload)?;
                run.get_or_insert_with(|| (actor, Vec::new())).1.push(it);
            }
            other => {
                flush(&mut run, &mut out)?;
                out.extend(command_to_py(py, other)?);
            }
        }
    }
    flush(&mut run, &mut out)?;
    Ok(out)
}
