"""Actor-to-actor messages on the direct path (actors in different workers): one order per
sender → actor across casts and calls, and calls that keep working when the target is
restarted under its name (it gets a new id: the stale route is found out and resolved again)."""

from __future__ import annotations

import textwrap

from helpers import check, outputs, run_rebeam

PRELUDE = textwrap.dedent(
    '''
    import os, time
    import rebeam
    from rebeam import GenPy, Supervisor, call, cast, receive, start

    class B(GenPy):
        name = "b"

        @start()
        def init(self):
            self.state["seen"] = []

        @receive("note")
        def note(self, source, i):
            self.state["seen"].append(i)

        @receive("seen")
        def seen(self, source, _):
            return self.state["seen"]

        @receive("pid")
        def pid(self, source, _):
            return os.getpid()

        @receive("boom")
        def boom(self, source, _):
            raise ValueError("boom")

    class A(GenPy):
        name = "a"

        @receive("pid")
        def pid(self, source, _):
            return os.getpid()

        @receive("mixed")
        def mixed(self, source, n):
            # Casts and calls interleaved, to another worker: B must see them in this order.
            for i in range(n):
                if i % 10 == 9:
                    assert call("b", "note", i)[0] == "ok"
                else:
                    assert cast("b", "note", i)
            return call("b", "seen")[1]

        @receive("after_restart")
        def after_restart(self, source, _):
            before = call("b", "pid")
            status, err = call("b", "boom")
            deadline = time.monotonic() + 20
            while True:  # its supervisor restarts it; until then the name may be free (NoProcess)
                got = call("b", "pid")
                if got[0] == "ok" or time.monotonic() > deadline:
                    return before, status, type(err).__name__, got
                time.sleep(0.01)
    '''
)


def test_casts_and_calls_between_workers_keep_one_order_and_survive_a_restart(tmp_path):
    r = run_rebeam(tmp_path, PRELUDE + textwrap.dedent('''
        if __name__ == "__main__":
            Supervisor(modules=[A(), B()])
            print("apart:", call("a", "pid")[1] != call("b", "pid")[1], flush=True)
            seen = call("a", "mixed", 2000, 60.0)[1]
            print("in order:", seen == list(range(2000)), flush=True)
            before, status, err, got = call("a", "after_restart", None, 60.0)[1]
            print("boom:", status, err, flush=True)
            print("after restart:", got[0], flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    out = outputs(r)
    assert "apart: True" in out, r.stdout
    assert "in order: True" in out, r.stdout
    assert "boom: error RemoteError" in out, r.stdout
    assert "after restart: ok" in out, r.stdout


CRASH_THEN_CALL = """
import rebeam
from rebeam import GenPy, Supervisor, call, receive


class Fragile(GenPy):
    name = "fragile"

    @receive("boom")
    def boom(self, source, _):
        raise ValueError("boom")

    @receive("ping")
    def ping(self, source, n):
        return n


if __name__ == "__main__":
    Supervisor(modules=[Fragile()], max_restarts=100, max_seconds=60)
    call("fragile", "ping", 0)                      # the route is cached: calls go direct
    seen = set()
    for round in range(20):
        status, err = call("fragile", "boom")
        assert isinstance(err, rebeam.RemoteError), err
        # Straight after the crash's answer: the actor is gone, so NoProcess (try again),
        # never a message lost in its cleared mailbox (ActorDown).
        while True:
            status, value = call("fragile", "ping", round)
            if status == "ok":
                break
            seen.add(type(value).__name__)
            assert isinstance(value, rebeam.NoProcess), value
    print("answered", round, sorted(seen), flush=True)
    rebeam.shutdown(0)
"""


def test_a_call_right_after_a_crash_gets_no_process_not_actor_down(tmp_path):
    r = run_rebeam(tmp_path, CRASH_THEN_CALL, timeout=120)
    check(r)
    assert "answered 19" in r.stdout, r.stdout


STOPPED_READER = """
import os, signal
import rebeam
from rebeam import GenPy, Supervisor, call, cast, receive


class Sink(GenPy):
    name = "sink"

    @receive("who")
    def who(self, source, _):
        return os.getpid()

    @receive("take")
    def take(self, source, blob):
        return len(blob)


if __name__ == "__main__":
    Supervisor(modules=[Sink()])
    worker = call("sink", "who")[1]           # the route is cached: casts go direct
    print("before:", rebeam.stats(), flush=True)
    os.kill(worker, signal.SIGSTOP)           # its process stops reading: the ring fills
    blob = b"x" * 10_000
    delivered = 0
    while delivered < 1000 and cast("sink", "take", blob):
        delivered += 1
    print("refused after", "a few" if 0 < delivered < 1000 else delivered, flush=True)
    print("after:", rebeam.stats(), flush=True)
    os.kill(worker, signal.SIGCONT)
    print("serving:", call("sink", "take", b"abc"), flush=True)
    rebeam.shutdown(0)
"""


def test_a_cast_dropped_at_a_full_ring_is_counted_in_stats(tmp_path):
    r = run_rebeam(tmp_path, STOPPED_READER, timeout=120)
    check(r)
    out = outputs(r)
    assert "before: {'casts_dropped': 0}" in out, r.stdout
    assert "refused after a few" in out, r.stdout
    assert "after: {'casts_dropped': 1}" in out, r.stdout
    assert "serving: ('ok', 3)" in out, r.stdout


HUGE_FAILURE = """
import os
import rebeam
from rebeam import GenPy, Supervisor, call, receive


class Loud(GenPy):
    name = "loud"

    @receive("pid")
    def pid(self, source, _):
        return os.getpid()

    @receive("fail")
    def fail(self, source, n):
        raise ValueError("x" * n)


if __name__ == "__main__":
    Supervisor(modules=[Loud()])
    call("loud", "pid")                       # the route is cached: calls go direct
    for n in [10, 1 << 20]:                   # a failure far larger than the ring's record
        status, err = call("loud", "fail", n, timeout=20)
        words = str(err)
        print("failed", n, status, type(err).__name__, "ValueError" in words,
              "too large for the channel" in words, len(words) < 300_000, flush=True)
        while call("loud", "pid")[0] != "ok":  # until its supervisor has restarted it
            pass
    rebeam.shutdown(0)
"""


def test_a_direct_calls_failure_too_large_for_the_ring_reaches_its_caller_cut(tmp_path):
    r = run_rebeam(tmp_path, HUGE_FAILURE, timeout=120)
    check(r)
    out = outputs(r)
    assert "failed 10 error RemoteError True False True" in out, r.stdout
    # Before, the failure was dropped and its caller waited out its timeout.
    assert f"failed {1 << 20} error RemoteError True True True" in out, r.stdout
