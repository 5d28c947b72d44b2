"""`rebeam ctl status --json` and `rebeam top` against a real run: a program with a supervised
actor that has crashed once and been sent messages, a bus subscription, and a host (this
test) that arms it. The view is driven for real in a tmux session (send-keys, capture-pane);
its drawing itself is pinned by the snapshot tests in crates/rebeam-cli/src/view_tests.rs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from helpers import REBEAM, program_env, wait_until, write_script

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
    # Messages that went straight between processes are counted by their receiver, which
    # reports them within a tenth of a second: read until that report is in.
    deadline = time.monotonic() + 10
    while True:
        r = ctl(socket, "status", "--json")
        assert r.returncode == 0, r.stderr
        status = json.loads(r.stdout)
        counter = status["trees"][0]["children"][0]["Actor"]
        if counter["delivered"] >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status["safety"] == "armed"
    assert status["version"] == 3 and status["uptime_ms"] > 0
    assert status["program"]["Script"].endswith("main.py")

    main, *workers = status["processes"]
    assert main["describe"].startswith("main process") and main["index"] == 0
    assert len(workers) == 3 and sum(w["spare"] for w in workers) == 1
    for p in status["processes"]:
        assert p["pid"] > 0 and p["usage"]["rss_bytes"] > 0 and p["usage"]["cpu_ms"] >= 0
        assert p["cowns"] == 0  # layout 3: the cowns each process holds (this program makes none)

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


# Volatile fields (pids, actor ids, times, sizes, rates) are masked before comparing the screen.
VOLATILE = re.compile(r"\d+(\.\d+)?")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (test.sh installs it)")
def test_top_runs_in_a_real_terminal_refreshes_resizes_and_quits_on_q(run):
    socket, _ = run
    session = f"rebeam-top-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", session]
    command = f"{REBEAM} top --socket {socket} --interval 0.2; echo TOP-EXITED-$?; sleep 30"
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "110", "-y", "32", command], check=True)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    try:
        wait_until(lambda: "'counter' (Counter)" in screen() and "safety" in screen(), timeout=20)
        shown = screen()
        assert "supervision tree" in shown and "processes" in shown and "bus" in shown, shown
        assert "sensor.*" in shown and "ZeroDivisionError" in shown, shown
        masked = VOLATILE.sub("N", shown)
        assert "main process" in masked and "worker N (spare)" in masked, masked
        # Arming shows up on a later refresh, in the safety pane.
        assert ctl(socket, "arm").returncode == 0
        wait_until(lambda: "disarmed → armed: armed by the host" in screen(), timeout=10)
        # A narrower window redraws to fit.
        subprocess.run([*tmux, "resize-window", "-t", session, "-x", "70", "-y", "24"], check=True)
        wait_until(lambda: all(len(line) <= 70 for line in screen().splitlines()) and "rebeam top" in screen(),
                   timeout=10)
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True)
        wait_until(lambda: "TOP-EXITED-0" in screen(), timeout=10)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
