"""The native pickles of plain values (`plain.rs`). The decoder of cast payloads
(`_rebeam.cast_message`): every value it decodes itself equals, in type and value, what
`pickle.loads` gives; every pickle it does not read (other opcodes, malformed, not UTF-8) goes to
`pickle.loads`, which answers or raises as before; payloads that are not plain are told apart.
The encoder (`_rebeam.plain_dumps`) writes what `pickle.dumps(obj, 5)` writes, byte for byte."""

from __future__ import annotations

import math
import pickle
import struct

import pytest

from rebeam import _rebeam

INTS = [0, 1, -1, 255, 256, 65535, 65536, -(2**31), 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63)]
SCALARS = [None, True, False, 0.0, -0.0, 1.5, -2.25e300, math.inf, -math.inf, "", "a", "é€😀", "x" * 300]
SCALARS += [b"", b"\x00\xff", b"y" * 300, *INTS]
CONTAINERS = [
    (),
    (1,),
    (1, "a"),
    (1, "a", None),
    (1, 2, 3, 4, 5),
    [],
    [1, "a", b"b"],
    {},
    {"a": 1, 2: (3, 4), "c": [5, None]},
    ("same", "same", ["same", ("same",)]),
    [[], [[]], {"k": {"k": []}}],
    list(range(2000)),
    {str(i): i for i in range(1500)},
]


def same(a, b) -> bool:
    """Equal in value and in type, all the way down (1 == 1.0 == True is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return a == b


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("value", SCALARS + CONTAINERS, ids=repr)
def test_the_decoder_gives_what_pickle_gives(value, protocol):
    data = pickle.dumps(value, protocol=protocol)
    expected = pickle.loads(data)
    if protocol >= 4:
        assert same(_rebeam.plain_decode(data), expected)
    else:
        # Protocols 2 and 3 memoize (and write bytes) with opcodes the decoder leaves to
        # pickle: decoded here or there, the value is the same.
        try:
            got = _rebeam.plain_decode(data)
        except ValueError:
            got = expected
        assert same(got, expected)
    assert same(_rebeam.cast_message(data), expected)


def test_a_nan_keeps_its_bits():
    data = pickle.dumps(math.nan, protocol=5)
    assert math.isnan(_rebeam.plain_decode(data))


def test_the_memo_shares_a_list_as_pickle_does():
    inner = [1]
    got = _rebeam.plain_decode(pickle.dumps([inner, inner], protocol=5))
    assert got[0] is got[1]


class Point:
    def __init__(self, x):
        self.x = x

    def __eq__(self, other):
        return type(other) is Point and other.x == self.x


@pytest.mark.parametrize(
    "value", [Point(3), {1, 2}, frozenset({1}), 2**64, -(2**70), 1 + 2j, bytearray(b"ab"), "\ud800"], ids=repr
)
def test_what_the_decoder_does_not_read_goes_to_pickle(value):
    data = pickle.dumps(value, protocol=5)
    with pytest.raises(ValueError):
        _rebeam.plain_decode(data)
    assert _rebeam.cast_message(data) == value


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x05K\x01",  # no STOP
        b"\x80\x05K\x01.junk",  # bytes after STOP (pickle ignores them)
        b"\x80\x05NN.",  # two values left (pickle returns the top one)
        b"\x80\x05(N.",  # a mark left open
        b"\x80\x05\x8c\x02\xff\xfe.",  # not UTF-8
        b"\x80\x05h\x00.",  # a memo slot never filled
        b"\x80\x05a.",  # APPEND on an empty stack
        b"\x80\x05]\x85(a.",  # APPEND below a mark
        b"\x80\x05}K\x01u.",  # SETITEMS without a mark
        b"\x80\x05K\x01(K\x02\x86t.",  # a tuple reaching below the mark
        b"\x80\x06N.",  # a protocol pickle does not know
        b"\x80\x05\x95\x05\x00\x00\x00\x00\x00\x00\x00N.",  # a frame longer than the rest
        b"\x80\x05]}\x94h\x00a.",  # APPEND to a dict
        b"\x80\x05}]]s.",  # an unhashable key
        b"K\x01.",  # no PROTO
        b"",
    ],
)
def test_a_pickle_it_does_not_read_is_pickles_to_answer(data):
    with pytest.raises(ValueError):
        _rebeam.plain_decode(data)
    try:
        expected = ("ok", pickle.loads(data))
    except Exception as e:
        expected = ("raised", type(e))
    try:
        got = ("ok", _rebeam.cast_message(data))
    except Exception as e:
        got = ("raised", type(e))
    assert got[0] == expected[0] and same(got[1], expected[1])


def test_payloads_that_are_not_plain_are_told_apart():
    assert _rebeam.cast_message(_rebeam.VALUE_TAG + b"rest") is _rebeam.NOT_PLAIN
    assert _rebeam.cast_message(pickle.dumps("in __main__", protocol=5)) is _rebeam.NOT_PLAIN
    assert _rebeam.cast_message(memoryview(pickle.dumps(1))) is _rebeam.NOT_PLAIN
    assert _rebeam.cast_message(bytearray(pickle.dumps(1))) is _rebeam.NOT_PLAIN
    assert _rebeam.cast_message(pickle.dumps("__rebeam_main__")) is _rebeam.NOT_PLAIN


class Text(str):
    pass


ENCODED = SCALARS + [2**64, -(2**64), 10**30, "x" * 5000, b"y" * 5000, b"z" * 70000, "\ud800", 255.0]
ENCODED += [n + d for n in (2**7, 2**8, 2**15, 2**16, 2**31, 2**32, 2**39, 2**47, 2**55, 2**63) for d in (-1, 0, 1)]
ENCODED += [-n for n in ENCODED if type(n) is int]


@pytest.mark.parametrize("value", ENCODED + [Text("t"), (1, 2), [3], Point(4), 2j], ids=repr)
def test_the_encoder_writes_what_pickle_writes(value):
    assert _rebeam.plain_dumps(value) == pickle.dumps(value, protocol=5)
