"""The host's side of the safety workload: Python in a run may not arm or disarm, so the
bench driver (benches/bench.py, outside the run) does it for the workload and times it.

The workload hands over an encoded control frame (encoding is not authority) on a desk
socket; the driver takes perf_counter_ns() just before writing it to the control socket
(CLOCK_MONOTONIC, the same clock in both processes), waits for the answer and sends back
that time.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time

DESK = "BENCH_HOST_DESK"


class ControlDesk:
    """Driver side: owns a private directory with the control socket and the desk."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="rbb-", dir="/tmp")
        self.control = os.path.join(self.dir, "ctl.sock")
        self.desk = os.path.join(self.dir, "desk.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.desk)
        self._server.listen(4)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        # Wake the serving thread before the fd is closed (see tests/integration/hostlib.py:
        # a thread about to accept() on a closed fd number accepts on whatever reuses it).
        try:
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(10)
        self._server.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as f:
                frame = bytes.fromhex(json.loads(f.readline())["frame"])
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.control)
                    t0 = time.perf_counter_ns()
                    s.sendall(frame)
                    s.settimeout(10)
                    reply = s.recv(65536)
                f.write(json.dumps({"t0": t0, "reply": reply.hex()}).encode() + b"\n")
                f.flush()


def via_host(frame: bytes) -> tuple[int, bytes]:
    """Workload side: has the driver send `frame`; returns (its t0, the governor's answer)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.environ[DESK])
        with s.makefile("rwb") as f:
            f.write(json.dumps({"frame": frame.hex()}).encode() + b"\n")
            f.flush()
            answer = json.loads(f.readline())
    return answer["t0"], bytes.fromhex(answer["reply"])
