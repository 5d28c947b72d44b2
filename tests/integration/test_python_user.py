"""`rebeam --python-user USER`: the hard boundary. The script and the workers run as another
user, so the kernel itself keeps them from the control socket; the harness (root here) is the
host. Needs root, and an interpreter that user may run: the tests use the system's
/usr/bin/python3 with this environment's site-packages on PYTHONPATH (a virtualenv's python
may sit in a directory only its owner can enter)."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

import cloudpickle
import pytest

import rebeam
from helpers import REBEAM, write_script
from hostlib import Host

SYSTEM_PYTHON = "/usr/bin/python3"
NOBODY = 65534
SITE = os.pathsep.join(sorted({str(Path(m.__file__).resolve().parents[1]) for m in (rebeam, cloudpickle)}))

PROGRAM = '''
import os, socket, stat, subprocess, sys, time
import rebeam
from rebeam import GenPy, Supervisor, call, receive

CONTROL, REBEAM_BIN = sys.argv[1], sys.argv[2]


class Who(GenPy):
    name = "who"

    @receive("ids")
    def ids(self, source, _):
        return os.getuid(), os.getgid(), os.getgroups()


def shown(path):
    st = os.stat(path)
    return f"{oct(stat.S_IMODE(st.st_mode))} uid {st.st_uid}"


if __name__ == "__main__":
    Supervisor(modules=[Who()])
    print("main ids:", (os.getuid(), os.getgid(), os.getgroups()), flush=True)
    print("actor ids:", call("who", "ids")[1], flush=True)
    path = os.environ["REBEAM_SOCKET"]
    print("process socket:", shown(path), "| its directory:", shown(os.path.dirname(path)), flush=True)
    r = subprocess.run([REBEAM_BIN, "ctl", "--socket", CONTROL, "arm"], capture_output=True, text=True, timeout=20)
    print("ctl arm from python:", r.returncode, r.stderr.strip(), flush=True)
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(CONTROL)
        print("raw connect: connected", flush=True)
    except OSError as e:
        print("raw connect:", type(e).__name__, flush=True)
    print("state:", rebeam.safety_state(), flush=True)
    print("ready", flush=True)
    end = time.monotonic() + 30
    while not rebeam.armed() and time.monotonic() < end:
        time.sleep(0.01)
    print("armed seen:", rebeam.armed(), flush=True)
    rebeam.shutdown(0)
'''


def usable_by_nobody() -> str | None:
    """Why this machine cannot run the test, or None."""
    if os.getuid() != 0 or shutil.which("setpriv") is None or not os.path.exists(SYSTEM_PYTHON):
        return "needs root, setpriv and /usr/bin/python3"
    probe = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", SYSTEM_PYTHON,
                            "-c", "import rebeam._rebeam, cloudpickle"], capture_output=True, text=True, timeout=30,
                           env={**os.environ, "PYTHONPATH": SITE})
    return None if probe.returncode == 0 else f"user nobody cannot import rebeam with {SYSTEM_PYTHON}: {probe.stderr}"


def read_until(run: subprocess.Popen, marker: bytes, timeout: float = 60) -> bytes:
    """What the run printed up to `marker`, read straight from the pipe (a buffered readline
    would hide lines from select)."""
    got = b""
    while marker not in got:
        ready, _, _ = select.select([run.stdout], [], [], timeout)  # never wait forever
        chunk = os.read(run.stdout.fileno(), 65536) if ready else b""
        assert chunk, f"the run ended or went quiet before {marker!r}: {got!r}"
        got += chunk
    return got


def test_python_runs_as_another_user_and_cannot_reach_the_control_socket():
    why = usable_by_nobody()
    if why:
        pytest.skip(why)
    here = tempfile.mkdtemp(prefix="rbu-", dir="/tmp")
    os.chmod(here, 0o755)  # the script must be readable by nobody
    try:
        write_script(Path(here), PROGRAM)
        with Host() as host:
            cmd = [REBEAM, "--workers", "2", "--python", SYSTEM_PYTHON, "--python-user", "nobody",
                   *host.rebeam_args(), "main.py", host.named, REBEAM]
            run = subprocess.Popen(cmd, cwd=here, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env={**os.environ, "PYTHONPATH": SITE})
            try:
                early = read_until(run, b"ready\n")
                arm = host.ctl("arm")
                rest, err = run.communicate(timeout=60)
                out, err = (early + rest).decode(), err.decode()
            finally:
                if run.poll() is None:
                    run.kill()
                    run.wait(10)
        out = out.splitlines()
        assert run.returncode == 0, f"{out}\n{err}"
        assert f"main ids: ({NOBODY}, {NOBODY}, [])" in out
        assert f"actor ids: ({NOBODY}, {NOBODY}, [])" in out
        socket_line = next(x for x in out if x.startswith("process socket:"))
        assert socket_line == f"process socket: 0o600 uid {NOBODY} | its directory: 0o711 uid 0", socket_line
        assert any(x.startswith("ctl arm from python: 1 rebeam ctl: cannot connect to ") and "Permission denied" in x
                   for x in out), out
        assert "raw connect: PermissionError" in out
        assert "state: disarmed" in out
        assert arm.returncode == 0 and "disarmed → armed: armed by the host" in arm.stdout, arm
        assert "armed seen: True" in out, f"{out}\n{err}"
        dirs = [x for x in os.listdir("/tmp") if x.startswith(f"rebeam-py-{run.pid}-")]
        assert dirs == [], dirs  # the process socket's directory went with the run
    finally:
        shutil.rmtree(here, ignore_errors=True)


def test_python_user_needs_the_right_to_change_user(tmp_path):
    write_script(tmp_path, "print('ran')\n")
    r = subprocess.run([REBEAM, "--python-user", "no-such-user-here", "main.py"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "ran" not in r.stdout
    assert r.stderr.strip() == ("rebeam: --python-user no-such-user-here: there is no such user on this machine "
                                "(see /etc/passwd)")
    if os.getuid() == 0 and shutil.which("setpriv"):
        here = tempfile.mkdtemp(prefix="rbu-", dir="/tmp")
        os.chmod(here, 0o755)
        try:
            write_script(Path(here), "print('ran')\n")
            r = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", REBEAM,
                                "--python-user", "root", "main.py"], cwd=here, capture_output=True, text=True, timeout=30)
            if "Permission denied" not in r.stderr:  # nobody could run rebeam at all
                assert r.returncode == 2 and "ran" not in r.stdout
                assert ("--python-user root: changing the Python processes' user needs rebeam to run as root or with "
                        f"CAP_SETUID and CAP_SETGID (this is uid {NOBODY})") in r.stderr
        finally:
            shutil.rmtree(here, ignore_errors=True)
