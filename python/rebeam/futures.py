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
- ``acall`` and ``acast`` take their answers from the same thread and never block the event
  loop while they wait. The answers for one loop are handed to it in batches, so a loop with
  thousands of calls in flight wakes once per batch rather than once per answer.
- A call in flight holds as few objects the garbage collector tracks as it can (its future and
  one tuple saying where its answer goes; no closures, no inner coroutine): with thousands in
  flight, the collector's passes over them were a third of the caller's time.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import Future, InvalidStateError
from typing import Any
from collections.abc import Callable

from . import _runtime
from .actor import DEFAULT_CALL_TIMEOUT, _sender, _payload, call_result
from ._runtime import ProcessID
from .errors import ShuttingDown

#: A completion that arrived before its future was registered (none is ``None`` itself).
_NOT_YET = object()


class _Resolver:
    """The calls in flight on one connection, and the thread that hands out their answers."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._lock = threading.Lock()
        # tag -> (deliver, target, finish), handed the answer as deliver(target, finish,
        # answer): one tuple per call, not a closure (see the module rules).
        self._waiting: dict[int, tuple] = {}
        # The drain thread may take an answer before `track` has stored where it goes.
        self._early: dict[int, Any] = {}
        self._inboxes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._last_inbox: _LoopInbox | None = None  # most calls come from one loop
        threading.Thread(target=self._run, name="rebeam-futures", daemon=True).start()

    def track(self, tag: int, waiter: tuple) -> None:
        """Hands the answer for ``tag`` to ``waiter`` (on the drain thread, or here) when it comes."""
        with self._lock:
            early = self._early.pop(tag, _NOT_YET)
            if early is _NOT_YET:
                self._waiting[tag] = waiter
                return
        _hand(waiter, early)

    def cancelled(self, tag: int) -> None:
        # Once forgotten, no answer for the tag reaches `_run`, even one already queued; an
        # answer `_run` already has stays for it to find (and drop: its future is cancelled).
        if self.conn.forget(tag):
            with self._lock:
                self._waiting.pop(tag, None)

    def inbox(self, loop: Any) -> _LoopInbox:
        last = self._last_inbox
        if last is not None and last._loop() is loop:
            return last
        with self._lock:
            inbox = self._inboxes.get(loop)
            if inbox is None:
                inbox = self._inboxes[loop] = _LoopInbox(loop)
            self._last_inbox = inbox
            return inbox

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
                waiter = self._waiting.pop(tag, None)
                if waiter is None:
                    self._early[tag] = answer
                    continue
            _hand(waiter, answer)


def _hand(waiter: tuple, answer: Any) -> None:
    """Gives an answer to where ``track`` was told it goes."""
    deliver, target, finish = waiter
    deliver(target, finish, answer)


def _then(then: Callable[[bool, Any], None], finish: Callable[[Any], Any], answer: Any) -> None:
    then(*_outcome(finish, answer))


def _outcome(finish: Callable[[Any], Any], answer: Any) -> tuple[bool, Any]:
    """``(True, value)`` for an answer, ``(False, exception)`` for what the caller must raise."""
    if isinstance(answer, BaseException):
        return False, answer
    try:
        return True, finish(answer)
    except Exception as e:  # an answer that cannot be unpickled here, as `call` would raise
        return False, e


def _resolve(future: Future, finish: Callable[[Any], Any], answer: Any) -> None:
    ok, value = _outcome(finish, answer)
    try:
        future.set_result(value) if ok else future.set_exception(value)
    except InvalidStateError:
        pass  # cancelled meanwhile: nobody wants the answer


class _LoopInbox:
    """Answers for one event loop's futures, handed over in batches: the loop wakes once per
    batch, not once per answer (with thousands of calls in flight, that is most of the cost)."""

    def __init__(self, loop: Any) -> None:
        # Weakly: the resolver keeps inboxes by loop in a WeakKeyDictionary, which a strong
        # reference from the inbox back to its loop would keep alive for ever.
        self._loop = weakref.ref(loop)
        self._lock = threading.Lock()
        self._items: list = []
        # What a call's waiter names, made once (a bound method made per call would be one
        # more object per call for the collector).
        self.deliver = self._deliver

    def _deliver(self, future: Any, finish: Callable[[Any], Any], answer: Any) -> None:
        self.put(future, _outcome(finish, answer))

    def put(self, future: Any, outcome: tuple[bool, Any]) -> None:
        with self._lock:
            first = not self._items
            self._items.append((future, outcome))
        loop = self._loop()
        if first and loop is not None:
            try:
                loop.call_soon_threadsafe(self._flush)
            except RuntimeError:
                pass  # the loop is closed: nobody awaits these any more

    def _flush(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        for future, (ok, value) in items:
            if not future.done():  # done: cancelled meanwhile
                future.set_result(value) if ok else future.set_exception(value)


_resolver: _Resolver | None = None
_resolver_lock = threading.Lock()


def _resolver_for(conn: Any) -> _Resolver:
    """This connection's resolver (library mode gets a new connection after a shutdown)."""
    global _resolver
    resolver = _resolver  # read once: another thread may replace it meanwhile
    if resolver is not None and resolver.conn is conn:
        return resolver
    with _resolver_lock:
        if _resolver is None or _resolver.conn is not conn:
            _resolver = _Resolver(conn)
        return _resolver


