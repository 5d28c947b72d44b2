"""rebeam.handles: the worker's table of objects a Rust host refers to by handle (the host side
and real workers are tested in crates/rebeam/tests/handles_from_rust.rs)."""

import gc
import os
import weakref

import pytest

import rebeam
from rebeam import _rebeam, _runtime, handles
from rebeam._runtime import ProcessID


class Model:
    pass


@pytest.fixture
def actor():
    """Runs the test as if in actor <7>'s handler."""
    _runtime.set_current(ProcessID(7, "holder"))
    yield 7
    _runtime.set_current(None)
    handles.end_holder(7)


def round_trip(h):
    """The handle as a host's message carries it back, decoded here."""
    data, buffers = _rebeam.value_dumps({"model": h})
    return _rebeam.value_loads(data, [bytearray(b) for b in buffers])["model"]


def test_a_handle_resolves_to_the_object_itself(actor):
    obj = Model()
    h = rebeam.handle(obj)
    assert round_trip(h) is obj
    ref = h[_rebeam.HANDLE_KEY]
    assert (ref["owner"], ref["pid"], ref["worker"]) == (7, os.getpid(), handles.WORKER)
    assert "actor <7>" in repr(h) and h.id == ref["id"]


def test_release_by_its_holder_frees_the_object_and_later_use_says_so(actor):
    obj = Model()
    gone = weakref.ref(obj)
    h = rebeam.handle(obj)
    del obj
    handles.release(8, {"id": h.id})  # not the holder: ignored
    assert gone() is not None
    handles.release(7, {"id": h.id})
    gc.collect()
    assert gone() is None, "the table let it go"
    with pytest.raises(handles.HandleError, match="is gone"):
        round_trip(h)


def test_the_holders_end_frees_all_it_made(actor):
    a, b = rebeam.handle(Model()), rebeam.handle(Model())
    before = handles.held()
    handles.end_holder(7)
    assert handles.held() == before - 2
    with pytest.raises(handles.HandleError, match="holder actor <7> ended"):
        round_trip(a)
    del b


def test_another_workers_handle_is_refused_naming_both(actor):
    h = rebeam.handle(Model())
    h[_rebeam.HANDLE_KEY]["worker"] = "elsewhere"
    h[_rebeam.HANDLE_KEY]["pid"] = 1
    with pytest.raises(handles.HandleError, match=rf"worker pid 1, not in this one \(pid {os.getpid()}\)"):
        round_trip(h)


def test_a_handle_is_made_only_in_an_actor():
    with pytest.raises(RuntimeError, match="actor's handler"):
        rebeam.handle(Model())
