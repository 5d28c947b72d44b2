//! Neutral values (`rebeam_proto::value`) ↔ Python objects, for messages from and replies to a
//! Rust host. No pickle is involved on either side.
//!
//! The rules, Python side of the model:
//! - Decoding: none → `None`, bool, int, float, str, bytes, list → `list`, map → `dict`, array →
//!   a writable NumPy array of its dtype and shape (NumPy is imported only when an array comes).
//! - Encoding: `None`, `bool`, `int` (within i64), `float`, `str`, `bytes`/`bytearray`/`memoryview`,
//!   `list`/`tuple`, `dict` with str keys, a dataclass (as the dict of its fields), a NumPy array
//!   (made C-contiguous and little-endian) and a NumPy scalar (as its Python value).
//! - A map whose one key is `HANDLE_KEY` is an opaque handle: decoding gives the object it
//!   stands for (`rebeam.handles.resolve`, which raises if it is not in this worker).
//! - Anything else is a `TypeError` that names where it sat (`$["pose"][2]`) and its type.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use rebeam_proto::value::{decode_value, encode_value, Array, DType, Value, HANDLE_KEY};

use crate::convert::payload_from_py;

/// The value in a tagged payload `(data, buffers)`, as Python objects.
#[pyfunction]
pub fn value_loads<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    buffers: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let payload = payload_from_py(py, data, buffers)?;
    let value =
        decode_value(&payload).map_err(|e| PyValueError::new_err(format!("a message from the Rust host: {e}")))?;
    to_py(py, value)
}

/// `obj` as a tagged payload `(data, buffers)`.
#[pyfunction]
pub fn value_dumps<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyList>)> {
    let value = from_py(py, obj, &At::Root)?;
    let payload = encode_value(&value);
    let buffers = PyList::new(py, payload.buffers.iter().map(|b| PyBytes::new(py, b)))?;
    Ok((PyBytes::new(py, &payload.data), buffers))
}

/// `obj` as a tagged payload if the neutral model carries it *exactly* — so a Python
/// receiver gets back objects of the very same types, as from a pickle — else None.
///
/// Exactly: `None`, `bool`, `int` within i64, `float`, `str`, `bytes`, `list`, `dict` with str
/// keys (not a handle's one key), and C-contiguous NumPy arrays of a dtype the model has in
/// native order, each of exactly that type (no subclasses); nested only of these. A tuple, a
/// dataclass, a NumPy scalar or anything else is None: it travels as a pickle, which a Rust
/// host cannot read.
#[pyfunction]
pub fn value_dumps_exact<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Option<(Bound<'py, PyBytes>, Bound<'py, PyList>)>> {
    let Some(value) = exact(py, obj)? else { return Ok(None) };
    let payload = encode_value(&value);
    let buffers = PyList::new(py, payload.buffers.iter().map(|b| PyBytes::new(py, b)))?;
    Ok(Some((PyBytes::new(py, &payload.data), buffers)))
}

