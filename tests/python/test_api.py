"""The Python API surface, without a running governor."""

from __future__ import annotations

import io
import pickle
import threading
import traceback
import types

import pytest

import rebeam
from rebeam import GenPy, Supervisor, child, receive, response_error, response_ok, start
from rebeam import _runtime
from rebeam._output import PrefixedStream
from rebeam.supervisor import child_spec


class Counter(GenPy):
    def __init__(self, name=None, initial=0):
        self.name, self.initial = name, initial

    @start()
    def init(self):
        self.state["count"] = self.initial

    @receive("increment")
    def increment(self, source, message):
        self.state["count"] += message.get("by", 1)
        return response_ok(self.state["count"])

    @receive()
    def other(self, source, message):
        return response_error("unknown subject")


class Special(Counter):
    @receive("reset")
    def reset(self, source, message):
        self.state["count"] = 0


def a_task():
    return 42


def test_handlers_are_collected_through_inheritance():
    subjects, catch_all, start_name = Special._rebeam_handlers()
    assert subjects == {"increment": "increment", "reset": "reset"}
    assert catch_all == "other"
    assert start_name == "init"


def test_bare_receive_without_parentheses_is_a_catch_all():
    class A(GenPy):
        @receive
        def anything(self, source, message):
            return message

    assert A._rebeam_handlers() == ({}, "anything", None)


def test_responses():
    assert response_ok(3) == ("ok", 3)
    assert response_error("no") == ("error", "no")
    assert response_ok().value is None


def test_state_is_per_incarnation_and_never_pickled():
    c = Counter(name="c", initial=5)
    c.state["count"] = 99
    copy = pickle.loads(pickle.dumps(c))
    assert copy.name == "c" and copy.initial == 5
    assert copy.state == {}


def test_child_specs_for_every_kind(tmp_path):
    spec = child_spec(Counter(name="counter"))
    assert spec["kind"] == "actor" and spec["name"] == "counter" and spec["restart"] == "permanent"
    assert spec["shutdown_ms"] == 5000

    spec = child_spec(a_task)
    assert spec["kind"] == "task" and spec["label"] == "a_task"

    spec = child_spec(lambda: 1)  # closures and lambdas travel by value
    assert spec["kind"] == "task"

    spec = child_spec(types.ModuleType("some_module"))
    assert spec["kind"] == "task" and spec["label"] == "some_module"

    script = tmp_path / "worker_script.py"
    script.write_text("print('hi')\n")
    spec = child_spec(str(script))
    assert spec["kind"] == "script" and spec["path"] == str(script)

    spec = child_spec(child(a_task, name="t", restart="transient", shutdown=None))
    assert (spec["name"], spec["restart"], spec["shutdown_ms"]) == ("t", "transient", None)
    assert child_spec(child(a_task, shutdown=0))["shutdown_ms"] == 0


def test_a_child_s_node_is_a_name_a_list_or_any_and_a_supervisor_has_none():
    assert "node" not in child_spec(a_task), "none given: the supervisor's own node"
    assert child_spec(child(a_task, node="b"))["node"] == "b"
    assert child_spec(child(a_task, node=("b", "c")))["node"] == ["b", "c"]
    assert child_spec(child(a_task, node=rebeam.ANY_NODE))["node"] == rebeam.ANY_NODE
    for bad in ([], [1], 3):
        with pytest.raises(ValueError, match="node="):
            child(a_task, node=bad)
    with pytest.raises(TypeError, match="runs on its parent's node"):
        child_spec(child(Supervisor(modules=[a_task]), node="b"))
    with pytest.raises(TypeError, match="give one node's name"):
        rebeam.spawn(a_task, node=["b", "c"])


def test_nested_supervisor_outside_the_main_process_is_only_a_description():
    inner = Supervisor(modules=[Counter(name="a")], strategy=rebeam.REST_FOR_ONE, max_restarts=1, max_seconds=2)
    assert inner.tree_id is None  # not in a rebeam main process: nothing starts
    spec = child_spec(inner)
    assert spec["kind"] == "tree"
    assert spec["tree"]["strategy"] == "rest_for_one"
    assert spec["tree"]["max_restarts"] == 1 and spec["tree"]["max_seconds_ms"] == 2000


