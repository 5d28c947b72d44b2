"""Futures and asyncio: calls that do not hold up the caller.

The rules:

- ``call_async`` returns a :class:`concurrent.futures.Future` whose result is exactly what
  :func:`~rebeam.call` returns: ``(status, value)``, with a failed call as ``("error", exc)``
  (``CallTimeout``, ``NoProcess``, ``ActorDown``, ``RemoteError``, ...). Where ``call`` would
  raise (the governor is gone), the future raises the same exception. Errors in what the caller
  passed (an unpicklable message, a bad target or timeout) are raised by ``call_async`` itself,
  and nothing is sent.
- Every future resolves: with the answer, with ``("error", CallTimeout)`` by its timeout even
  if no answer ever comes, or with ``ShuttingDown`` when the connection to the governor closes.
- No thread per call: answers queue up in the native connection under each request's tag, and
  one daemon thread per process ("rebeam-futures") drains them, without the GIL while it waits,
  and resolves the futures. The value is unpickled on that thread.
- ``Future.cancel()`` before the future resolves forgets the request: its answer, should one
  come, is dropped. A message already delivered is not taken back.
- ``acall`` and ``acast`` wrap the same futures for asyncio and never block the event loop
  while they wait.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, InvalidStateError
from typing import Any
from collections.abc import Callable

from . import _runtime
from .actor import DEFAULT_CALL_TIMEOUT, _check_target, _sender, call_result
from ._runtime import ProcessID
from .errors import ShuttingDown

#: A completion that arrived before its future was registered (none is ``None`` itself).
_NOT_YET = object()


class _Resolver:
    """The futures of one connection, and the thread that resolves them."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[Future, Callable[[Any], Any]]] = {}
        # The drain thread may take an answer before `track` has stored its future.
        self._early: dict[int, Any] = {}
        threading.Thread(target=self._run, name="rebeam-futures", daemon=True).start()

    def track(self, tag: int, future: Future, finish: Callable[[Any], Any]) -> None:
        """Resolves ``future`` with ``finish(answer)`` when the answer for ``tag`` comes."""
        with self._lock:
            early = self._early.pop(tag, _NOT_YET)
            if early is _NOT_YET:
                self._waiting[tag] = (future, finish)
        if early is not _NOT_YET:
            _resolve(future, finish, early)
            return
        future.add_done_callback(lambda f: self._cancelled(tag) if f.cancelled() else None)

    def _cancelled(self, tag: int) -> None:
        # Once forgotten, no answer for the tag reaches `_run`, even one already queued; an
        # answer `_run` already has stays for it to find (and drop: the future is cancelled).
        if self.conn.forget(tag):
            with self._lock:
                self._waiting.pop(tag, None)

    def _run(self) -> None:
        while True:
            try:
                got = self.conn.next_completion(None)
            except ShuttingDown:
                return  # the connection closed and every answer was handed out
            if got is None:
                continue
            tag, answer = got
            with self._lock:
                entry = self._waiting.pop(tag, None)
                if entry is None:
                    self._early[tag] = answer
                    continue
            _resolve(entry[0], entry[1], answer)


def _resolve(future: Future, finish: Callable[[Any], Any], answer: Any) -> None:
    try:
        if isinstance(answer, BaseException):
            future.set_exception(answer)
            return
        try:
            value = finish(answer)
        except Exception as e:  # an answer that cannot be unpickled here, as `call` would raise
            future.set_exception(e)
            return
        future.set_result(value)
    except InvalidStateError:
        pass  # cancelled meanwhile: nobody wants the answer


_resolver: _Resolver | None = None
_resolver_lock = threading.Lock()


def _resolver_for(conn: Any) -> _Resolver:
    """This connection's resolver (library mode gets a new connection after a shutdown)."""
    global _resolver
    with _resolver_lock:
        if _resolver is None or _resolver.conn is not conn:
            _resolver = _Resolver(conn)
        return _resolver


def call_async(
    target: str | ProcessID, subject: str, message: Any = None, timeout: float = DEFAULT_CALL_TIMEOUT
) -> Future:
    """Sends ``message`` to ``target`` and returns at once a Future of what :func:`~rebeam.call`
    would return: ``("ok", value)``, ``("error", value)``, or ``("error", exc)`` when the call
    failed. Use ``concurrent.futures.wait``/``as_completed`` on several, or ``asyncio.wrap_future``.
    The future resolves within ``timeout`` seconds; ``cancel()`` forgets the call.
    """
    _check_target(target)
    data, buffers = _runtime.dumps(message, f"the message for {target!r} (subject {subject!r})")
    conn = _runtime.connection()
    resolver = _resolver_for(conn)
    tag = conn.call_start(target, subject, data, buffers, _sender(None), float(timeout))
    future: Future = Future()
    resolver.track(tag, future, call_result)
    return future


def _cast_future(target: str | ProcessID, subject: str, message: Any, sender_pid: ProcessID | None) -> Future:
    _check_target(target)
    data, buffers = _runtime.dumps(message, f"the message for {target!r} (subject {subject!r})")
    conn = _runtime.connection()
    resolver = _resolver_for(conn)
    tag = conn.cast_start(target, subject, data, buffers, _sender(sender_pid))
    future: Future = Future()
    resolver.track(tag, future, bool)
    return future


async def acall(
    target: str | ProcessID, subject: str, message: Any = None, timeout: float = DEFAULT_CALL_TIMEOUT
) -> tuple[str, Any]:
    """``await``-able :func:`~rebeam.call`: the same ``(status, value)``, without blocking the
    event loop while the answer is on its way. Cancelling the awaiting task forgets the call."""
    import asyncio  # here, not at import: most programs never need it

    return await asyncio.wrap_future(call_async(target, subject, message, timeout))


async def acast(
    target: str | ProcessID, subject: str, message: Any = None, sender_pid: ProcessID | None = None
) -> bool:
    """``await``-able :func:`~rebeam.cast`: True if the message reached a live actor's mailbox."""
    import asyncio

    return await asyncio.wrap_future(_cast_future(target, subject, message, sender_pid))


__all__ = ["call_async", "acall", "acast"]
