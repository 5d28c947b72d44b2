"""Supervision trees, end to end: real `rebeam` runs, observed through what they print and
through a log file that every actor's @start (and terminate) appends to."""

from __future__ import annotations

import textwrap

import pytest

from helpers import check, run_rebeam

# Shared by every script: actors that log their starts and stops, and polling helpers.
PRELUDE = textwrap.dedent(
    '''
    import os, sys, time
    import rebeam
    from rebeam import GenPy, Supervisor, call, cast, child, whereis, start, receive
    from rebeam.errors import NoProcess
    import scriptlib
    from scriptlib import retry_call, wait_for

    LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log.txt")

    def log(line):
        with open(LOG, "a") as f:
            f.write(line + "\\n")

    def log_lines():
        try:
            with open(LOG) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    class Member(GenPy):
        def __init__(self, name):
            self.name = name

        @start()
        def init(self):
            self.state["n"] = 0
            log(f"start:{self.name}")

        def terminate(self, reason):
            log(f"stop:{self.name}:{reason}")

        @receive("add")
        def add(self, source, n):
            self.state["n"] += n
            return self.state["n"]

        @receive("get")
        def get(self, source, _):
            return self.state["n"]

        @receive("crash")
        def crash(self, source, _):
            raise RuntimeError(f"{self.name} crashes on purpose")

    def wait_new_pid(name, old):
        """The next incarnation of ``name``, once its @start has run."""
        new = scriptlib.wait_new_pid(name, old)
        # whereis knows the new incarnation as soon as it is created; a call waits for @start.
        call(new, "get", timeout=10)
        return new

    def crash(name):
        r = call(name, "crash", timeout=10)
        print(f"crash {name}:", r[0], type(r[1]).__name__, flush=True)
    '''
)


def script(body: str) -> str:
    return PRELUDE + textwrap.dedent(body)


def log_of(tmp_path) -> list[str]:
    path = tmp_path / "log.txt"
    return path.read_text().split() if path.exists() else []



def test_one_for_one_restarts_only_the_failed_child(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Member("a"), Member("b"), Member("c")], strategy=rebeam.ONE_FOR_ONE)
            before = {n: whereis(n) for n in "abc"}
            for n in "abc":
                call(n, "add", 5)
            crash("b")
            wait_new_pid("b", before["b"])
            print("a same:", whereis("a") == before["a"], flush=True)
            print("c same:", whereis("c") == before["c"], flush=True)
            for n in "abc":
                print(f"{n} n:", retry_call(n, "get"), flush=True)
            rebeam.shutdown(0)
    '''))
    check(r)
    out = r.stdout.splitlines()
    assert "crash b: error RemoteError" in out
    assert "a same: True" in out and "c same: True" in out
    assert "a n: ('ok', 5)" in out and "c n: ('ok', 5)" in out
    assert "b n: ('ok', 0)" in out  # fresh state after the restart
    assert log_of(tmp_path) == [
        "start:a", "start:b", "start:c",
        "stop:b:crashed", "start:b",
        # shutdown: reverse start order
        "stop:c:shutdown", "stop:b:shutdown", "stop:a:shutdown",
    ]
    assert "CRASH REPORT" in r.stderr and "b crashes on purpose" in r.stderr


def test_one_for_all_restarts_every_child(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Member("a"), Member("b"), Member("c")], strategy=rebeam.ONE_FOR_ALL)
            before = {n: whereis(n) for n in "abc"}
            for n in "abc":
                call(n, "add", 5)
            crash("b")
            for n in "abc":
                wait_new_pid(n, before[n])
            for n in "abc":
                print(f"{n} n:", retry_call(n, "get"), flush=True)
            rebeam.shutdown(0)
    '''))
    check(r)
    out = r.stdout.splitlines()
    assert "crash b: error RemoteError" in out
    for n in "abc":
        assert f"{n} n: ('ok', 0)" in out
    assert log_of(tmp_path) == [
        "start:a", "start:b", "start:c",
        "stop:b:crashed",
        "stop:c:shutdown", "stop:a:shutdown",  # siblings stopped in reverse start order
        "start:a", "start:b", "start:c",        # then all started in order
        "stop:c:shutdown", "stop:b:shutdown", "stop:a:shutdown",
    ]


