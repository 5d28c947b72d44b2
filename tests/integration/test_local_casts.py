"""Casts between two actors of one worker are queued in that worker without a round trip to
the governor (once the first has learnt the receiver lives there), and keep every rule of the
governor's way: order per sender with its calls between them, the delivery bound (a burst
past it still arrives whole), a gated subject refused while disarmed, and a cast to the
sender itself."""

from __future__ import annotations

from helpers import check, outputs, run_rebeam

SCRIPT = """
import rebeam
from rebeam import GenPy, Supervisor, call, cast, receive, requires_armed, response_ok, self_pid


class Sink(GenPy):
    name = "sink"

    def __init__(self):
        self.seen = []

    @receive("n")
    def n(self, source, i):
        self.seen.append((source.name if source else None, i))

    @receive("mark")
    def mark(self, source, i):
        self.seen.append(("mark", i))
        return response_ok(len(self.seen))

    @receive("seen")
    def seen_(self, source, _):
        out, self.seen = self.seen, []
        return response_ok(out)

    @receive("pid")
    def pid(self, source, _):
        import os
        return response_ok(os.getpid())

    @requires_armed
    @receive("fire")
    def fire(self, source, _):
        self.seen.append(("fired", None))


class Sender(GenPy):
    name = "sender"

    def __init__(self):
        self.got = 0

    @receive("burst")
    def burst(self, source, job):
        n, every = job
        delivered = 0
        for i in range(n):
            delivered += cast("sink", "n", i)
            if every and i % every == every - 1:
                status, _ = call("sink", "mark", i)
                assert status == "ok", status
        return response_ok(delivered)

    @receive("fire")
    def fire(self, source, _):
        return response_ok(cast("sink", "fire"))

    @receive("self")
    def to_self(self, source, n):
        for i in range(n):
            cast(self_pid(), "mine", i)
        return response_ok(n)

    @receive("mine")
    def mine(self, source, i):
        assert i == self.got, (i, self.got)
        self.got += 1

    @receive("mine_count")
    def mine_count(self, source, _):
        return response_ok(self.got)

    @receive("pid")
    def pid(self, source, _):
        import os
        return response_ok(os.getpid())


if __name__ == "__main__":
    Supervisor(modules=[Sink(), Sender()])
    print("one worker:", call("sink", "pid")[1] == call("sender", "pid")[1], flush=True)

    # Well past the delivery bound (4096), with calls from the same sender among the casts.
    n, every = 30000, 1000
    print("delivered:", call("sender", "burst", (n, every), 120.0), flush=True)
    seen = call("sink", "seen")[1]
    want = []
    for i in range(n):
        want.append(("sender", i))
        if i % every == every - 1:
            want.append(("mark", i))
    print("in order:", seen == want, len(seen), flush=True)

    # Gated while disarmed: refused as the governor refuses it, and never run.
    print("gated:", call("sender", "fire"), call("sink", "seen"), flush=True)

    # To itself, past the bound: each arrives, in order, once the handler has returned.
    print("self:", call("sender", "self", 20000, 120.0), flush=True)
    print("mine:", call("sender", "mine_count", None, 120.0), flush=True)
    rebeam.shutdown(0)
"""


def test_casts_within_one_worker_keep_order_bound_gate_and_self_sends(tmp_path):
    r = run_rebeam(tmp_path, SCRIPT, workers=1, timeout=240)
    check(r)
    out = outputs(r)
    assert "one worker: True" in out, r.stdout
    assert "delivered: ('ok', 30000)" in out, r.stdout
    assert "in order: True 30030" in out, r.stdout
    assert "gated: ('ok', False) ('ok', [])" in out, r.stdout
    assert "self: ('ok', 20000)" in out, r.stdout
    assert "mine: ('ok', 20000)" in out, r.stdout
