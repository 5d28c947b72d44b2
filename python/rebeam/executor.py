"""``rebeam.Executor``: a ``concurrent.futures.Executor`` over rebeam's supervised workers, a
drop-in replacement for ``ProcessPoolExecutor`` that survives a task that kills its process.

The rules:

- The executor is a :class:`~rebeam.Group` of ``max_workers`` task runners (by default one per
  worker process of the run), under a supervisor of its own, started when the executor is
  built in the main process (under ``rebeam`` or in plain ``python``).
- A task is ``fn(*args, **kwargs)`` pickled as a message (functions by reference where the
  worker can import them, by value otherwise). Each goes to an idle runner, one task per
  runner at a time, so a task never waits behind a long one and a dying process takes only
  the tasks running in it; the others wait here, in submission order. A runner being
  restarted is found again by asking the group for its member at that position.
- A task's exception is raised by its future, as its own type, with the worker's traceback as
  a note. A task that kills its process (a segfault, ``os._exit``) raises
  :class:`~rebeam.WorkerCrashed` instead, as does any task that was running in that same
  process at that moment; the supervisor restarts the runner and the other tasks go on.
- ``shutdown(wait=True)`` waits for every submitted task, then stops the runners;
  ``cancel_futures=True`` first cancels the tasks not yet started. ``submit`` after
  ``shutdown`` raises ``RuntimeError``. An executor left running when the script's body ends
  (in plain ``python``: when the interpreter exits) is shut down then, waiting for its tasks,
  as ``ProcessPoolExecutor`` is at exit.
"""

from __future__ import annotations

import atexit
import itertools
import os
import threading
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor as _Executor
from concurrent.futures import Future
from functools import partial
from typing import Any

from . import _rebeam, _runtime
from ._runtime import ProcessID
from .actor import GenPy, receive
from .errors import ActorDown, NoProcess, RebeamError, WorkerCrashed
from .groups import Group, _positions

#: A task's call never times out on its own: tasks run as long as they run (seconds; a
#: timeout past what the governor can hold counts as none).
TASK_TIMEOUT = 1e9
#: While every runner is restarting, a task that found none is sent again after this long.
RETRY_DELAY = 0.05

_counter = itertools.count(1)
_live: weakref.WeakSet = weakref.WeakSet()


class _Runner(GenPy):
    """Runs one task at a time; a task's exception is its answer, not the runner's crash."""

    restart = "permanent"

    @receive("run")
    def run(self, source: Any, task: tuple) -> tuple:
        fn, args, kwargs = task
        try:
            return ("ok", fn(*args, **kwargs))
        except BaseException as e:  # the task's own failure, whatever it is, goes to its future
            return ("raised", _picklable(e), traceback.format_exc())


