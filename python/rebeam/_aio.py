"""``async def`` handlers and ``@start()`` hooks: where a worker runs their coroutines.

The rules:

- Each worker has one event loop, on a daemon thread of its own ("rebeam-asyncio"), started
  the first time an actor's handler or start hook returns a coroutine.
- An ``async def`` handler's coroutine runs there as a :class:`Run` of its own (see
  :func:`submit`): the pool thread that runs the actor's mailbox hands it over and goes on
  to the next message only while fewer than the actor's ``max_concurrency`` runs are in
  flight (1 by default: one message at a time, in order). Runs start in mailbox order. A
  run's result or exception is what the coroutine returns or raises; ``done`` (the worker's)
  answers its caller from the loop thread.
- Meanwhile the loop runs the coroutines of the worker's other actors: one awaiting
  ``rebeam.acall(...)`` holds up nobody.
- A coroutine runs as its actor and as its own delivery: ``rebeam.self_pid()``, the sender
  of the calls it makes and what ``rebeam.cancelled()`` reads are its own, through context
  variables each run's task gets its own copy of.
- A disarm cancels a gated run (:func:`cancel`: ``CancelledError`` at its next ``await``).
  The worker answers its delivery once the coroutine has stopped (its caller already has
  ``SafetyError``; the answer tells the governor the work is over). A coroutine that never
  stops (one that never awaits, or swallows the cancellation and goes on) has its worker
  killed after the grace period, like a handler stuck in C.
- A ``@start()`` hook's coroutine is awaited by the starting pool thread (:func:`resolve`),
  which waits in slices so that an exception raised in it (a stop) lands within one slice;
  the coroutine is then cancelled.
- A blocking call inside a coroutine stalls the loop for every actor of the worker (and
  ``rebeam.call`` warns of it once): use ``await rebeam.acall(...)``.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable, Coroutine
from typing import Any

from . import _runtime

#: How long the waiting pool thread blocks before it lets an exception raised in it land.
WAIT_SLICE = 0.05

_loop: Any = None  # the worker's asyncio event loop, once one is needed
_lock = threading.Lock()


def _the_loop() -> Any:
    import asyncio  # here, not at import: a worker whose actors are all synchronous never needs it

    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rebeam-asyncio", daemon=True).start()
            _loop = loop
        return _loop


async def _as_actor(pid: _runtime.ProcessID | None, coro: Coroutine) -> Any:
    _runtime.current_task_actor.set(pid)  # this task's own context: no other coroutine sees it
    return await coro


class Run:
    """One run of an ``async def`` handler: the delivery it answers (None for a cast), whether
    it is gated work, whether a disarm cancelled it, whether its outcome is to be dropped (its
    actor crashed in another run), and its task once it started."""

    __slots__ = ("delivery", "gated", "cancelled", "discarded", "task")

    def __init__(self, delivery: int | None, gated: bool) -> None:
        self.delivery, self.gated = delivery, gated
        self.cancelled = self.discarded = False
        self.task: Any = None


#: ``done(run, exception, result)``: how a run ended (``exception`` None if it returned).
Done = Callable[[Run, "BaseException | None", Any], None]


def submit(pid: _runtime.ProcessID, run: Run, coro: Coroutine, done: Done) -> None:
    """Runs ``coro`` on the worker's loop as ``pid`` and as ``run``; ``done`` is called on the
    loop thread when it ends, however it ends. Runs submitted in turn start in that order."""
    import asyncio

    asyncio.run_coroutine_threadsafe(_running(pid, run, coro, done), _the_loop())


async def _running(pid: _runtime.ProcessID, run: Run, coro: Coroutine, done: Done) -> None:
    import asyncio

    _runtime.current_task_actor.set(pid)  # this task's own context: no other run sees them
    _runtime.current_run.set(run)
    run.task = asyncio.current_task()
    try:
        if run.cancelled or run.discarded:  # a cancel that came before the task's first step
            coro.close()
            raise asyncio.CancelledError
        result = await coro
    except BaseException as e:  # the coroutine's exception, or its cancellation
        done(run, e, None)
    else:
        done(run, None, result)


def cancel(run: Run) -> None:
    """Cancels ``run``'s coroutine at its next ``await`` (from any thread); one not started
    yet sees ``run.cancelled``, set by the caller, and never runs."""
    _the_loop().call_soon_threadsafe(_cancel_task, run)


def _cancel_task(run: Run) -> None:
    if run.task is not None and not run.task.done():
        run.task.cancel()


def resolve(result: Any) -> Any:
    """``result`` itself, or for a coroutine what it returns once run to the end on the
    worker's loop, as the calling thread's actor."""
    if not isinstance(result, types.CoroutineType):
        return result
    import asyncio
    import concurrent.futures

    future = asyncio.run_coroutine_threadsafe(_as_actor(_runtime.current(), result), _the_loop())
    try:
        while not future.done():
            concurrent.futures.wait([future], timeout=WAIT_SLICE)
    except BaseException:
        future.cancel()  # an interrupt in this thread: the coroutine must not run on
        raise
    return future.result()
