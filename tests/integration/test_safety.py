"""The safety gate and the topic bus, end to end: real `rebeam` runs armed and disarmed by the
host through `rebeam ctl`, real interrupts, real kills, real sockets and real users. The host
is the test harness (hostlib.Host): a program's `ctl()` asks it to run `rebeam ctl`, since no
Python process of a run may change the safety state itself (test_safety_boundary.py).

The Rust unit tests in crates/rebeam-core/src/safety.rs cover the `error` state (entered on
`StopFailed` from every state; arm and disarm refused there; only force-disarm leaves it):
a worker that cannot be confirmed dead is not something a test can produce for real.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from helpers import REBEAM, check, lines, program_env, run_rebeam, write_script
from hostlib import Host

PRELUDE = textwrap.dedent(
    '''
    import os, queue, stat, subprocess, sys, threading, time
    from pathlib import Path

    import rebeam
    from rebeam import GenPy, Supervisor, call, cast, child, receive, requires_armed, start, whereis
    from rebeam.errors import ReservedTopic, SafetyError, SafetyInterrupt
    from scriptlib import retry_call, show, wait_for, wait_new_pid

    from hostlib import control_chmod, control_stat, ctl   # the host (the harness) runs `rebeam ctl`

    HERE = os.path.dirname(os.path.abspath(__file__))
    REBEAM = os.environ.get("REBEAM_BIN") or str(Path(sys.executable).with_name("rebeam"))


    def touched(name):
        p = os.path.join(HERE, name)
        return open(p).read().split() if os.path.exists(p) else []


    class Motor(GenPy):
        """Gated handlers of every kind: quick, pure-Python loops, cooperative, stuck in C."""

        name = "motor"

        @start()
        def init(self):
            self.state["log"] = []

        @receive("pid")
        def pid(self, source, _):
            return os.getpid()

        @receive("log")
        def get_log(self, source, _):
            return self.state["log"]

        @receive("echo")
        def echo(self, source, n):
            return n

        @requires_armed
        @receive("move")
        def move(self, source, target):
            with open(os.path.join(HERE, "moves.txt"), "a") as f:   # the side effect
                f.write(f"{target}\\n")
            return f"moved to {target}"

        @requires_armed
        @receive("spin")
        def spin(self, source, _):
            rebeam.publish("motor.started", "spin")
            n = 0
            while True:                       # pure Python, never looks at cancelled()
                n += 1

        # The interrupt can land wherever the work is; where it matters, code that reacts
        # to it (and its announcement, which triggers the disarm) sits inside the try.

        @requires_armed
        @receive("cooperate")
        def cooperate(self, source, _):
            try:
                rebeam.publish("motor.started", "cooperate")
                while not rebeam.cancelled():
                    time.sleep(0.001)
            except SafetyInterrupt:
                self.state["log"].append("interrupted")
            if rebeam.cancelled():
                self.state["log"].append("saw cancelled")
            return "stopped"

        @requires_armed
        @receive("poll")
        def poll(self, source, _):
            # Hold the GIL as a long C call would: the worker's other threads wait up to 1 s.
            switch = sys.getswitchinterval()
            sys.setswitchinterval(1.0)
            try:
                rebeam.publish("motor.started", "poll")
                while not rebeam.cancelled():     # pure Python, polls the flag
                    pass
                self.state["log"].append("poll saw cancelled before the interrupt")
            except SafetyInterrupt:
                self.state["log"].append("poll interrupted before it saw cancelled")
            finally:
                sys.setswitchinterval(switch)
            return "stopped"

        @requires_armed
        @receive("sleep")
        def sleep(self, source, _):
            # Announce from another thread once this one is inside time.sleep: a disarm that
            # came before would be interrupted in Python, and no kill would be needed.
            threading.Timer(0.2, rebeam.publish, ("motor.started", "sleep")).start()
            time.sleep(60)                    # in C: no interrupt can land

        @requires_armed
        @receive("stubborn")
        def stubborn(self, source, _):
            try:
                rebeam.publish("late.before", "before the disarm")
                rebeam.publish("motor.started", "stubborn")
                while True:
                    pass
            except BaseException as e:        # swallows the interrupt and answers anyway
                self.state["log"].append(type(e).__name__)
            sent = rebeam.publish("late.after", "after the disarm")
            self.state["log"].append(f"publish after cancel: {sent}")
            return "late value"

        @requires_armed
        @receive("quick")
        def quick(self, source, n):
            s = 0
            for i in range(n):
                s += i
            return s


    started = queue.SimpleQueue()


    def listen_for_starts():
        rebeam.on("motor.started", lambda topic, what: started.put(what))


    def in_background(subject, message=None, timeout=20):
        """Calls the motor from a thread; returns once the handler has started."""
        box = {}

        def go():
            box["r"] = call("motor", subject, message, timeout=timeout)
            box["t"] = time.monotonic()

        t = threading.Thread(target=go)
        t.start()
        what = started.get(timeout=15)
        assert what == subject, (what, subject)
        return t, box
    '''
)


def script(body: str) -> str:
    return PRELUDE + textwrap.dedent(body)


def run(tmp_path: Path, body: str, *rebeam_args: str, env: dict | None = None, timeout: float = 60):
    """Runs the program with the harness as its host: the program's `ctl()` asks it to act."""
    with Host(runtime_dir=(env or {}).get("XDG_RUNTIME_DIR")) as host:
        return run_rebeam(tmp_path, script(body), rebeam_args=(*host.rebeam_args(), *rebeam_args),
                          timeout=timeout, env={"REBEAM_BIN": REBEAM, **host.env(), **(env or {})})


