"""What `import rebeam` and a worker's start cost: modules only some programs need load on
first use, and the names that load them still work as before."""

import subprocess
import sys

import pytest

import rebeam

# Loaded on first use, never by `import rebeam`, a worker's start or the main process's.
LATER = ("concurrent.futures", "asyncio", "runpy", "rebeam.futures", "rebeam.boc")


def loaded_after(code: str, later: tuple = LATER) -> list[str]:
    probe = f"import sys\n{code}\nprint(sorted(m for m in {later!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(out.stdout)


def test_the_package_the_worker_and_the_main_process_leave_them_for_later():
    assert loaded_after("import rebeam") == []
    assert loaded_after("import rebeam._worker") == []
    # The main process's events thread, waiting for its first command.
    events = (
        "import threading, time\nimport rebeam._main\n"
        "class Conn:\n    def next_command(self):\n        threading.Event().wait()\n"
        "rebeam._main.start_events(Conn())\ntime.sleep(0.2)"
    )
    # The worker's machinery is the workers' own.
    assert loaded_after(events, LATER + ("rebeam._worker",)) == []


# What the main process no longer imports before the script's first line: each of these costs
# milliseconds (re, inspect, ast... behind them) on the way to every run's first reply, and a
# script that needs one imports it itself.
STDLIB_LATER = ("typing", "dataclasses", "inspect", "pickle", "re", "traceback", "queue", "logging")


def test_the_main_process_reaches_the_script_without_the_heavy_stdlib_modules():
    assert loaded_after("import rebeam._main", STDLIB_LATER) == []


def test_process_ids_and_children_keep_frozen_dataclass_semantics():
    import pickle

    pid = rebeam.ProcessID(3, "x")
    assert pid == rebeam.ProcessID(3, "x") != rebeam.ProcessID(3, "y")
    assert pid != (3, "x", None) and hash(pid) == hash(rebeam.ProcessID(3, "x"))
    assert {pid: 1}[rebeam.ProcessID(3, "x")] == 1
    assert (pid.id, pid.name, pid.node) == (3, "x", None)
    assert repr(rebeam.ProcessID(3, "x", node="n1")) == "ProcessID(3, 'x', node='n1')"
    assert pickle.loads(pickle.dumps(pid)) == pid
    match pid:
        case rebeam.ProcessID(3, name):
            assert name == "x"
    with pytest.raises(AttributeError, match="cannot assign to field 'id'"):
        pid.id = 4
    with pytest.raises(AttributeError, match="cannot delete field 'name'"):
        del pid.name

    c = rebeam.child(print, name="p", restart="transient")
    assert c == rebeam.child(print, name="p", restart="transient") != rebeam.child(print, name="q")
    assert hash(c) == hash(rebeam.child(print, name="p", restart="transient"))
    assert (c.spec, c.name, c.restart, c.node) == (print, "p", "transient", None)
    assert repr(c).startswith("Child(spec=<built-in function print>, name='p', restart='transient', shutdown=")
    with pytest.raises(AttributeError, match="cannot assign to field 'name'"):
        c.name = "other"
    assert rebeam.Response("ok", 1) == ("ok", 1) and rebeam.Response("ok", 1).value == 1
    assert rebeam.Down(1, pid, ("normal", None)).pid == pid


def test_lazy_names_resolve_to_their_modules_and_are_listed():
    from rebeam import acall, acast, call_async
    from rebeam import futures

    assert (call_async, acall, acast) == (futures.call_async, futures.acall, futures.acast)
    assert {"call_async", "acall", "acast"} <= set(dir(rebeam))
    assert all(hasattr(rebeam, name) for name in rebeam.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rebeam.nope  # noqa: B018