def _call_start(target: Any, subject: str, message: Any, timeout: float) -> tuple[int, _Resolver]:
    """Sends a call; its tag and the resolver its answer comes through."""
    sender = _sender(None)  # read here: it is the calling thread's actor
    data, buffers = _payload(target, subject, message)
    conn = _runtime.connection()
    resolver = _resolver_for(conn)
    return conn.call_start(target, subject, data, buffers, sender, float(timeout)), resolver


def _cast_start(target: Any, subject: str, message: Any, sender_pid: ProcessID | None) -> tuple[int, _Resolver]:
    """Sends a cast; its tag and the resolver its answer comes through."""
    sender = _sender(sender_pid)
    data, buffers = _payload(target, subject, message)
    conn = _runtime.connection()
    resolver = _resolver_for(conn)
    return conn.cast_start(target, subject, data, buffers, sender), resolver


def _future(tag: int, resolver: _Resolver, finish: Callable[[Any], Any]) -> Future:
    future: Future = Future()
    resolver.track(tag, (_resolve, future, finish))
    future.add_done_callback(lambda f: resolver.cancelled(tag) if f.cancelled() else None)
    return future


def call_then(
    target: str | ProcessID, subject: str, message: Any, timeout: float, then: Callable[[bool, Any], None]
) -> None:
    """:func:`call_async` without a Future: ``then(True, (status, value))`` with what
    :func:`~rebeam.call` would return, or ``then(False, exc)`` where it would raise, runs on
    the thread that hands out answers (so it must not block). For rebeam's own users of many
    calls (the Executor), each of which a Future and its callbacks would cost as much again."""
    tag, resolver = _call_start(target, subject, message, timeout)
    resolver.track(tag, (_then, then, call_result))


#: asyncio, imported by the first ``acall`` or ``acast`` (most programs never need it).
_asyncio: Any = None


def _loop_future(tag: int, resolver: _Resolver, finish: Callable[[Any], Any]) -> Any:
    """A future of the running event loop that the answer for ``tag`` resolves."""
    global _asyncio
    if _asyncio is None:
        import asyncio

        _asyncio = asyncio
    loop = _asyncio.get_running_loop()
    future = loop.create_future()
    resolver.track(tag, (resolver.inbox(loop).deliver, future, finish))
    return future


def call_async(
    target: str | ProcessID, subject: str, message: Any = None, timeout: float = DEFAULT_CALL_TIMEOUT
) -> Future:
    """Sends ``message`` to ``target`` and returns at once a Future of what :func:`~rebeam.call`
    would return: ``("ok", value)``, ``("error", value)``, or ``("error", exc)`` when the call
    failed. Use ``concurrent.futures.wait``/``as_completed`` on several, or ``asyncio.wrap_future``.
    The future resolves within ``timeout`` seconds; ``cancel()`` forgets the call.
    """
    tag, resolver = _call_start(target, subject, message, timeout)
    return _future(tag, resolver, call_result)


async def acall(
    target: str | ProcessID, subject: str, message: Any = None, timeout: float = DEFAULT_CALL_TIMEOUT
) -> tuple[str, Any]:
    """``await``-able :func:`~rebeam.call`: the same ``(status, value)``, without blocking the
    event loop while the answer is on its way. Cancelling the awaiting task forgets the call."""
    tag, resolver = _call_start(target, subject, message, timeout)
    future = _loop_future(tag, resolver, call_result)
    try:
        return await future
    except _asyncio.CancelledError:  # the awaiting task was cancelled (the future with it)
        resolver.cancelled(tag)
        raise


async def acast(
    target: str | ProcessID, subject: str, message: Any = None, sender_pid: ProcessID | None = None
) -> bool:
    """``await``-able :func:`~rebeam.cast`: True if the message reached a live actor's mailbox."""
    tag, resolver = _cast_start(target, subject, message, sender_pid)
    future = _loop_future(tag, resolver, bool)
    try:
        return await future
    except _asyncio.CancelledError:  # the awaiting task was cancelled (the future with it)
        resolver.cancelled(tag)
        raise


__all__ = ["call_async", "acall", "acast"]