def short_tmpdir() -> str:
    """A private XDG_RUNTIME_DIR short enough for Unix socket paths (108 bytes)."""
    return tempfile.mkdtemp(prefix="rbt-", dir="/tmp")


def test_gated_work_is_refused_before_dispatch_until_the_host_arms(tmp_path):
    r = run(tmp_path, '''
        if __name__ == "__main__":
            Supervisor(modules=[Motor()])
            print("state:", rebeam.safety_state(), rebeam.armed(), flush=True)
            r = call("motor", "move", 1)
            show("move while disarmed", r)
            print("message:", r[1], flush=True)
            print("cast while disarmed:", cast("motor", "move", 2), flush=True)
            show("ungated while disarmed", call("motor", "echo", 7))
            print("side effects while disarmed:", touched("moves.txt"), flush=True)

            status = ctl("status")
            print("STATUS<<", status.returncode, status.stdout, ">>STATUS", flush=True)
            arm = ctl("arm")
            print("ARM<<", arm.returncode, arm.stdout, ">>ARM", flush=True)
            wait_for("the armed state to reach the main process", rebeam.armed)
            print("state:", rebeam.safety_state(), rebeam.armed(), flush=True)
            show("move while armed", call("motor", "move", 3))
            print("cast while armed:", cast("motor", "move", 4), flush=True)
            call("motor", "echo", 0)  # FIFO: the cast ran before this answer
            print("side effects while armed:", touched("moves.txt"), flush=True)
            again = ctl("arm")
            print("arm again:", again.returncode, again.stdout.strip(), flush=True)
            status = ctl("status")
            print("STATUS2<<", status.stdout, ">>STATUS2", flush=True)
            rebeam.shutdown(0)
    ''')
    check(r)
    out = lines(r)
    assert "state: disarmed False" in out
    assert "move while disarmed: error SafetyError" in out
    assert any("'motor' 'move' requires the system to be armed (safety state: disarmed)" in x and
               "`rebeam ctl arm`" in x for x in out), r.stdout
    assert "cast while disarmed: False" in out
    assert "ungated while disarmed: ok 7" in out
    assert "side effects while disarmed: []" in out  # the handler never ran

    status = r.stdout.split("STATUS<<", 1)[1].split(">>STATUS", 1)[0]
    assert status.startswith(" 0 safety:  disarmed\n"), status
    assert f"script:  {tmp_path / 'main.py'}" in status
    assert "process: main process (pid" in status
    assert status.count("process: worker") == 3 and "(spare)" in status
    assert "supervisor Supervisor<" in status and "0 of 3 restarts used" in status
    assert "'motor' (Motor): running as <" in status

    arm = r.stdout.split("ARM<<", 1)[1].split(">>ARM", 1)[0]
    assert "disarmed → armed: armed by the host" in arm and "safety: armed" in arm and arm.startswith(" 0 ")
    assert "state: armed True" in out
    assert "move while armed: ok 'moved to 3'" in out
    assert "cast while armed: True" in out
    assert "side effects while armed: ['3', '4']" in out
    assert "arm again: 0 safety: armed" in out  # idempotent: no transition
    assert "safety:  armed" in r.stdout.split("STATUS2<<", 1)[1]
    assert "rebeam info: safety: disarmed → armed (armed by the host)" in r.stderr


