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
import threading
from typing import Any
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
    """Waits until every scheduled behaviour has run; False if ``timeout`` passed first."""
    return _runtime.connection().quiesce(timeout)


def run_behaviour(conn, b: int, cowns: list, result: int, moved: list, lost: list, code: bytes, code_buffers) -> None:
    """Runs a behaviour in this process (a worker): called by the worker for the governor."""
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
    except BaseException as e:
        store[result] = _Failure(e)
    finally:
        _runtime._local.acquired = None
        _runtime._local.lost = ()
    conn.behaviour_done(b)


def surrender(conn, cown: int) -> None:
    """Sends a cown's value to the governor (a behaviour needs it elsewhere) and forgets it."""
    value = _runtime.cown_store.pop(cown, None)
    try:
        data, buffers = _runtime.dumps(value, f"the value of Cown<{cown}>")
    except Exception as e:
        data, buffers = _runtime.dumps(_Failure(RuntimeError(str(e))), "a failure")
    conn.cown_value(cown, data, buffers)


__all__ = ["Cown", "when", "whencall", "wait"]
