"""Publications in the neutral model where it carries the value exactly (a Rust host can read
them), pickles otherwise: Python subscribers get the same objects either way."""

import collections
import dataclasses

import numpy as np

from rebeam import _rebeam, _runtime


def received(obj):
    data, buffers = _runtime.dumps_publication(obj, "a test payload")
    return _runtime.is_host_value(data), _runtime.loads(data, [bytearray(b) for b in buffers])


def test_plain_values_go_neutral_and_come_back_with_their_types():
    value = {"n": None, "t": True, "i": -(2**63), "f": -0.0, "s": "héllo", "b": b"\x00", "l": [1, [2.0, {}]]}
    neutral, back = received(value)
    assert neutral and back == value
    assert [type(v) for v in back.values()] == [type(v) for v in value.values()]
    for dtype in ("<f8", "<f4", "<i8", "|u1", "|b1"):
        a = np.arange(6).reshape(2, 3).astype(dtype)
        neutral, back = received({"a": a})
        assert neutral and back["a"].dtype == a.dtype and np.array_equal(back["a"], a)
        back["a"][0, 0] = 1  # writable, as an unpickled array is


@dataclasses.dataclass
class Pose:
    x: float


class MyList(list):
    pass


def test_what_the_model_would_change_goes_as_a_pickle():
    changed = [
        (1, 2),
        Pose(1.0),
        np.float64(1.5),
        2**64,
        bytearray(b"ab"),
        MyList([1]),
        collections.OrderedDict(a=1),
        {1: "int key"},
        [1, (2,)],
        np.arange(4.0)[::2],  # not C-contiguous
        np.arange(3).astype(">i4"),  # not native order
        np.array(["a"]),
        {_rebeam.HANDLE_KEY: {"id": 1}},  # would decode as a handle
        "\ud800",  # a lone surrogate has no UTF-8 form
    ]
    for obj in changed:
        neutral, back = received(obj)
        assert not neutral, obj
        assert type(back) is type(obj)
        if isinstance(obj, np.ndarray):
            assert back.dtype == obj.dtype and np.array_equal(back, obj)
        else:
            assert back == obj
