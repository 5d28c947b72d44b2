//! Pickles of plain values, both ways, without a pickler or an unpickler per message.
//!
//! A cast's message as a worker's run of casts takes it (`_casts.run`): `cast_message(data)`
//! is `pickle.loads(data)` for a plain payload, and `NOT_PLAIN` for one that must go the
//! general way (`Worker.deliver`). One call, where Python spent a prefix check, a substring
//! search that raised and caught a `TypeError` inside CPython, and an unpickler per cast. And a
//! cast's plain message as its sender sends it (`rebeam.cast`): `plain_dumps(obj)` is
//! `pickle.dumps(obj, 5)`, byte for byte.
//!
//! The rules:
//! - **Plain** is exactly what `_casts` ran itself before: `bytes` (not a lent buffer), not
//!   opening with a Rust host's value tag (`VALUE_TAG`), and not naming a script module
//!   (`main__`: `__main__` and `__rebeam_main__` need the worker's own unpickler).
//! - **Small values are decoded here** when the pickle holds nothing but the opcodes below
//!   (protocol 2-5, one frame at most, ending at its STOP): `None`, bools, ints, floats,
//!   `str`, `bytes`, and tuples, lists and dicts of these, with the memo. Each opcode builds
//!   what the unpickler builds, and none runs code, so the value is the one `pickle.loads`
//!   gives. Anything else (another opcode, a string that is not UTF-8, a malformed pickle)
//!   goes to `pickle.loads` itself, which gives the value or raises as it always did.
//! - **Encoding** writes what the pickler writes for a value of exactly type `None`, `bool`,
//!   `int` (within 64 bits), `float`, `str` (UTF-8) or `bytes`, up to [`ENCODED_MAX`] bytes:
//!   the protocol, one frame when the body reaches the pickler's minimum, the opcode the
//!   pickler chooses for the value, the memo mark after a string, STOP. Anything else is
//!   `pickle.dumps(obj, 5)`'s.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;
use rebeam_proto::value::VALUE_TAG;

/// What a script module's name holds: such a payload is the worker's own unpickler's.
const SCRIPT_MODULE_MARK: &[u8] = b"main__";

/// The newest pickle protocol `pickle.loads` reads.
const HIGHEST_PROTOCOL: u8 = 5;

/// The largest `str` or `bytes` encoded here: far below the pickler's frame size target
/// (64 KiB, past which it writes large data outside frames), so one frame holds it all.
const ENCODED_MAX: usize = 4096;

/// The pickler writes a frame only for a body of at least this many bytes.
const FRAME_SIZE_MIN: usize = 4;

/// The protocol `rebeam.cast` pickles with.
const PROTOCOL: u8 = 5;

/// Where the body starts after the protocol and a frame's header (opcode, 8-byte length).
const FRAMED_AT: usize = 11;

static NOT_PLAIN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn not_plain(py: Python<'_>) -> PyResult<&Py<PyAny>> {
    NOT_PLAIN.get_or_try_init(py, || Ok(py.import("builtins")?.getattr("object")?.call0()?.unbind()))
}

/// A cast's message (see the module rules): the value, or `NOT_PLAIN`.
#[pyfunction]
fn cast_message(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let Ok(bytes) = data.cast_exact::<PyBytes>() else { return Ok(not_plain(py)?.clone_ref(py)) };
    let raw = bytes.as_bytes();
    if raw.starts_with(VALUE_TAG) || raw.windows(SCRIPT_MODULE_MARK.len()).any(|w| w == SCRIPT_MODULE_MARK) {
        return Ok(not_plain(py)?.clone_ref(py));
    }
    if let Some(value) = decode(py, raw) {
        return Ok(value.unbind());
    }
    let loads = LOADS.get_or_try_init(py, || Ok::<_, PyErr>(py.import("pickle")?.getattr("loads")?.unbind()))?;
    Ok(loads.bind(py).call1((data,))?.unbind())
}

