"""Behaviour-oriented concurrency with bocpy's API: change ``from bocpy import …`` to
``from rebeam.boc import …`` and the program runs on rebeam's worker processes, in parallel.

A :class:`Cown` holds a value. ``@when(a, b)`` schedules a behaviour that runs once it holds
every cown it asked for, exclusively, and after every behaviour scheduled on those cowns
before it: behaviours cannot deadlock and need no locks. ``when`` returns a result cown that
holds what the behaviour returned (or the exception it raised), so behaviours chain.

    from rebeam.boc import Cown, when, wait

    account = Cown(100)

    @when(account)
    def withdraw(account):
        account.value -= 30
        return account.value

    wait()

Where rebeam differs from bocpy (see docs/boc.md): behaviours run in worker *processes*, in
parallel on CPython ≥ 3.11, and may use NumPy, closures and lambdas; ``wait()`` does not stop
the runtime, so cowns stay usable after it; ``Matrix`` is not provided (use NumPy).
"""

from __future__ import annotations

import logging
import os
from typing import Any, NamedTuple

from .. import __version__, _runtime
from ._cowns import Cown, PinnedCown, admit, cancel_behaviour, run_behaviour, surrender, when, whencall
from ._messages import TIMEOUT, drain, receive, send, set_tags
from ._notices import REMOVED, notice_delete, notice_read, notice_seed, notice_update, notice_write, noticeboard
from ._notices import snapshot as _notices_snapshot
from ._pump import PumpResult, pump, queue_main_behaviour, quiesce_for, set_pump_watchdog, set_wait_pump_poll

log = logging.getLogger("rebeam.boc")

#: The default number of worker processes: one per CPU this process may run on.
WORKER_COUNT: int = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class WaitResult(NamedTuple):
    """What ``wait(stats=True, noticeboard=True)`` returns."""

    stats: list[dict]
    noticeboard: dict[str, Any]


def start(worker_count: int | None = None, module: tuple[str, str] | None = None) -> None:
    """Starts the runtime, if it is not running yet (any first use starts it anyway).

    In plain ``python`` this starts the governor with ``worker_count`` workers (default
    :data:`WORKER_COUNT`); asking for a different count once it runs raises
    ``RuntimeError``, as bocpy does. Under ``rebeam script.py`` the workers are already
    there (``rebeam --workers N``): a different count is reported and ignored. ``module`` is
    accepted for bocpy's sake: behaviours travel by value, so workers need no module to import.
    """
    del module
    if _runtime.ROLE == "worker":
        raise RuntimeError("start() can only be called from the main process")
    if worker_count is not None and (not isinstance(worker_count, int) or worker_count < 1):
        raise ValueError(f"worker_count must be a positive int, got {worker_count!r}")
    from .. import _library

    fresh = _runtime._conn is None and _runtime.ROLE is None and _library.enabled()
    if fresh:
        _library.start(workers=worker_count)
        return
    conn = _runtime.connection()
    if worker_count is None or worker_count == conn.workers:
        return
    if _library._governor:
        raise RuntimeError(
            f"rebeam.boc.start(worker_count={worker_count}) was called but the runtime is already up with "
            f"worker_count={conn.workers}: call start() before the first Cown or @when"
        )
    log.warning(
        "rebeam: start(worker_count=%d) ignored: this run has %d worker(s); choose with `rebeam --workers N`",
        worker_count,
        conn.workers,
    )


def _stats() -> list[dict]:
    return [
        {"worker_index": index, "pid": pid, "behaviours": ran, "main": index == 0}
        for index, pid, ran in _runtime.connection().boc_stats()
    ]


def _result(stats: bool, noticeboard: bool, clear: bool) -> Any:
    stats_snap = _stats() if stats else None
    nb_snap = _notices_snapshot(clear) if (noticeboard or clear) else None
    if stats and noticeboard:
        return WaitResult(stats_snap, nb_snap)
    if stats:
        return stats_snap
    if noticeboard:
        return nb_snap
    return None


def quiesce(timeout: float | None = None, *, stats: bool = False, noticeboard: bool = False) -> Any:
    """Blocks until every scheduled behaviour has run (pumping main-side behaviours
    meanwhile) without ending anything. Raises ``TimeoutError`` after ``timeout`` seconds.
    Returns None, or the stats (``list[dict]``, one per process), or the noticeboard
    (``dict``), or both as a :class:`WaitResult`."""
    if not quiesce_for(timeout):
        raise TimeoutError(f"quiesce(): runtime did not reach quiescence within timeout={timeout!r}")
    return _result(stats, noticeboard, clear=False)


def wait(timeout: float | None = None, *, stats: bool = False, noticeboard: bool = False) -> Any:
    """Blocks until every scheduled behaviour has run, then ends the session as bocpy does:
    the noticeboard is returned (if asked) and emptied. Unlike bocpy, the workers stay up
    (they serve actors too) and cowns stay usable. A timeout logs a warning and returns."""
    if _runtime.ROLE != "worker" and _runtime._conn is None:
        return _empty(stats, noticeboard)  # nothing ever ran: do not start a runtime to say so
    if not quiesce_for(timeout):
        log.warning("rebeam: wait(): behaviours still running after timeout=%r; returning", timeout)
    return _result(stats, noticeboard, clear=True)


def _empty(stats: bool, noticeboard: bool) -> Any:
    if stats and noticeboard:
        return WaitResult([], {})
    return [] if stats else {} if noticeboard else None


__all__ = [
    "__version__", "Cown", "PinnedCown", "PumpResult", "REMOVED", "TIMEOUT", "WORKER_COUNT", "WaitResult",
    "drain", "notice_delete", "notice_read", "notice_seed", "notice_update", "notice_write", "noticeboard",
    "pump", "quiesce", "receive", "send", "set_pump_watchdog", "set_tags", "set_wait_pump_poll", "start",
    "wait", "when", "whencall",
    # Used by rebeam's own processes.
    "admit", "cancel_behaviour", "queue_main_behaviour", "run_behaviour", "surrender",
]
