//! Python values ↔ protocol types.

use crate::shared;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use rebeam_core::supervision::SpecError;
use rebeam_proto::{
    Balance, ChildCode, ChildSpec, GroupSlot, Payload, Placement, Restart, Strategy, Target, TreeSpec, ANY_NODE,
};

pub fn target_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Target> {
    if let Ok(name) = obj.cast::<PyString>() {
        return Ok(Target::Name(name.to_str()?.to_owned()));
    }
    if let Ok(id) = obj.extract::<u64>() {
        return Ok(Target::Actor(id));
    }
    if let Ok(id) = obj.getattr("id").and_then(|id| id.extract::<u64>()) {
        // A ProcessID of another node goes by its node-carrying name (rebeam_proto::remote).
        if let Ok(node) = obj.getattr("node").and_then(|n| n.extract::<String>()) {
            return Ok(Target::Name(rebeam_proto::remote::pid_name(id, &node)));
        }
        return Ok(Target::Actor(id));
    }
    Err(PyTypeError::new_err(format!(
        "a target is an actor's name (str) or its ProcessID, not {}",
        obj.get_type().name()?
    )))
}

pub fn payload_from_py(py: Python<'_>, data: &Bound<'_, PyAny>, buffers: &Bound<'_, PyAny>) -> PyResult<Payload> {
    let data = shared::bytes_of(py, data)?;
    let mut out = Vec::new();
    for b in buffers.try_iter()? {
        out.push(shared::bytes_of(py, &b?)?);
    }
    Ok(Payload { data, buffers: out })
}

/// `(data, buffers)` for `pickle.loads`: for a message, the buffers as read-only views of the
/// bytes received, so an unpickled array is a view of them, not a copy; for state, writable
/// copies (see shared.rs).
pub fn payload_to_py<'py>(
    py: Python<'py>,
    p: Payload,
    used: shared::Use,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let data = shared::to_python(py, p.data, false, used)?;
    let buffers = p.buffers.into_iter().map(|b| shared::to_python(py, b, true, used)).collect::<PyResult<Vec<_>>>()?;
    Ok((data, PyList::new(py, buffers)?.into_any()))
}

fn get<'py>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    d.get_item(key)?.ok_or_else(|| PyValueError::new_err(format!("child spec lacks {key:?}")))
}

pub fn child_from_py(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<ChildSpec> {
    let kind: String = get(d, "kind")?.extract()?;
    let code = match kind.as_str() {
        "actor" => ChildCode::Actor {
            class_name: get(d, "class_name")?.extract()?,
            instance: payload_from_py(py, &get(d, "data")?, &get(d, "buffers")?)?,
        },
        "task" => ChildCode::Task { function: payload_from_py(py, &get(d, "data")?, &get(d, "buffers")?)? },
        "script" => ChildCode::Script { path: get(d, "path")?.extract()? },
        "tree" => ChildCode::Tree(tree_from_py(py, get(d, "tree")?.cast::<PyDict>()?)?),
        "adopt" => ChildCode::Adopt { tree: get(d, "tree_id")?.extract()? },
        other => return Err(PyValueError::new_err(format!("unknown child kind {other:?}"))),
    };
    Ok(ChildSpec {
        name: get(d, "name")?.extract()?,
        label: get(d, "label")?.extract()?,
        restart: parse_restart(&get(d, "restart")?.extract::<String>()?)?,
        shutdown_ms: get(d, "shutdown_ms")?.extract()?,
        code,
        group: match d.get_item("group")? {
            Some(g) if !g.is_none() => Some(group_from_py(g.cast::<PyDict>()?)?),
            _ => None,
        },
        node: match d.get_item("node")? {
            Some(n) if !n.is_none() => placement_from_py(&n)?,
            _ => Placement::Here,
        },
    })
}

/// A child's `node=`: a node's name, a list of them (tried in order), or `"*"` for any node.
fn placement_from_py(value: &Bound<'_, PyAny>) -> PyResult<Placement> {
    let names: Vec<String> = match value.extract::<String>() {
        Ok(any) if any == ANY_NODE => return Ok(Placement::Any),
        Ok(one) => vec![one],
        Err(_) => value.extract().map_err(|_| {
            PyValueError::new_err(format!(
                "node={value} must be a node's name, a list of names, or {ANY_NODE:?} for any node"
            ))
        })?,
    };
    if names.is_empty() {
        return Err(PyValueError::new_err(format!("node=[] names no node: give one, or {ANY_NODE:?} for any")));
    }
    Ok(Placement::Nodes(names))
}

/// A group member's slot: `{"name", "position", "size", "balance"}`.
fn group_from_py(d: &Bound<'_, PyDict>) -> PyResult<GroupSlot> {
    Ok(GroupSlot {
        name: get(d, "name")?.extract()?,
        position: get(d, "position")?.extract()?,
        size: get(d, "size")?.extract()?,
        balance: parse_balance(&get(d, "balance")?.extract::<String>()?)?,
    })
}

pub fn tree_from_py(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<TreeSpec> {
    let children = get(d, "children")?;
    let mut specs = Vec::new();
    for c in children.try_iter()? {
        specs.push(child_from_py(py, c?.cast::<PyDict>()?)?);
    }
    Ok(TreeSpec {
        name: get(d, "name")?.extract()?,
        strategy: parse_strategy(&get(d, "strategy")?.extract::<String>()?)?,
        max_restarts: get(d, "max_restarts")?.extract()?,
        max_seconds_ms: get(d, "max_seconds_ms")?.extract()?,
        children: specs,
    })
}

/// A strategy as Python spells it (`rebeam.ONE_FOR_ONE`, ...), parsed into rebeam-core's enum;
/// the ValueError names the bad value and the valid ones.
fn parse_strategy(value: &str) -> PyResult<Strategy> {
    value.parse().map_err(spelling_error)
}

/// A restart kind as Python spells it (`rebeam.PERMANENT`, ...), parsed into rebeam-core's enum.
fn parse_restart(value: &str) -> PyResult<Restart> {
    value.parse().map_err(spelling_error)
}

/// A group's balance as Python spells it (`"round_robin"`, `"least_busy"`).
fn parse_balance(value: &str) -> PyResult<Balance> {
    value.parse().map_err(spelling_error)
}

/// "strategy must be one of one_for_one, one_for_all, rest_for_one, not 'x'": Python's repr
/// of the bad value, as the rest of the API's ValueErrors show it.
fn spelling_error(e: SpecError) -> PyErr {
    let value = e.value.replace('\\', "\\\\").replace('\'', "\\'");
    PyValueError::new_err(format!("{} must be one of {}, not '{value}'", e.what, e.valid.join(", ")))
}

/// `_rebeam.check_strategy`: the Python API checks a strategy where the user wrote it (a
/// `Supervisor` a worker builds is only a description, and never reaches `tree_from_py`).
#[pyfunction]
pub fn check_strategy(value: &str) -> PyResult<&'static str> {
    parse_strategy(value).map(Strategy::as_str)
}

/// `_rebeam.check_balance`: as [`check_strategy`], for `Group(balance=...)`.
#[pyfunction]
pub fn check_balance(value: &str) -> PyResult<&'static str> {
    parse_balance(value).map(Balance::as_str)
}

/// `_rebeam.check_restart`: as [`check_strategy`], for `child(restart=...)`.
#[pyfunction]
pub fn check_restart(value: &str) -> PyResult<&'static str> {
    parse_restart(value).map(Restart::as_str)
}
