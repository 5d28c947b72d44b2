"""Running real `rebeam` programs from tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
REBEAM = os.environ.get("REBEAM_BIN") or str(Path(sys.executable).with_name("rebeam"))


def write_script(tmp_path: Path, source: str, name: str = "main.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def run_rebeam(tmp_path: Path, source: str, *args: str, workers: int = 2, timeout: float = 60,
               env: dict | None = None, rebeam_args: tuple = ()) -> subprocess.CompletedProcess:
    """Writes `source` to tmp_path/main.py and runs `rebeam --workers N [rebeam_args] main.py args`."""
    write_script(tmp_path, source)
    cmd = [REBEAM, "--workers", str(workers), *rebeam_args, "main.py", *args]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
                          env=program_env(env))


def run_python(tmp_path: Path, source: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    """Writes `source` to tmp_path/prog.py and runs it with plain `python` (library mode)."""
    path = write_script(tmp_path, source, "prog.py")
    return subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout, env=program_env(env))


def program_env(extra: dict | None = None) -> dict:
    """The environment of a test program: it can `import scriptlib` (helpers for programs)."""
    extra = dict(extra or {})
    path = os.pathsep.join(p for p in (extra.pop("PYTHONPATH", None), HERE, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, **extra, "PYTHONPATH": path}


def check(r: subprocess.CompletedProcess, code: int = 0) -> None:
    assert r.returncode == code, f"exit {r.returncode}\n--- stdout ---\n{r.stdout}\n--- stderr ---\n{r.stderr}"


def processes_with(marker: str) -> list[str]:
    """Live processes whose command line or environment mentions `marker` (zombies excluded)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in env or marker.encode() in cmd:
            shown = cmd.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{pid}: {shown}")
    return found


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def lines(r: subprocess.CompletedProcess) -> list[str]:
    return r.stdout.splitlines()


def outputs(r: subprocess.CompletedProcess) -> list[str]:
    """Printed lines, without the "[worker N] " prefix that lines printed in workers get."""
    return [re.sub(r"^\[worker \d+\] ", "", x) for x in lines(r)]
