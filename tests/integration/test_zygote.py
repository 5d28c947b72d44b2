"""Workers forked from the zygote: the governor's own children, the same as workers started
afresh in everything a program can see, and still started when the zygote dies."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid

import pytest

from helpers import REBEAM, check, outputs, processes_with, program_env, run_rebeam, wait_until, write_script

# Each worker's view of itself, printed as one JSON line per worker.
SEEN = '''
import json, os, sys
import rebeam
from rebeam import GenPy, Supervisor, call, receive

class Seen(GenPy):
    def __init__(self, name):
        self.name = name

    @receive("seen")
    def seen(self, source, _):
        with open(f"/proc/{os.getppid()}/comm") as f:
            parent = f.read().strip()
        with open("/proc/self/comm") as f:
            comm = f.read().strip()
        # All but what differs from worker to worker, or from run to run.
        mine = ("REBEAM_TOKEN", "REBEAM_INDEX", "REBEAM_SOCKET", "REBEAM_GOVERNOR_PID")
        env = {k: v for k, v in os.environ.items() if k not in mine}
        return {
            "parent_is_governor": str(os.getppid()) == os.environ["REBEAM_GOVERNOR_PID"],
            "parent": parent, "comm": comm, "pgid_is_pid": os.getpgid(0) == os.getpid(),
            "env": env, "cwd": os.getcwd(), "path": sys.path, "argv": sys.argv,
            "main": getattr(sys.modules["__main__"], "__file__", None),
            "modules": sorted(m for m in sys.modules if m.startswith("rebeam")),
        }

Supervisor(modules=[Seen("a"), Seen("b")])
for name in ("a", "b"):
    print("SEEN", json.dumps(call(name, "seen")[1]), flush=True)
rebeam.shutdown(0)
'''


def seen(r) -> list[dict]:
    return [json.loads(x.split(" ", 1)[1]) for x in outputs(r) if x.startswith("SEEN ")]


def test_forked_workers_are_the_governors_children_and_see_what_fresh_ones_see(tmp_path):
    forked = run_rebeam(tmp_path, SEEN, "arg1", "--flag", rebeam_args=("--zygote", "on"))
    fresh = run_rebeam(tmp_path, SEEN, "arg1", "--flag", rebeam_args=("--zygote", "off"))
    check(forked)
    check(fresh)
    assert len(seen(forked)) == len(seen(fresh)) == 2, (forked.stdout, fresh.stdout)
    for a, b in zip(seen(forked), seen(fresh), strict=True):
        # Re-parented to the governor, in a group of its own, named as a fresh one is.
        assert a["parent_is_governor"] and a["pgid_is_pid"], a
        assert a["parent"] == b["parent"] and a["comm"] == b["comm"], (a, b)
        for key in ("env", "cwd", "path", "argv", "main"):
            assert a[key] == b[key], (key, a[key], b[key])
        # Nothing the worker loads is left out, or loaded only in forks, but what the zygote
        # imports for a first Start ahead of time.
        assert set(b["modules"]) <= set(a["modules"]), (a["modules"], b["modules"])


# Kills the zygote, then a worker: the worker is replaced (by a fresh interpreter, or a fork
# of the next zygote), its actor restarts there, and a new zygote is up.
ZYGOTE_DIES = '''
import os, signal, time
import rebeam
from rebeam import GenPy, Supervisor, call, receive
from scriptlib import retry_call, wait_for
from scriptlib import zygotes_of

class Pid(GenPy):
    name = "pid"

    @receive("pid")
    def pid(self, source, _):
        return os.getpid()

governor = os.getppid()
Supervisor(modules=[Pid()], max_restarts=10)
first = wait_for("the first zygote", lambda: zygotes_of(governor))
os.kill(first[0], signal.SIGKILL)
wait_for("a second zygote", lambda: [z for z in zygotes_of(governor) if z != first[0]])
for round in range(3):
    worker = call("pid", "pid")[1]
    os.kill(worker, signal.SIGKILL)
    wait_for("the restart", lambda: retry_call("pid", "pid")[1] != worker)
    print("restarted", round, flush=True)
rebeam.shutdown(0)
'''


def test_a_dead_zygote_is_replaced_and_workers_still_start(tmp_path):
    r = run_rebeam(tmp_path, ZYGOTE_DIES)
    check(r)
    assert [x for x in outputs(r) if x.startswith("restarted")] == [f"restarted {i}" for i in range(3)], r.stdout


@pytest.mark.parametrize("zygote", ["on", "off"])
def test_sigkill_of_the_governor_leaves_no_worker_and_no_zygote(tmp_path, zygote):
    marker = f"rebeam-test-{uuid.uuid4().hex}"
    write_script(tmp_path, "import time\nfrom rebeam import call\nprint('up', flush=True)\ntime.sleep(120)\n")
    proc = subprocess.Popen(
        [REBEAM, "--workers", "2", "main.py"], cwd=tmp_path, text=True, stdout=subprocess.PIPE,
        env=program_env({"REBEAM_TEST_MARKER": marker, "REBEAM_ZYGOTE": zygote}),
    )
    try:
        assert proc.stdout.readline().strip() == "up"
        # The main process, two workers and the spare (and the zygote, when there is one).
        assert wait_until(lambda: len(processes_with(marker)) >= 4 + (zygote == "on")), processes_with(marker)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)
    finally:
        if proc.poll() is None:
            proc.kill()
