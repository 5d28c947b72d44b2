"""The loop that runs a run of casts (`_casts.run`, behind `Worker.run_casts`): plain casts run
there, each exactly as `Worker.deliver` would run it, and every other one goes through
`deliver` itself: a gated handler (still refused while disarmed), out-of-band buffers, a
pickle that cannot be loaded (dropped, the rest run), subjects and senders changing mid-run."""

from __future__ import annotations

import pickle

from test_worker_casts import LOG, Conn, started

from rebeam import GenPy, receive, requires_armed


class Disarmed(Conn):
    def safety_state(self):
        return "disarmed"


class Mixed(GenPy):
    @receive("inc")
    def inc(self, source, i):
        LOG.append(("inc", i, source.id if source else None))

    @requires_armed
    @receive("fire")
    def fire(self, source, i):
        LOG.append(("fire", i, None))

    @receive()
    def other(self, source, i):
        LOG.append(("other", i, None))


def cast(subject, value, sender=(7, "driver"), buffers=()):
    return ("msg", None, subject, sender, pickle.dumps(value), buffers)


def run(w, items):
    w.run_casts(w.hosts[1], list(items))


def test_a_mixed_run_runs_in_order_each_cast_as_delivered():
    w, conn = started(Mixed)
    delivered = []
    plain_deliver = w.deliver
    w.deliver = lambda *a: (delivered.append(a[2]), plain_deliver(*a))
    items = [
        cast("inc", 0),
        cast("inc", 1, sender=(8, "other")),
        cast("fire", 2),
        cast("nope", 3),
        cast("inc", 4, sender=None),
        ("msg", None, "inc", (7, "driver"), b"not a pickle", ()),
        cast("inc", 5),
    ]
    run(w, items)
    assert LOG == [
        ("inc", 0, 7),
        ("inc", 1, 8),
        ("fire", 2, None),
        ("other", 3, None),
        ("inc", 4, None),
        ("inc", 5, 7),
    ]
    assert delivered == ["fire"], "only the gated one took deliver's way"
    assert sum(conn.handled_counts) == len(items)


def test_a_gated_cast_is_refused_while_disarmed_and_buffers_take_delivers_way():
    w, _ = started(Mixed)
    w.conn = Disarmed()
    delivered = []
    plain_deliver = w.deliver
    w.deliver = lambda *a: (delivered.append(a[2]), plain_deliver(*a))
    data, buffers = pickle.dumps(9, protocol=5), [memoryview(b"")]
    run(w, [cast("fire", 1), ("msg", None, "inc", None, data, buffers), cast("inc", 2)])
    assert LOG == [("inc", 9, None), ("inc", 2, 7)], "the gated one never ran"
    assert delivered == ["fire", "inc"]