def test_disarm_interrupts_a_python_loop_and_the_actor_keeps_its_worker(tmp_path):
    # A long grace: if the interrupt did not land, the worker would be killed (a new pid).
    r = run(tmp_path, '''
        if __name__ == "__main__":
            Supervisor(modules=[Motor()])
            listen_for_starts()
            pid = call("motor", "pid")[1]
            for subject in ("spin", "cooperate", "poll"):
                ctl("arm")
                wait_for("armed", rebeam.armed)
                t, box = in_background(subject)
                sent = time.monotonic()
                d = ctl("disarm")
                t.join(15)
                show(f"{subject} caller", box["r"])
                print(f"{subject} answered before the grace:", box["t"] - sent < 5, flush=True)
                print(f"{subject} disarm:", d.returncode, d.stdout.strip().replace(chr(10), " | "), flush=True)
                wait_for("disarmed", lambda: rebeam.safety_state() == "disarmed")
                show(f"{subject} then", call("motor", "echo", subject))
                print(f"{subject} same worker:", call("motor", "pid")[1] == pid, flush=True)
            # The cooperative handlers saw cancelled() turn true.
            show("log", call("motor", "log"))
            time.sleep(0.3)
            print("still the same worker:", call("motor", "pid")[1] == pid, flush=True)
            print("STATUS<<", ctl("status").stdout, ">>STATUS", flush=True)
            rebeam.shutdown(0)
    ''', "--safety-grace", "5")
    check(r)
    out = lines(r)
    for subject in ("spin", "cooperate", "poll"):
        assert f"{subject} caller: error SafetyError" in out
        assert f"{subject} answered before the grace: True" in out
        assert f"{subject} then: ok {subject!r}" in out
        assert f"{subject} same worker: True" in out
    assert "spin disarm: 0 armed → disarming: disarm requested by the host | safety: disarming" in out
    log = eval(next(x for x in out if x.startswith("log: ok ")).split("ok ", 1)[1])
    # `cooperate` sleeps between polls: the interrupt may land first (caught), or not.
    assert log[:-1] in (["interrupted", "saw cancelled"], ["saw cancelled"]), log
    # `poll` holds the GIL: cancelled() turns true at once (the disarm is read without
    # Python), long before the worker's command thread can get the GIL to interrupt it.
    assert log[-1] == "poll saw cancelled before the interrupt", log
    assert "still the same worker: True" in out
    assert "0 of 3 restarts used" in r.stdout  # nothing was restarted
    assert "safety: disarming → disarmed (every gated task stopped)" in r.stderr
    assert "killing it" not in r.stderr and "CRASH REPORT" not in r.stderr


def test_a_worker_stuck_in_c_is_killed_after_the_grace_and_its_actor_restarts_disarmed(tmp_path):
    r = run(tmp_path, '''
        if __name__ == "__main__":
            Supervisor(modules=[Motor()])
            listen_for_starts()
            old = whereis("motor")
            old_pid = call("motor", "pid")[1]
            ctl("arm")
            wait_for("armed", rebeam.armed)
            t, box = in_background("sleep", timeout=30)
            d = ctl("disarm")
            t.join(30)
            show("sleeper caller", box["r"])
            print("disarm:", d.stdout.strip().replace(chr(10), " | "), flush=True)
            gone = wait_for("the stuck worker to die", lambda: not os.path.exists(f"/proc/{old_pid}"))
            print("old worker gone:", gone, flush=True)
            wait_new_pid("motor", old)
            new_pid = retry_call("motor", "pid")
            print("actor back in a new worker:", new_pid[0] == "ok" and new_pid[1] != old_pid, flush=True)
            print("state after the kill:", rebeam.safety_state(), flush=True)
            show("gated after the kill", call("motor", "move", 1))
            print("side effects:", touched("moves.txt"), flush=True)
            print("STATUS<<", ctl("status").stdout, ">>STATUS", flush=True)
            rebeam.shutdown(0)
    ''', "--safety-grace", "0.2")
    check(r)
    out = lines(r)
    assert "sleeper caller: error SafetyError" in out
    assert "disarm: armed → disarming: disarm requested by the host | safety: disarming" in out
    assert "old worker gone: True" in out
    assert "actor back in a new worker: True" in out
    assert "state after the kill: disarmed" in out
    assert "gated after the kill: error SafetyError" in out
    assert "side effects: []" in out
    status = r.stdout.split("STATUS<<", 1)[1]
    assert "safety:  disarmed" in status and "1 of 3 restarts used" in status
    assert "did not stop within 200ms of the disarm; killing it" in r.stderr
    assert "killed by SIGKILL" in r.stderr and "CRASH REPORT" in r.stderr
    assert "safety: disarming → disarmed (every gated task stopped)" in r.stderr


