"""@requires_armed behaviours go through the same safety gate as gated actor handlers: refused
unless the host armed the system, interrupted on disarm, their worker killed after the grace."""

from __future__ import annotations

from helpers import check, lines, run_rebeam
from hostlib import Host

PROGRAM = """
    import os, time

    import rebeam
    from rebeam import requires_armed
    from rebeam.boc import Cown, quiesce, receive, send, when
    from rebeam.errors import SafetyError

    from hostlib import ctl               # the harness is the host: it runs `rebeam ctl`

    def until(state):
        deadline = time.monotonic() + 15
        while rebeam.safety_state() != state:
            assert time.monotonic() < deadline, f"still {rebeam.safety_state()}"
            time.sleep(0.01)

    arm = Cown(0)
    try:
        @when(arm)
        @requires_armed
        def move(arm):
            arm.value += 1
    except SafetyError as e:
        print("refused:", e, flush=True)

    @when(arm)
    def ungated(arm):                     # ordinary behaviours are not gated
        return "ran while disarmed"

    ctl("arm"); until("armed")

    @when(arm)
    @requires_armed
    def moved(arm):
        arm.value += 1
        return arm.value
    quiesce()
    print("armed:", moved.unwrap(), ungated.unwrap(), flush=True)

    @when(arm)
    @requires_armed
    def polite(arm):
        try:
            # Inside the try: the disarm can come the moment main has the message, while
            # send() is still returning here.
            send("polite started", os.getpid())
            while not rebeam.cancelled():
                pass
            return "saw cancelled()"
        except BaseException as e:
            return f"interrupted by {type(e).__name__}"

    receive("polite started", 30)
    print("disarm:", ctl("disarm").returncode, flush=True)
    quiesce(30)
    until("disarmed")
    print("polite:", polite.unwrap(), flush=True)

    ctl("arm"); until("armed")
    stuck = Cown(0)

    @when(stuck)
    @requires_armed
    def in_c(stuck):
        send("stuck", os.getpid())
        time.sleep(600)                   # in C: no interrupt lands; the worker is killed

    _, pid = receive("stuck", 30)
    ctl("disarm")
    quiesce(30)
    until("disarmed")
    try:
        os.kill(pid, 0)
        print("worker alive", flush=True)
    except ProcessLookupError:
        print("worker killed", flush=True)

    @when(stuck)
    def after(stuck):
        try:
            stuck.value
        except RuntimeError as e:
            return str(e)
    quiesce(30)
    print("after:", after.unwrap(), flush=True)

    fresh = Cown(5)

    @when(fresh)
    def goes_on(fresh):                   # the runtime goes on, with a new worker
        return fresh.value
    quiesce(30)
    print("goes on:", goes_on.unwrap(), flush=True)
"""


def test_requires_armed_behaviours_are_gated(tmp_path):
    with Host() as host:
        r = run_rebeam(tmp_path, PROGRAM, rebeam_args=("--safety-grace", "0.3", *host.rebeam_args()),
                       timeout=120, env=host.env())
    check(r)
    out = lines(r)
    assert any(x.startswith("refused: a @requires_armed behaviour requires the system to be armed "
                            "(safety state: disarmed)") for x in out), out
    assert "armed: 1 ran while disarmed" in out
    assert "disarm: 0" in out
    assert out.count("polite: saw cancelled()") + out.count("polite: interrupted by SafetyInterrupt") == 1, out
    assert "worker killed" in out
    assert any(x.startswith("after: the value of Cown<") and "was lost" in x for x in out), out
    assert "goes on: 5" in out
    assert "did not stop within" in r.stderr
