//! Payload bytes across the Python boundary without copies, both ways.
//!
//! - Sending: a large `bytes` object or buffer (a pickle's out-of-band `PickleBuffer`, such as a
//!   NumPy array's memory) becomes a `Bytes` that *borrows* the Python object's memory, holding
//!   the object (or its buffer export) until the frame is written. The rule for callers, the
//!   same as for `socket.send(memoryview)`: a buffer must not be written by another thread while
//!   `call`/`cast` sends it. Small ones are copied: below [`ZERO_COPY_MIN_BYTES`] a copy costs
//!   less than holding the object.
//! - Receiving a *message* (a call, a cast, a reply, a publication, a tagged message): an
//!   out-of-band buffer reaches Python as a [`SharedBytes`], a read-only buffer over the bytes
//!   read from the socket, so `pickle.loads` builds a NumPy array as a view of them: no copy,
//!   and the array is read-only (as Ray's are). A large pickle stream is handed over the same
//!   way; a small one as `bytes`. A buffer lent in shared memory (rebeam-client's `lent.rs`:
//!   1 MiB or more, from another process) is the mapping of the sender's segment itself, which
//!   the [`SharedBytes`] keeps alive; its loan goes back when the last view of it is gone.
//! - Receiving *state* (an actor's instance, a task's function, a cown's value, a behaviour's
//!   captures, noticeboard values): the buffers are copied into `bytearray`s, so the arrays in
//!   it are writable: the receiver owns that state and changes it in place (`grid.value += 1`).

use std::ffi::{c_int, c_void};

use bytes::Bytes;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

/// Below this many bytes a payload piece is copied rather than borrowed (both ways).
pub const ZERO_COPY_MIN_BYTES: usize = 64 * 1024;

/// Python memory a `Bytes` borrows, and what keeps it alive and unmoved.
struct Borrowed<T> {
    _keep: T,
    ptr: *const u8,
    len: usize,
}

// SAFETY: `ptr` points into memory owned by `_keep` (a `Py<PyBytes>`, immutable, or a buffer
// export, which pins the exporter's memory: NumPy refuses to resize an exported array); both are
// `Send`. Reads happen while the frame is written; see the module rule on concurrent writers.
unsafe impl<T: Send> Send for Borrowed<T> {}

impl<T> AsRef<[u8]> for Borrowed<T> {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the `Send` impl: `ptr..ptr+len` stays valid while `_keep` lives.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The bytes of a `bytes` object or a C-contiguous buffer, borrowed when large.
pub fn bytes_of(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        let slice = b.as_bytes();
        if slice.len() < ZERO_COPY_MIN_BYTES {
            return Ok(Bytes::copy_from_slice(slice));
        }
        let (ptr, len) = (slice.as_ptr(), slice.len());
        return Ok(Bytes::from_owner(Borrowed { _keep: b.clone().unbind(), ptr, len }));
    }
    let buf = PyBuffer::<u8>::get(obj)?;
    if buf.len_bytes() < ZERO_COPY_MIN_BYTES || !buf.is_c_contiguous() {
        return Ok(buf.to_vec(py)?.into());
    }
    let (ptr, len) = (buf.buf_ptr() as *const u8, buf.len_bytes());
    Ok(Bytes::from_owner(Borrowed { _keep: buf, ptr, len }))
}

/// Received bytes as a read-only Python buffer (`memoryview(x)`, `pickle.loads(x)`, NumPy).
#[pyclass(frozen, module = "rebeam._rebeam")]
pub struct SharedBytes {
    bytes: Bytes,
}

#[pymethods]
impl SharedBytes {
    fn __len__(&self) -> usize {
        self.bytes.len()
    }

    fn __repr__(&self) -> String {
        format!("<rebeam shared bytes, {} bytes, read-only>", self.bytes.len())
    }

