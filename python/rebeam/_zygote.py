"""The zygote: one Python, imported once, that forks the run's workers.

Started by the governor as a worker is (``python -m rebeam._worker [script args...]``), with a
worker's environment less the token and index each worker gets, and a socket to the governor on
the fd that ``$REBEAM_ZYGOTE_FD`` names (removed from the environment at once); seeing it, the
worker module runs :func:`main` here instead of its own. Its process name (``comm``) is
``rebeam-zygote`` until a fork takes back the interpreter's.
Starting an interpreter and importing rebeam is most of a worker's start; a fork of this
process has both done, so a worker is ready a few milliseconds after it is asked for.

The rules:

- Before it serves a request, the zygote has imported everything a worker imports before its
  first command and started no thread (nor rebeam's native runtime): a fork copies only the
  thread that calls it. If it finds another thread, it says ``unfit`` and exits, and the
  governor starts every worker as before (``python -m rebeam._worker``).
- One request a line, ``fork TOKEN INDEX``; one reply a line: ``ready`` once (after the
  imports), then ``forked TOKEN PID`` or ``failed TOKEN WHY`` for each request, in order.
- It forks twice: the first child forks the worker and exits at once, so the worker is
  re-parented to the governor (a child subreaper). The governor then reaps it, reads its exit
  status and kills its process group exactly as for a worker it started itself; a death of the
  zygote touches no worker. The worker waits to be re-parented, ties its life to the
  governor's (PR_SET_PDEATHSIG, checked after, as the governor's own spawns do), takes its own
  process group, and runs as ``python -m rebeam._worker`` does: the same ``__main__`` module,
  environment (its token and index added), working directory, ``sys.path`` and ``sys.argv``.
- A fork shares the zygote's hash seed (``PYTHONHASHSEED``), as multiprocessing's forks do;
  ``random`` reseeds itself in every fork.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable

# What a worker's first Start needs besides what the worker module imported (an actor sent by
# value): imported here once, so that no fork imports it again.
from . import _codepickle, _env, _rebeam  # noqa: F401

#: prctl's option that sets the signal a process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: How long a new worker sleeps between two looks at whether it was re-parented yet (its first
#: parent exits right after forking it, so the first or second look usually finds it done).
REPARENT_POLL_S = 0.0002
#: Bytes read from the governor's socket at once (requests are a few dozen bytes each).
READ_BYTES = 4096
#: prctl's options that set and get the calling thread's name (the process's ``comm``).
PR_SET_NAME, PR_GET_NAME = 15, 16
#: The zygote's own name, so that it is told apart from the workers (in ``ps``, in tests).
ZYGOTE_NAME = b"rebeam-zygote"

_libc = ctypes.CDLL(None, use_errno=True)


def threads() -> int:
    """How many threads this process has (the kernel's count: native ones included)."""
    return len(os.listdir("/proc/self/task"))


def tie_to_governor(governor: int, first_parent: int) -> None:
    """Waits to be re-parented to the governor, then dies with it. Exits if the governor is gone
    (the orphan is re-parented to someone else): nothing would be left to serve."""
    while (parent := os.getppid()) != governor:
        if parent != first_parent:
            os._exit(_rebeam.INTERNAL_ERROR_EXIT_STATUS)
        time.sleep(REPARENT_POLL_S)
    if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != governor:
        os._exit(_rebeam.INTERNAL_ERROR_EXIT_STATUS)


def set_name(name: bytes) -> None:
    _libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)


def own_name() -> bytes:
    buf = ctypes.create_string_buffer(16)  # the kernel's TASK_COMM_LEN
    _libc.prctl(PR_GET_NAME, buf, 0, 0, 0)
    return buf.value


def become_worker(job: Job, token: str, index: str, first_parent: int) -> None:
    """In the forked worker: never returns."""
    status = _rebeam.INTERNAL_ERROR_EXIT_STATUS
    try:
        os.close(job.sock)
        os.setpgid(0, 0)
        set_name(job.name)
        tie_to_governor(job.governor, first_parent)
        os.environ[_env.TOKEN] = token
        os.environ[_env.INDEX] = index
        job.run_worker()
        status = 0
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        # Never back into the zygote's loop; flush what the worker printed.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


class Job:
    """What every fork needs: the socket (closed in it), the governor's pid, the interpreter's
    own process name, and the worker's main function."""

    def __init__(self, sock: int, governor: int, name: bytes, run_worker: Callable[[], None]) -> None:
        self.sock, self.governor, self.name, self.run_worker = sock, governor, name, run_worker


def fork_worker(job: Job, token: str, index: str) -> int:
    """Forks a worker (see the module doc) and returns its pid."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:
        os.close(read_end)
        me = os.getpid()
        worker = -1
        try:
            worker = os.fork()
            if worker == 0:
                os.close(write_end)
                become_worker(job, token, index, me)
            os.write(write_end, str(worker).encode())
        finally:
            os._exit(0 if worker > 0 else 1)
    os.close(write_end)
    try:
        data = b""
        while chunk := os.read(read_end, READ_BYTES):
            data += chunk
    finally:
        os.close(read_end)
        os.waitpid(first, 0)
    if not data:
        raise OSError("the first child could not fork the worker")
    return int(data)


def serve(job: Job) -> None:
    """Answers fork requests until the governor closes the socket."""
    pending = b""
    while chunk := os.read(job.sock, READ_BYTES):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            reply(job.sock, handle(job, line.decode()))


def handle(job: Job, line: str) -> str:
    """One request's reply line."""
    parts = line.split()
    if len(parts) != 3 or parts[0] != "fork":
        return f"failed ? malformed request {line!r}"
    _, token, index = parts
    try:
        return f"forked {token} {fork_worker(job, token, index)}"
    except OSError as e:
        return f"failed {token} {e}"


def reply(sock: int, line: str) -> None:
    data = (line.replace("\n", " ") + "\n").encode()
    while data:
        data = data[os.write(sock, data) :]


def main(run_worker: Callable[[], None]) -> None:
    """The zygote's life (the worker module's main when ``$REBEAM_ZYGOTE_FD`` is set)."""
    # Ctrl-C is the governor's to act on, as in workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = int(os.environ.pop(_env.ZYGOTE_FD))
    os.set_inheritable(sock, False)  # no worker keeps it (each closes it too, at once)
    governor = int(os.environ[_env.GOVERNOR_PID])
    if os.getppid() != governor:
        os._exit(_rebeam.INTERNAL_ERROR_EXIT_STATUS)
    if threads() != 1:
        reply(sock, f"unfit {threads()} threads after the imports")
        return
    job = Job(sock, governor, own_name(), run_worker)
    set_name(ZYGOTE_NAME)
    reply(sock, "ready")
    serve(job)
