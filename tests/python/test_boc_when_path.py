"""A @when's own path in the main process (rebeam.boc._code, _cowns): what it remembers per
site (the template a code object resolved to, the shape check) is used only while it still
holds, and a behaviour that carries nothing but its cowns arrives as the long path sends it."""

from __future__ import annotations

import pickle
import types

import pytest

from rebeam import _runtime
from rebeam.boc import _code, _cowns

from test_boc_templates import FakeConnection, as_worker

LATER_NAME = None
del LATER_NAME  # not bound until a test binds it


@pytest.fixture
def conn(monkeypatch):
    fake = FakeConnection()
    monkeypatch.setattr(_runtime, "connection", lambda: fake)
    monkeypatch.setattr(_code, "_ids", {})
    monkeypatch.setattr(_code, "_codes", {})
    monkeypatch.setattr(_code, "_sites", {})
    return fake


def test_a_global_bound_after_the_site_resolved_is_seen(conn, monkeypatch):
    def names_later(c):
        return LATER_NAME  # noqa: F821  (bound below, between two @whens)

    assert _code.pack(names_later, [1], []) is not None, "nothing bound: a template"
    assert _code.pack(names_later, [1], []) is not None, "the site remembered"
    monkeypatch.setitem(globals(), "LATER_NAME", [1, 2])  # a list could change under a template
    assert _code.pack(names_later, [1], []) is None, "travels whole once the name is bound"
    monkeypatch.setitem(globals(), "LATER_NAME", 5)
    p = _code.pack(names_later, [1], [])
    assert p is not None and len(conn.defined) == 2, "an int: a template of its own"
    as_worker(conn)
    assert _code.unpack(_runtime.loads(*p))[0](None) == 5


def test_a_site_is_looked_up_again_under_other_globals(conn):
    def f(c):
        return c

    g = dict(f.__globals__)
    other = types.FunctionType(f.__code__, g, "f")
    assert _code.pack(f, [1], []) is not None
    g["c_helper"] = []  # not a name f uses: the same template
    assert _code.pack(other, [1], []) is not None
    assert _code._sites[id(f.__code__)][2] is g, "remembered for the globals it last saw"


def test_a_behaviour_with_nothing_but_cowns_arrives_as_the_long_path_sends_it(conn):
    def plain(a, b):
        return a, b

    def captures(a, b, k=3):
        return a, b, k

    short = _code.pack(plain, [7, [8, 9]], [])
    assert short is not None and list(short[1]) == []
    sent = pickle.loads(short[0])
    assert sent[1:] == ([7, [8, 9]], [], None, None, None)
    long = _code.pack(captures, [7, [8, 9]], [])
    assert _runtime.loads(*long)[1:] == ([7, [8, 9]], [], (3,), None, None)
    as_worker(conn)
    fn, groups, caps = _code.unpack(sent)
    assert (fn(*groups, *caps), groups, caps) == ((7, [8, 9]), [7, [8, 9]], [])


def test_the_shape_check_is_remembered_only_for_the_same_code_and_counts(monkeypatch):
    monkeypatch.setattr(_cowns, "_shaped", {})

    def two(c, k=1):
        return c, k

    _cowns.check_shape(two, 1)
    _cowns.check_shape(two, 1)
    assert len(_cowns._shaped) == 1
    with pytest.raises(TypeError, match="takes 2 parameter"):
        _cowns.check_shape(two, 3)  # more cowns than parameters: checked, not remembered
    bare = types.FunctionType(two.__code__, two.__globals__, "two")  # the same code, no default
    with pytest.raises(TypeError, match="must each be a capture"):
        _cowns.check_shape(bare, 1)
    with pytest.raises(TypeError, match="decorates a function"):
        _cowns.check_shape(42, 1)