/// The value of a pickle made only of the opcodes this module reads, or None (see the rules).
pub(crate) fn decode<'py>(py: Python<'py>, raw: &[u8]) -> Option<Bound<'py, PyAny>> {
    Decoder { py, raw, at: 0, stack: Vec::new(), marks: Vec::new(), memo: Vec::new() }.run().ok()
}

/// Why the decoder stopped short: the payload is `pickle.loads`'s to read.
struct Unread;

impl From<PyErr> for Unread {
    fn from(_: PyErr) -> Unread {
        Unread
    }
}

struct Decoder<'py, 'a> {
    py: Python<'py>,
    raw: &'a [u8],
    at: usize,
    stack: Vec<Bound<'py, PyAny>>,
    marks: Vec<usize>,
    memo: Vec<Bound<'py, PyAny>>,
}

impl<'py> Decoder<'py, '_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Unread> {
        let end = self.at.checked_add(n).ok_or(Unread)?;
        let bytes = self.raw.get(self.at..end).ok_or(Unread)?;
        self.at = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, Unread> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<usize, Unread> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn push(&mut self, obj: Bound<'py, PyAny>) {
        self.stack.push(obj);
    }

    /// Where the innermost mark stands: as in the unpickler, nothing below it is popped or
    /// looked at until the mark is taken away.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Bound<'py, PyAny>, Unread> {
        if self.stack.len() <= self.fence() {
            return Err(Unread);
        }
        self.stack.pop().ok_or(Unread)
    }

    fn top(&self) -> Result<&Bound<'py, PyAny>, Unread> {
        if self.stack.len() <= self.fence() {
            return Err(Unread);
        }
        self.stack.last().ok_or(Unread)
    }

    /// What lies above the innermost mark, the mark taken away.
    fn pop_mark(&mut self) -> Result<Vec<Bound<'py, PyAny>>, Unread> {
        let mark = self.marks.pop().ok_or(Unread)?;
        Ok(self.stack.split_off(mark))
    }

    fn tuple(&mut self, n: usize) -> Result<(), Unread> {
        let at = self.stack.len().checked_sub(n).ok_or(Unread)?;
        if at < self.fence() {
            return Err(Unread);
        }
        let items = self.stack.split_off(at);
        self.push(PyTuple::new(self.py, items)?.into_any());
        Ok(())
    }

    fn str(&mut self, n: usize) -> Result<(), Unread> {
        let py = self.py;
        let s = std::str::from_utf8(self.take(n)?).map_err(|_| Unread)?;
        let obj = PyString::new(py, s).into_any();
        self.push(obj);
        Ok(())
    }

    fn bytes(&mut self, n: usize) -> Result<(), Unread> {
        let py = self.py;
        let obj = PyBytes::new(py, self.take(n)?).into_any();
        self.push(obj);
        Ok(())
    }

    fn int(&mut self, v: i64) -> Result<(), Unread> {
        let obj = v.into_bound_py_any(self.py)?;
        self.push(obj);
        Ok(())
    }

    fn append(&mut self, items: Vec<Bound<'py, PyAny>>) -> Result<(), Unread> {
        let list = self.top()?.cast::<PyList>().map_err(|_| Unread)?;
        for item in items {
            list.append(item)?;
        }
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Bound<'py, PyAny>>) -> Result<(), Unread> {
        if !items.len().is_multiple_of(2) {
            return Err(Unread);
        }
        let dict = self.top()?.cast::<PyDict>().map_err(|_| Unread)?;
        let mut items = items.into_iter();
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            dict.set_item(k, v)?;
        }
        Ok(())
    }

    fn get(&mut self, index: usize) -> Result<(), Unread> {
        let obj = self.memo.get(index).ok_or(Unread)?.clone();
        self.push(obj);
        Ok(())
    }

    /// Runs the pickle to its STOP, which must be its last byte.
    fn run(mut self) -> Result<Bound<'py, PyAny>, Unread> {
        if self.byte()? != 0x80 || self.byte()? > HIGHEST_PROTOCOL {
            return Err(Unread);
        }
        if self.raw.get(self.at) == Some(&0x95) {
            // FRAME: one frame holding the rest, as the pickler writes a small pickle.
            self.at += 1;
            let b = self.take(8)?;
            let len = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            if usize::try_from(len).ok() != Some(self.raw.len() - self.at) {
                return Err(Unread);
            }
        }
        loop {
            match self.byte()? {
                b'.' => {
                    let done = self.at == self.raw.len() && self.marks.is_empty() && self.stack.len() == 1;
                    return if done { self.stack.pop().ok_or(Unread) } else { Err(Unread) };
                }
                b'N' => self.push(self.py.None().into_bound(self.py)),
                0x88 => self.push(true.into_bound_py_any(self.py)?),
                0x89 => self.push(false.into_bound_py_any(self.py)?),
                b'K' => {
                    let v = self.byte()?;
                    self.int(i64::from(v))?;
                }
                b'M' => {
                    let b = self.take(2)?;
                    let v = u16::from_le_bytes([b[0], b[1]]);
                    self.int(i64::from(v))?;
                }
                b'J' => {
                    let b = self.take(4)?;
                    let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    self.int(i64::from(v))?;
                }
                0x8a => {
                    // LONG1: little-endian two's complement, up to 8 bytes here.
                    let n = usize::from(self.byte()?);
                    if n > 8 {
                        return Err(Unread);
                    }
                    let b = self.take(n)?;
                    let mut buf = [if b.last().is_some_and(|&x| x & 0x80 != 0) { 0xff } else { 0 }; 8];
                    buf[..n].copy_from_slice(b);
                    self.int(i64::from_le_bytes(buf))?;
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                    self.push(PyFloat::new(self.py, v).into_any());
                }
                0x8c => {
                    let n = usize::from(self.byte()?);
                    self.str(n)?;
                }
                b'X' => {
                    let n = self.u32()?;
                    self.str(n)?;
                }
                b'C' => {
                    let n = usize::from(self.byte()?);
                    self.bytes(n)?;
                }
                b'B' => {
                    let n = self.u32()?;
                    self.bytes(n)?;
                }
                b')' => self.push(PyTuple::empty(self.py).into_any()),
                0x85 => self.tuple(1)?,
                0x86 => self.tuple(2)?,
                0x87 => self.tuple(3)?,
                b'(' => self.marks.push(self.stack.len()),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(PyTuple::new(self.py, items)?.into_any());
                }
                b']' => self.push(PyList::empty(self.py).into_any()),
                b'}' => self.push(PyDict::new(self.py).into_any()),
                b'a' => {
                    let item = self.pop()?;
                    self.append(vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                0x94 => {
                    let top = self.top()?.clone();
                    self.memo.push(top);
                }
                b'h' => {
                    let i = usize::from(self.byte()?);
                    self.get(i)?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.get(i)?;
                }
                _ => return Err(Unread),
            }
        }
    }
}