fn exact(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Option<Value>> {
    if obj.is_none() {
        return Ok(Some(Value::None));
    }
    if obj.is_exact_instance_of::<PyBool>() {
        return Ok(Some(Value::Bool(obj.is_truthy()?)));
    }
    if obj.is_exact_instance_of::<PyInt>() {
        return Ok(obj.extract::<i64>().ok().map(Value::Int));
    }
    if obj.is_exact_instance_of::<PyFloat>() {
        return Ok(Some(Value::Float(obj.extract()?)));
    }
    if obj.is_exact_instance_of::<PyString>() {
        // A str with lone surrogates has no UTF-8 form: the pickle carries it.
        return Ok(obj.cast::<PyString>()?.to_str().ok().map(|s| Value::Str(s.to_owned())));
    }
    if obj.is_exact_instance_of::<PyBytes>() {
        return Ok(Some(Value::Bytes(obj.cast::<PyBytes>()?.as_bytes().to_vec().into())));
    }
    if obj.is_exact_instance_of::<PyList>() {
        let mut items = Vec::new();
        for item in obj.try_iter()? {
            let Some(v) = exact(py, &item?)? else { return Ok(None) };
            items.push(v);
        }
        return Ok(Some(Value::List(items)));
    }
    if obj.is_exact_instance_of::<PyDict>() {
        let d = obj.cast::<PyDict>()?;
        let mut items = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            if !k.is_exact_instance_of::<PyString>() {
                return Ok(None);
            }
            let Ok(key) = k.cast::<PyString>()?.to_str() else { return Ok(None) };
            let Some(v) = exact(py, &v)? else { return Ok(None) };
            items.push((key.to_owned(), v));
        }
        if items.len() == 1 && items[0].0 == HANDLE_KEY {
            return Ok(None); // it would decode as a handle, not as this dict
        }
        return Ok(Some(Value::Map(items)));
    }
    let modules = py.import("sys")?.getattr("modules")?;
    let Some(numpy) = modules.cast::<PyDict>()?.get_item("numpy")? else { return Ok(None) };
    if !obj.get_type().is(&numpy.getattr("ndarray")?) || !obj.getattr("flags")?.getattr("c_contiguous")?.is_truthy()? {
        return Ok(None);
    }
    let type_str: String = obj.getattr("dtype")?.getattr("str")?.extract()?;
    let Some(dt) = DType::from_numpy(&type_str).filter(|d| d.numpy() == type_str) else { return Ok(None) };
    let shape: Vec<u64> = obj.getattr("shape")?.extract()?;
    let data: Vec<u8> = obj.call_method0("tobytes")?.cast::<PyBytes>()?.as_bytes().to_vec();
    Ok(Array::new(dt, shape, data.into()).ok().map(Value::Array))
}

fn to_py(py: Python<'_>, value: Value) -> PyResult<Bound<'_, PyAny>> {
    Ok(match value {
        Value::None => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, f).into_any(),
        Value::Str(s) => PyString::new(py, &s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, &b).into_any(),
        Value::List(items) => {
            PyList::new(py, items.into_iter().map(|i| to_py(py, i)).collect::<PyResult<Vec<_>>>()?)?.into_any()
        }
        Value::Map(mut items) if items.len() == 1 && items[0].0 == HANDLE_KEY => {
            // The handle's table is Python's (rebeam.handles): it knows the worker and holder.
            let (_, reference) = items.pop().expect("one item");
            py.import("rebeam.handles")?.call_method1("resolve", (to_py(py, reference)?,))?
        }
        Value::Map(items) => {
            let d = PyDict::new(py);
            for (k, v) in items {
                d.set_item(k, to_py(py, v)?)?;
            }
            d.into_any()
        }
        Value::Array(a) => {
            let numpy = py.import("numpy")?;
            let buf = PyByteArray::new(py, &a.data);
            let flat = numpy.call_method1("frombuffer", (buf, a.dtype.numpy()))?;
            flat.call_method1("reshape", (PyTuple::new(py, a.shape)?,))?
        }
    })
}

/// Where a value sits in what is being sent (`$["pose"][2]`), written out only for an error:
/// a reply is encoded on every call, and most never fail.
enum At<'a> {
    Root,
    Index(&'a At<'a>, usize),
    Key(&'a At<'a>, &'a str),
    MapKey(&'a At<'a>),
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Root => f.write_str("$"),
            At::Index(parent, i) => write!(f, "{parent}[{i}]"),
            At::Key(parent, key) => write!(f, "{parent}[{key:?}]"),
            At::MapKey(parent) => write!(f, "{parent} (a key)"),
        }
    }
}

fn refuse(obj: &Bound<'_, PyAny>, path: &At<'_>, why: &str) -> PyErr {
    let ty = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!("cannot send {ty} at {path} to the Rust host: {why}"))
}

const CROSSES: &str = "only None, bool, int, float, str, bytes, list, tuple, dict with str keys, dataclasses, \
                       NumPy arrays and NumPy scalars cross";

