"""Every example runs end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REBEAM, outputs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(example: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([REBEAM, "--workers", "2", "main.py", *args], cwd=EXAMPLES / example,
                          capture_output=True, text=True, timeout=120)


def test_quickstart_survives_a_crashing_parser():
    r = run("quickstart")
    assert r.returncode == 0, r.stderr
    assert "parser crashed on 'this line is broken'" in r.stdout
    assert "parsed {'city': 'Athens', 'temp': 31.7}" in r.stdout  # work goes on after the crash
    assert "summary: {'records': 4, 'mean': 25.82}" in r.stdout
    assert "CRASH REPORT" in r.stderr and "ValueError" in r.stderr


def test_quickstart_survives_a_segfaulting_worker():
    r = run("quickstart", "--segfault")
    assert r.returncode == 0, r.stderr
    assert "segfault: error, ActorDown" in r.stdout and "SIGSEGV" in r.stdout
    assert "parser restarted in a fresh worker" in r.stdout
    assert "parsed {'city': 'Cairo', 'temp': 33.0}" in r.stdout  # serving again after the segfault
    assert "summary: {'records'" in r.stdout


def test_robot_moves_only_while_armed():
    # host.py is the host: it runs `rebeam main.py` and answers its requests with `rebeam ctl`.
    r = subprocess.run([sys.executable, "host.py", "--workers", "2"], cwd=EXAMPLES / "robot", capture_output=True,
                       text=True, timeout=120, env={**os.environ, "REBEAM_BIN": REBEAM})
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    # Refused while disarmed: the host's own move, and the policy's targets.
    assert "host: the system starts disarmed" in out
    assert "host: move while disarmed -> error: SafetyError" in out
    assert any(x.startswith("[motor] target ") and x.endswith(" refused: the system is disarmed") for x in out)
    # Moving while armed: the motor follows the policy's targets.
    assert "host: $ rebeam ctl arm -> disarmed → armed: armed by the host; safety: armed" in out
    assert any(x.startswith("[motor] at ") for x in out), r.stdout
    # Stopped mid-move on disarm, and held there while the policy keeps planning.
    assert "host: $ rebeam ctl disarm -> armed → disarming: disarm requested by the host; safety: disarming" in out
    stopped = [x for x in out if x.startswith("[motor] stopped by the disarm at ")]
    assert len(stopped) == 1, r.stdout
    at = stopped[0].split(" at ", 1)[1].split()[0]
    assert f"host: the motor stopped at {at}" in out
    assert f"host: the motor holds at {at} (still), safety disarmed" in out
    assert sum(x.endswith("refused: the system is disarmed") for x in out) == 2
    assert "safety: disarming → disarmed (every gated task stopped)" in r.stderr
    assert "killing it" not in r.stderr  # the interrupt stopped it; no kill was needed


@pytest.mark.parametrize("python", [False, True], ids=["rebeam", "plain-python"])
def test_parallel_map_survives_a_task_that_kills_its_worker(python):
    cmd = [sys.executable, "main.py"] if python else [REBEAM, "--workers", "2", "main.py"]
    r = subprocess.run(cmd, cwd=EXAMPLES / "parallel_map", capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out.count("task 13000: its worker crashed; the rest go on") == 1, out
    assert [x for x in out if x.startswith("progress:")] == [f"progress: {n}/40" for n in (10, 20, 30, 40)]
    assert "finished: 39 of 40 tasks" in out
    assert "primes below 40000: 4203" in out
    assert "primes below 100..1000 by 100: [25, 46, 62, 78, 95, 109, 125, 139, 154, 168]" in out


def test_every_example_is_tested():
    tested = {"quickstart", "robot", "parallel_map"}
    present = {p.name for p in EXAMPLES.iterdir() if (p / "main.py").exists()}
    assert present <= tested, f"examples without a test: {present - tested}"


# bocpy's own examples, copied from bocpy 0.14 with only the import changed (examples/bocpy).
BOCPY = EXAMPLES / "bocpy"


def run_bocpy_example(name: str, entry: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [REBEAM, "--workers", "2", f"{name}.py"] if entry == "rebeam" else [sys.executable, f"{name}.py"]
    env = {**os.environ, "REBEAM_BIN": REBEAM}
    return subprocess.run([*cmd, *args], cwd=BOCPY, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("entry", ["rebeam", "python"])
def test_bocpys_bank_example_runs_unchanged(entry):
    r = run_bocpy_example("bank", entry)
    assert r.returncode == 0, r.stderr
    out = outputs(r)
    assert "src (before transfer): Account(name='Alice', balance=100, frozen=False)" in out
    assert "attempting to transfer 50 from Alice to Bob" in out
    assert "success" in out
    assert "src (after transfer): Account(name='Alice', balance=50, frozen=False)" in out
    assert "dst (after transfer): Account(name='Bob', balance=50, frozen=False)" in out


@pytest.mark.parametrize("entry", ["rebeam", "python"])
def test_bocpys_dining_philosophers_run_unchanged(entry):
    r = run_bocpy_example("dining_philosophers", entry, "--hunger", "3", "--philosophers", "6")
    assert r.returncode == 0, r.stderr
    out = outputs(r)
    # Every philosopher eats `hunger` times; each fork is shared by two of them.
    for i in range(6):
        assert out.count(f"Philosopher {i} has taken a bite") == 3, out
        assert f"Philosopher {i} is full" in out
    assert [x for x in out if x.startswith("Fork ")] == [f"Fork {i}: uses=6, hunger=3" for i in range(6)]


@pytest.mark.parametrize("python", [False, True], ids=["rebeam", "plain-python"])
def test_async_calls_has_many_calls_in_flight_an_async_service_and_reraises(python):
    cmd = [sys.executable, "async_calls.py"] if python else [REBEAM, "--workers", "2", "async_calls.py"]
    r = subprocess.run(cmd, cwd=EXAMPLES, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert "with futures: {'Athens': 31.7, 'Cairo': 33.0, 'Lima': 19.2, 'Oslo': 12.5}" in out
    assert "with asyncio: {'Athens': 31.7, 'Cairo': 33.0, 'Oslo': 12.5, 'Lima': 19.2}" in out
    assert "the event loop kept running: True" in out and "note delivered: True" in out
    assert "hottest: Cairo" in out  # from the async def handler that awaits the others
    assert "hottest of each pair, served together: ['Athens', 'Cairo', 'Lima']" in out  # max_concurrency
    assert "unknown city: error, KeyError 'Atlantis', raised remotely (RemoteError)" in out
