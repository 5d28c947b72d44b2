"""`rebeam.shared_array`: a NumPy array in shared memory from the start."""

from __future__ import annotations

from typing import Any


def shared_array(shape: int | tuple[int, ...], dtype: Any = float) -> Any:
    """A new, zeroed NumPy array whose memory is a shared-memory segment of this process, so
    that a call or cast to an actor in another process sends it with no copy at all: the
    receiver maps the same memory.

    The sharing rules:

    - On the receiving side the array is read-only (as every array in a message is); copy it
      (``a.copy()``) to change it.
    - The sender keeps a writable array, but **must not write it while a receiver may still
      read it**: the receiver's view is of the very same memory, so it would see the change,
      perhaps half-made. Write it, send it, and build the next one in a new ``shared_array``
      (or write it again only once the receiver is done: its answer to a call says so). Why
      no copy-on-write: making the sender's next write fault and copy would cost as much as
      the copy this array exists to avoid.
    - Only the whole array travels with no copy; a slice of it, or a message to an actor in
      this same process, is sent as any array is.
    - The memory is freed once this array and every receiver's view of it are gone (a
      receiver that dies gives its views back; a sender that dies leaves them valid).

    Raises ``MemoryError`` when this process's shared memory is at its bound.
    """
    import numpy as np

    from ._runtime import connection

    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buffer = connection().shared_buffer(nbytes)
    # The array's base holds the buffer, which holds the segment: the memory lives as long as it.
    return np.frombuffer(buffer, dtype=dtype, count=nbytes // dtype.itemsize if dtype.itemsize else 0).reshape(shape)
