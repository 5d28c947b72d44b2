"""Library mode: ``import rebeam`` in plain ``python``, a REPL or a notebook.

The first call that needs the runtime starts a governor (``rebeam serve``) as a child of this
process, in its own process group (so Ctrl-C in a REPL interrupts your code, not rebeam), and
connects this process as the main process. The governor ends when this process does (its
connection closes, or it is no longer the governor's parent) and takes its workers with it.
``rebeam.shutdown()`` stops it early; the next call starts a fresh one.

``rebeam.init(workers, node=NAME, connect=[...], ...)`` starts it at once with settings, as
``rebeam``'s command-line options give them (see ``_node_options`` for a node's).

Set ``REBEAM_LIBRARY=0`` to make calls outside ``rebeam script.py`` raise ``NotRunning``
instead.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import subprocess
import sys
import threading

from . import _env, _node_options, _rebeam, _runtime
from .errors import NotRunning

#: How long the governor may take to start listening.
START_TIMEOUT = 30.0

_lock = threading.Lock()
_governor: list = []


def enabled() -> bool:
    return os.environ.get(_env.LIBRARY, "1") != "0"


def find_binary() -> str:
    """The ``rebeam`` command: ``REBEAM_BIN``, beside this interpreter, or on PATH."""
    for candidate in (
        os.environ.get(_env.BIN),
        os.path.join(os.path.dirname(sys.executable), "rebeam"),
        shutil.which("rebeam"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise NotRunning(
        "cannot find the `rebeam` command to start the runtime: install rebeam into this "
        f"environment ({sys.executable} -m pip install rebeam) or set {_env.BIN}"
    )


def init(
    workers: int | None = None,
    *,
    node: str | None = None,
    listen=(),
    connect=(),
    cookie_file=None,
    join_timeout: float | None = None,
    lease: float | None = None,
    authority: bool = False,
    tls=None,
):
    """Starts rebeam for this process now, with these settings, instead of at the first call
    that needs it: ``workers`` worker processes (default one per core) and, with ``node=NAME``,
    as the node NAME of a system of several, as ``rebeam --node NAME`` does (keyword-only:
    ``listen``, ``connect``, ``cookie_file``, ``join_timeout``, ``lease``, ``authority``,
    ``tls={"ca": ..., "cert": ..., "key": ...}``; the cookie is the file's first line, else
    ``REBEAM_COOKIE``). Raises RuntimeError if rebeam already runs in this process (under
    ``rebeam script.py`` its command-line options say all this)."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise TypeError(f"workers={workers!r} must be a whole number ≥ 1, or None for one per core")
    if workers is not None and workers < 1:
        raise ValueError(f"workers={workers!r} must be a whole number ≥ 1, or None for one per core")
    node_args = _node_options.serve_args(
        node, listen, connect, cookie_file, join_timeout, lease, authority, tls
    )
    if _runtime._conn is not None or _env.SOCKET in os.environ:
        raise RuntimeError(
            "rebeam already runs in this process: call rebeam.init() before anything else that uses "
            "it (or rebeam.shutdown() first); under `rebeam script.py`, give its options there"
        )
    if not enabled():
        raise NotRunning(f"library mode is off ({_env.LIBRARY}=0)")
    return start(workers, node_args, _node_options.join_seconds(join_timeout), node)


def start(workers: int | None = None, node_args: tuple = (), join_seconds: float = 0.0, node: str | None = None):
    """Starts a governor for this process and connects to it (once)."""
    with _lock:
        if _runtime._conn is not None:
            return _runtime._conn
        from . import _rebeam

        token = secrets.token_hex(16)
        read_end, write_end = os.pipe()
        cmd = [find_binary(), "serve", "--parent-pid", str(os.getpid()), "--ready-fd", str(write_end)]
        if workers:
            cmd += ["--workers", str(int(workers))]
        cmd += node_args
        env = {**os.environ, _env.MAIN_TOKEN: token, _env.PYTHON: sys.executable}
        env.setdefault(_env.LOG, "warn")  # a REPL is no place for the governor's story
        try:
            proc = subprocess.Popen(
                cmd, env=env, stdin=subprocess.DEVNULL, pass_fds=(write_end,), process_group=0
            )
        finally:
            os.close(write_end)
        paths = _read_paths(read_end, proc, START_TIMEOUT + join_seconds)
        # A ProcessID pickled here names this node, as one pickled in a `rebeam --node` run does.
        _runtime.NODE = node
        _runtime.ROLE = "main"
        _runtime.main_by_value = True
        conn = _rebeam.Connection.connect(paths[_env.SOCKET], token, "main")
        _runtime._stop_flusher_at_exit(conn)
        _runtime._conn = conn
        _runtime.share_sys_path()  # what was pickled before this connection existed needs it too
        from . import _main

        _main.start_events(conn, library=True)
        conn.ready()
        _governor[:] = [proc]
        if len(_governor) == 1 and not getattr(start, "_atexit", False):
            atexit.register(stop)
            start._atexit = True
        return conn


def _read_paths(fd: int, proc: subprocess.Popen, timeout: float) -> dict:
    """The process socket's path, as the governor writes it once listening. (It never tells
    us the control socket's: the safety state is the host's to change, not this process's.)"""
    import select

    data = b""
    with os.fdopen(fd, "rb") as pipe:
        while b"\n" not in data:
            ready, _, _ = select.select([pipe], [], [], timeout)
            chunk = pipe.read1(4096) if ready else b""
            if not chunk:
                proc.kill()
                proc.wait()
                raise NotRunning(
                    f"the rebeam governor did not start (exit status {proc.returncode}; it said why on stderr)"
                )
            data += chunk
    return dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)


def stop(timeout: float = _rebeam.DEFAULT_STOP_TIMEOUT) -> None:
    """Stops this process's governor and waits for it (and so its workers) to exit."""
    conn = _runtime._conn
    if conn is not None and not conn.closed:
        try:
            conn.shutdown(0)
        except Exception:
            pass
    for proc in _governor:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _governor.clear()
    _runtime._conn = None