def test_every_disarm_gets_its_own_grace_period(tmp_path):
    # The grace timer of an earlier disarm must not kill work that a later disarm cancelled:
    # here it would fire while the second handler is still stopping, well within its own grace.
    r = run(tmp_path, '''
        class Slow(Motor):
            name = "motor"

            @requires_armed
            @receive("decelerate")
            def decelerate(self, source, seconds):
                try:
                    rebeam.publish("motor.started", "decelerate")
                    while True:
                        pass
                except SafetyInterrupt:
                    end = time.monotonic() + seconds   # stopping takes a while, within the grace
                    while time.monotonic() < end:
                        time.sleep(0.01)
                    self.state["log"].append("decelerated")
                    return "stopped"

        if __name__ == "__main__":
            Supervisor(modules=[Slow()])
            listen_for_starts()
            pid = call("motor", "pid")[1]
            ctl("arm")
            wait_for("armed", rebeam.armed)
            t, box = in_background("spin")
            ctl("disarm")                      # first disarm: its grace ends 2 s from now
            t.join(15)
            wait_for("disarmed", lambda: rebeam.safety_state() == "disarmed")
            time.sleep(1.4)
            ctl("arm")
            wait_for("armed", rebeam.armed)
            t, box = in_background("decelerate", 1.0)
            ctl("disarm")                      # second disarm: 2 s of grace of its own
            t.join(15)
            show("decelerate caller", box["r"])
            wait_for("disarmed", lambda: rebeam.safety_state() == "disarmed")
            show("log", call("motor", "log"))
            print("same worker:", call("motor", "pid")[1] == pid, flush=True)
            rebeam.shutdown(0)
    ''', "--safety-grace", "2")
    check(r)
    out = lines(r)
    assert "decelerate caller: error SafetyError" in out
    assert "log: ok ['decelerated']" in out
    assert "same worker: True" in out
    assert "killing it" not in r.stderr


def test_arming_is_refused_while_disarming_and_force_disarm_does_not_wait(tmp_path):
    r = run(tmp_path, '''
        if __name__ == "__main__":
            Supervisor(modules=[Motor()])
            listen_for_starts()
            old_pid = call("motor", "pid")[1]
            ctl("arm")
            wait_for("armed", rebeam.armed)
            t, box = in_background("sleep", timeout=30)
            ctl("disarm")
            refused = ctl("arm")
            print("arm while disarming:", refused.returncode, refused.stderr.strip(), flush=True)
            print("status while disarming:", ctl("status").stdout.splitlines()[0], flush=True)
            forced = ctl("force-disarm")
            print("force:", forced.returncode, forced.stdout.strip().replace(chr(10), " | "), flush=True)
            t.join(30)
            show("sleeper caller", box["r"])
            # Forced out of disarming, the stuck work is still killed after the grace.
            print("old worker gone:", wait_for("the kill", lambda: not os.path.exists(f"/proc/{old_pid}")), flush=True)
            print("noop force:", ctl("force-disarm").stdout.strip(), flush=True)
            rebeam.shutdown(0)
    ''', "--safety-grace", "3")
    check(r)
    out = lines(r)
    assert ("arm while disarming: 1 rebeam ctl: refused: cannot arm: the safety state is disarming "
            "(gated work is still being stopped); wait until it is disarmed, or run "
            "`rebeam ctl force-disarm`, then arm again") in out
    assert "status while disarming: safety:  disarming" in out
    assert "force: 0 disarming → disarmed: forced by the host | safety: disarmed" in out
    assert "sleeper caller: error SafetyError" in out
    assert "old worker gone: True" in out
    assert "noop force: safety: disarmed" in out


def test_a_late_answer_and_late_publications_are_discarded(tmp_path):
    r = run(tmp_path, '''
        if __name__ == "__main__":
            Supervisor(modules=[Motor()])
            listen_for_starts()
            seen = []
            rebeam.on("late.**", lambda topic, v: seen.append((topic, v)))
            pid = call("motor", "pid")[1]
            ctl("arm")
            wait_for("armed", rebeam.armed)
            t, box = in_background("stubborn")
            ctl("disarm")
            t.join(15)
            show("stubborn caller", box["r"])
            log = wait_for("the stubborn handler to end", lambda: (l := call("motor", "log")[1]) and len(l) >= 2 and l)
            print("log:", log, flush=True)
            # Anything late would have arrived by now; the next answers are the actor's own.
            time.sleep(0.5)
            show("next call", call("motor", "echo", "fresh"))
            print("publications seen:", seen, flush=True)
            print("same worker:", call("motor", "pid")[1] == pid, flush=True)
            rebeam.shutdown(0)
    ''', "--safety-grace", "5")
    check(r)
    out = lines(r)
    assert "stubborn caller: error SafetyError" in out
    assert "log: ['SafetyInterrupt', 'publish after cancel: False']" in out
    assert "next call: ok 'fresh'" in out
    assert "publications seen: [('late.before', 'before the disarm')]" in out  # not 'late.after'
    assert "late value" not in r.stdout
    assert "same worker: True" in out


