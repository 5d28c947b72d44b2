"""Nothing a peer sends crashes the governor: real runs that used to panic or abort it (nested
seed trees, huge queues, infinite timeouts, a worker that stops reading, a SIGKILLed worker),
and the guard that still cleans up when the governor itself panics."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import uuid

import pytest

from helpers import REBEAM, check, outputs, processes_with, program_env, run_rebeam, wait_until, write_script

ACTORS = """
    import os, signal, sys, time
    import rebeam
    from rebeam import GenPy, Supervisor, call, cast, child, receive, whereis
    from scriptlib import retry_call, wait_for, wait_new_pid

    class Member(GenPy):
        def __init__(self, name):
            self.name = name

        @receive("who")
        def who(self, source, _):
            return (self.name, os.getpid())

        @receive("take")
        def take(self, source, data):
            return len(data)

        @receive("crash")
        def crash(self, source, _):
            raise RuntimeError(f"{self.name} crashes on purpose")
"""



def program(*parts: str) -> str:
    return "".join(textwrap.dedent(p) for p in parts)


NESTED = {
    "returned_from_main": """
        def main():
            left = Supervisor(modules=[child(Member("a1"), name="a1"), child(Member("a2"), name="a2")], name="left")
            right = Supervisor(modules=[child(Member("b1"), name="b1")], name="right")
            return Supervisor(modules=[left, right, child(Member("client"), name="client")], name="root")

        if __name__ == "__main__":
            root = main()
            checks()
    """,
    "built_in_the_body": """
        if __name__ == "__main__":
            root = Supervisor(modules=[
                Supervisor(modules=[child(Member("a1"), name="a1"), child(Member("a2"), name="a2")], name="left"),
                Supervisor(modules=[child(Member("b1"), name="b1")], name="right"),
                child(Member("client"), name="client"),
            ], name="root")
            checks()
    """,
}

NESTED_CHECKS = """
    def checks():
        for n in ("a1", "a2", "b1", "client"):
            print("serves:", call(n, "who")[1][0], flush=True)
        for n in ("a2", "b1"):
            before = whereis(n)
            print("crash:", call(n, "crash")[0], flush=True)
            wait_new_pid(n, before)
            print("restarted:", retry_call(n, "who")[1][0], flush=True)
        rebeam.shutdown(0)