def test_rest_for_one_restarts_the_failed_child_and_later_ones(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Member("a"), Member("b"), Member("c")], strategy=rebeam.REST_FOR_ONE)
            before = {n: whereis(n) for n in "abc"}
            for n in "abc":
                call(n, "add", 5)
            crash("b")
            wait_new_pid("b", before["b"])
            wait_new_pid("c", before["c"])
            print("a same:", whereis("a") == before["a"], flush=True)
            for n in "abc":
                print(f"{n} n:", retry_call(n, "get"), flush=True)
            rebeam.shutdown(0)
    '''))
    check(r)
    out = r.stdout.splitlines()
    assert "a same: True" in out
    assert "a n: ('ok', 5)" in out
    assert "b n: ('ok', 0)" in out and "c n: ('ok', 0)" in out
    assert log_of(tmp_path) == [
        "start:a", "start:b", "start:c",
        "stop:b:crashed", "stop:c:shutdown",
        "start:b", "start:c",
        "stop:c:shutdown", "stop:b:shutdown", "stop:a:shutdown",
    ]


def test_restart_kinds_after_a_crash(tmp_path):
    r = run_rebeam(tmp_path, script('''
        class Temp(Member):
            restart = "temporary"   # the class attribute works as well as child(restart=...)

        if __name__ == "__main__":
            Supervisor(modules=[
                child(Member("perm"), restart=rebeam.PERMANENT),
                child(Member("trans"), restart=rebeam.TRANSIENT),
                child(Member("temp"), restart=rebeam.TEMPORARY),
                Temp("temp2"),
            ], max_restarts=10)
            before = {n: whereis(n) for n in ("perm", "trans", "temp", "temp2")}
            crash("perm")
            wait_new_pid("perm", before["perm"])
            crash("trans")
            wait_new_pid("trans", before["trans"])
            for n in ("temp", "temp2"):
                crash(n)
                # Restarting would register the name again in the same step that frees it.
                wait_for(f"{n} to be gone", lambda: whereis(n) is None)
                print(f"{n} after crash:", whereis(n), retry_call(n, "get", deadline=0)[0], flush=True)
            for n in ("perm", "trans"):
                print(f"{n} serves:", retry_call(n, "get"), flush=True)
            rebeam.shutdown(0)
    '''))
    check(r)
    out = r.stdout.splitlines()
    assert "perm serves: ('ok', 0)" in out and "trans serves: ('ok', 0)" in out
    assert "temp after crash: None error" in out and "temp2 after crash: None error" in out
    assert log_of(tmp_path) == [
        "start:perm", "start:trans", "start:temp", "start:temp2",
        "stop:perm:crashed", "start:perm",
        "stop:trans:crashed", "start:trans",
        "stop:temp:crashed", "stop:temp2:crashed",
        "stop:trans:shutdown", "stop:perm:shutdown",
    ]


def test_restart_kinds_of_tasks_that_return_or_raise(tmp_path):
    # Tasks (function children) can end normally, which actors cannot.
    r = run_rebeam(tmp_path, script('''
        def forever():
            while True:
                time.sleep(0.05)

        def perm():            # normal exit: restarted (permanent); then stays up
            first = "perm" not in log_lines()
            log("perm")
            if not first:
                forever()

        def trans_normal():    # normal exit: not restarted (transient)
            log("trans_normal")

        def trans_crash():     # crash: restarted (transient); then stays up
            first = "trans_crash" not in log_lines()
            log("trans_crash")
            if first:
                raise ValueError("transient task crashes once")
            forever()

        def temp_crash():      # crash: not restarted (temporary)
            log("temp_crash")
            raise ValueError("temporary task crashes")

        if __name__ == "__main__":
            Supervisor(modules=[
                child(perm, restart="permanent"),
                child(trans_normal, restart="transient"),
                child(trans_crash, restart="transient"),
                child(temp_crash, restart="temporary"),
            ], max_restarts=10)
            wait_for("the restarts", lambda: log_lines().count("perm") == 2 and log_lines().count("trans_crash") == 2)
            time.sleep(1.0)  # room for restarts that must not happen
            print("counts:", {k: log_lines().count(k) for k in ("perm", "trans_normal", "trans_crash", "temp_crash")}, flush=True)
            rebeam.shutdown(0)
    '''))
    check(r)
    assert "counts: {'perm': 2, 'trans_normal': 1, 'trans_crash': 2, 'temp_crash': 1}" in r.stdout.splitlines()
    assert "transient task crashes once" in r.stderr


@pytest.mark.parametrize("order", ["body_ends_first", "tree_ends_first"])
def test_root_whose_children_all_end_normally_ends_the_program(tmp_path, order):
    r = run_rebeam(tmp_path, script(f'''
        ORDER = {order!r}

        def job_a():
            if ORDER == "body_ends_first":
                time.sleep(0.3)
            log("job_a")
            print("job a done", flush=True)

        def job_b():
            log("job_b")

        if __name__ == "__main__":
            Supervisor(modules=[child(job_a, restart="transient"), child(job_b, restart="temporary")])
            if ORDER == "tree_ends_first":
                wait_for("the jobs", lambda: len(log_lines()) == 2)
                time.sleep(0.3)
            print("body done", flush=True)
            # No rebeam.shutdown(): the run ends because nothing is left to run.
    '''))
    check(r, 0)
    assert "body done" in r.stdout
    assert any(line.endswith("job a done") for line in r.stdout.splitlines())
    assert sorted(log_of(tmp_path)) == ["job_a", "job_b"]


def test_intensity_exhaustion_fails_the_program(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Member("c")], max_restarts=2, max_seconds=60)
            pid = whereis("c")
            for i in range(2):
                crash("c")
                pid = wait_new_pid("c", pid)
            print("third crash", flush=True)
            # The root supervisor gives up and the governor ends the run: the main process is
            # stopped wherever it is, maybe before this call's answer is printed.
            crash("c")
            time.sleep(30)
            print("still running", flush=True)
    '''), timeout=60)
    assert r.returncode != 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[:3] == ["crash c: error RemoteError"] * 2 + ["third crash"]
    assert "still running" not in r.stdout
    assert "CRASH REPORT" in r.stderr
    assert "max restart intensity" in r.stderr
    assert log_of(tmp_path) == [
        "start:c", "stop:c:crashed", "start:c", "stop:c:crashed", "start:c", "stop:c:crashed",
    ]


