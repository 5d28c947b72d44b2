"""A worker's command thread runs a call for an idle actor itself (no hand-off to a pool
thread), having stepped out of the command role first: a handler so run that blocks never
holds up the messages of its neighbours in the same worker."""

from __future__ import annotations

from helpers import check, outputs, run_rebeam

HELD_HANDLER = """
import threading
import rebeam
from rebeam import GenPy, Supervisor, call, receive

#: Shared by the two actors: they live in the one worker.
HELD = threading.Event()
RELEASE = threading.Event()


class Slow(GenPy):
    name = "slow"

    @receive("hold")
    def hold(self, source, _):
        HELD.set()
        return "released" if RELEASE.wait(30) else "never released"


class Fast(GenPy):
    name = "fast"

    @receive("held")
    def held(self, source, _):
        return HELD.is_set()

    @receive("release")
    def release(self, source, _):
        RELEASE.set()
        return True


if __name__ == "__main__":
    import time

    Supervisor(modules=[Slow(), Fast()])
    call("fast", "held")                   # both started, routes cached
    answer = []
    holder = threading.Thread(target=lambda: answer.append(call("slow", "hold", None, 60.0)))
    holder.start()
    deadline = time.monotonic() + 30
    while not call("fast", "held")[1]:     # answered while slow's handler blocks
        assert time.monotonic() < deadline, "slow never started"
        time.sleep(0.001)
    print("neighbour served:", call("fast", "release"), flush=True)
    holder.join()
    print("slow:", answer, flush=True)
    rebeam.shutdown(0)
"""


def test_a_blocked_handler_run_by_the_command_thread_holds_up_no_neighbour(tmp_path):
    r = run_rebeam(tmp_path, HELD_HANDLER, workers=1, timeout=120)
    check(r)
    out = outputs(r)
    assert "neighbour served: ('ok', True)" in out, r.stdout
    assert "slow: [('ok', 'released')]" in out, r.stdout
