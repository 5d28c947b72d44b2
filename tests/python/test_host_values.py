"""The neutral value codec a Rust host speaks: Python objects ↔ tagged payloads, no pickle."""

import dataclasses

import numpy as np
import pytest

from rebeam import SerializationError, _rebeam, _runtime


def round_trip(obj):
    data, buffers = _rebeam.value_dumps(obj)
    assert _runtime.is_host_value(data)
    # Buffers arrive as bytearrays, as the worker receives them.
    return _rebeam.value_loads(data, [bytearray(b) for b in buffers])


def test_plain_values_round_trip():
    value = {"n": None, "t": True, "i": -(2**63), "f": 0.5, "s": "héllo", "b": b"\x00", "l": [1, [2.0]], "m": {"k": {}}}
    assert round_trip(value) == value


def test_tuples_and_bytearrays_become_lists_and_bytes():
    assert round_trip((1, bytearray(b"ab"), memoryview(b"cd"))) == [1, b"ab", b"cd"]


def test_arrays_keep_dtype_and_shape_and_arrive_writable():
    for dtype in ("<f8", "<f4", "<i8", "<i4", "|u1", "|b1", ">f8"):
        a = np.arange(12).reshape(3, 4).astype(dtype)
        back = round_trip({"a": a})["a"]
        assert back.shape == (3, 4) and back.dtype == a.dtype.newbyteorder("<")
        assert np.array_equal(back, a)
        back[0, 0] = 1  # a writable array, like an unpickled one
    # A strided view is sent as its contents.
    assert np.array_equal(round_trip(np.eye(4)[:, 1]), [0.0, 1.0, 0.0, 0.0])


def test_numpy_scalars_and_dataclasses_become_plain_values():
    @dataclasses.dataclass
    class Pose:
        x: float
        joints: list

    assert round_trip({"s": np.float64(1.5), "i": np.int32(3), "p": Pose(1.0, [2])}) == {
        "s": 1.5,
        "i": 3,
        "p": {"x": 1.0, "joints": [2]},
    }


def test_what_cannot_cross_is_named_with_its_path():
    with pytest.raises(TypeError, match=r"cannot send object at \$\[\"pose\"\]\[1\] to the Rust host"):
        _rebeam.value_dumps({"pose": [1, object()]})
    with pytest.raises(TypeError, match=r"map keys must be str"):
        _rebeam.value_dumps({1: 2})
    with pytest.raises(TypeError, match=r"does not fit in 64 bits"):
        _rebeam.value_dumps(2**64)
    with pytest.raises(TypeError, match=r"dtype <c16"):
        _rebeam.value_dumps(np.zeros(2, dtype=complex))
    with pytest.raises(SerializationError, match=r"the reply: cannot send set"):
        _runtime.dumps_host_value({1, 2}, "the reply")


def test_a_malformed_payload_is_refused_not_guessed():
    with pytest.raises(ValueError, match="malformed"):
        _rebeam.value_loads(_rebeam.VALUE_TAG + b"\xff\xff", [])
    data, _ = _rebeam.value_dumps(np.zeros(2))
    with pytest.raises(ValueError, match="buffer 0"):
        _rebeam.value_loads(data, [])


def test_pickles_are_not_taken_for_host_values():
    import pickle

    assert not _runtime.is_host_value(pickle.dumps({"a": 1}, protocol=5))
    assert _runtime.loads(pickle.dumps({"a": 1}, protocol=5), []) == {"a": 1}


def test_a_host_value_is_told_apart_in_bytes_and_in_a_view_alike():
    # Large payloads arrive as read-only views, small ones as bytes: the same answer for both.
    data, _ = _rebeam.value_dumps([1, 2])
    for payload in (data, memoryview(data)):
        assert _runtime.is_host_value(payload)
    for other in (b"", data[:2], b"\x80\x05" + data[2:]):
        assert not _runtime.is_host_value(other)
        assert not _runtime.is_host_value(memoryview(other))
