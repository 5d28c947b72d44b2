"""A worker's `async def` runs under `max_concurrency` (`rebeam._runs`), driven in this process
with a recording connection in place of the governor's: how many run at once, in what order
they start, that synchronous handlers run alone, what a crash in one run does to the others,
and that a disarm's cancel reaches exactly its own run."""

from __future__ import annotations

import asyncio
import pickle
import queue
import threading

import pytest

from rebeam import GenPy, receive
from rebeam._worker import Host, Worker

#: How long a test waits for the worker before it fails.
PATIENCE = 10.0

LOG: list = []
RELEASE = threading.Event()


class Conn:
    """Records what the worker tells the governor."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue = queue.SimpleQueue()

    def reply(self, delivery, ok, data, buffers):
        self.events.put(("reply", delivery, pickle.loads(data)))

    def reply_failure(self, delivery, info):
        self.events.put(("failure", delivery, info.kind))

    def started(self, actor, error=None, gating=None):
        self.events.put(("started", actor, error))

    def exited(self, actor, exit, taken_up_to=None):
        self.events.put(("exited", actor, exit.kind))

    def safety_state(self):
        return "armed"

    def handled(self, n=1):
        pass  # the bound on waiting deliveries is the real connection's (rebeam-client)

    def next(self):
        return self.events.get(timeout=PATIENCE)


class Wide(GenPy):
    max_concurrency = 3

    def __init__(self):
        self.in_flight = self.most = 0

    @receive("wait")
    async def wait(self, source, i):
        LOG.append(("start", i))
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            while i == "boom" and len(LOG) < self.max_concurrency:
                await asyncio.sleep(0.001)
            if i == "boom":  # with the others still in flight
                raise ValueError("boom")
            while not RELEASE.is_set():
                await asyncio.sleep(0.001)
        except asyncio.CancelledError:
            LOG.append(("cancelled", i))
            raise
        finally:
            self.in_flight -= 1
        return i

    @receive("sync")
    def sync(self, source, _):
        return self.in_flight, self.most


@pytest.fixture
def worker():
    LOG.clear()
    RELEASE.clear()
    conn = Conn()
    w = Worker(conn)
    w.hosts[1] = Host(1, "wide", "'wide'")
    w.enqueue(1, ("start", "actor", pickle.dumps(Wide()), []))
    assert conn.next() == ("started", 1, None)
    yield w, conn
    RELEASE.set()


def send(w: Worker, delivery: int, subject: str, message) -> None:
    w.enqueue(1, ("msg", delivery, subject, None, pickle.dumps(message), []))


def wait_log(n: int) -> list:
    pause = threading.Event()  # never set: a sleep
    for _ in range(int(PATIENCE / 0.005)):
        if len(LOG) >= n:
            return list(LOG)
        pause.wait(0.005)
    raise AssertionError(f"the log never reached {n} entries: {LOG}")


def test_up_to_the_limit_run_at_once_in_arrival_order_and_a_sync_handler_runs_alone(worker):
    w, conn = worker
    for d in range(5):
        send(w, d, "wait", d)
    send(w, 5, "sync", None)
    send(w, 6, "wait", 6)
    assert wait_log(3) == [("start", 0), ("start", 1), ("start", 2)]
    RELEASE.set()
    answers = [conn.next() for _ in range(7)]
    assert sorted(a[1] for a in answers) == list(range(7))
    assert all(a == ("reply", a[1], a[1]) for a in answers if a[1] != 5)
    assert ("reply", 5, (0, 3)) in answers  # nothing in flight when it ran; never more than 3
    assert [i for kind, i in LOG if kind == "start"] == [0, 1, 2, 3, 4, 6]
    # The sync handler answered after every run before it, and before the run after it.
    order = [a[1] for a in answers]
    assert order.index(5) > max(order.index(d) for d in range(5)) and order.index(5) < order.index(6)


def test_a_crash_in_one_run_fails_its_caller_cancels_the_others_and_ends_the_actor_once(worker):
    w, conn = worker
    send(w, 1, "wait", 1)
    send(w, 2, "wait", "boom")
    send(w, 3, "wait", 3)
    send(w, 4, "wait", 4)  # still in the mailbox: the governor answers it ActorDown
    events = [conn.next(), conn.next()]
    assert events == [("failure", 2, "crashed"), ("exited", 1, "crashed")]
    assert sorted(wait_log(5)[3:]) == [("cancelled", 1), ("cancelled", 3)]
    with pytest.raises(queue.Empty):  # the cancelled runs answer nothing
        conn.events.get(timeout=0.3)
    assert 1 not in w.hosts


def test_a_cancel_reaches_exactly_its_own_run_and_is_answered_once_it_stopped(worker):
    w, conn = worker
    send(w, 1, "wait", 1)
    send(w, 2, "wait", 2)
    wait_log(2)
    w.cancel(1, 2)
    assert conn.next() == ("failure", 2, "safety")
    assert ("cancelled", 2) in LOG and ("cancelled", 1) not in LOG
    RELEASE.set()
    assert conn.next() == ("reply", 1, 1)


def test_a_cancel_of_a_run_waiting_for_room_means_it_never_starts(worker):
    w, conn = worker
    for d in range(4):
        send(w, d, "wait", d)
    wait_log(3)
    host = w.hosts[1]
    for _ in range(int(PATIENCE / 0.005)):
        if not host.mailbox:
            break
        threading.Event().wait(0.005)
    assert not host.mailbox and not host.revoked
    w.cancel(1, 3)  # taken from the mailbox, waiting for one of the three to end: revoked
    assert host.revoked == {3}
    RELEASE.set()
    answers = sorted(conn.next() for _ in range(4))
    assert answers == [("failure", 3, "safety"), ("reply", 0, 0), ("reply", 1, 1), ("reply", 2, 2)]
    assert ("start", 3) not in LOG
