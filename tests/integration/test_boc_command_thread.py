"""Behaviours run on a worker's command thread: one that blocks there does not hold up the
worker's other commands, nor the behaviours after it in its batch (the watchdog hands the
command role and the rest of the run over); and a worker's start-up objects are out of the
collector's way."""

from __future__ import annotations

from helpers import check, outputs, run_rebeam

PROGRAM = """
    from rebeam.boc import Cown, quiesce, when

    a, b = Cown(0), Cown(0)

    @when(a)
    def waits(a):
        # Blocks until a behaviour that comes after it has run in this same worker (one
        # worker): that one is taken only once the watchdog gives the command role away.
        import threading, rebeam
        event = rebeam.__dict__.setdefault("_test_event", threading.Event())
        return event.wait(60)

    @when(b)
    def sets(b):
        import threading, rebeam
        rebeam.__dict__.setdefault("_test_event", threading.Event()).set()

    @when(a)
    def frozen(a):
        import gc
        return gc.get_freeze_count() > 0

    quiesce(90)
    print("waited:", waits.unwrap(), flush=True)
    print("frozen:", frozen.unwrap(), flush=True)
    for _ in range(200):                  # and behaviours go on running there afterwards
        @when(a, b)
        def step(a, b):
            a.value += 1
            b.value += 1
    @when(a, b)
    def total(a, b):
        return a.value + b.value
    quiesce(90)
    print("total:", total.unwrap(), flush=True)
"""


def test_a_behaviour_blocked_on_the_command_thread_lets_the_next_ones_run(tmp_path):
    r = run_rebeam(tmp_path, PROGRAM, workers=1, timeout=120)
    check(r)
    out = outputs(r)
    assert "waited: True" in out, out
    assert "frozen: True" in out, out
    assert "total: 400" in out, out