fn from_py(py: Python<'_>, obj: &Bound<'_, PyAny>, path: &At<'_>) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::None);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj.extract::<i64>().map(Value::Int).map_err(|_| refuse(obj, path, "the int does not fit in 64 bits"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(s.to_str()?.to_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec().into()));
    }
    if obj.is_instance_of::<PyByteArray>() || obj.get_type().name()?.to_str()? == "memoryview" {
        let bytes = py.import("builtins")?.getattr("bytes")?.call1((obj,))?;
        return Ok(Value::Bytes(bytes.cast::<PyBytes>()?.as_bytes().to_vec().into()));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            items.push(from_py(py, &item?, &At::Index(path, i))?);
        }
        return Ok(Value::List(items));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut items = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(refuse(&k, &At::MapKey(path), "map keys must be str"));
            };
            let key = key.to_str()?;
            let value = from_py(py, &v, &At::Key(path, key))?;
            items.push((key.to_owned(), value));
        }
        return Ok(Value::Map(items));
    }
    if let Some(value) = numpy_value(py, obj, path)? {
        return Ok(value);
    }
    let dataclasses = py.import("dataclasses")?;
    if dataclasses.call_method1("is_dataclass", (obj,))?.is_truthy()? && !obj.is_instance_of::<pyo3::types::PyType>() {
        let fields = PyDict::new(py);
        for field in dataclasses.call_method1("fields", (obj,))?.try_iter()? {
            let name = field?.getattr("name")?;
            fields.set_item(&name, obj.getattr(name.cast::<PyString>()?)?)?;
        }
        return from_py(py, fields.as_any(), path);
    }
    Err(refuse(obj, path, CROSSES))
}

/// A NumPy array or scalar, if `obj` is one (NumPy is looked up only if already imported:
/// an object of NumPy's cannot exist before that).
fn numpy_value(py: Python<'_>, obj: &Bound<'_, PyAny>, path: &At<'_>) -> PyResult<Option<Value>> {
    let modules = py.import("sys")?.getattr("modules")?;
    let Some(numpy) = modules.cast::<PyDict>()?.get_item("numpy")? else { return Ok(None) };
    if obj.is_instance(&numpy.getattr("generic")?)? {
        return from_py(py, &obj.call_method0("item")?, path).map(Some);
    }
    if !obj.is_instance(&numpy.getattr("ndarray")?)? {
        return Ok(None);
    }
    let dtype = obj.getattr("dtype")?;
    let little = dtype.call_method1("newbyteorder", ("<",))?;
    let contiguous = numpy.call_method1("ascontiguousarray", (obj,))?.call_method1("astype", (&little,))?;
    let type_str: String = little.getattr("str")?.extract()?;
    let Some(dt) = DType::from_numpy(&type_str) else {
        return Err(refuse(obj, path, &format!("arrays of dtype {type_str} do not cross (bool, ints and floats do)")));
    };
    let shape: Vec<u64> = contiguous.getattr("shape")?.extract()?;
    let data: Vec<u8> = contiguous.call_method0("tobytes")?.cast::<PyBytes>()?.as_bytes().to_vec();
    let array = Array::new(dt, shape, data.into()).map_err(|e| refuse(obj, path, &e.0))?;
    Ok(Some(Value::Array(array)))
}

/// The tag a neutral value's payload opens with, for Python's check of which codec a message
/// came in.
pub fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("VALUE_TAG", PyBytes::new(m.py(), rebeam_proto::value::VALUE_TAG))?;
    m.add("HANDLE_KEY", HANDLE_KEY)?;
    m.add("HANDLE_RELEASE", rebeam_proto::value::HANDLE_RELEASE)?;
    m.add_function(wrap_pyfunction!(value_loads, m)?)?;
    m.add_function(wrap_pyfunction!(value_dumps, m)?)?;
    m.add_function(wrap_pyfunction!(value_dumps_exact, m)?)?;
    Ok(())
}
