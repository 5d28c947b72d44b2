"""rebeam.boc when things go wrong: a worker dying while a behaviour gathers its values, a
value a worker cannot unpickle, and modules only the main process's sys.path can find."""

from __future__ import annotations

from helpers import check, lines, run_rebeam

WORKER_DIES_WHILE_GATHERING = """
    import os, signal, time
    from rebeam.boc import Cown, PinnedCown, quiesce, when

    held, other, pinned = Cown(0), Cown(0), PinnedCown("here")

    @when(held)
    def move(held):                           # `held` now lives in the (only) worker
        held.value = 1
        return os.getpid()

    quiesce(30)
    pid = move.unwrap()

    @when(other)
    def freeze(other):                        # stops the worker, command thread and all
        os.kill(os.getpid(), signal.SIGSTOP)

    def stopped():
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"

    deadline = time.monotonic() + 30
    while not stopped() and time.monotonic() < deadline:
        time.sleep(0.01)

    @when(held, pinned)                       # runs here, so the frozen worker must surrender `held`
    def gather(held, pinned):
        return held.value

    time.sleep(0.5)                           # the governor has asked for the value by now
    os.kill(pid, signal.SIGKILL)
    try:
        quiesce(20)
        print("quiesced", flush=True)
    except TimeoutError as e:
        print("hung:", e, flush=True)
    print("gather failed:", gather.exception, flush=True)
    try:
        gather.unwrap()
    except RuntimeError as e:
        print("gather:", e, flush=True)
    @when(held)
    def later(held):                          # the cown stays usable: it says its value died
        try:
            return held.value
        except RuntimeError as e:
            return f"lost: {e}"
    quiesce(20)
    print("later:", later.unwrap(), flush=True)
"""


def test_a_worker_dying_while_a_behaviour_gathers_does_not_hang_wait(tmp_path):
    r = run_rebeam(tmp_path, WORKER_DIES_WHILE_GATHERING, workers=1, timeout=60)
    check(r)
    out = lines(r)
    assert "quiesced" in out, r.stdout + r.stderr
    assert "gather failed: True" in out, out
    assert any(x.startswith("gather:") and "was lost" in x for x in out), out
    assert any(x.startswith("later: lost:") and "was lost" in x for x in out), out