"""


@pytest.mark.parametrize("how", sorted(NESTED))
def test_the_seed_nested_tree_runs_restarts_and_ends_cleanly(tmp_path, how):
    # Supervisor(modules=[Supervisor(...), Supervisor(...), client]) used to crash the governor
    # (index out of bounds in tree.rs's adopt).
    r = run_rebeam(tmp_path, program(ACTORS, NESTED_CHECKS, NESTED[how]))
    check(r)
    out = outputs(r)
    assert [x for x in out if x.startswith("serves:")] == [f"serves: {n}" for n in ("a1", "a2", "b1", "client")]
    assert [x for x in out if x.startswith("restarted:")] == ["restarted: a2", "restarted: b1"]
    assert "panicked" not in r.stderr


def test_subscription_bounds_are_checked_in_python_and_in_the_governor(tmp_path):
    # queue=2**32-1 used to make the governor allocate it up front and abort (exit 134).
    r = run_rebeam(tmp_path, """
        import math
        import rebeam
        from rebeam import _runtime
        from rebeam._rebeam import MAX_QUEUE
        from rebeam.errors import RebeamError

        for kwargs in ({"queue": 2**32 - 1}, {"queue": 0}, {"throttle": math.inf}, {"throttle": math.nan}):
            try:
                rebeam.on("x.*", print, **kwargs)
                print("accepted", kwargs)
            except ValueError as e:
                print("ValueError:", e, flush=True)
        # Past the Python check, straight to the governor: an error reply, not an abort.
        try:
            _runtime.connection().subscribe(None, "x.*", 0, 2**32 - 1)
        except RebeamError as e:
            print("governor refused:", type(e).__name__, e, flush=True)
        got = []
        rebeam.on("x.*", lambda topic, v: got.append(v), queue=MAX_QUEUE)
        rebeam.publish("x.y", 1)
        import time
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        print("delivered:", got, flush=True)
    """)
    check(r)
    out = outputs(r)
    refused = [x for x in out if x.startswith("ValueError:")]
    assert len(refused) == 4, out
    assert "queue=4294967295 must be a whole number from 1 to 65536" in refused[0]
    assert "throttle=inf" in refused[2] and "throttle=nan" in refused[3]
    assert any(x.startswith("governor refused:") and "queue ≤ 65536" in x for x in out), out
    assert "delivered: [1]" in out


def test_restart_intensity_is_bounded_in_python_and_in_the_governor(tmp_path):
    # A supervisor keeps one timestamp per restart in its window: an unbounded max_restarts
    # with a child that fails as it starts grows the governor's memory without limit, and
    # max_seconds=inf or nan used to fail in int() with OverflowError / ValueError.
    r = run_rebeam(tmp_path, """
        import math
        import rebeam
        from rebeam import GenPy, Supervisor, _runtime, call, receive
        from rebeam._rebeam import MAX_RESTARTS
        from rebeam.errors import RebeamError

        class Ok(GenPy):
            name = "ok"

            @receive("ping")
            def ping(self, source, _):
                return "pong"

        for kwargs in ({"max_restarts": 2**32 - 1}, {"max_restarts": -1}, {"max_restarts": 1.5},
                       {"max_seconds": math.inf}, {"max_seconds": math.nan}, {"max_seconds": 0}):
            try:
                Supervisor(modules=[], **kwargs)
                print("accepted", kwargs)
            except ValueError as e:
                print("ValueError:", e, flush=True)
        # Past the Python check, straight to the governor: an error reply naming the supervisor.
        spec = {"name": "huge", "strategy": "one_for_one", "max_restarts": 2**32 - 1, "max_seconds_ms": 5000,
                "children": []}
        try:
            _runtime.connection().start_tree(spec)
            print("governor accepted")
        except RebeamError as e:
            print("governor refused:", type(e).__name__, e, flush=True)
        if __name__ == "__main__":
            Supervisor(modules=[Ok()], max_restarts=MAX_RESTARTS, max_seconds=86400)
            print("call:", call("ok", "ping"), flush=True)
            rebeam.shutdown(0)
    """)
    check(r)
    out = outputs(r)
    refused = [x for x in out if x.startswith("ValueError:")]
    assert len(refused) == 6, out
    assert "max_restarts=4294967295 must be a whole number from 0 to 10000" in refused[0]
    assert "max_seconds=inf" in refused[3] and "max_seconds=nan" in refused[4]
    assert any(x.startswith("governor refused:") and "supervisor huge" in x and "0..=10000" in x for x in out), out
    assert "call: ('ok', 'pong')" in out


def test_timeouts_must_be_finite_and_huge_ones_work(tmp_path):
    # timeout=inf used to panic in Duration::from_secs_f64 (PanicException in Python).
    r = run_rebeam(tmp_path, program(ACTORS, """
        import math
        from rebeam.boc import receive as boc_receive
        Supervisor(modules=[child(Member("m"), name="m")])
        for t in (math.inf, math.nan, -1.0):
            try:
                call("m", "who", timeout=t)
                print("accepted", t)
            except ValueError as e:
                print("ValueError:", e, flush=True)
        try:
            boc_receive("tag", timeout=math.nan)
        except ValueError as e:
            print("ValueError:", e, flush=True)
        try:
            rebeam.receive_down(timeout=math.inf)
        except ValueError as e:
            print("ValueError:", e, flush=True)
        # Longer than an Instant can reach: as good as no limit, for Python and the governor.
        print("huge:", call("m", "who", timeout=1e300), flush=True)
        rebeam.shutdown(0)
    """))
    check(r)
    out = outputs(r)
    refused = [x for x in out if x.startswith("ValueError:")]
    assert len(refused) == 5, out
    assert "call('m', \"who\"): timeout=inf is not a finite number of seconds ≥ 0" in refused[0]
    assert "timeout=NaN" in refused[1] and "timeout=-1" in refused[2]
    assert "receive([\"tag\"])" in refused[3]
    assert "receive_down(): timeout=inf" in refused[4]
    assert any(x.startswith("huge: ('ok', ('m',") for x in out), out


@pytest.mark.parametrize("flag", ["--shutdown-timeout=inf", "--safety-grace=-1", "--shutdown-timeout=1e300"])
def test_cli_seconds_flags_are_validated(tmp_path, flag):
    write_script(tmp_path, "print('ran')\n")
    r = subprocess.run([REBEAM, flag, "main.py"], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                       env=program_env())
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "not a finite number of seconds ≥ 0" in r.stderr
    assert "panicked" not in r.stderr and "ran" not in r.stdout


def test_a_stopped_worker_costs_bounded_memory_and_the_system_recovers(tmp_path):
    # Casts and calls to an actor whose worker is SIGSTOPped used to pile up in the governor
    # (unbounded outbox) until the OOM killer came.
    r = run_rebeam(tmp_path, program(ACTORS, """
        def peak_kib(pid):
            with open(f"/proc/{pid}/status") as f:
                return next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))

        governor = int(os.environ["REBEAM_GOVERNOR_PID"])
        Supervisor(modules=[child(Member("sink"), name="sink")], max_restarts=10, max_seconds=60)
        old = whereis("sink")
        worker = call("sink", "who")[1][1]
        os.kill(worker, signal.SIGSTOP)
        blob = b"x" * 900_000
        refused = sum(not cast("sink", "take", blob) for _ in range(300))  # 270 MB in all
        status, err = call("sink", "take", blob, timeout=30)
        print("refused casts:", refused > 0, flush=True)
        print("call while stopped:", status, type(err).__name__, flush=True)
        print("error text:", err, flush=True)
        print("governor peak MiB:", peak_kib(governor) // 1024, flush=True)
        # The hung worker is killed; its supervisor restarts the actor on another worker.
        wait_new_pid("sink", old, deadline=60)
        print("after:", retry_call("sink", "take", b"abc"), flush=True)
        rebeam.shutdown(0)
    """), rebeam_args=("--max-message-bytes", "1000000"), timeout=120)
    check(r)
    out = outputs(r)
    assert "refused casts: True" in out
    assert "call while stopped: error CapacityError" in out
    text = next(x for x in out if x.startswith("error text:"))
    assert "actor 'sink'" in text and "is not reading" in text
    peak = int(next(x for x in out if x.startswith("governor peak MiB:")).split()[-1])
    assert peak < 100, f"the governor's peak RSS was {peak} MiB for a stopped worker"
    assert "after: ('ok', 3)" in out
    assert "killing it as hung" in r.stderr


def test_a_sigkilled_worker_is_a_death_not_a_malformed_frame(tmp_path):
    # A reset or a half frame from a dying worker was logged as a protocol violation.
    source = program(ACTORS, """
        import threading
        Supervisor(modules=[child(Member("sink"), name="sink")], max_restarts=100, max_seconds=60)
        blob = b"x" * 200_000
        for _ in range(4):
            old = whereis("sink")
            worker = call("sink", "who")[1][1]
            stop = threading.Event()
            def flood():
                while not stop.is_set():
                    cast("sink", "take", blob)
            t = threading.Thread(target=flood)
            t.start()
            time.sleep(0.2)
            os.kill(worker, signal.SIGKILL)
            wait_new_pid("sink", old)
            stop.set()
            t.join()
        print("after:", retry_call("sink", "take", b"abc"), flush=True)
        rebeam.shutdown(0)
    """)
    for _ in range(3):
        r = run_rebeam(tmp_path, source, timeout=120)
        check(r)
        assert "after: ('ok', 3)" in outputs(r)
        assert "malformed" not in r.stderr and "bad frame" not in r.stderr, r.stderr
        assert "killed by SIGKILL" in r.stderr


def test_a_governor_panic_kills_every_process_it_started(tmp_path):
    marker = f"rebeam-test-{uuid.uuid4().hex}"
    write_script(tmp_path, program(ACTORS, """
        import subprocess
        Supervisor(modules=[child(Member("m"), name="m")])
        call("m", "who")
        # A grandchild, in the main process's group: PR_SET_PDEATHSIG alone would leave it.
        sub = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        print("socket", os.environ["REBEAM_SOCKET"], flush=True)
        time.sleep(120)
    """))
    env = program_env({"REBEAM_TEST_MARKER": marker, "REBEAM_TEST_PANIC_AFTER_MS": "8000"})
    proc = subprocess.Popen([REBEAM, "--workers", "2", "main.py"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("socket "), "the script did not get going before the deliberate panic"
        assert len(processes_with(marker)) >= 4, processes_with(marker)
        assert proc.wait(timeout=60) == 70
        err = proc.stderr.read()
        assert "a deliberate panic" in err and "internal error" in err
        assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)
        assert not os.path.exists(line.split(" ", 1)[1].strip())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
