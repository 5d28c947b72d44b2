"""rebeam.geometry: the shapes a Rust host's Vec3, Quaternion, Transform, Quantity and Envelope
decode, built and checked in Python, and what the host's value codec makes of them."""

import doctest
import time

import numpy as np
import pytest

from rebeam import _rebeam, geometry
from rebeam.geometry import (
    as_envelope,
    as_quantity,
    as_quaternion,
    as_transform,
    as_vec3,
    envelope,
    quantity,
    quaternion,
    rotation_matrix,
    transform,
    vec3,
)


def test_the_docstring_examples_hold():
    assert doctest.testmod(geometry).failed == 0


def test_builders_make_float64_arrays_of_the_rust_shapes():
    for a, shape in ((vec3(1, 2, 3), (3,)), (quaternion(1, 0, 0, 0), (4,)), (transform(), (4, 4))):
        assert a.dtype == np.float64 and a.shape == shape and a.flags.c_contiguous
    assert quaternion(0.5, 1, 2, 3).tolist() == [0.5, 1, 2, 3], "w first"


def test_a_transform_is_row_major_with_translation_in_the_last_column():
    m = transform(rotation=quaternion(1, 0, 0, 0), translation=[1, 2, 3])
    assert m[:, 3].tolist() == [1, 2, 3, 1]
    assert m.ravel()[[3, 7, 11]].tolist() == [1, 2, 3], "row-major: the flat order the Rust side reads"
    turn = transform(rotation=quaternion(np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)))  # 90 degrees about z
    assert np.allclose(turn[:3, :3] @ [1, 0, 0], [0, 1, 0])
    assert np.array_equal(transform(rotation=np.eye(3)), np.eye(4))


def test_rotation_normalizes_and_refuses_the_zero_quaternion():
    assert np.allclose(rotation_matrix([2, 0, 0, 0]), np.eye(3))
    with pytest.raises(ValueError, match="zero quaternion"):
        rotation_matrix([0, 0, 0, 0])


def test_checkers_accept_lists_and_name_the_wrong_shape():
    assert as_vec3([1, 2, 3]).dtype == np.float64
    assert as_quaternion(np.arange(4, dtype=np.float32)).dtype == np.float64
    with pytest.raises(ValueError, match=r"shape \(3,\), got float64 of shape \(4,\)"):
        as_vec3(np.zeros(4))
    with pytest.raises(ValueError, match="shape"):
        as_vec3([[1, 2], [3]])
    with pytest.raises(ValueError, match="shape"):
        as_vec3(["a", "b", "c"])
    with pytest.raises(ValueError, match="last row"):
        as_transform(np.zeros((4, 4)))
    assert np.array_equal(as_transform(np.eye(4).tolist()), np.eye(4))


def test_quantities_are_value_and_unit():
    assert quantity(3, "m") == {"value": 3.0, "unit": "m"}
    assert isinstance(quantity(np.float32(1.5), "s")["value"], float)
    for bad in ({"value": 1.0}, {"value": "1", "unit": "m"}, {"value": True, "unit": "m"}, [1.0, "m"]):
        with pytest.raises(ValueError, match="quantity"):
            as_quantity(bad)


def test_an_envelope_has_the_rust_keys_in_order_and_both_clocks():
    before = time.monotonic_ns()
    e = envelope(vec3(0, 0, 1), "arm", "base_link")
    assert list(e) == ["monotonic_ns", "wall_ns", "node", "frame_id", "payload"]
    assert before <= e["monotonic_ns"] <= time.monotonic_ns()
    assert e["wall_ns"] > 1_600_000_000 * 10**9, "nanoseconds since the epoch"
    assert envelope(1, "n", "f", monotonic_ns=5, wall_ns=6)["monotonic_ns"] == 5
    reordered = {k: e[k] for k in reversed(list(e))}
    assert list(as_envelope(reordered)) == list(e)
    with pytest.raises(ValueError, match="keys"):
        as_envelope({"payload": 1})
    with pytest.raises(ValueError, match="monotonic_ns"):
        as_envelope({**e, "monotonic_ns": -1})
    with pytest.raises(ValueError, match="frame_id"):
        as_envelope({**e, "frame_id": 3})


def test_every_shape_crosses_the_host_codec_unchanged():
    message = envelope({"pose": transform(translation=(1, 2, 3)), "speed": quantity(0.4, "m/s")}, "arm", "odom")
    data, buffers = _rebeam.value_dumps(message)
    back = _rebeam.value_loads(data, [bytearray(b) for b in buffers])
    assert list(back) == list(message)
    assert np.array_equal(as_transform(back["payload"]["pose"]), message["payload"]["pose"])
    assert back["payload"]["speed"] == {"value": 0.4, "unit": "m/s"}
