"""Behaviour-oriented concurrency, compatible with bocpy's API (work in progress).

A :class:`Cown` holds a value. ``@when(a, b)`` schedules a behaviour that runs once it holds
every cown it asked for, exclusively, and in scheduling order with every other behaviour on
those cowns: so behaviours cannot deadlock and need no locks. ``when`` returns a result cown
that holds what the behaviour returned (or the exception it raised), so behaviours chain.

Behaviours run in rebeam's worker processes, truly in parallel on any CPython ≥ 3.11, and may
use NumPy, closures and lambdas. A cown's value stays in the process that last used it and
moves only when a behaviour needs it elsewhere. ``wait()`` returns once every scheduled
behaviour has run.

    from rebeam.boc import Cown, when, wait

    account = Cown(100)

    @when(account)
    def withdraw(account):
        account.value -= 30
        return account.value

    wait()
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from typing import Any, NamedTuple
from collections.abc import Callable

from . import _runtime

_ids = itertools.count(1)
_ids_lock = threading.Lock()


def _new_id() -> int:
    # Unique across processes: this process's index in the high bits.
    conn = _runtime.connection()
    with _ids_lock:
        return (conn.index << 40) | next(_ids)


class _Failure:
    """What a result cown holds when its behaviour raised."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class Cown:
    """A concurrently owned value: read and write ``value`` only inside a behaviour that
    requested this cown (see :func:`when`)."""

    __slots__ = ("_id",)

    def __init__(self, value: Any = None):
        self._id = _new_id()
        _runtime.cown_store[self._id] = value
        _runtime.connection().cown_created(self._id, False)

    @classmethod
    def _handle(cls, cown_id: int) -> Cown:
        c = cls.__new__(cls)
        c._id = cown_id
        return c

    def __reduce__(self):
        return (Cown._handle, (self._id,))

    def __repr__(self) -> str:
        return f"Cown<{self._id}>"

    def _check(self) -> None:
        held = getattr(_runtime._local, "acquired", None)
        if not held or self._id not in held:
            raise RuntimeError(
                f"{self!r} is not acquired: read or write its value inside a behaviour, @when({self!r})"
            )
        if self._id in getattr(_runtime._local, "lost", ()):
            raise RuntimeError(f"the value of {self!r} was lost: the worker process holding it died")

    @property
    def value(self) -> Any:
        self._check()
        v = _runtime.cown_store.get(self._id)
        return v.exc if isinstance(v, _Failure) else v

    @value.setter
    def value(self, v: Any) -> None:
        self._check()
        _runtime.cown_store[self._id] = v

    @property
    def exception(self) -> bool:
        """True when this (result) cown holds the exception its behaviour raised."""
        self._check()
        return isinstance(_runtime.cown_store.get(self._id), _Failure)

    def unwrap(self) -> Any:
        """The value; re-raises it if its behaviour raised."""
        self._check()
        v = _runtime.cown_store.get(self._id)
        if isinstance(v, _Failure):
            raise v.exc
        return v


class PinnedCown(Cown):
    """A cown whose value never leaves the main process: a GUI toolkit, a GL context, an
    asyncio loop. A behaviour that requests any pinned cown runs on the main thread of the
    main process, when the program calls :func:`pump` (``wait()`` pumps by itself); its other
    cowns are brought to it there."""

    __slots__ = ()

    def __init__(self, value: Any = None):
        if _runtime.ROLE == "worker":
            raise RuntimeError("a PinnedCown is created in the main process; this is a worker")
        self._id = _new_id()
        _runtime.cown_store[self._id] = value
        _runtime.connection().cown_created(self._id, True)

    def __reduce__(self):
        raise TypeError(
            f"PinnedCown<{self._id}> cannot be serialised: its value never leaves the main process. "
            "Pass it to when() instead of capturing it in a closure or a message."
        )

    def __repr__(self) -> str:
        return f"PinnedCown<{self._id}>"


def _ids_of(group: Any) -> Any:
    if isinstance(group, Cown):
        return group._id
    if isinstance(group, (list, tuple)):
        return [_ids_of(g) for g in group]
    raise TypeError(f"when() takes cowns or lists of cowns, not {type(group).__name__}")