def test_nested_supervisor_escalates_to_its_parent(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            inner = Supervisor(modules=[Member("ia")], max_restarts=1, max_seconds=60, name="inner")
            Supervisor(modules=[inner, Member("ob")], max_restarts=3, max_seconds=60, name="outer")
            ob = whereis("ob")
            call("ob", "add", 7)
            pid = whereis("ia")
            crash("ia")
            pid = wait_new_pid("ia", pid)  # inner restarts it (1 restart allowed)
            crash("ia")
            pid = wait_new_pid("ia", pid)  # inner gives up; outer restarts the inner tree
            print("ia serves:", retry_call("ia", "get"), flush=True)
            print("ob same:", whereis("ob") == ob, call("ob", "get"), flush=True)
            rebeam.shutdown(0)
    '''))
    check(r)
    out = r.stdout.splitlines()
    assert "ia serves: ('ok', 0)" in out
    assert "ob same: True ('ok', 7)" in out
    assert "max restart intensity" in r.stderr
    assert log_of(tmp_path) == [
        "start:ia", "start:ob",
        "stop:ia:crashed", "start:ia",
        "stop:ia:crashed", "start:ia",
        "stop:ob:shutdown", "stop:ia:shutdown",
    ]


def test_escalation_through_nested_supervisors_fails_the_root(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            inner = Supervisor(modules=[Member("ia")], max_restarts=1, max_seconds=60, name="inner")
            Supervisor(modules=[inner, Member("ob")], max_restarts=0, max_seconds=60, name="outer")
            pid = whereis("ia")
            crash("ia")
            wait_new_pid("ia", pid)
            crash("ia")
            time.sleep(30)
            print("still running", flush=True)
    '''))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "still running" not in r.stdout
    assert "'inner'" in r.stderr and "'outer'" in r.stderr
    assert log_of(tmp_path) == [
        "start:ia", "start:ob",
        "stop:ia:crashed", "start:ia",
        "stop:ia:crashed",
        "stop:ob:shutdown",
    ]