/// `pickle.dumps(obj, 5)` (see the module rules).
#[pyfunction]
fn plain_dumps<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // The frame's header is written in place, then taken out again if the body is too short.
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[0x80, PROTOCOL, 0x95, 0, 0, 0, 0, 0, 0, 0, 0]);
    if encode_body(obj, &mut out).is_some() {
        let body = out.len() - FRAMED_AT;
        if body >= FRAME_SIZE_MIN {
            out[3..FRAMED_AT].copy_from_slice(&(body as u64).to_le_bytes());
        } else {
            out.drain(2..FRAMED_AT);
        }
        return Ok(PyBytes::new(py, &out).into_any());
    }
    let dumps = DUMPS.get_or_try_init(py, || Ok::<_, PyErr>(py.import("pickle")?.getattr("dumps")?.unbind()))?;
    dumps.bind(py).call1((obj, PROTOCOL))
}

/// Appends the pickler's opcodes for `obj` (what follows the protocol and the frame's header,
/// STOP included) to `body`; None if `obj` is not one this module encodes.
fn encode_body(obj: &Bound<'_, PyAny>, body: &mut Vec<u8>) -> Option<()> {
    if obj.is_none() {
        body.push(b'N');
    } else if let Ok(b) = obj.cast_exact::<PyBool>() {
        body.push(if b.is_true() { 0x88 } else { 0x89 });
    } else if let Ok(i) = obj.cast_exact::<PyInt>() {
        encode_int(body, i.extract::<i64>().ok()?);
    } else if let Ok(f) = obj.cast_exact::<PyFloat>() {
        body.push(b'G');
        body.extend_from_slice(&f.value().to_be_bytes());
    } else if let Ok(s) = obj.cast_exact::<PyString>() {
        // A string with lone surrogates is not UTF-8: the pickler's "surrogatepass" is pickle's.
        let s = s.to_str().ok()?;
        encode_sized(body, s.as_bytes(), 0x8c, b'X')?;
    } else if let Ok(b) = obj.cast_exact::<PyBytes>() {
        encode_sized(body, b.as_bytes(), b'C', b'B')?;
    } else {
        return None;
    }
    body.push(b'.');
    Some(())
}