def test_no_stale_interrupt_or_cancellation_reaches_the_next_message(tmp_path):
    r = run(tmp_path, '''
        class Poked(Motor):
            """A motor that also answers bus publications, and reports cancelled() there."""

            name = "motor"

            @start()
            def init(self):
                self.state["log"] = []
                rebeam.on("poke", self.poked)

            def poked(self, topic, n):
                rebeam.publish("poked", (n, rebeam.cancelled()))

        if __name__ == "__main__":
            Supervisor(modules=[Poked()])
            listen_for_starts()
            pokes = queue.SimpleQueue()
            rebeam.on("poked", lambda topic, v: pokes.put(v))
            pid = call("motor", "pid")[1]
            failures = []
            for cycle in range(5):
                ctl("arm")
                wait_for("armed", rebeam.armed)
                t, box = in_background("spin")
                ctl("disarm")
                t.join(15)
                if not (box["r"][0] == "error" and isinstance(box["r"][1], SafetyError)):
                    failures.append(("spin", cycle, box["r"]))
                # The first thing the actor runs after the interrupted work: a bus handler,
                # which must not see that work's cancellation (its publication goes out).
                rebeam.publish("poke", cycle)
                try:
                    got = pokes.get(timeout=10)
                except queue.Empty:
                    got = "nothing"
                if got != (cycle, False):
                    failures.append(("poke", cycle, got))
                for i in range(200):
                    got = call("motor", "echo", i)
                    if got != ("ok", i):
                        failures.append(("echo", cycle, i, got))
                wait_for("disarmed", lambda: rebeam.safety_state() == "disarmed")
            # Quick gated calls racing each disarm from another thread: an interrupt may land
            # just as one ends; it must never reach a later message.
            for cycle in range(20):
                ctl("arm")
                wait_for("armed", rebeam.armed)
                racer = threading.Thread(target=lambda: [call("motor", "quick", 20000) for _ in range(20)])
                racer.start()
                time.sleep(0.01 * (cycle % 5))
                ctl("disarm")
                racer.join(30)
                for i in range(20):
                    got = call("motor", "echo", i)
                    if got != ("ok", i):
                        failures.append(("echo after race", cycle, i, got))
                wait_for("disarmed", lambda: rebeam.safety_state() == "disarmed")
            print("failures:", failures, flush=True)
            print("same worker:", call("motor", "pid")[1] == pid, flush=True)
            rebeam.shutdown(0)
    ''', "--safety-grace", "5")
    check(r)
    out = lines(r)
    assert "failures: []" in out
    assert "same worker: True" in out
    assert "CRASH REPORT" not in r.stderr


def test_a_forged_arm_frame_from_python_is_refused(tmp_path):
    r = run(tmp_path, '''
        class Forger(GenPy):
            name = "forger"

            @receive("forge")
            def forge(self, source, action):
                from rebeam import _runtime, _rebeam
                _runtime.connection()._send_raw(_rebeam._control_frame(action))
                return os.getpid()

            @receive("pid")
            def pid(self, source, _):
                return os.getpid()

        if __name__ == "__main__":
            Supervisor(modules=[Motor(), Forger()])
            pid = call("forger", "pid")[1]
            show("forged from a worker", call("forger", "forge", "arm"))
            from rebeam import _runtime, _rebeam
            _runtime.connection()._send_raw(_rebeam._control_frame("arm"))   # and from main
            time.sleep(0.5)
            print("state:", rebeam.safety_state(), flush=True)
            print("ctl says:", ctl("status").stdout.splitlines()[0], flush=True)
            show("gated", call("motor", "move", 1))
            print("forger survived:", call("forger", "pid") == ("ok", pid), flush=True)
            rebeam.shutdown(0)
    ''')
    check(r)
    out = lines(r)
    assert "forged from a worker: ok" in r.stdout
    assert "state: disarmed" in out
    assert "ctl says: safety:  disarmed" in out
    assert "gated: error SafetyError" in out
    assert "forger survived: True" in out
    refused = [x for x in r.stderr.splitlines() if "refused a control request (Arm)" in x]
    assert len(refused) == 2, r.stderr
    assert any("from worker" in x for x in refused) and any("from main process" in x for x in refused)
    assert "only the host may arm or disarm, through the control socket" in r.stderr
    assert "armed by the host" not in r.stderr


