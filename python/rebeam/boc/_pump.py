"""The main process's side of behaviours: the pump, the watchdog, and waiting.

A behaviour that holds a :class:`PinnedCown` runs on the main thread of the main process.
The governor sends it here; it waits in ``_main_queue`` until the program calls
:func:`pump` from its event loop. Everything that blocks the main thread on behaviours
(``wait``, ``quiesce``, ``Cown.acquire``) pumps while it waits, so batch scripts keep working.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any, NamedTuple
from collections.abc import Callable

from .. import _env, _rebeam, _runtime
from .._handled import handled as _handled, handled_cv as _handled_cv
from ._cowns import flush_released, hand_to_acquirer, run_behaviour

log = logging.getLogger("rebeam.boc")

#: Largest millisecond bound pump() accepts (bocpy's: its nanosecond scaling must fit int64).
MAX_PUMP_MS = (1 << 63) // 1_000_000 - 1

#: How long wait() blocks between two pumps (``set_wait_pump_poll``).
_poll_s = 0.05


class PumpResult(NamedTuple):
    """What one :func:`pump` did.

    ``executed``: main-side behaviours run to completion (whether or not they raised);
    ``deadline_reached``: True iff the deadline stopped it before the queue drained and before
    ``max_behaviors`` did; ``raised``: behaviours whose body raised an ``Exception``."""

    executed: int
    deadline_reached: bool
    raised: int


_main_queue: queue.SimpleQueue = queue.SimpleQueue()
_pumping = threading.local()

#: The longest a pump waits for the events thread to queue what was already sent here.
_CATCH_UP_S = 1.0


def _catch_up(end: float | None) -> None:
    # The governor sent those behaviours before it answered their @when; the events thread
    # may not have queued them yet.
    if _handled[0] >= _handled[1]:
        return
    limit = time.monotonic() + _CATCH_UP_S
    wait = max(0.0, min(limit, end) - time.monotonic()) if end is not None else _CATCH_UP_S
    with _handled_cv:
        _handled_cv.wait_for(lambda: _handled[0] >= _handled[1], wait)


def _bound(name: str, value: int | None, ms: bool = False) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise TypeError(f"{name} must be None or a positive int, got {value!r}")
    if ms and value > MAX_PUMP_MS:
        raise OverflowError(f"{name}={value} exceeds the maximum supported millisecond value ({MAX_PUMP_MS})")
    return value


def pump(deadline_ms: int | None = None, max_behaviors: int | None = None, raise_on_error: bool = False) -> PumpResult:
    """Runs queued main-side behaviours (those holding a PinnedCown) on this thread, from your
    event loop's idle or tick hook, and returns. ``deadline_ms`` gates *starting* the next
    behaviour, never interrupts one; ``max_behaviors`` caps how many run.

    Body exceptions land on the behaviours' result cowns; with ``raise_on_error`` the first
    one is raised once the pump is done. A ``BaseException`` that is not an ``Exception``
    (``KeyboardInterrupt``, ``SystemExit``) propagates at once, leaving the rest queued.
    Pumping from inside a main-side behaviour, or from a worker, raises ``RuntimeError``.
    """
    deadline_ms = _bound("deadline_ms", deadline_ms, ms=True)
    max_behaviors = _bound("max_behaviors", max_behaviors)
    if _runtime.ROLE == "worker":
        raise RuntimeError("pump() runs in the main process; this is a worker")
    if getattr(_pumping, "active", False):
        raise RuntimeError("pump() called from inside a main-side behaviour; return to your event loop first")
    end = None if deadline_ms is None else time.monotonic() + deadline_ms / 1000.0
    executed, raised, first_error, deadline_reached = 0, 0, None, False
    _pumping.active = True
    try:
        _catch_up(end)
        while max_behaviors is None or executed < max_behaviors:
            if end is not None and time.monotonic() >= end:
                deadline_reached = not _main_queue.empty()
                break
            try:
                job = _main_queue.get_nowait()
            except queue.Empty:
                break
            failure = run_behaviour(_runtime.connection(), *job)
            executed += 1
            if failure is None:
                continue
            if not isinstance(failure, Exception):
                raise failure
            raised += 1
            first_error = first_error or failure
    finally:
        _pumping.active = False
        _runtime.last_pump = time.monotonic()
    if raise_on_error and first_error is not None:
        raise first_error
    return PumpResult(executed, deadline_reached, raised)


def pump_while(busy: Callable[[], bool], cv: threading.Condition) -> None:
    """Blocks while ``busy()``, pumping main-side behaviours if this is the main thread of
    the main process (they may be what it waits for). ``cv`` is notified on progress."""
    can_pump = (
        _runtime.ROLE != "worker"
        and threading.current_thread() is threading.main_thread()
        and not getattr(_pumping, "active", False)
    )
    while busy():
        if can_pump:
            pump()
        with cv:
            if busy():
                cv.wait(_poll_s if can_pump else None)


def quiesce_for(timeout: float | None) -> bool:
    """Waits until no scheduled behaviour is left (pumping meanwhile); False on timeout."""
    conn = _runtime.connection()
    flush_released(conn)  # what is released now is freed once the behaviours naming it end
    done = _quiesce(conn, timeout)
    conn.raise_refused()  # answers come in order: a refusal of any earlier schedule has come
    return done


def _quiesce(conn, timeout: float | None) -> bool:
    if _runtime.ROLE == "worker" or getattr(_pumping, "active", False):
        return conn.quiesce(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pump()
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        if conn.quiesce(_poll_s if left is None else min(_poll_s, left)):
            pump()
            return True


def set_wait_pump_poll(ms: int = 50) -> None:
    """How long ``wait()`` and ``quiesce()`` block between two pumps (default 50 ms)."""
    global _poll_s
    if not isinstance(ms, int) or isinstance(ms, bool) or ms <= 0:
        raise TypeError(f"ms must be a positive int, got {ms!r}")
    _poll_s = ms / 1000.0


# -- the watchdog --------------------------------------------------------------------------------

_watchdog: list = []
_watchdog_thread: list = []
_watchdog_set: list = []

#: Under `rebeam main.py`, main-side behaviours waiting this long without a pump get a warning
#: (unless the program set its own watchdog).
DEFAULT_PUMP_WARN_MS: int = _rebeam.DEFAULT_PUMP_WARN_MS


def set_pump_watchdog(warn_ms: int | None = 1000, on_starve: Callable[[int, str], Any] | None = None) -> None:
    """Warns when main-side behaviours have waited ``warn_ms`` with nobody pumping: logs a
    warning on the ``rebeam.boc`` logger, or calls ``on_starve(severity, message)``
    (``severity`` is a :mod:`logging` level). ``None`` turns it off."""
    if warn_ms is not None:
        if not isinstance(warn_ms, int) or isinstance(warn_ms, bool) or warn_ms <= 0:
            raise TypeError(f"warn_ms must be a positive int or None to disable, got {warn_ms!r}")
        if warn_ms > MAX_PUMP_MS:
            raise OverflowError(f"warn_ms={warn_ms} exceeds the maximum supported millisecond value")
    if on_starve is not None and not callable(on_starve):
        raise TypeError(f"on_starve must be a callable or None, got {on_starve!r}")
    _watchdog[:] = [] if warn_ms is None else [warn_ms / 1000.0, on_starve]
    _watchdog_set.append(True)
    if warn_ms is not None and not _watchdog_thread:
        t = threading.Thread(target=_watch, name="rebeam-pump-watchdog", daemon=True)
        _watchdog_thread.append(t)
        t.start()


def _watch() -> None:
    warned_at = 0.0
    while True:
        time.sleep(0.05)
        if not _watchdog or _main_queue.empty():
            continue
        limit, on_starve = _watchdog
        waited = time.monotonic() - max(_runtime.last_pump, _runtime.main_queued_at)
        if waited < limit or time.monotonic() - warned_at < limit:
            continue
        warned_at = time.monotonic()
        message = (
            f"{_main_queue.qsize()} main-side behaviour(s) (PinnedCown) have waited {waited * 1000:.0f} ms "
            "with nobody pumping: call rebeam.boc.pump() from your event loop, or wait()"
        )
        if on_starve is not None:
            on_starve(logging.WARNING, message)
        else:
            log.warning("rebeam: %s", message)


def queue_main_behaviour(job: tuple) -> None:
    """The governor sent a behaviour to run here: an ``acquire()`` waiting for its cown, or
    a main-side behaviour, which waits for the next pump()."""
    if hand_to_acquirer(job):
        return
    if _main_queue.empty():
        _runtime.main_queued_at = time.monotonic()
    _main_queue.put(job)
    if not _watchdog_set and os.environ.get(_env.ROLE) == "main":
        set_pump_watchdog(DEFAULT_PUMP_WARN_MS)
