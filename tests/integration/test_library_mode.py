"""Library mode: `import rebeam` in plain python starts a governor that dies with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid

from helpers import program_env, processes_with, wait_until

PROGRAM = """
    import os, sys, time
    import rebeam
    from rebeam import GenPy, Supervisor, call, receive

    class Counter(GenPy):
        name = "counter"

        @receive("add")
        def add(self, source, n):
            self.state["n"] = self.state.get("n", 0) + n
            return self.state["n"]

        @receive("pid")
        def pid(self, source, _):
            return os.getpid()
"""


def python(tmp_path, body: str, marker: str, **kw) -> subprocess.Popen:
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(PROGRAM) + textwrap.dedent(body))
    env = program_env({"REBEAM_TEST_MARKER": marker})
    return subprocess.Popen([sys.executable, str(path)], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def kill_parent_when_ready(proc: subprocess.Popen, marker: str) -> None:
    """Once the program prints "ready", SIGKILLs it: its governor and workers must follow."""
    try:
        assert proc.stdout.readline().startswith("ready")
        assert len(processes_with(marker)) >= 3  # the parent, the governor, its workers
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        gone = wait_until(lambda: not processes_with(marker), timeout=15)
        assert gone, processes_with(marker)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_actors_in_plain_python_and_nothing_left_after_exit(tmp_path):
    marker = f"rebeam-lib-{uuid.uuid4().hex}"
    proc = python(tmp_path, """
        Supervisor(modules=[Counter()])
        print(call("counter", "add", 2), call("counter", "add", 3), flush=True)
        print("worker is another process:", call("counter", "pid")[1] != os.getpid(), flush=True)
        c2 = rebeam.spawn(Counter(), name="c2")
        print(call(c2, "add", 10), flush=True)
    """, marker)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "('ok', 2) ('ok', 5)" in out
    assert "worker is another process: True" in out
    assert "('ok', 10)" in out
    assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)


def test_shutdown_then_use_again_starts_a_fresh_governor(tmp_path):
    marker = f"rebeam-lib-{uuid.uuid4().hex}"
    proc = python(tmp_path, """
        Supervisor(modules=[Counter()])
        print("first:", call("counter", "add", 1), flush=True)
        rebeam.shutdown(0)
        time.sleep(0.5)
        Supervisor(modules=[Counter()])
        print("second:", call("counter", "add", 1), flush=True)
    """, marker)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "first: ('ok', 1)" in out
    assert "second: ('ok', 1)" in out  # a fresh actor in a fresh runtime


def test_sigkill_of_the_parent_leaves_no_orphans(tmp_path):
    marker = f"rebeam-lib-{uuid.uuid4().hex}"
    proc = python(tmp_path, """
        Supervisor(modules=[Counter()])
        print("ready", call("counter", "add", 1), flush=True)
        time.sleep(120)
    """, marker)
    kill_parent_when_ready(proc, marker)


def test_library_mode_can_be_turned_off(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text("import rebeam\nrebeam.call('x', 'y')\n")
    env = program_env({"REBEAM_LIBRARY": "0"})
    r = subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "NotRunning" in r.stderr and "rebeam script.py" in r.stderr
    assert os.path.exists(path)


def test_sigkill_of_the_parent_mid_behaviour_leaves_no_orphans(tmp_path):
    marker = f"rebeam-lib-{uuid.uuid4().hex}"
    proc = python(tmp_path, """
        from rebeam.boc import Cown, receive, send, when
        cowns = [Cown(i) for i in range(4)]
        for c in cowns:
            @when(c)
            def spin(c):
                send("spinning", os.getpid())
                while True:                       # busy in a worker when the parent dies
                    pass
        receive("spinning", 30)
        print("ready", flush=True)
        time.sleep(120)
    """, marker)
    kill_parent_when_ready(proc, marker)


def test_a_cown_from_an_ended_runtime_is_refused_clearly(tmp_path):
    marker = f"rebeam-lib-{uuid.uuid4().hex}"
    proc = python(tmp_path, """
        from rebeam.boc import Cown, wait, when
        old = Cown(1)
        wait()
        rebeam.shutdown(0)
        time.sleep(0.5)
        @when(old)
        def stale(old):
            pass
        try:
            wait()
        except rebeam.RebeamError as e:
            print("refused:", type(e).__name__, e, flush=True)
        new = Cown(2)                             # the next use starts a fresh runtime
        @when(new)
        def fresh(new):
            return new.value * 10
        wait()
        print("fresh:", fresh.unwrap(), flush=True)
    """, marker)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "refused: InvalidRequest a behaviour scheduled earlier was refused: unknown cown" in out and "the runtime that made it has ended" in out, out
    assert "fresh: 20" in out
