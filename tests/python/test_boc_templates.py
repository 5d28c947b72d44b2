"""Behaviour code sent once (rebeam.boc._code): which functions get a template, when a new one
is needed, and that a behaviour rebuilt from one sees its own captures."""

from __future__ import annotations

import pytest

from rebeam import _runtime
from rebeam.boc import _code

LIMIT = 1
ITEMS: list = []


class FakeConnection:
    index = 0

    def __init__(self) -> None:
        self.defined: list[tuple] = []

    def define_code(self, code_id, data, buffers) -> None:
        self.defined.append((code_id, data, buffers))


@pytest.fixture
def conn(monkeypatch):
    fake = FakeConnection()
    monkeypatch.setattr(_runtime, "connection", lambda: fake)
    monkeypatch.setattr(_code, "_ids", {})
    monkeypatch.setattr(_code, "_codes", {})
    monkeypatch.setattr(_code, "_sites", {})
    return fake


def as_worker(conn: FakeConnection) -> None:
    """Forgets the main process's templates and keeps the defined bytes, as a worker does."""
    _code._codes.clear()
    for code_id, data, buffers in conn.defined:
        _code.define(code_id, data, buffers)


def site(k: int, base: int):
    def behaviour(c, m=k * 10):
        return (c, k, m, base)

    return behaviour


def test_one_site_is_defined_once_and_each_behaviour_keeps_its_own_captures(conn):
    sent = [_runtime.loads(*_code.pack(site(k, 7), [k], [])) for k in range(3)]
    assert len(conn.defined) == 1
    assert len({s[0] for s in sent}) == 1, "one template id"
    as_worker(conn)
    for k, s in enumerate(sent):
        fn, groups, captures = _code.unpack(s)
        assert (groups, captures) == ([k], [])
        assert fn("cown") == ("cown", k, k * 10, 7)
        assert fn.__qualname__.endswith("site.<locals>.behaviour")


def test_a_global_bound_anew_makes_a_new_template(conn):
    global LIMIT

    def limit(c):
        return LIMIT

    first = _code.pack(limit, [], [])
    LIMIT = 2
    try:
        second = _code.pack(limit, [], [])
    finally:
        LIMIT = 1
    assert len(conn.defined) == 2
    as_worker(conn)
    assert [_code.unpack(_runtime.loads(*p))[0](None) for p in (first, second)] == [1, 2]


def test_code_that_could_change_under_a_template_travels_whole(conn):
    def names_a_list(c):
        return ITEMS

    def with_attribute(c):
        return c

    with_attribute._rebeam_requires_armed = True

    def empty_cell():
        def inner(c):
            return later

        assert _code.pack(inner, [], []) is None
        later = 1
        return inner

    for fn in (names_a_list, with_attribute, len, site):  # site: a module-level function
        assert _code.pack(fn, [], []) is None, fn
    assert _code.pack(empty_cell(), [], []) is not None
    assert len(conn.defined) == 1


def test_a_template_id_no_process_defined_fails_the_behaviour(conn):
    with pytest.raises(RuntimeError, match="never reached this process"):
        _code.unpack((12345, [], [], None, None, None))


def bare():
    def behaviour(c):  # no captures, defaults or closure: the short path
        return c

    return behaviour


def test_a_short_path_behaviour_is_decoded_once_per_site_and_cowns(conn, monkeypatch):
    monkeypatch.setattr(_code, "_decoded", {})
    plain = bare()
    data, buffers = _code.pack(plain, [1, [2, 3]], [])
    assert buffers == ()
    as_worker(conn)
    first = _code.decode(data)
    fn, groups, captures = first
    assert (groups, captures) == ([1, [2, 3]], [])
    assert fn.__qualname__ == plain.__qualname__
    assert (fn.__defaults__, fn.__kwdefaults__, fn.__closure__) == (None, None, None)
    assert fn("cown") == "cown"
    assert _code.decode(bytes(data)) is first, "the same bytes again: decoded once, one function per site"
    other, _ = _code.pack(plain, [4], [])
    assert _code.decode(other)[1] == [4]
    assert len(_code._decoded) == 2


def test_only_the_short_path_shape_is_kept_and_the_cache_is_bounded(conn, monkeypatch):
    import pickle

    monkeypatch.setattr(_code, "_decoded", {})
    monkeypatch.setattr(_code, "DECODED_MAX", 2)
    code_id = _runtime.loads(*_code.pack(bare(), [1], []))[0]
    with_captures = pickle.dumps((code_id, [1], [ITEMS], None, None, None), 5)
    whole = pickle.dumps((len, [1], []), 5)
    assert _code.decode(with_captures)[2] == [ITEMS]
    assert _code.decode(whole) == (len, [1], [])
    assert _code._decoded == {}, "a behaviour with captures, or whole code, is decoded anew"
    for k in range(3):
        _code.decode(pickle.dumps((code_id, [k], [], None, None, None), 5))
    assert len(_code._decoded) == 1, "full at two: it started again empty"


def test_a_short_path_behaviour_whose_template_is_missing_is_not_kept(conn, monkeypatch):
    import pickle

    monkeypatch.setattr(_code, "_decoded", {})
    data = pickle.dumps((12345, [1], [], None, None, None), 5)
    for _ in range(2):  # each one fails as it comes: nothing kept
        with pytest.raises(RuntimeError, match="never reached this process"):
            _code.decode(data)
    assert _code._decoded == {}


def test_a_short_path_behaviour_on_one_cown_is_pickled_once_per_site_and_cown(conn, monkeypatch):
    monkeypatch.setattr(_code, "_packed", {})
    plain = bare()
    first, _ = _code.pack(plain, [5], [])
    assert _code.pack(plain, [5], [])[0] is first, "the same site and cown: the same bytes, pickled once"
    other, _ = _code.pack(plain, [6], [])
    assert _runtime.loads(other, [])[1] == [6]
    assert _runtime.loads(first, [])[1] == [5]
    assert len(_code._packed) == 2
