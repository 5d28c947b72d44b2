"""`rebeam --restart on-failure|always main.py` runs the script again when it ends.

Each program counts its runs in a file beside it, so what happened is read, not timed.
"""

from __future__ import annotations

from helpers import check, run_rebeam

COUNT = """\
import os, pathlib, sys
runs_file = pathlib.Path("runs")
run = int(runs_file.read_text() or 0) + 1 if runs_file.exists() else 1
runs_file.write_text(str(run))
print(f"run {run}", flush=True)
"""


def runs(tmp_path) -> int:
    return int((tmp_path / "runs").read_text())


def test_on_failure_restarts_a_raising_script_until_it_succeeds(tmp_path):
    r = run_rebeam(tmp_path, COUNT + """
if run < 3:
    raise RuntimeError(f"boom on run {run}")
print("done", flush=True)
""", rebeam_args=("--restart", "on-failure"))
    check(r)
    assert runs(tmp_path) == 3
    assert r.stdout.count("run ") == 3 and "done" in r.stdout
    assert r.stderr.count("restarting") == 2, r.stderr
    assert "RuntimeError: boom on run 1" in r.stderr  # each run's traceback is shown
    assert "restart 1 of at most 3 within 5 s" in r.stderr and "restart 2 of at most 3" in r.stderr


def test_on_failure_gives_up_past_the_intensity_with_the_last_status(tmp_path):
    r = run_rebeam(tmp_path, COUNT + "sys.exit(7)\n", rebeam_args=("--restart", "on-failure", "--max-restarts", "1"))
    assert r.returncode == 7, r.stderr
    assert runs(tmp_path) == 2
    assert "giving up" in r.stderr and "more than 1 times within 5 s" in r.stderr, r.stderr


def test_always_restarts_a_clean_exit_too(tmp_path):
    r = run_rebeam(tmp_path, COUNT, rebeam_args=("--restart", "always", "--max-restarts", "2"))
    assert r.returncode == 0, r.stderr
    assert runs(tmp_path) == 3
    assert "giving up" in r.stderr


def test_never_is_the_default(tmp_path):
    r = run_rebeam(tmp_path, COUNT + "raise SystemExit(4)\n")
    assert r.returncode == 4
    assert runs(tmp_path) == 1
    assert "restarting" not in r.stderr


def test_a_restart_stops_what_the_script_started_and_it_starts_again(tmp_path):
    r = run_rebeam(tmp_path, COUNT + """
import rebeam
from rebeam import GenPy, Supervisor, call, receive, response_ok


class Echo(GenPy):
    name = "echo"

    @receive("hi")
    def hi(self, source, message):
        return response_ok((message, os.getpid()))


if __name__ == "__main__":
    Supervisor(modules=[Echo()])
    print("reply", call("echo", "hi", run)[1][0], flush=True)
    if run == 1:
        os.kill(os.getpid(), 9)  # the main process dies; its tree must go with it
    rebeam.shutdown(0)
""", rebeam_args=("--restart", "on-failure"))
    check(r)
    assert runs(tmp_path) == 2
    assert "reply 1" in r.stdout and "reply 2" in r.stdout, r.stdout  # the name was free again
    assert "restarting" in r.stderr and "SIGKILL" in r.stderr, r.stderr


def test_rebeam_shutdown_is_not_a_failure_to_recover_from(tmp_path):
    r = run_rebeam(tmp_path, COUNT + "import rebeam\nrebeam.shutdown(3)\n", rebeam_args=("--restart", "always"))
    assert r.returncode == 3
    assert runs(tmp_path) == 1


def test_bad_restart_options_are_refused(tmp_path):
    for args in (("--restart", "sometimes"), ("--restart-window", "0"), ("--max-restarts", "-1")):
        r = run_rebeam(tmp_path, "print('never runs')\n", rebeam_args=args)
        assert r.returncode == 2, (args, r.stderr)
        assert "never runs" not in r.stdout
