"""A worker the governor refuses at the handshake (a worker forked as the run shuts down is
refused so, then killed) says so in one line and exits, with no traceback."""

import os
import socket
import subprocess
import sys
import threading

from rebeam import _env, _rebeam


def test_a_worker_refused_at_the_handshake_says_so_in_one_line_and_exits(tmp_path):
    path = str(tmp_path / "governor.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()

    def refuse():  # as the governor does: read the Hello, then close without a Welcome
        conn, _ = server.accept()
        conn.recv(4096)
        conn.close()

    threading.Thread(target=refuse, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if k not in _env.ALL}
    env.update({_env.SOCKET: path, _env.TOKEN: "not-a-token", _env.ROLE: "worker", _env.INDEX: "7"})
    done = subprocess.run(
        [sys.executable, "-m", "rebeam._worker"], env=env, capture_output=True, text=True, timeout=60
    )
    server.close()
    assert done.returncode == _rebeam.INTERNAL_ERROR_EXIT_STATUS, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "worker 7" in lines[0] and "not started: " in lines[0], done.stderr
