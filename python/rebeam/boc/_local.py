"""A worker's own queue of the behaviours the governor sent it, per cown.

The governor may send a behaviour *ahead*: to the worker where the behaviours queued before it
on its cowns were sent, before they are done (see ``rebeam_core::boc``), so a chain of
behaviours on one worker costs no round trip. The rules here keep the order the governor
chose: behaviours arrive on one connection, in the order they were sent; each waits until
every behaviour that arrived before it and shares a cown with it is done here. A behaviour
sent the ordinary way finds its cowns free (the governor saw every earlier one done), or held
for a moment by one that has said it is done and is about to let go.

A behaviour's "done" goes to the governor *before* its cowns are let go here, so the governor
always hears of a behaviour before it hears of the ones that waited for it. It is held, in
order, to go with the others of its run in one write when the run ends (anything else this
process sends first sends what is held).
"""

from __future__ import annotations

import collections
import threading

_lock = threading.Lock()
#: A cown is a key while a behaviour here holds it; the value lists those waiting for it next.
_held: dict[int, collections.deque] = {}


class _Waiting:
    __slots__ = ("job", "blocked")

    def __init__(self, job: tuple) -> None:
        self.job, self.blocked = job, 0


def _cowns_of(job: tuple) -> set:
    # The job's cowns (its result cown among them), and the result cown itself.
    return {*job[1], job[2]}


def arrive(job: tuple) -> bool:
    """A behaviour arrived; True if it may run now (else it runs when ``release`` says)."""
    waiting = _Waiting(job)
    with _lock:
        for c in _cowns_of(job):
            queue = _held.get(c)
            if queue is None:
                _held[c] = collections.deque()
            else:
                queue.append(waiting)
                waiting.blocked += 1
        # Read under the lock: once it is let go, a release may count this one down and hand
        # it to its own thread, and it must not run twice.
        return waiting.blocked == 0


def release(job: tuple) -> list:
    """A behaviour is done here: lets its cowns go; returns the jobs that may run now."""
    ready = []
    with _lock:
        for c in _cowns_of(job):
            queue = _held.get(c)
            if queue is None:
                continue
            if not queue:
                del _held[c]
                continue
            nxt = queue.popleft()  # it holds the cown now
            nxt.blocked -= 1
            if nxt.blocked == 0:
                ready.append(nxt.job)
    return ready


class Runner:
    """A worker's behaviours: each the governor sends arrives here (on the command thread) and
    runs on the worker's pool once the behaviours it waits for here are done; one that waited
    runs next on the thread that let it go (others that may run then go to the pool)."""

    def __init__(self, conn, submit, flush=None) -> None:
        from . import _cowns

        # `flush` sends the "done"s a run held (the connection's flush_held); None: nothing to send.
        self.conn, self.submit, self.flush = conn, submit, flush
        self._admit, self._run = _cowns.admit, _cowns.run_behaviour

    def arrive(self, cmd) -> None:
        self._admit(cmd.behaviour)
        job = cmd.job
        if arrive(job):  # else it waits here behind behaviours sent before it
            self.submit(lambda: self.run(job))

    def run(self, job: tuple) -> None:
        try:
            while True:
                self._run(self.conn, *job)  # says it is done before its cowns are let go
                ready = release(job)
                if not ready:
                    return
                job, *others = ready
                for other in others:
                    self.submit(lambda other=other: self.run(other))
        finally:
            # The "done"s of this run were held (in order, before anything else this process
            # sends): one write for the run.
            if self.flush is not None:
                self.flush()
