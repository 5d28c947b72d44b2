"""A worker reports the messages its mailboxes let go of to the process's delivery bound in
batches, outside the mailbox's lock, and owes none once an actor is idle: driven in this
process with a recording connection in place of the governor's."""

from __future__ import annotations

import pickle
import queue
import threading

from rebeam import GenPy, receive
from rebeam._worker import HANDLED_BATCH, Host, Worker

#: How long a test waits for the worker before it fails.
PATIENCE = 10.0

GO = threading.Event()


class Conn:
    """Records each report of messages let go of, and whether the mailbox lock was held."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.reports: list = []
        self.host: Host | None = None

    def reply(self, delivery, ok, data, buffers):
        self.events.put(("reply", delivery, pickle.loads(data)))

    def started(self, actor, error=None, gating=None):
        self.events.put(("started", actor, error))

    def safety_state(self):
        return "armed"

    def handled(self, n=1):
        self.reports.append((n, self.host is not None and self.host.lock.locked()))


class Counter(GenPy):
    def __init__(self):
        self.n = 0

    @receive("hold")
    def hold(self, source, _):
        GO.wait(PATIENCE)

    @receive("n")
    def note(self, source, _):
        self.n += 1

    @receive("count")
    def count(self, source, _):
        return self.n


def test_messages_let_go_of_are_reported_in_batches_outside_the_lock_and_all_by_the_end():
    GO.clear()
    conn = Conn()
    w = Worker(conn)
    w.hosts[1] = conn.host = Host(1, "counter", "'counter'")
    w.enqueue(1, ("start", "actor", pickle.dumps(Counter()), []))
    assert conn.events.get(timeout=PATIENCE) == ("started", 1, None)
    item = lambda subject, delivery=None: ("msg", delivery, subject, None, pickle.dumps(None), [])  # noqa: E731
    w.enqueue(1, item("hold"))
    casts = 10 * HANDLED_BATCH
    w.enqueue_casts(1, [item("n") for _ in range(casts)])
    GO.set()
    w.enqueue(1, item("count", delivery=7))
    assert conn.events.get(timeout=PATIENCE) == ("reply", 7, casts)
    for _ in range(int(PATIENCE / 0.005)):  # the last report follows the reply
        if sum(n for n, _ in conn.reports) == casts + 2:
            break
        threading.Event().wait(0.005)
    assert sum(n for n, _ in conn.reports) == casts + 2, conn.reports
    assert not any(locked for _, locked in conn.reports), "reported under the mailbox lock"
    assert len(conn.reports) <= casts // HANDLED_BATCH + 3, f"{len(conn.reports)} reports: not batched"
