"""The safety gate and `async def` handlers, end to end: a gated coroutine is refused while
disarmed; a disarm fails its caller at once, turns `rebeam.cancelled()` true in it (and only
in it: the actor's other runs keep their own flag), cancels it at its next `await`, and the
worker is killed only when the coroutine does not stop within the grace period. Real runs
armed and disarmed by the harness (hostlib.Host), under `rebeam` and in plain `python`.
"""

from __future__ import annotations

import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

from helpers import REBEAM, check, lines, run_python, run_rebeam
from hostlib import Host

PRELUDE = textwrap.dedent(
    '''
    import asyncio, os, queue, threading, time
    import concurrent.futures as cf
    import rebeam
    from rebeam import GenPy, Supervisor, call, call_async, receive, requires_armed
    from rebeam.errors import SafetyInterrupt
    from scriptlib import retry_call, show, wait_for, wait_new_pid
    from hostlib import ctl


    class Arm(GenPy):
        name = "arm"
        max_concurrency = 3

        @receive("pid")
        def pid(self, source, _):
            return os.getpid()

        @receive("log")
        def get_log(self, source, _):
            return self.state.get("log", [])

        def note(self, what):
            self.state.setdefault("log", []).append(what)

        @requires_armed
        @receive("reach")
        async def reach(self, source, i):
            # Cooperative: polls cancelled() between awaits; the cancellation may land first.
            try:
                rebeam.publish("arm.started", f"reach {i}")
                while not rebeam.cancelled():
                    await asyncio.sleep(0.005)
                self.note(f"reach {i} saw cancelled")
                await asyncio.sleep(30)  # the cancellation lands here at the latest
            except asyncio.CancelledError:
                self.note(f"reach {i} cancelled, cancelled()={rebeam.cancelled()}")
                raise
            return "reached"

        @receive("watch")
        async def watch(self, source, _):
            # Ungated, running next to the gated runs: a disarm is none of its business.
            rebeam.publish("arm.started", "watch")
            while not os.path.exists("release"):
                await asyncio.sleep(0.005)
            return "watched", rebeam.cancelled()

        @requires_armed
        @receive("spin")
        async def spin(self, source, _):
            rebeam.publish("arm.started", "spin")
            await asyncio.sleep(0)
            while True:          # never awaits again: only killing its worker stops it
                pass

        @requires_armed
        @receive("stubborn")
        async def stubborn(self, source, _):
            rebeam.publish("arm.started", "stubborn")
            while True:          # swallows every cancellation and goes on awaiting
                try:
                    await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                    pass


    started = queue.SimpleQueue()


    def listen():
        rebeam.on("arm.started", lambda topic, what: started.put(what))


    def started_all(n):
        return sorted(started.get(timeout=15) for _ in range(n))


    def arm():
        ctl("arm")
        wait_for("armed", rebeam.armed)


    def disarm_cancels_each_gated_run():
        listen()
        pid = call("arm", "pid")[1]
        show("refused while disarmed", call("arm", "reach", 0))
        arm()
        runs = [call_async("arm", "reach", i, timeout=30) for i in (1, 2)]
        watch = call_async("arm", "watch", timeout=30)
        print("started:", started_all(3), flush=True)
        ctl("disarm")
        for i, f in zip((1, 2), runs):
            show(f"reach {i} caller", f.result(timeout=20))
        wait_for("disarmed", lambda: rebeam.safety_state() == "disarmed")
        print("watch still running:", not watch.done(), flush=True)
        open("release", "w").close()
        print("watch:", watch.result(timeout=20), flush=True)
        log = call("arm", "log")[1]
        print("reach 1 log:", [x for x in log if x.startswith("reach 1 ")][-1], flush=True)
        print("reach 2 log:", [x for x in log if x.startswith("reach 2 ")][-1], flush=True)
        print("same worker:", call("arm", "pid")[1] == pid, flush=True)
    '''
)


def script(body: str) -> str:
    return PRELUDE + textwrap.dedent(body)


def check_disarm(r) -> None:
    check(r)
    out = lines(r)
    assert "refused while disarmed: error SafetyError" in out
    assert "started: ['reach 1', 'reach 2', 'watch']" in out
    assert "reach 1 caller: error SafetyError" in out and "reach 2 caller: error SafetyError" in out
    assert "watch still running: True" in out
    assert "watch: ('ok', ('watched', False))" in out
    for i in (1, 2):  # cancelled() was true in it, whichever way the cancellation reached it
        assert f"reach {i} log: reach {i} cancelled, cancelled()=True" in out
    assert "same worker: True" in out
    assert "safety: disarming → disarmed (every gated task stopped)" in r.stderr
    assert "killing it" not in r.stderr and "CRASH REPORT" not in r.stderr


