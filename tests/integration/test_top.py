"""`rebeam ctl status --json` against a real run: a program with a supervised actor that has
crashed once and been sent messages, a bus subscription, and a host (this test) that arms it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from helpers import REBEAM, program_env, write_script

PROGRAM = '''
import os, time
import rebeam
from rebeam import GenPy, Supervisor, call, cast, receive, start
from scriptlib import retry_call

class Counter(GenPy):
    name = "counter"

    @start()
    def init(self):
        self.state["n"] = 0

    @receive("add")
    def add(self, source, n):
        self.state["n"] += n
        return self.state["n"]

    @receive("crash")
    def crash(self, source, _):
        raise ZeroDivisionError("counted to infinity")

if __name__ == "__main__":
    Supervisor(modules=[Counter()])
    rebeam.on("sensor.*", lambda topic, v: None, queue=8)
    call("counter", "crash", None)
    for i in range(5):
        retry_call("counter", "add", 1)
    print("READY", flush=True)
    while not os.path.exists("stop"):
        time.sleep(0.05)
    rebeam.shutdown(0)
'''


@pytest.fixture
def run(tmp_path):
    """The program, running; yields (its control socket, its process) and stops it after."""
    sock_dir = tempfile.mkdtemp(prefix="rbtop-", dir="/tmp")  # short: socket paths ≤ 108 bytes
    os.chmod(sock_dir, 0o700)
    socket = os.path.join(sock_dir, "ctl.sock")
    write_script(tmp_path, PROGRAM)
    proc = subprocess.Popen([REBEAM, "--workers", "2", "--control-socket", socket, "main.py"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=program_env())
    try:
        assert proc.stdout.readline().strip() == "READY", proc.stderr.read() if proc.poll() is not None else ""
        yield socket, proc
    finally:
        (tmp_path / "stop").write_text("")
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(sock_dir, ignore_errors=True)


def ctl(socket: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([REBEAM, "ctl", "--socket", socket, *args], capture_output=True, text=True, timeout=20)


def test_ctl_status_json_is_the_report_with_stable_field_names(run):
    socket, _ = run
    armed = ctl(socket, "arm")
    assert armed.returncode == 0, armed.stderr
    r = ctl(socket, "status", "--json")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["safety"] == "armed"
    assert status["version"] == 2 and status["uptime_ms"] > 0
    assert status["program"]["Script"].endswith("main.py")

    main, *workers = status["processes"]
    assert main["describe"].startswith("main process") and main["index"] == 0
    assert len(workers) == 3 and sum(w["spare"] for w in workers) == 1
    for p in status["processes"]:
        assert p["pid"] > 0 and p["usage"]["rss_bytes"] > 0 and p["usage"]["cpu_ms"] >= 0

    (tree,) = status["trees"]
    assert tree["strategy"] == "OneForOne" and tree["restarts_used"] == 1 and tree["max_restarts"] == 3
    (child,) = tree["children"]
    counter = child["Actor"]
    assert counter["name"] == "counter" and counter["restarts"] == 1
    assert "ZeroDivisionError" in counter["last_crash"] and "counted to infinity" in counter["last_crash"]
    assert counter["delivered"] == 5 and counter["mailbox"] == 0  # the new incarnation's five adds
    actor_id, place = counter["running"]
    assert actor_id > 0 and place.startswith("worker ")

    (moved,) = status["transitions"]
    assert moved["transition"] == {"from": "Disarmed", "to": "Armed", "reason": "armed by the host"}
    (sub,) = status["bus"]
    assert sub["pattern"] == "sensor.*" and sub["capacity"] == 8 and sub["queued"] == 0 and sub["dropped"] == 0
    assert sub["owner"].startswith("main process")

    # The text form is unchanged by the flag's existence.
    text = ctl(socket, "status")
    assert text.returncode == 0 and text.stdout.startswith("safety:  armed\n"), text.stdout


def test_json_is_only_for_status(run):
    socket, _ = run
    r = ctl(socket, "arm", "--json")
    assert r.returncode == 2 and "--json" in r.stderr, r.stderr
