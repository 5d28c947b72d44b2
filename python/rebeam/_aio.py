"""``async def`` handlers and ``@start()`` hooks: where a worker runs their coroutines.

The rules:

- Each worker has one event loop, on a daemon thread of its own ("rebeam-asyncio"), started
  the first time an actor's handler or start hook returns a coroutine.
- The pool thread that runs the actor's mailbox hands the coroutine to that loop and waits
  for it to finish, so an actor still handles one message at a time, in order, and a
  handler's result or exception is what the coroutine returns or raises. Meanwhile the loop
  runs the coroutines of the worker's other actors: one awaiting ``rebeam.acall(...)`` holds
  up nobody.
- A coroutine runs as its actor: ``rebeam.self_pid()`` and the sender of the calls it makes
  are the actor's, through a context variable each coroutine's task gets its own copy of.
- The pool thread waits in slices, so an exception raised in it (a disarm's
  ``SafetyInterrupt``, a stop) lands within one slice; the coroutine is then cancelled and
  the exception goes on as it would from a synchronous handler.
- A blocking call inside a coroutine stalls the loop for every actor of the worker (and
  ``rebeam.call`` warns of it once): use ``await rebeam.acall(...)``.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Coroutine
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
