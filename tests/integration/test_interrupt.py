"""Ctrl-C while the script is blocked in `call()`: the caller gets KeyboardInterrupt at once,
under `rebeam` and in library mode, and the run ends with a few clean lines and no orphans.

Ctrl-C is sent as a terminal sends it: SIGINT to the foreground process group (the test
starts the program in a session of its own and signals that group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

from helpers import REBEAM, processes_with, program_env, wait_until, write_script

#: The handler sleeps this long; the caller's KeyboardInterrupt must come well before.
HANDLER_S = 20

ACTOR = """
    import time
    import rebeam
    from rebeam import GenPy, receive

    class Slow(GenPy):
        shutdown = 30.0                   # a polite stop would wait for the whole sleep

        def __init__(self, name=None):
            self.name = name

        @receive("sleep")
        def sleep(self, source, message):
            time.sleep(message)
            return "done"
"""

CALLER = f"""
    start = time.monotonic()
    print("calling", flush=True)
    try:
        rebeam.call(target="slow", subject="sleep", message={HANDLER_S}, timeout={HANDLER_S + 10})
        print("the call returned", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted after {{time.monotonic() - start:.1f}} s", flush=True)
        raise
"""

UNDER_REBEAM = ACTOR + """
    rebeam.Supervisor(modules=[Slow(name="slow")])
""" + CALLER

LIBRARY = ACTOR + """
    rebeam.spawn(Slow(), name="slow")
""" + CALLER


def interrupt(cmd: list[str], cwd, marker: str) -> tuple[subprocess.Popen, list[str], str]:
    """Starts `cmd`, sends Ctrl-C once it is blocked in the call, and returns what it printed."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=program_env({"REBEAM_TEST_MARKER": marker}))
    out: list[str] = []
    try:
        out.append(proc.stdout.readline().strip())
        assert out == ["calling"], out
        time.sleep(0.5)                   # let the call reach the actor and block
        os.killpg(proc.pid, signal.SIGINT)
        rest, err = proc.communicate(timeout=HANDLER_S + 40)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc, out + rest.splitlines(), err


def assert_interrupted_promptly(out: list[str], err: str) -> None:
    got = [x for x in out if x.startswith("interrupted after")]
    assert got, f"no KeyboardInterrupt in the caller\nstdout: {out}\nstderr:\n{err}"
    elapsed = float(got[0].split()[2])
    assert elapsed < HANDLER_S / 2, f"KeyboardInterrupt only after {elapsed} s (the call was blocked)\n{err}"
    assert "the call returned" not in out
    assert "_Stop" not in err, err
    assert "KeyboardInterrupt" in err, err
    assert len(err.splitlines()) <= 14, f"{len(err.splitlines())} lines on stderr:\n{err}"


def test_ctrl_c_interrupts_a_blocked_call_under_rebeam(tmp_path):
    write_script(tmp_path, UNDER_REBEAM)
    marker = uuid.uuid4().hex
    proc, out, err = interrupt([REBEAM, "--workers", "1", "--shutdown-timeout", "3", "main.py"], tmp_path, marker)
    assert_interrupted_promptly(out, err)
    assert proc.returncode == 130, (proc.returncode, err)
    # Rebeam's frames are not the news: the traceback ends in the script.
    assert "rebeam/actor.py" not in err, err
    assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)


def test_ctrl_c_interrupts_a_blocked_call_in_library_mode(tmp_path):
    path = write_script(tmp_path, LIBRARY, "prog.py")
    marker = uuid.uuid4().hex
    proc, out, err = interrupt([sys.executable, str(path)], tmp_path, marker)
    assert_interrupted_promptly(out, err)
    assert proc.returncode != 0, err
    assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)
