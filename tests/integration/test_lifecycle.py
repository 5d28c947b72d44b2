"""Process lifecycle: graceful shutdown on signals, exit statuses, and no orphans in any exit path."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import pytest

from helpers import REBEAM, processes_with, run_rebeam, wait_until, write_script

# Actors busy in a handler (one stuck in a C call) while the signal arrives.
BUSY = """
    import subprocess, sys, time
    import rebeam
    from rebeam import GenPy, receive, Supervisor, cast, call

    class Sleeper(GenPy):
        def __init__(self, name):
            self.name = name
        @receive("sleep")
        def sleep(self, source, message):
            time.sleep(60)

        @receive("spawn_child")
        def spawn_child(self, source, message):
            # A grandchild of the governor, in the worker's process group.
            return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]).pid

    Supervisor(modules=[Sleeper("a"), Sleeper("b")])
    print("grandchild", call("a", "spawn_child")[1], flush=True)
    cast("a", "sleep")
    cast("b", "sleep")
    print("ready", flush=True)
    time.sleep(120)
"""


def start_busy(tmp_path):
    marker = f"rebeam-test-{uuid.uuid4().hex}"
    write_script(tmp_path, BUSY)
    proc = subprocess.Popen(
        [REBEAM, "--workers", "2", "--shutdown-timeout", "3", "main.py"],
        cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "REBEAM_TEST_MARKER": marker},
    )
    first = proc.stdout.readline()
    assert first.startswith("grandchild"), first
    assert proc.stdout.readline().strip() == "ready"
    # main process + 2 workers + 1 spare + the grandchild
    assert len(processes_with(marker)) >= 5, processes_with(marker)
    return proc, marker, int(first.split()[1])


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_shuts_down_gracefully_and_leaves_nothing(tmp_path, sig, status):
    proc, marker, _ = start_busy(tmp_path)
    try:
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == status
        err = proc.stderr.read()
        assert "shutting down" in err
        left = wait_until(lambda: not processes_with(marker), timeout=10)
        assert left, f"orphans after {sig!r}: {processes_with(marker)}"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigkill_of_the_governor_leaves_no_orphans(tmp_path):
    proc, marker, grandchild = start_busy(tmp_path)
    try:
        proc.kill()
        proc.wait(timeout=10)
        # PR_SET_PDEATHSIG kills the direct children; nothing may survive them.
        children_gone = wait_until(
            lambda: not [p for p in processes_with(marker) if "rebeam._" in p], timeout=10
        )
        assert children_gone, processes_with(marker)
    finally:
        # With the governor SIGKILLed nobody is left to kill the worker's own child: the test
        # does, so the suite leaves nothing running.
        try:
            os.kill(grandchild, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_socket_is_removed_and_status_is_zero_after_a_clean_run(tmp_path):
    r = run_rebeam(tmp_path, """
        import os
        print(os.environ["REBEAM_SOCKET"], flush=True)
    """)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(r.stdout.strip())


def test_script_sees_argv_and_main_name(tmp_path):
    r = run_rebeam(tmp_path, """
        import sys
        print(__name__, sys.argv, flush=True)
    """, "one", "--two")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "__main__ ['main.py', 'one', '--two']"


def test_sys_exit_code_becomes_the_exit_status(tmp_path):
    r = run_rebeam(tmp_path, "import sys\nsys.exit(7)\n")
    assert r.returncode == 7, r.stderr


def test_rebeam_shutdown_code(tmp_path):
    r = run_rebeam(tmp_path, """
        import rebeam
        from rebeam import GenPy, Supervisor
        class A(GenPy):
            name = "a"
        Supervisor(modules=[A()])
        rebeam.shutdown(3)
    """)
    assert r.returncode == 3, r.stderr


def test_help_teaches_the_options():
    for args in (["--help"], ["run", "--help"]):
        out = subprocess.run([REBEAM, *args], capture_output=True, text=True, timeout=10).stdout
        assert "rebeam main.py" in out or "--workers" in out
    out = subprocess.run([REBEAM, "run", "--help"], capture_output=True, text=True, timeout=10).stdout
    for option in ("--workers", "--python", "--max-message-bytes", "--shutdown-timeout", "--log-level", "REBEAM_LOG"):
        assert option in out
