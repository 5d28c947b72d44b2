"""How a worker runs an actor's ``async def`` handlers, up to its ``max_concurrency`` at once.

The rules (the worker's :class:`~rebeam._worker.Worker` mixes this in):

- The pool thread draining an actor's mailbox hands each ``async def`` handler's coroutine to
  the worker's loop as a run (``_aio.submit``) and takes the next message only while fewer
  than ``limit`` runs are in flight (:meth:`AsyncRuns.wait_turn`): with the default 1, one
  message at a time, as for synchronous handlers. Runs start in mailbox order.
- Anything else (a synchronous handler, a bus handler, a down notice to a synchronous handler,
  a stop) waits until no run is in flight, and nothing starts until it returns: synchronous
  code never shares the actor with a coroutine.
- A run is answered as a synchronous handler is (``Worker.answer``, ``interrupted``,
  ``crashed``), from the loop thread, and frees its place only after its answer went out.
- A disarm cancels the run it names (``Worker.cancel`` → ``_aio.cancel``): its delivery is
  answered once the coroutine has stopped, which tells the governor the gated work is over.
  A run refused before it started (revoked) never runs, as in ``Worker.run_tracked``.
- A run that raises crashes the actor (``Worker.crashed``): the other runs are cancelled and
  what they would answer is dropped; the governor answers their callers ``ActorDown``.
"""

from __future__ import annotations

import traceback
from typing import Any

from . import _aio
from .errors import SafetyInterrupt


class AsyncRuns:
    """The part of a worker that runs ``async def`` handlers (see the module's rules)."""

    @staticmethod
    def wait_turn(host: Any, item: tuple) -> bool:
        """Holding ``host.lock``: waits until ``item`` may start (an async def handler's run
        while fewer than ``limit`` runs are in flight, anything else once none is); False if
        the actor died meanwhile."""
        room = 1
        if item[0] in ("msg", "local"):
            subjects, catch_all, _ = type(host.instance)._rebeam_handlers()
            if subjects.get(item[2 if item[0] == "msg" else 1], catch_all) in host.async_methods:
                room = host.limit
        host.idle.wait_for(lambda: host.dead or len(host.runs) < room)
        return not host.dead

    def start_run(
        self, host: Any, delivery: int | None, subject: str, handler, source, message, gated: bool, to_host: bool
    ) -> None:
        """Starts an async def handler's run on the worker's loop and returns: ``run_ended``
        answers it. Refused, as in run_tracked, if a disarm revoked it before it started."""
        run = _aio.Run(delivery, gated)
        with host.lock:
            revoked = delivery in host.revoked
            if host.revoked and delivery is not None:
                host.revoked = {d for d in host.revoked if d > delivery}  # see run_tracked
            if not revoked:
                host.runs.add(run)
        if revoked:
            self.interrupted(host, delivery, subject)
            return
        try:
            coro = handler(source, message)  # runs none of its code yet: only binds arguments
        except BaseException as e:
            self.run_ended(host, run, subject, to_host, e, None)
            return

        def done(run: _aio.Run, e: BaseException | None, result: Any) -> None:
            self.run_ended(host, run, subject, to_host, e, result)

        _aio.submit(host.pid, run, coro, done)

    def run_ended(
        self, host: Any, run: _aio.Run, subject: str, to_host: bool, e: BaseException | None, result: Any
    ) -> None:
        """Answers a run as dispatch answers a synchronous handler, then makes room for the
        next one (after the answer: with ``limit`` 1, one message at a time means the next
        starts once this one's caller could hear back)."""
        import asyncio

        try:
            if run.discarded:
                pass
            elif e is None:
                self.answer(host, run.delivery, subject, result, to_host)
            elif isinstance(e, SafetyInterrupt) or (run.cancelled and isinstance(e, asyncio.CancelledError)):
                self.interrupted(host, run.delivery, subject)
            else:
                self.crashed(host, run.delivery, e)
        except BaseException:
            traceback.print_exc()  # on the loop thread: nobody else would report it
        finally:
            with host.lock:
                host.runs.discard(run)
                host.idle.notify_all()
