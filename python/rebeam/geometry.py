"""Geometry, units and the message envelope, in the shapes a Rust host's types decode.

The rules (the same as the Rust crate ``rebeam``'s ``geometry`` and ``messages`` modules):

- A vector is a NumPy ``(3,)`` float64 array: x, y, z (Rust ``Vec3``).
- A quaternion is a ``(4,)`` float64 array in **w, x, y, z** order (Rust ``Quaternion``).
- A transform is a ``(4, 4)`` float64 array, row-major, homogeneous: rotation in ``[:3, :3]``,
  translation in ``[:3, 3]``, last row ``0, 0, 0, 1`` (Rust ``Transform``).
- A quantity is ``{"value": float, "unit": str}`` (Rust ``Quantity``).
- An envelope is ``{"monotonic_ns", "wall_ns", "node", "frame_id", "payload"}``, in that order:
  when the message was made on this machine's monotonic clock (the one Rust's
  ``Envelope::now`` reads, so the two compare) and on the wall clock (ns since the Unix epoch),
  who sent it, in which frame, and what it carries (Rust ``Envelope<T>``).

The builders (:func:`vec3`, :func:`quaternion`, :func:`transform`, :func:`quantity`,
:func:`envelope`) make these shapes; the checkers (:func:`as_vec3`, :func:`as_quaternion`,
:func:`as_transform`, :func:`as_quantity`, :func:`as_envelope`) take what a host sent (or a
list nested the same way) and return it in that shape, or raise ``ValueError`` naming the
shape expected and what came. A handler can return any of them to a Rust host as they are.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

#: Every array here is of this dtype, as the Rust types require.
DTYPE = np.float64
#: The keys of an envelope, in the order the Rust ``Envelope`` writes them.
ENVELOPE_KEYS = ("monotonic_ns", "wall_ns", "node", "frame_id", "payload")


def _array(what: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as e:  # ragged nesting
        raise ValueError(f"{what}: expected a float64 array of shape {shape}, got {value!r} ({e})") from None
    if a.shape != shape or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{what}: expected a float64 array of shape {shape}, got {a.dtype} of shape {a.shape}")
    return np.ascontiguousarray(a, dtype=DTYPE)


def vec3(x: float, y: float, z: float) -> np.ndarray:
    """A point or direction: ``(3,)`` float64, x, y, z.

    >>> vec3(1, 2, 3)
    array([1., 2., 3.])
    """
    return np.array([x, y, z], dtype=DTYPE)


def quaternion(w: float, x: float, y: float, z: float) -> np.ndarray:
    """A rotation: ``(4,)`` float64 in w, x, y, z order (w first, as Rust's ``Quaternion``).

    >>> quaternion(1, 0, 0, 0)
    array([1., 0., 0., 0.])
    """
    return np.array([w, x, y, z], dtype=DTYPE)


def rotation_matrix(q: Any) -> np.ndarray:
    """The ``(3, 3)`` rotation of quaternion ``q`` (w, x, y, z; normalized here first).

    >>> rotation_matrix(quaternion(1, 0, 0, 0))
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """
    w, x, y, z = as_quaternion(q)
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if n == 0.0:
        raise ValueError("rotation_matrix: the zero quaternion is no rotation")
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ],
        dtype=DTYPE,
    )


def transform(rotation: Any = None, translation: Any = None) -> np.ndarray:
    """A rigid transform: ``(4, 4)`` float64, row-major.

    ``rotation`` is a quaternion (w, x, y, z) or a ``(3, 3)`` matrix (default: none);
    ``translation`` is x, y, z (default: zero).

    >>> transform(translation=(1, 2, 3))[:3, 3]
    array([1., 2., 3.])
    """
    m = np.eye(4, dtype=DTYPE)
    if rotation is not None:
        r = np.asarray(rotation)
        m[:3, :3] = _array("transform", r, (3, 3)) if r.shape == (3, 3) else rotation_matrix(r)
    if translation is not None:
        m[:3, 3] = as_vec3(translation)
    return m


def as_vec3(value: Any) -> np.ndarray:
    """``value`` as a ``(3,)`` float64 array, or ``ValueError``."""
    return _array("vec3", value, (3,))


def as_quaternion(value: Any) -> np.ndarray:
    """``value`` as a ``(4,)`` float64 array (w, x, y, z), or ``ValueError``."""
    return _array("quaternion", value, (4,))


def as_transform(value: Any) -> np.ndarray:
    """``value`` as a ``(4, 4)`` float64 array whose last row is ``0, 0, 0, 1``, or ``ValueError``."""
    m = _array("transform", value, (4, 4))
    if not np.array_equal(m[3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError(f"transform: the last row of a homogeneous transform is 0, 0, 0, 1, not {m[3].tolist()}")
    return m


def quantity(value: float, unit: str) -> dict:
    """A number with its unit: ``{"value": float, "unit": str}``.

    >>> quantity(0.4, "m/s")
    {'value': 0.4, 'unit': 'm/s'}
    """
    return as_quantity({"value": value, "unit": unit})


def as_quantity(value: Any) -> dict:
    """``value`` checked as a quantity (the value made a float), or ``ValueError``."""
    if not isinstance(value, dict) or set(value) != {"value", "unit"}:
        raise ValueError(f"quantity: expected {{'value': float, 'unit': str}}, got {value!r}")
    v, unit = value["value"], value["unit"]
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not isinstance(unit, str):
        raise ValueError(f"quantity: expected a number and a str unit, got {v!r} and {unit!r}")
    return {"value": float(v), "unit": unit}


def envelope(
    payload: Any, node: str, frame_id: str, monotonic_ns: int | None = None, wall_ns: int | None = None
) -> dict:
    """``payload`` stamped with both clocks (now, unless given), its node and frame.

    >>> e = envelope(quantity(1.0, "m"), "arm", "base_link")
    >>> list(e)
    ['monotonic_ns', 'wall_ns', 'node', 'frame_id', 'payload']
    """
    stamped = {
        "monotonic_ns": time.monotonic_ns() if monotonic_ns is None else monotonic_ns,
        "wall_ns": time.time_ns() if wall_ns is None else wall_ns,
        "node": node,
        "frame_id": frame_id,
        "payload": payload,
    }
    return as_envelope(stamped)


def as_envelope(value: Any) -> dict:
    """``value`` checked as an envelope (keys in the Rust order), or ``ValueError``."""
    if not isinstance(value, dict) or set(value) != set(ENVELOPE_KEYS):
        got = sorted(value) if isinstance(value, dict) else repr(value)
        raise ValueError(f"envelope: expected the keys {list(ENVELOPE_KEYS)}, got {got}")
    for key in ("monotonic_ns", "wall_ns"):
        t = value[key]
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < 2**64:
            raise ValueError(f"envelope: {key} must be a whole number of nanoseconds >= 0, got {t!r}")
    for key in ("node", "frame_id"):
        if not isinstance(value[key], str):
            raise ValueError(f"envelope: {key} must be a str, got {value[key]!r}")
    return {k: int(value[k]) if k.endswith("_ns") else value[k] for k in ENVELOPE_KEYS}


__all__ = [
    "DTYPE", "ENVELOPE_KEYS", "vec3", "quaternion", "rotation_matrix", "transform", "quantity", "envelope",
    "as_vec3", "as_quaternion", "as_transform", "as_quantity", "as_envelope",
]