def _flat(ids: Any) -> list[int]:
    return [ids] if isinstance(ids, int) else [i for g in ids for i in _flat(g)]


def whencall(cowns: Any, fn: Callable) -> Cown:
    """Schedules ``fn(*cowns)`` as a behaviour; returns its result cown."""
    groups = [_ids_of(g) for g in (cowns if isinstance(cowns, (list, tuple)) else [cowns])]
    data, buffers = _runtime.dumps_code((fn, groups), f"behaviour {getattr(fn, '__qualname__', fn)!r}")
    result = Cown._handle(_new_id())
    requested = sorted(set(_flat(groups)))
    _runtime.connection().schedule(_new_id(), requested, result._id, data, buffers)
    return result


def when(*cowns: Any) -> Callable[[Callable], Cown]:
    """``@when(a, b)``: run the function as a behaviour holding ``a`` and ``b``; the decorated
    name becomes its result cown."""

    def schedule(fn: Callable) -> Cown:
        return whencall(list(cowns), fn)

    return schedule


def wait(timeout: float | None = None) -> bool:
    """Waits until every scheduled behaviour has run; False if ``timeout`` passed first.
    In the main process it pumps main-side behaviours meanwhile, so batch scripts that use
    PinnedCowns keep working."""
    import time

    conn = _runtime.connection()
    if _runtime.ROLE == "worker":
        return conn.quiesce(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pump()
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return False
        if conn.quiesce(_PUMP_SLICE if left is None else min(_PUMP_SLICE, left)):
            pump()
            return True


#: How long wait() blocks between two pumps.
_PUMP_SLICE = 0.01


class PumpResult(NamedTuple):
    """What one pump() did: behaviours run, behaviours still queued, exceptions raised."""

    ran: int
    remaining: int
    errors: list


_main_queue: queue.SimpleQueue = queue.SimpleQueue()
_pumping = threading.local()


def pump(
    deadline_ms: float | None = None, max_behaviors: int | None = None, raise_on_error: bool = False
) -> PumpResult:
    """Runs queued main-side behaviours (those holding a PinnedCown) on this thread, from
    inside your event loop, and returns without blocking past ``deadline_ms``.

    Exceptions land on the behaviours' result cowns; with ``raise_on_error`` the first one is
    raised after its behaviour is done. Pumping from inside a main-side behaviour raises.
    """
    import time

    if getattr(_pumping, "active", False):
        raise RuntimeError("pump() called from inside a main-side behaviour; return to your event loop first")
    end = None if deadline_ms is None else time.monotonic() + deadline_ms / 1000.0
    ran, errors = 0, []
    _pumping.active = True
    try:
        while max_behaviors is None or ran < max_behaviors:
            if end is not None and time.monotonic() >= end:
                break
            try:
                job = _main_queue.get_nowait()
            except queue.Empty:
                break
            failure = run_behaviour(_runtime.connection(), *job)
            ran += 1
            if failure is not None:
                errors.append(failure)
                if raise_on_error:
                    raise failure
    finally:
        _pumping.active = False
        _runtime.last_pump = time.monotonic()
    return PumpResult(ran, _main_queue.qsize(), errors)


def set_pump_watchdog(warn_ms: float | None, on_starve: Callable[[int, float], Any] | None = None) -> None:
    """Warns when main-side behaviours wait longer than ``warn_ms`` with nobody pumping:
    calls ``on_starve(queued, waited_seconds)``, or prints a warning. None turns it off."""
    _watchdog[:] = [] if warn_ms is None else [warn_ms / 1000.0, on_starve]
    _watchdog_set.append(True)
    if warn_ms is not None and not _watchdog_thread:
        t = threading.Thread(target=_watch, name="rebeam-pump-watchdog", daemon=True)
        _watchdog_thread.append(t)
        t.start()


_watchdog: list = []
_watchdog_thread: list = []
_watchdog_set: list = []

#: Under `rebeam main.py`, main-side behaviours waiting this long without a pump get a warning
#: (unless the program set its own watchdog).
DEFAULT_PUMP_WARN_MS = 2000


def _watch() -> None:
    import sys
    import time

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
        if on_starve is not None:
            on_starve(_main_queue.qsize(), waited)
        else:
            print(
                f"rebeam: {_main_queue.qsize()} main-side behaviour(s) (PinnedCown) have waited {waited:.1f} s: "
                "call rebeam.boc.pump() from your event loop, or wait()",
                file=sys.stderr,
                flush=True,
            )


def queue_main_behaviour(job: tuple) -> None:
    """The governor sent a behaviour to run here: it waits for the next pump()."""
    import time

    if _main_queue.empty():
        _runtime.main_queued_at = time.monotonic()
    _main_queue.put(job)
    if not _watchdog_set and os.environ.get("REBEAM_ROLE") == "main":
        set_pump_watchdog(DEFAULT_PUMP_WARN_MS)


#: The tag of what receive() returns when its timeout fires and there is no ``after``.
TIMEOUT = "__rebeam_timeout__"

#: The longest tag, in UTF-8 bytes (as bocpy).
MAX_TAG_BYTES = 63


def _tags(tags: Any) -> list[str]:
    tags = [tags] if isinstance(tags, str) else list(tags)
    for t in tags:
        if not isinstance(t, str) or not t:
            raise TypeError(f"a tag is a non-empty str, not {t!r}")
        if len(t.encode()) > MAX_TAG_BYTES:
            raise ValueError(f"tag {t[:20]!r}… is longer than {MAX_TAG_BYTES} UTF-8 bytes")
    return tags


def send(tag: str, contents: Any = None) -> None:
    """Queues ``contents`` under ``tag``, for whoever calls ``receive(tag)`` in any process."""
    (tag,) = _tags(tag)
    data, buffers = _runtime.dumps(contents, f"the message for tag {tag!r}")
    _runtime.connection().send_tagged(tag, data, buffers)


def receive(tags: Any, timeout: float | None = -1, after: Callable[[], Any] | None = None) -> Any:
    """The oldest message under any of ``tags``, as ``[tag, contents]``; blocks until one
    arrives. With a ``timeout`` (seconds; negative or None waits forever) it returns
    ``after()`` if given, else ``(TIMEOUT, None)``."""
    tags = _tags(tags)
    wait = None if timeout is None or timeout < 0 else float(timeout)
    got = _runtime.connection().receive(tags, wait)
    if got is None:
        return after() if after is not None else (TIMEOUT, None)
    tag, data, buffers = got
    return [tag, _runtime.loads(data, buffers)]


def drain(tags: Any) -> None:
    """Discards every message queued under ``tags``."""
    _runtime.connection().drain(_tags(tags))


def run_behaviour(
    conn, b: int, cowns: list, result: int, moved: list, lost: list, code: bytes, code_buffers
) -> BaseException | None:
    """Runs a behaviour in this process; returns the exception it raised, if any."""
    store = _runtime.cown_store
    for cown, data, buffers in moved:
        try:
            store[cown] = _runtime.loads(data, buffers)
        except BaseException as e:
            store[cown] = _Failure(e)
    _runtime._local.acquired = set(cowns) | {result}
    _runtime._local.lost = set(lost)
    try:
        fn, groups = _runtime.loads(code, code_buffers)

        def handles(g):
            return Cown._handle(g) if isinstance(g, int) else [handles(x) for x in g]

        store[result] = fn(*[handles(g) for g in groups])
        failure = None
    except BaseException as e:
        store[result] = _Failure(e)
        failure = e
    finally:
        _runtime._local.acquired = None
        _runtime._local.lost = ()
    conn.behaviour_done(b)
    return failure


def surrender(conn, cown: int) -> None:
    """Sends a cown's value to the governor (a behaviour needs it elsewhere) and forgets it."""
    value = _runtime.cown_store.pop(cown, None)
    try:
        data, buffers = _runtime.dumps(value, f"the value of Cown<{cown}>")
    except Exception as e:
        data, buffers = _runtime.dumps(_Failure(RuntimeError(str(e))), "a failure")
    conn.cown_value(cown, data, buffers)


__all__ = [
    "Cown", "PinnedCown", "PumpResult", "TIMEOUT",
    "when", "whencall", "wait", "pump", "set_pump_watchdog", "send", "receive", "drain",
]