def test_the_control_socket_is_owner_only(tmp_path):
    xdg = short_tmpdir()
    try:
        r = run(tmp_path, '''
            if __name__ == "__main__":
                seen = control_stat()                # by the harness: Python is not told the path
                print("socket:", seen.path, flush=True)
                print("socket mode:", oct(seen.mode), flush=True)
                print("dir mode:", oct(seen.dir_mode), flush=True)
                print("owner is me:", seen.owner_is_me, flush=True)
                rebeam.shutdown(0)
        ''', env={"XDG_RUNTIME_DIR": xdg})
        check(r)
        out = lines(r)
        assert f"socket: {xdg}/rebeam/ctl-" in r.stdout
        assert "socket mode: 0o600" in out
        assert "dir mode: 0o700" in out
        assert "owner is me: True" in out
    finally:
        shutil.rmtree(xdg, ignore_errors=True)


def as_nobody() -> list[str] | None:
    """A command prefix that runs a program as user `nobody`, if this machine allows it."""
    for prefix in (["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"],
                   ["runuser", "-u", "nobody", "--"]):
        if shutil.which(prefix[0]) is None:
            continue
        try:
            probe = subprocess.run([*prefix, "id", "-u"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and probe.stdout.strip() not in ("", str(os.getuid())):
            return prefix
    return None


def test_the_control_socket_refuses_another_user(tmp_path):
    prefix = as_nobody()
    if prefix is None:
        pytest.skip("cannot run a process as `nobody` here (needs root and setpriv or runuser)")
    if not subprocess.run([*prefix, REBEAM, "--version"], capture_output=True, timeout=10).returncode == 0:
        pytest.skip(f"user nobody cannot execute {REBEAM}")
    xdg = short_tmpdir()
    os.chmod(xdg, 0o711)  # nobody may traverse the base, not the 0700 rebeam directory in it
    try:
        r = run(tmp_path, f'''
            PREFIX = {prefix!r}
            if __name__ == "__main__":
                for action in ("status", "arm"):
                    other = ctl(action, prefix=PREFIX)
                    print(f"nobody {{action}}:", other.returncode, other.stdout.strip() or "-", "|", other.stderr.strip(), flush=True)
                print("state:", rebeam.safety_state(), ctl("status").stdout.splitlines()[0], flush=True)
                # Past the file modes (loosened here by the owner), SO_PEERCRED still refuses.
                control_chmod(0o666, dir_mode=0o755)
                other = ctl("arm", prefix=PREFIX)
                print("nobody arm, modes open:", other.returncode, other.stdout.strip() or "-", "|", other.stderr.strip(), flush=True)
                control_chmod(0o600, dir_mode=0o700)
                time.sleep(0.2)
                print("state:", rebeam.safety_state(), ctl("status").stdout.splitlines()[0], flush=True)
                print("owner arms:", ctl("arm").returncode, flush=True)
                rebeam.shutdown(0)
        ''', env={"XDG_RUNTIME_DIR": xdg})
        check(r)
        out = lines(r)
        for action in ("status", "arm"):
            line = next(x for x in out if x.startswith(f"nobody {action}:"))
            assert line.startswith(f"nobody {action}: 1 - | rebeam ctl: cannot connect to {xdg}/rebeam/ctl-"), line
            assert "Permission denied" in line
        assert out.count("state: disarmed safety:  disarmed") == 2
        line = next(x for x in out if x.startswith("nobody arm, modes open:"))
        # The governor refuses with a reason and hangs up.
        assert line.startswith("nobody arm, modes open: 1 - | rebeam ctl: refused: uid 65534 may not control"), line
        assert "refused a control connection from another user" in r.stderr
        assert "uid=65534" in r.stderr or "65534" in r.stderr
        assert "owner arms: 0" in out
    finally:
        shutil.rmtree(xdg, ignore_errors=True)


def test_require_armed_gates_every_message_to_every_actor(tmp_path):
    r = run(tmp_path, '''
        class Plain(GenPy):
            """No handler is marked; under --safety require-armed every one is gated."""

            name = "plain"

            @receive("echo")
            def echo(self, source, n):
                return n

            @receive("touch")
            def touch(self, source, n):
                with open(os.path.join(HERE, "touched.txt"), "a") as f:
                    f.write(f"{n}\\n")

            @receive("spin")
            def spin(self, source, _):
                rebeam.publish("motor.started", "spin")
                while True:
                    pass

            @receive()
            def anything(self, source, message):
                return "caught all"

        if __name__ == "__main__":
            Supervisor(modules=[Plain()])
            listen_for_starts()
            show("call", call("plain", "echo", 1))
            show("catch-all", call("plain", "whatever", 1))
            print("cast:", cast("plain", "touch", 1), flush=True)
            ctl("arm")
            wait_for("armed", rebeam.armed)
            show("armed call", call("plain", "echo", 2))
            show("armed catch-all", call("plain", "whatever", 2))
            print("armed cast:", cast("plain", "touch", 2), flush=True)
            # Gated work queued behind running gated work when the disarm comes: refused too.
            box = {}
            t = threading.Thread(target=lambda: box.setdefault("r", call("plain", "spin", None, timeout=20)))
            t.start()
            started.get(timeout=15)
            print("queued cast:", cast("plain", "touch", 3), flush=True)
            ctl("disarm")
            t.join(20)
            show("spin", box["r"])
            wait_for("disarmed", lambda: rebeam.safety_state() == "disarmed")
            show("disarmed call", call("plain", "echo", 4))
            time.sleep(0.3)
            print("touched:", touched("touched.txt"), flush=True)
            rebeam.shutdown(0)
    ''', "--safety", "require-armed", "--safety-grace", "5")
    check(r)
    out = lines(r)
    assert "call: error SafetyError" in out
    assert "catch-all: error SafetyError" in out
    assert "cast: False" in out
    assert "armed call: ok 2" in out
    assert "armed catch-all: ok 'caught all'" in out
    assert "armed cast: True" in out
    assert "queued cast: True" in out
    assert "spin: error SafetyError" in out
    assert "disarmed call: error SafetyError" in out
    assert "touched: ['2']" in out  # not 1 (disarmed), not 3 (queued when the disarm came)


WAITER = '''
if __name__ == "__main__":
    print("ready", flush=True)
    wait_for("armed or released", lambda: rebeam.armed() or os.path.exists(os.path.join(HERE, "release")), 40)
    print("armed seen:", rebeam.armed(), flush=True)
    wait_for("released", lambda: os.path.exists(os.path.join(HERE, "release")), 40)
    rebeam.shutdown(0)
'''


def test_ctl_finds_the_one_running_system(tmp_path):
    xdg = short_tmpdir()
    env = program_env({"XDG_RUNTIME_DIR": xdg, "REBEAM_BIN": REBEAM})
    env.pop("REBEAM_CONTROL", None)

    def ctl(action):
        return subprocess.run([REBEAM, "ctl", action], capture_output=True, text=True, timeout=20, env=env)

    def start(name):
        d = tmp_path / name
        d.mkdir()
        write_script(d, script(WAITER))
        p = subprocess.Popen([REBEAM, "--workers", "1", "main.py"], cwd=d, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(p)
        ready, _, _ = select.select([p.stdout], [], [], 30)  # never wait forever
        assert ready and p.stdout.readline().strip() == "ready", f"run {name} did not start"
        return p, d

    procs = []
    try:
        none = ctl("status")
        assert none.returncode == 2
        assert none.stderr.strip() == ("rebeam ctl: no running rebeam found; start one with `rebeam main.py`, "
                                       "or name it with --socket / REBEAM_CONTROL")
        a, dir_a = start("a")
        status = ctl("status")
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith("safety:  disarmed\n") and f"script:  {dir_a / 'main.py'}" in status.stdout
        arm = ctl("arm")
        assert (arm.returncode, arm.stdout) == (0, "disarmed → armed: armed by the host\nsafety: armed\n")
        b, dir_b = start("b")
        several = ctl("disarm")
        assert several.returncode == 2
        assert several.stderr.startswith("rebeam ctl: several rebeam runs are going; choose one with --socket:\n")
        assert several.stderr.count(f"{xdg}/rebeam/ctl-") == 2
        for d in (dir_a, dir_b):
            (d / "release").touch()
        out_a, err_a = a.communicate(timeout=30)
        out_b, err_b = b.communicate(timeout=30)
        assert a.returncode == 0 and b.returncode == 0, err_a + err_b
        assert "armed seen: True" in out_a  # the arm reached run a
        assert "armed seen: False" in out_b  # the arm went to run a only
        assert "armed → disarming" not in err_a + err_b  # the refused disarm reached neither run
        after = ctl("status")
        assert after.returncode == 2 and "no running rebeam found" in after.stderr
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        shutil.rmtree(xdg, ignore_errors=True)


def test_bus_wildcards_throttle_reserved_topics_and_safety_transitions(tmp_path):
    r = run(tmp_path, '''
        class Listener(GenPy):
            name = "listener"

            @start()
            def init(self):
                self.state.update(one=[], fast=[], actuator=[])
                rebeam.on("sensor.*", lambda topic, v: self.state["one"].append(topic))
                self.state["fast_sub"] = rebeam.on("fast.x", lambda topic, v: self.state["fast"].append(v), throttle=0.2)
                rebeam.on("actuator.**", lambda topic, v: self.state["actuator"].append(topic))

            @receive("got")
            def got(self, source, key):
                return self.state[key]

            @receive("dropped")
            def dropped(self, source, _):
                return rebeam.dropped(self.state["fast_sub"])

            @receive("publish")
            def publish(self, source, topic):
                try:
                    rebeam.publish(topic, "from an actor")
                    return "published"
                except ReservedTopic as e:
                    return f"ReservedTopic: {e}"

        if __name__ == "__main__":
            Supervisor(modules=[Listener()])
            many, transitions = [], []
            rebeam.on("sensor.**", lambda topic, v: many.append(topic))
            rebeam.on("safety.transition", lambda topic, v: transitions.append(v))

            for topic in ("sensor", "sensor.a", "sensor.a.b", "sensorx.a", "other.sensor", "sensor.b", "sensor.end"):
                rebeam.publish(topic, topic)
            wait_for("sensor.end in main", lambda: "sensor.end" in many)
            wait_for("sensor.end in the actor", lambda: "sensor.end" in call("listener", "got", "one")[1])
            print("sensor.**:", many, flush=True)
            print("sensor.*:", call("listener", "got", "one")[1], flush=True)

            for i in range(50):
                rebeam.publish("fast.x", i)
            wait_for("the newest throttled publication", lambda: 49 in call("listener", "got", "fast")[1], 10)
            time.sleep(0.5)  # nothing older comes after the newest
            print("throttled:", call("listener", "got", "fast")[1], flush=True)
            print("dropped:", call("listener", "dropped")[1], flush=True)

            for topic in ("safety.x", "param.gain", "rebeam.x", "actuator.real.x", "actuator.sim.x.y", "actuator.sim.x"):
                try:
                    rebeam.publish(topic, 1)
                    print(f"publish {topic}: ok", flush=True)
                except ReservedTopic as e:
                    print(f"publish {topic}: ReservedTopic", flush=True)
            print("actor publishes safety.x:", call("listener", "publish", "safety.x")[1], flush=True)
            print("actor publishes actuator.sim.arm:", call("listener", "publish", "actuator.sim.arm")[1], flush=True)
            wait_for("actuator.sim.arm", lambda: "actuator.sim.arm" in call("listener", "got", "actuator")[1])
            print("actuator.**:", call("listener", "got", "actuator")[1], flush=True)

            ctl("arm")
            ctl("disarm")
            wait_for("three transitions", lambda: len(transitions) >= 3)
            time.sleep(0.2)
            for t in transitions:
                print("transition:", t["from"], "->", t["to"], "|", t["reason"], "|", type(t["monotonic_ns"]).__name__, flush=True)
            ns = [t["monotonic_ns"] for t in transitions]
            print("monotonic:", ns == sorted(ns) and ns[0] >= 0, sorted(transitions[0]), flush=True)
            rebeam.shutdown(0)
    ''', "--allow-publish", "actuator.sim.*")
    check(r)
    out = lines(r)
    assert "sensor.**: ['sensor', 'sensor.a', 'sensor.a.b', 'sensor.b', 'sensor.end']" in out
    assert "sensor.*: ['sensor.a', 'sensor.b', 'sensor.end']" in out
    throttled = eval(next(x for x in out if x.startswith("throttled:")).split(":", 1)[1])
    assert throttled[0] == 0 and throttled[-1] == 49, throttled  # the first at once, the newest last
    assert len(throttled) < 10 and throttled == sorted(throttled), throttled  # few, in order
    # What the throttle skipped is counted and visible to the subscriber.
    assert f"dropped: {50 - len(throttled)}" in out
    for topic in ("safety.x", "param.gain", "rebeam.x", "actuator.real.x", "actuator.sim.x.y"):
        assert f"publish {topic}: ReservedTopic" in out
    assert "publish actuator.sim.x: ok" in out
    assert any(x.startswith("actor publishes safety.x: ReservedTopic: topic 'safety.x' is reserved") for x in out)
    assert "actor publishes actuator.sim.arm: published" in out
    assert "actuator.**: ['actuator.sim.x', 'actuator.sim.arm']" in out
    assert [x for x in out if x.startswith("transition:")] == [
        "transition: disarmed -> armed | armed by the host | int",
        "transition: armed -> disarming | disarm requested by the host | int",
        "transition: disarming -> disarmed | no gated work in flight | int",
    ]
    assert "monotonic: True ['from', 'monotonic_ns', 'reason', 'to']" in out