/// An int as the pickler writes it: BININT1, BININT2 or BININT within 32 bits, else LONG1
/// with the fewest bytes of two's complement that hold it.
fn encode_int(body: &mut Vec<u8>, v: i64) {
    if let Ok(small) = i32::try_from(v) {
        let b = small.to_le_bytes();
        if b[3] != 0 || b[2] != 0 {
            body.push(b'J');
            body.extend_from_slice(&b);
        } else if b[1] != 0 {
            body.extend_from_slice(&[b'M', b[0], b[1]]);
        } else {
            body.extend_from_slice(&[b'K', b[0]]);
        }
        return;
    }
    let wide = i128::from(v);
    let bits = 128 - wide.unsigned_abs().leading_zeros() as usize;
    let mut n = bits / 8 + 1;
    let bytes = wide.to_le_bytes();
    // As the pickler: a negative number's top byte of all ones goes when the next one's sign
    // bit says the same.
    if v < 0 && n > 1 && bytes[n - 1] == 0xff && bytes[n - 2] & 0x80 != 0 {
        n -= 1;
    }
    body.extend_from_slice(&[0x8a, n as u8]);
    body.extend_from_slice(&bytes[..n]);
}

/// A `str`'s or `bytes`' opcode with a one-byte length (`short`) or a four-byte one (`long`),
/// the data, and the memo mark the pickler puts after it; None past [`ENCODED_MAX`].
fn encode_sized(body: &mut Vec<u8>, data: &[u8], short: u8, long: u8) -> Option<()> {
    if data.len() > ENCODED_MAX {
        return None;
    }
    match u8::try_from(data.len()) {
        Ok(n) => body.extend_from_slice(&[short, n]),
        Err(_) => {
            body.push(long);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        }
    }
    body.extend_from_slice(data);
    body.push(0x94);
    Some(())
}

/// Decodes `data` as `cast_message` would, for tests: the value, or a `ValueError` if the
/// pickle is not one this module reads itself (so a test can tell the two roads apart).
#[pyfunction]
fn plain_decode(py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
    decode(py, data).map(Bound::unbind).ok_or_else(|| PyValueError::new_err("not decoded here (pickle.loads reads it)"))
}

pub fn add(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("NOT_PLAIN", not_plain(m.py())?.clone_ref(m.py()))?;
    m.add_function(wrap_pyfunction!(cast_message, m)?)?;
    m.add_function(wrap_pyfunction!(plain_decode, m)?)?;
    m.add_function(wrap_pyfunction!(plain_dumps, m)?)?;
    Ok(())
}