def test_names_survive_restarts(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Member("counter")])
            old = whereis("counter")
            print("add:", call("counter", "add", 3), flush=True)
            crash("counter")
            new = wait_new_pid("counter", old)
            print("same name:", new.name == old.name == "counter", "new id:", new.id != old.id, flush=True)
            print("by name:", retry_call("counter", "add", 5), flush=True)
            print("by new pid:", call(new, "add", 1), flush=True)
            stale = call(old, "get")
            print("by old pid:", stale[0], type(stale[1]).__name__, flush=True)
            rebeam.shutdown(0)
    '''))
    check(r)
    out = r.stdout.splitlines()
    assert "add: ('ok', 3)" in out
    assert "same name: True new id: True" in out
    assert "by name: ('ok', 5)" in out
    assert "by new pid: ('ok', 6)" in out
    assert "by old pid: error NoProcess" in out


def test_escalation_during_a_restart_stops_the_restarting_child(tmp_path):
    # 'a' crashes; while its restart is in flight (its second @start waits for 'b' to be gone),
    # 'b' crashes too: the inner tree gives up. The restarting 'a' must be stopped with it, or
    # it outlives its tree and its name blocks the inner tree's restart by the outer one.
    r = run_rebeam(tmp_path, script('''
        class SlowSecondStart(Member):
            @start()
            def init(self):
                super().init()
                if log_lines().count("start:a") == 2:
                    wait_for("b to be gone", lambda: whereis("b") is None)

        if __name__ == "__main__":
            inner = Supervisor(modules=[SlowSecondStart("a"), Member("b")], max_restarts=1, max_seconds=60, name="inner")
            Supervisor(modules=[inner], max_restarts=3, max_seconds=60, name="outer")
            old = {n: whereis(n) for n in "ab"}
            crash("a")
            wait_for("a's restart to begin", lambda: log_lines().count("start:a") == 2)
            crash("b")
            wait_for("a third a", lambda: log_lines().count("start:a") == 3)
            for n in "ab":
                wait_new_pid(n, old[n])
                print(f"{n} serves:", retry_call(n, "get"), flush=True)
            rebeam.shutdown(0)
    '''))
    check(r)
    assert "a serves: ('ok', 0)" in r.stdout.splitlines()
    assert "b serves: ('ok', 0)" in r.stdout.splitlines()
    assert "already registered" not in r.stderr
    assert log_of(tmp_path) == [
        "start:a", "start:b",
        "stop:a:crashed", "start:a",              # restart in flight...
        "stop:b:crashed",                         # ...when the inner tree gives up
        "stop:a:shutdown",                        # the restarted 'a' is stopped with it
        "start:a", "start:b",                     # the outer tree restarts the inner one
        "stop:b:shutdown", "stop:a:shutdown",
    ]


@pytest.mark.parametrize("strategy", ["rest_for_one", "one_for_all"])
def test_crash_during_a_restart_restarts_the_later_children_again(tmp_path, strategy):
    # 'b' crashes; while its restart is in flight (its second @start waits for 'a' to be gone),
    # 'a' crashes. 'b' (and 'c') were started for the old 'a': once 'a' is back they must be
    # started again, after it, as OTP's rest_for_one and one_for_all guarantee.
    r = run_rebeam(tmp_path, script(f'''
        class SlowSecondStart(Member):
            @start()
            def init(self):
                super().init()
                if log_lines().count("start:b") == 2:
                    wait_for("a to be gone", lambda: whereis("a") is None)

        if __name__ == "__main__":
            Supervisor(modules=[Member("a"), SlowSecondStart("b"), Member("c")], strategy={strategy!r}, max_restarts=5, max_seconds=60)
            crash("b")
            wait_for("b's restart to begin", lambda: log_lines().count("start:b") == 2)
            crash("a")
            wait_for("c's restart", lambda: log_lines().count("start:c") == 2)
            for n in "abc":
                print(f"{{n}} serves:", retry_call(n, "get"), flush=True)
            rebeam.shutdown(0)
    '''))
    check(r)
    for n in "abc":
        assert f"{n} serves: ('ok', 0)" in r.stdout.splitlines()
    first_restart = {
        "rest_for_one": ["stop:b:crashed", "stop:c:shutdown", "start:b"],
        "one_for_all": ["stop:b:crashed", "stop:c:shutdown", "stop:a:shutdown", "start:a", "start:b"],
    }[strategy]
    log = log_of(tmp_path)
    assert log[:3] == ["start:a", "start:b", "start:c"]
    assert log[3:3 + len(first_restart)] == first_restart
    rest = log[3 + len(first_restart):]
    assert rest == [
        "stop:a:crashed",                          # while b's restart is in flight
        "stop:b:shutdown",                         # b, once up, is stopped again...
        "start:a", "start:b", "start:c",           # ...and everything restarts in order
        "stop:c:shutdown", "stop:b:shutdown", "stop:a:shutdown",
    ]
