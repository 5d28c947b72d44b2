"""A run of casts for an idle actor runs on the command thread that took it, straight from the
batch (`Worker.enqueue_casts`, `run_inline`), and a run of casts at the head of a mailbox is
taken out whole (`drain`), driven in this process with a recording connection in place of the
governor's: in arrival order, before what came for the actor after it, each cast reported
handled exactly once (the delivery bound counts them), and a crash mid-run loses the rest as a
mailbox's would be."""

from __future__ import annotations

import pickle
import queue
import threading

from rebeam import GenPy, receive
from rebeam._worker import Host, Worker

#: How long a test waits for the worker before it fails.
PATIENCE = 10.0

LOG: list = []


class Conn:
    """Records what the worker tells the governor; the command role is always its own."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.handled_counts: list[int] = []
        self.asides = 0

    def started(self, actor, error=None, gating=None):
        self.events.put(("started", actor, error))

    def exited(self, actor, exit, taken_up_to=None):
        self.events.put(("exited", actor, exit.kind))

    def reply(self, delivery, ok, data, buffers):
        self.events.put(("reply", delivery, pickle.loads(data)))

    def reply_failure(self, delivery, info):
        self.events.put(("failure", delivery, info.kind))

    def safety_state(self):
        return "armed"

    def handled(self, n=1):
        self.handled_counts.append(n)

    def step_aside(self):
        self.asides += 1

    def resume(self):
        return True

    def next(self):
        return self.events.get(timeout=PATIENCE)


class Counter(GenPy):
    @receive("inc")
    def inc(self, source, i):
        LOG.append((i, threading.get_ident(), source))
        if i == "boom":
            raise ValueError("boom")
        return i


class Waiter(GenPy):
    @receive("inc")
    async def inc(self, source, i):
        LOG.append((i, threading.get_ident(), source))


def started(kind: type) -> tuple[Worker, Conn]:
    LOG.clear()
    conn = Conn()
    w = Worker(conn)
    w.spares = 1  # a standby waits already: run_inline starts none
    w.hosts[1] = Host(1, "counter", "'counter'")
    w.enqueue(1, ("start", "actor", pickle.dumps(kind()), []))
    assert conn.next() == ("started", 1, None)
    return w, conn


def casts(*values, sender=(7, "driver")) -> list:
    return [("msg", None, "inc", sender, pickle.dumps(v), ()) for v in values]


def take(w: Worker, items: list) -> tuple[Host | None, list]:
    """What serve does with one batch holding this run: the host it runs inline, and the run."""
    w.may_inline, w.inline = True, None
    w.enqueue_casts(1, items)
    w.may_inline, host = False, w.inline
    run, w.inline_casts = w.inline_casts, []
    return host, run


def test_a_run_for_an_idle_actor_runs_on_the_thread_that_took_it_before_what_came_after():
    w, conn = started(Counter)
    host, run = take(w, casts(0, 1, 2))
    assert host is w.hosts[1] and len(run) == 3 and not host.mailbox  # kept out of the mailbox
    w.enqueue_casts(1, casts(3, 4))  # taken by a standby meanwhile: the actor is scheduled
    assert len(host.mailbox) == 2
    assert w.run_inline(host, run)
    me = threading.get_ident()
    assert [(i, t) for i, t, _ in LOG] == [(i, me) for i in range(5)]
    assert conn.asides == 1 and not host.scheduled
    assert sum(conn.handled_counts) == 5 and conn.handled_counts[0] == 3  # the run once, at its end
    sources = {id(s) for _, _, s in LOG}
    assert len(sources) == 1 and LOG[0][2].id == 7  # one sender: its ProcessID built once


def test_a_crash_mid_run_loses_the_rest_and_counts_every_cast_handled_once():
    w, conn = started(Counter)
    host, run = take(w, casts(0, "boom", 2, 3))
    w.enqueue_casts(1, casts(4))
    w.run_inline(host, run)
    assert [i for i, _, _ in LOG] == [0, "boom"]
    assert conn.next() == ("exited", 1, "crashed")
    assert sum(conn.handled_counts) == 5 and 1 not in w.hosts
    w.enqueue_casts(1, casts(5))  # to the actor that ended: lost, and counted
    assert sum(conn.handled_counts) == 6


def test_a_run_for_a_busy_or_async_actor_waits_in_its_mailbox():
    w, conn = started(Counter)
    w.hosts[1].scheduled = True  # a pool thread runs its mailbox now
    host, run = take(w, casts(0, 1))
    assert host is None and not run and len(w.hosts[1].mailbox) == 2

    w, conn = started(Waiter)  # its handlers run on a pool thread's event loop
    host, run = take(w, casts(0, 1))
    assert host is None and not run
    for _ in range(int(PATIENCE / 0.005)):
        if len(LOG) == 2:
            break
        threading.Event().wait(0.005)
    assert [i for i, _, _ in LOG] == [0, 1] and threading.get_ident() not in {t for _, t, _ in LOG}


def test_a_run_of_casts_at_the_head_of_a_mailbox_is_taken_whole_and_ends_at_a_call():
    w, conn = started(Counter)
    host = w.hosts[1]
    host.scheduled = True  # the mailbox fills while its actor is busy
    w.enqueue_casts(1, casts(0, 1))
    w.enqueue(1, ("msg", 5, "inc", None, pickle.dumps(2), []))  # a call
    w.enqueue_casts(1, casts(3, 4, 5))
    w.drain(host)
    assert [i for i, _, _ in LOG] == [0, 1, 2, 3, 4, 5]
    assert conn.next() == ("reply", 5, 2)
    assert conn.handled_counts == [2, 1, 3] and not host.scheduled