@pytest.mark.parametrize(
    "bad, error",
    [
        (Counter, "is a class: give an instance"),
        (42, "cannot supervise int"),
        ("/no/such/script.py", "does not exist"),
    ],
)
def test_bad_children_are_refused_with_advice(bad, error):
    with pytest.raises((TypeError, FileNotFoundError), match=error):
        child_spec(bad)


def test_bad_options():
    with pytest.raises(ValueError, match="strategy must be one of"):
        Supervisor(modules=[], strategy="one_for_some")
    with pytest.raises(ValueError, match="restart must be one of"):
        child(a_task, restart="sometimes")
    with pytest.raises(ValueError, match="max_restarts"):
        Supervisor(modules=[], max_restarts=-1)


def test_calls_outside_rebeam_say_what_to_do():
    with pytest.raises(rebeam.NotRunning, match="rebeam script.py"):
        rebeam.call("counter", "increment", {})
    with pytest.raises(TypeError, match="name \\(str\\) or its ProcessID"):
        rebeam.call(3.5, "x")


def test_unpicklable_messages_name_the_type():
    with pytest.raises(rebeam.SerializationError, match="lock"):
        _runtime.dumps({"l": threading.Lock()}, "the message")
    data, buffers = _runtime.dumps(lambda x: x + 1, "a lambda")  # by value, via cloudpickle
    assert _runtime.loads(data, buffers)(1) == 2


def test_large_buffers_travel_out_of_band():
    np = pytest.importorskip("numpy")
    a = np.arange(1_000_000, dtype=np.float64)
    data, buffers = _runtime.dumps(a, "an array")
    assert len(data) < 1000 and len(buffers) == 1
    back = _runtime.loads(data, [bytearray(b) for b in buffers])
    assert (back == a).all()
    back[0] = 7  # writable, like the original


def test_error_hierarchy():
    assert issubclass(rebeam.CallTimeout, TimeoutError)
    assert issubclass(rebeam.MessageTooLarge, ValueError)
    assert issubclass(rebeam.SerializationError, TypeError)
    for name in rebeam.errors.__all__:
        assert issubclass(getattr(rebeam, name), rebeam.RebeamError)
    e = rebeam.RemoteError("division by zero")
    e.remote_type = "ZeroDivisionError"
    assert str(e) == "ZeroDivisionError: division by zero"


def test_remote_error_repr_and_note_name_the_remote_type_and_traceback():
    e = rebeam.RemoteError("'banana'")
    e.remote_type = "KeyError"
    # ("error", err) prints the repr: it must say KeyError, not only 'banana'.
    assert repr(e) == "RemoteError(\"KeyError: 'banana'\")"
    tb = 'Traceback (most recent call last):\n  File "/x/main.py", line 3, in f\nKeyError: \'banana\'\n'
    e = rebeam.StartError._from_remote("actor 'a' failed to start: KeyError: 'banana'", "KeyError", tb)
    assert (e.remote_type, e.remote_traceback) == ("KeyError", tb)
    shown = "".join(traceback.format_exception(e))
    assert 'File "/x/main.py", line 3, in f' in shown  # an uncaught StartError shows where


def test_prefixed_output_writes_whole_lines_with_the_actor_name():
    raw = io.StringIO()
    out = PrefixedStream(raw, "worker 1")
    out.write("no actor ")
    out.write("here\n")
    _runtime.set_current(rebeam.ProcessID(4, "counter"))
    try:
        out.write("a\nb\n")
    finally:
        _runtime.set_current(None)
    assert raw.getvalue() == "[worker 1] no actor here\n[counter] a\n[counter] b\n"


def test_prefixed_output_keeps_other_threads_unfinished_lines_for_exit():
    raw = io.StringIO()
    out = PrefixedStream(raw, "worker 1")

    def actor():
        _runtime.set_current(rebeam.ProcessID(4, "counter"))
        out.write("no newline")

    t = threading.Thread(target=actor)
    t.start()
    t.join()
    out.flush()  # this thread has nothing pending: the actor's line stays pending
    assert raw.getvalue() == ""
    out.flush_all()  # what a worker does on its way out
    assert raw.getvalue() == "[counter] no newline\n"


def test_process_ids():
    assert rebeam.ProcessID(3, "x") == rebeam.ProcessID(3, "x")
    assert repr(rebeam.ProcessID(3)) == "ProcessID(3)"
    assert hash(rebeam.ProcessID(3, "x")) == hash(rebeam.ProcessID(3, "x"))