    /// # Safety
    /// Called by CPython with a valid `view` to fill.
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut pyo3::ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if flags & pyo3::ffi::PyBUF_WRITABLE == pyo3::ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err(
                "a message's buffer from another process is read-only (copy it to change it, e.g. numpy's .copy())",
            ));
        }
        let bytes = &slf.get().bytes;
        let len = isize::try_from(bytes.len()).map_err(|_| PyBufferError::new_err("buffer too large"))?;
        // SAFETY: `view` is CPython's to fill; the memory is the `Bytes` this object owns, which
        // never changes and lives as long as the object, which the view holds (`view.obj`).
        let rc =
            unsafe { pyo3::ffi::PyBuffer_FillInfo(view, slf.as_ptr(), bytes.as_ptr() as *mut c_void, len, 1, flags) };
        if rc == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    /// # Safety
    /// Called by CPython when a view ends; nothing to release (the memory is the object's).
    unsafe fn __releasebuffer__(&self, _view: *mut pyo3::ffi::Py_buffer) {}
}

/// Memory in a shared-memory segment from the start (`rebeam.shared_array`): a writable buffer
/// whose bytes a call or cast lends as they are, with no copy (rebeam-client's `lent.rs`).
/// The rule for its holder: do not write it while a receiver may still read it.
#[pyclass(frozen, module = "rebeam._rebeam")]
pub struct SharedBuffer {
    block: rebeam_client::Block,
    len: usize,
}

impl SharedBuffer {
    pub fn new(block: rebeam_client::Block, len: usize) -> SharedBuffer {
        SharedBuffer { block, len }
    }
}

#[pymethods]
impl SharedBuffer {
    fn __len__(&self) -> usize {
        self.len
    }

    fn __repr__(&self) -> String {
        format!("<rebeam shared buffer, {} bytes>", self.len)
    }

    /// # Safety
    /// Called by CPython with a valid `view` to fill.
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut pyo3::ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        let this = slf.get();
        let len = isize::try_from(this.len).map_err(|_| PyBufferError::new_err("buffer too large"))?;
        let (at, cap) = this.block.data();
        debug_assert!(this.len <= cap);
        // SAFETY: `view` is CPython's to fill; the memory is the block's data (at least `len`
        // bytes), which lives as long as the block this object holds, which the view holds.
        let rc = unsafe { pyo3::ffi::PyBuffer_FillInfo(view, slf.as_ptr(), at.cast::<c_void>(), len, 0, flags) };
        if rc == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    /// # Safety
    /// Called by CPython when a view ends; nothing to release (the memory is the object's).
    unsafe fn __releasebuffer__(&self, _view: *mut pyo3::ffi::Py_buffer) {}
}

/// What received bytes become (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A message: read-only views, no copy.
    Message,
    /// State its receiver owns and changes: writable copies.
    State,
}

/// Received payload bytes as Python sees them: a small pickle stream as `bytes` (cheapest to
/// read); a large one, or an out-of-band buffer, as a [`SharedBytes`] view for a message and as
/// a writable `bytearray` copy for state.
pub fn to_python(py: Python<'_>, bytes: Bytes, out_of_band: bool, used: Use) -> PyResult<Bound<'_, PyAny>> {
    match used {
        Use::State if out_of_band => Ok(PyByteArray::new(py, &bytes).into_any()),
        _ if !out_of_band && (used == Use::State || bytes.len() < ZERO_COPY_MIN_BYTES) => {
            Ok(PyBytes::new(py, &bytes).into_any())
        }
        _ => Ok(Bound::new(py, SharedBytes { bytes })?.into_any()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_reads_the_memory_it_was_given() {
        let keep = vec![1u8, 2, 3, 4];
        let (ptr, len) = (keep.as_ptr(), keep.len());
        let b = Bytes::from_owner(Borrowed { _keep: keep, ptr, len });
        assert_eq!(&b[..], &[1, 2, 3, 4]);
        assert_eq!(b.as_ptr(), ptr, "no copy");
    }
}
