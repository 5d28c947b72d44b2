"""The host's side of a test run: the person at a terminal who arms and disarms.

No Python process of a run may change the safety state, so a test program that needs the
system armed *asks the harness*: ``ctl("arm")`` in the program sends the request over a
desk socket to the pytest process (`Host`), which runs ``rebeam ctl --socket PATH arm``
itself, from outside the run, and sends back what it printed. The program only stands in
for what a person would see; the harness is the person. The control socket's path is the
harness's (``--control-socket``, or found in the runtime directory): the program never
learns it.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

REBEAM = os.environ.get("REBEAM_BIN") or str(Path(sys.executable).with_name("rebeam"))
DESK = "REBEAM_TEST_DESK"


class Host:
    """Serves a run's requests for `rebeam ctl`. With ``runtime_dir`` (an XDG_RUNTIME_DIR),
    the control socket is the governor's default one there; otherwise the host names it
    with ``--control-socket``."""

    def __init__(self, runtime_dir: str | None = None):
        self.dir = tempfile.mkdtemp(prefix="rbh-", dir="/tmp")  # short: socket paths ≤ 108 bytes
        self.runtime_dir = runtime_dir
        self.named = None if runtime_dir else os.path.join(self.dir, "ctl.sock")
        self.desk = os.path.join(self.dir, "desk.sock")
        self.requests: list[dict] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.desk)
        self._server.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc) -> None:
        # Wake the serving thread and wait for it before the fd is closed: a thread still
        # about to call accept() on a closed fd number would accept on whatever socket the
        # next Host gets that number for, and answer the next test's program as this host.
        try:
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(10)
        self._server.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def rebeam_args(self) -> tuple:
        return ("--control-socket", self.named) if self.named else ()

    def env(self) -> dict:
        return {DESK: self.desk}

    def control_socket(self) -> str:
        if self.named:
            return self.named
        found = glob.glob(os.path.join(self.runtime_dir, "rebeam", "ctl-*.sock"))
        assert len(found) == 1, f"expected one control socket, found {found}"
        return found[0]

    def ctl(self, action: str, prefix: tuple = ()) -> subprocess.CompletedProcess:
        cmd = [*prefix, REBEAM, "ctl", "--socket", self.control_socket(), action]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            # A program that died mid-request costs its own answer, never the host.
            with conn, conn.makefile("rwb") as f, contextlib.suppress(OSError, ValueError):
                request = json.loads(f.readline())
                self.requests.append(request)
                f.write(json.dumps(self._answer(request)).encode() + b"\n")
                f.flush()

    def _answer(self, request: dict) -> dict:
        op = request["op"]
        if op == "ctl":
            r = self.ctl(request["action"], tuple(request.get("prefix", ())))
            return {"returncode": r.returncode, "stdout": r.stdout, "stderr": r.stderr}
        path = self.control_socket()
        if op == "stat":
            st, dir_st = os.stat(path), os.stat(os.path.dirname(path))
            return {"path": path, "mode": stat.S_IMODE(st.st_mode), "dir_mode": stat.S_IMODE(dir_st.st_mode),
                    "owner_is_me": st.st_uid == os.getuid()}
        if op == "chmod":
            os.chmod(os.path.dirname(path), request["dir_mode"])
            os.chmod(path, request["mode"])
            return {}
        return {"error": f"unknown op {op!r}"}


def _ask(request: dict) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.environ[DESK])
        with s.makefile("rwb") as f:
            f.write(json.dumps(request).encode() + b"\n")
            f.flush()
            return json.loads(f.readline())


def ctl(action: str, prefix: tuple = ()) -> SimpleNamespace:
    """In a test program: asks the harness to run `rebeam ctl ACTION` (with a command prefix,
    say to run it as another user) and returns what it printed, as subprocess.run would."""
    return SimpleNamespace(**_ask({"op": "ctl", "action": action, "prefix": list(prefix)}))


def control_stat() -> SimpleNamespace:
    """In a test program: the control socket's path and modes, as the harness sees them."""
    return SimpleNamespace(**_ask({"op": "stat"}))


def control_chmod(mode: int, dir_mode: int) -> None:
    """In a test program: asks the harness (the socket's owner) to change its modes."""
    _ask({"op": "chmod", "mode": mode, "dir_mode": dir_mode})