def test_a_disarm_cancels_each_gated_coroutine_and_spares_the_others(tmp_path):
    with Host() as host:
        r = run_rebeam(tmp_path, script('''
            if __name__ == "__main__":
                Supervisor(modules=[Arm()])
                disarm_cancels_each_gated_run()
                rebeam.shutdown(0)
        '''), rebeam_args=(*host.rebeam_args(), "--safety-grace", "10"), timeout=90,
            env={"REBEAM_BIN": REBEAM, "REBEAM_LOG": "info", **host.env()})
    check_disarm(r)


def test_a_disarm_cancels_gated_coroutines_in_plain_python(tmp_path):
    xdg = tempfile.mkdtemp(prefix="rbt-", dir="/tmp")
    try:
        with Host(runtime_dir=xdg) as host:
            r = run_python(tmp_path, script('''
                Supervisor(modules=[Arm()])
                disarm_cancels_each_gated_run()
            '''), timeout=90, env={"XDG_RUNTIME_DIR": xdg, "REBEAM_BIN": REBEAM, "REBEAM_LOG": "info", **host.env()})
        check_disarm(r)
    finally:
        shutil.rmtree(xdg, ignore_errors=True)


@pytest.mark.parametrize("subject", ["spin", "stubborn"])
def test_a_coroutine_that_does_not_stop_has_its_worker_killed_after_the_grace(tmp_path: Path, subject):
    # spin never awaits (the cancellation cannot land); stubborn swallows it.
    with Host() as host:
        r = run_rebeam(tmp_path, f"SUBJECT = {subject!r}\n" + script('''
            if __name__ == "__main__":
                Supervisor(modules=[Arm()])
                listen()
                old = rebeam.whereis("arm")
                old_pid = call("arm", "pid")[1]
                arm()
                running = call_async("arm", SUBJECT, timeout=30)
                print("started:", started_all(1), flush=True)
                ctl("disarm")
                show("caller", running.result(timeout=20))
                gone = wait_for("the stuck worker to die", lambda: not os.path.exists(f"/proc/{old_pid}"))
                print("old worker gone:", gone, flush=True)
                wait_new_pid("arm", old)
                new_pid = retry_call("arm", "pid")
                print("back in a new worker:", new_pid[0] == "ok" and new_pid[1] != old_pid, flush=True)
                print("state:", rebeam.safety_state(), flush=True)
                rebeam.shutdown(0)
        '''), rebeam_args=(*host.rebeam_args(), "--safety-grace", "0.3"), timeout=90,
            env={"REBEAM_BIN": REBEAM, **host.env()})
    check(r)
    out = lines(r)
    assert f"started: [{subject!r}]" in out
    assert "caller: error SafetyError" in out
    assert "old worker gone: True" in out and "back in a new worker: True" in out
    assert "state: disarmed" in out
    assert "did not stop within 300ms of the disarm; killing it" in r.stderr


def test_under_require_armed_every_async_run_is_gated_work(tmp_path: Path):
    # `watch` has no @requires_armed: the flag makes it gated work all the same.
    with Host() as host:
        r = run_rebeam(tmp_path, script('''
            if __name__ == "__main__":
                Supervisor(modules=[Arm()])
                listen()
                show("watch while disarmed", call("arm", "watch"))
                arm()
                watching = call_async("arm", "watch", timeout=30)
                print("started:", started_all(1), flush=True)
                ctl("disarm")
                show("watch caller", watching.result(timeout=20))
                wait_for("disarmed", lambda: rebeam.safety_state() == "disarmed")
                rebeam.shutdown(0)
        '''), rebeam_args=(*host.rebeam_args(), "--safety", "require-armed", "--safety-grace", "10"),
            timeout=90, env={"REBEAM_BIN": REBEAM, "REBEAM_LOG": "info", **host.env()})
    check(r)
    out = lines(r)
    assert "watch while disarmed: error SafetyError" in out
    assert "started: ['watch']" in out
    assert "watch caller: error SafetyError" in out
    assert "safety: disarming → disarmed (every gated task stopped)" in r.stderr
    assert "killing it" not in r.stderr