def _picklable(e: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return RebeamError(f"{type(e).__name__}: {e} (the task's exception could not be pickled)")


class _Task:
    __slots__ = ("future", "fn", "args", "kwargs")

    def __init__(self, future: Future, fn: Callable, args: tuple, kwargs: dict):
        self.future, self.fn, self.args, self.kwargs = future, fn, args, kwargs


class _Slot:
    __slots__ = ("pid", "task", "dead")

    def __init__(self, pid: int | None):
        self.pid = pid
        self.task: _Task | None = None
        #: The runner that ended here last (never taken for the restarted one).
        self.dead: int | None = None


class Executor(_Executor):
    """A ``concurrent.futures.Executor`` whose tasks run in rebeam's workers; see the module doc.

    ``max_workers`` is how many tasks run at once (by default the run's worker count).
    """

    def __init__(self, max_workers: int | None = None):
        conn = _runtime.connection()
        if not _runtime.starts_trees():
            raise RebeamError("rebeam.Executor is built in the main process (the script, or plain python)")
        size = conn.workers if max_workers is None else max_workers
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"Executor: max_workers={max_workers!r} must be a whole number ≥ 1")
        self._max_workers = size
        self._name = f"rebeam.executor.{os.getpid()}.{next(_counter)}"
        # Crashing tasks restart runners as often as they crash: the group never gives up.
        group = Group(_Runner(), size, self._name,
                      max_restarts=_rebeam.MAX_RESTARTS, max_seconds=0.001)
        self._tree, _ = group._spawn()
        self._lock = threading.Lock()
        self._pending: deque[_Task] = deque()
        # One slot per member position: the runner there now, and the task it runs.
        self._slots = [_Slot(pid) for pid in _positions(self._name)]
        self._refreshing = False
        self._all: set[Future] = set()
        self._shutdown = False
        self._stopped = False
        if not _live and not getattr(shutdown_all, "_registered", False):
            # Library mode has no end of the script's body: its interpreter's exit is the end
            # (registered after the runtime's own exit hook, so it runs first).
            atexit.register(shutdown_all)
            shutdown_all._registered = True
        _live.add(self)

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        """Schedules ``fn(*args, **kwargs)``; returns its Future."""
        future: Future = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._pending.append(_Task(future, fn, args, kwargs))
            self._all.add(future)
        future.add_done_callback(self._forget)
        self._pump()
        return future

    def map(
        self, fn: Callable, *iterables: Iterable, timeout: float | None = None, chunksize: int = 1
    ) -> Iterator:
        """As ``ProcessPoolExecutor.map``: results in order; ``chunksize`` items travel (and
        run) together as one task; ``timeout`` bounds the whole iteration."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1")
        if chunksize == 1:
            return super().map(fn, *iterables, timeout=timeout)
        chunks = _chunks(chunksize, zip(*iterables, strict=False))  # shortest wins, as in map()
        results = super().map(partial(_run_chunk, fn), chunks, timeout=timeout)
        return itertools.chain.from_iterable(results)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuses new tasks; ``cancel_futures`` cancels those not started; ``wait`` waits for
        the rest. The runners stop once every task is done."""
        with self._lock:
            self._shutdown = True
            cancelled = list(self._pending) if cancel_futures else []
            if cancel_futures:
                self._pending.clear()
        for task in cancelled:
            task.future.cancel()
        if wait:
            for f in list(self._all):
                try:
                    f.exception()
                except BaseException:  # cancelled: nothing to wait for
                    pass
        self._stop_if_done()

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._all.discard(future)
        self._stop_if_done()

    def _stop_if_done(self) -> None:
        with self._lock:
            if not self._shutdown or self._stopped or self._all:
                return
            self._stopped = True
        conn = _runtime._conn
        if self._tree is not None and conn is not None and not conn.closed:
            try:
                conn.stop_tree(self._tree)
            except RebeamError:
                pass  # the run is ending anyway

    def _pump(self) -> None:
        """Sends waiting tasks to idle runners."""
        from .futures import call_then

        while True:
            with self._lock:
                if not self._pending:
                    return
                slot = next((s for s in self._slots if s.task is None and s.pid is not None), None)
                if slot is None:
                    return self._refresh_later()
                task = self._pending.popleft()
                # A task sent again (see `_answered`) is running already.
                if not task.future.running() and not task.future.set_running_or_notify_cancel():
                    continue
                slot.task, pid = task, slot.pid
            try:
                call_then(ProcessID(pid), "run", (task.fn, task.args, task.kwargs), TASK_TIMEOUT,
                          partial(self._answered, slot, task))
            except BaseException as e:  # what the caller passed cannot be sent
                with self._lock:
                    slot.task = None
                task.future.set_exception(e)
                continue

    def _answered(self, slot: _Slot, task: _Task, ok: bool, answer: Any) -> None:
        with self._lock:
            slot.task = None
        if not ok:  # the connection closed (ShuttingDown)
            task.future.set_exception(answer)
            return self._pump()
        status, value = answer
        if status == "ok" and value[0] == "ok":
            # The next task goes first: the runner is free now, and it can run while this
            # task's future wakes whoever waits for it.
            self._pump()
            return task.future.set_result(value[1])
        elif status == "ok":
            _, exc, remote_tb = value
            exc.add_note(f"the task raised it in a rebeam worker:\n{remote_tb.rstrip()}")
            task.future.set_exception(exc)
        elif isinstance(value, (NoProcess, ActorDown)):
            self._lost(slot)
            if isinstance(value, NoProcess):
                # The runner had already ended: the task never ran; it goes first again.
                with self._lock:
                    self._pending.appendleft(task)
            else:
                crashed = WorkerCrashed(f"the worker process running this task died ({value}); it was replaced")
                crashed.__cause__ = value
                task.future.set_exception(crashed)
        else:
            task.future.set_exception(value if isinstance(value, BaseException) else RebeamError(repr(value)))
        self._pump()

    def _lost(self, slot: _Slot) -> None:
        """The slot's runner ended: its restarted runner is found by asking the group."""
        with self._lock:
            if slot.pid is not None:
                slot.dead, slot.pid = slot.pid, None

    def _refresh_later(self) -> None:
        """(With the lock held.) Asks the group for restarted runners shortly, once at a time."""
        if self._refreshing or self._stopped or all(s.pid is not None for s in self._slots):
            return
        self._refreshing = True
        threading.Timer(RETRY_DELAY, self._refresh).start()

    def _refresh(self) -> None:
        conn = _runtime._conn
        try:
            positions = conn.members(self._name) if conn is not None and not conn.closed else None
        except RebeamError:
            positions = None
        with self._lock:
            self._refreshing = False
            for slot, pid in zip(self._slots, positions or [], strict=False):
                # The old runner may still be listed for a moment (its death not yet seen).
                if slot.pid is None and pid is not None and pid != slot.dead:
                    slot.pid = pid
        self._pump()
        with self._lock:
            if self._pending:
                self._refresh_later()

    def __repr__(self) -> str:
        return f"rebeam.Executor(max_workers={self._max_workers})"


def _chunks(size: int, items: Iterator) -> Iterator[tuple]:
    while chunk := tuple(itertools.islice(items, size)):
        yield chunk


def _run_chunk(fn: Callable, chunk: tuple) -> list:
    return [fn(*args) for args in chunk]


def shutdown_all() -> None:
    """Shuts down (waiting) every executor still running: the script's body has ended."""
    for executor in list(_live):
        executor.shutdown(wait=True)


__all__ = ["Executor", "WorkerCrashed"]
