"""Every example runs end to end."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import REBEAM

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


def test_every_example_is_tested():
    tested = {"quickstart"}
    present = {p.name for p in EXAMPLES.iterdir() if (p / "main.py").exists()}
    assert present <= tested, f"examples without a test: {present - tested}"
