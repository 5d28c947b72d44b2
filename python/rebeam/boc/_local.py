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
import traceback
from typing import Any

from .. import _runtime
from . import _handover

#: Where a job (RunBehaviour.job) says it is gated: only then may a cancel come for it.
GATED = 8

_lock = threading.Lock()
#: A cown is a key while a behaviour here holds it; the value lists those waiting for it next.
_held: dict[int, collections.deque] = {}


class _Waiting:
    __slots__ = ("job", "blocked")

    def __init__(self, job: tuple) -> None:
        self.job, self.blocked = job, 0


def _cowns_of(job: tuple) -> Any:
    # The job's cowns (its result cown among them, as the governor sends them), each once; the
    # common shape, one cown and the result, as it came (a new set per arrival and release
    # cost more than the rest of the queueing).
    cowns = job[1]
    if len(cowns) == 2 and cowns[0] != cowns[1]:
        return cowns
    return {*cowns, job[2]}


def arrive(job: tuple) -> bool:
    """A behaviour arrived; True if it may run now (else it runs when ``release`` says)."""
    with _lock:
        return _queue(job)


def arrive_all(jobs: list) -> list:
    """Behaviours that arrived together, in arrival order, under one hold of the lock; returns
    those that may run now (the others run when ``release`` says)."""
    with _lock:
        return [job for job in jobs if _queue(job)]


def _queue(job: tuple) -> bool:
    # Under the lock. Whether the job may run now is read under it: once the lock is let go,
    # a release may count this one down and hand it to its own thread, and it must not run twice.
    waiting = _Waiting(job)
    for c in _cowns_of(job):
        queue = _held.get(c)
        if queue is None:
            _held[c] = collections.deque()
        else:
            queue.append(waiting)
            waiting.blocked += 1
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
    runs once the behaviours it waits for here are done; one that waited runs next on the
    thread that let it go. One at a time (``arrive``), a behaviour runs on the worker's pool
    (and others that may run then go to the pool too); a batch of them (``take`` then
    ``run_here``) runs on the command thread itself, under the watchdog (see ``_handover``)."""

    def __init__(self, conn, submit, flush=None, hand_over=None) -> None:
        from . import _cowns

        # `flush` sends the "done"s a run held (the connection's flush_held); None: nothing to send.
        self.conn, self.submit, self.flush = conn, submit, flush
        self._admit, self._run, self._end_run = _cowns.admit, _cowns.run_behaviour, _cowns.end_run
        # `hand_over` gives the command role to another thread (see _handover).
        self._hand_over = hand_over
        self.watchdog = None if hand_over is None else _handover.Watchdog(self._handed)

    def arrive(self, cmd) -> None:
        job = cmd.job
        if job[GATED]:
            self._admit(cmd.behaviour)
        if arrive(job):  # else it waits here behind behaviours sent before it
            self.submit(lambda: self.run(job))

    def take(self, cmds: list) -> list:
        """A batch of behaviours arrived, in order: the gated admitted, and queued under one hold of the
        lock; returns the jobs that may run now (for ``run_here``)."""
        admit = self._admit
        jobs = []
        for cmd in cmds:
            job = cmd.job
            if job[GATED]:
                admit(cmd.behaviour)
            jobs.append(job)
        return arrive_all(jobs)

    def run_here(self, jobs: list) -> bool:
        """Runs jobs that may run now, and those they let go, on this thread, which holds the
        command role and keeps it; False if the watchdog handed the role to another thread
        meanwhile (what was left then went to the pool, as one run)."""
        if not jobs:
            return True
        run = self.watchdog.begin(collections.deque(jobs))
        todo = run.todo
        host = _runtime._local.host
        try:
            while not run.handed:
                try:
                    job = todo.popleft()
                except IndexError:
                    break
                run.started += 1
                # Says it is done before its cowns are let go; held, for the flush at the end
                # (or the watchdog's, should one block): the flusher thread is not woken. The
                # thread's behaviour state is reset once, after the run.
                self._run(self.conn, *job, wake=False)
                todo.extend(release(job))
        except BaseException:
            traceback.print_exc()  # as a pool thread does: the commands go on
        finally:
            self._end_run(host)
        kept = self.watchdog.end(run)
        try:
            if todo:  # handed over, or one raised here: the rest runs all the same, on the pool
                self.submit(lambda: self.run_all(todo))
            # The "done"s of this run were held: one write for the run.
            if self.flush is not None:
                self.flush()
        except Exception:
            traceback.print_exc()
        return kept

    def run_all(self, todo: collections.deque) -> None:
        """Runs jobs that may run now, and those they let go, on this (pool) thread; another
        thread may be taking from ``todo`` too (see ``_handover.Run``)."""
        try:
            while True:
                try:
                    job = todo.popleft()
                except IndexError:
                    return
                self._run(self.conn, *job)  # says it is done before its cowns are let go
                todo.extend(release(job))
        finally:
            if self.flush is not None:
                self.flush()

    def _handed(self, run: _handover.Run) -> None:
        # The watchdog takes the role from a run that lasts: what it has left goes to the pool
        # (one of those may be what the one that lasts waits for), and the "done"s it held go
        # now, so the behaviours waiting for them elsewhere need not wait for it either.
        todo = run.todo
        if todo:
            self.submit(lambda: self.run_all(todo))
        self._hand_over()
        if self.flush is not None:
            self.flush()

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
