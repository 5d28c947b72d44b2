"""`rebeam.call_async`: futures of calls, in real runs under `rebeam` and in plain `python`."""

from __future__ import annotations

import textwrap

from helpers import check, lines, run_python, run_rebeam

PRELUDE = textwrap.dedent(
    '''
    import os, pathlib, signal, threading, time
    import concurrent.futures as cf
    import rebeam
    from rebeam import GenPy, Supervisor, call_async, receive, whereis
    from rebeam.errors import ActorDown, CallTimeout, NoProcess, ShuttingDown

    class Echo(GenPy):
        def __init__(self, name):
            self.name = name

        @receive("double")
        def double(self, source, n):
            return n * 2

        @receive("os_pid")
        def os_pid(self, source, _):
            return os.getpid()

        @receive("sleep")
        def sleep(self, source, seconds):
            time.sleep(seconds)
            return "slept"

        @receive("wait_for")
        def wait_for(self, source, path):
            # Blocks until the main process creates `path`: completion order is the test's choice.
            while not os.path.exists(path):
                time.sleep(0.01)
            return self.name
    '''
)


def script(body: str) -> str:
    """A program: the prelude, then `body` (under rebeam, end it with `rebeam.shutdown()`: a
    running tree outlives the script's body)."""
    return PRELUDE + textwrap.dedent(body)


def test_a_thousand_calls_in_flight_are_all_answered_without_a_thread_each(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Echo("a"), Echo("b")])
            before = threading.active_count()
            futures = [call_async("a" if i % 2 else "b", "double", i, timeout=30) for i in range(1000)]
            during = threading.active_count()
            done, not_done = cf.wait(futures, timeout=60)
            print("not done:", len(not_done), flush=True)
            print("all right:", [f.result() for f in futures] == [("ok", 2 * i) for i in range(1000)], flush=True)
            print("threads added:", during - before, flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    out = lines(r)
    assert "not done: 0" in out and "all right: True" in out
    assert "threads added: 1" in out, r.stdout  # the one resolver thread, not one per call


def test_as_completed_yields_futures_in_the_order_they_resolve(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Echo("a"), Echo("b"), Echo("c")])
            gate = pathlib.Path("gate")
            futures = {call_async(n, "wait_for", f"{gate}-{n}", timeout=30): n for n in "abc"}
            ready = cf.as_completed(futures, timeout=30)
            for n in "bca":
                (gate.parent / f"{gate}-{n}").touch()
                f = next(ready)
                print("completed:", futures[f], f.result(), flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    assert [x for x in lines(r) if x.startswith("completed")] == [
        "completed: b ('ok', 'b')", "completed: c ('ok', 'c')", "completed: a ('ok', 'a')"]


def test_failures_are_answers_as_call_gives_them(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Echo("a")])
            status, err = call_async("nobody", "double", 1).result(timeout=30)
            print("no such actor:", status, type(err).__name__, flush=True)
            status, err = call_async("a", "sleep", 5, timeout=0.3).result(timeout=30)
            print("timeout:", status, type(err).__name__, err, flush=True)
            print("then:", call_async("a", "double", 4, timeout=30).result(timeout=30), flush=True)
            try:
                call_async("a", "double", threading.Lock())
            except Exception as e:
                print("raised at once:", type(e).__name__, flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    out = lines(r)
    assert "no such actor: error NoProcess" in out
    assert "timeout: error CallTimeout no reply from actor 'a' within 0.3 s" in out, r.stdout
    assert "then: ('ok', 8)" in out
    assert "raised at once: SerializationError" in out


def test_a_worker_killed_with_futures_in_flight_fails_each_with_actor_down(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Echo("a")])
            pid = call_async("a", "os_pid").result(timeout=30)[1]
            futures = [call_async("a", "sleep", 60, timeout=30) for _ in range(5)]
            time.sleep(0.5)  # let the first reach the handler; the others queue behind it
            os.kill(pid, signal.SIGKILL)
            for f in futures:
                status, err = f.result(timeout=60)
                print("in flight:", status, type(err).__name__, flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    assert [x for x in lines(r) if x.startswith("in flight")] == ["in flight: error ActorDown"] * 5, r.stdout


def test_a_cancelled_future_forgets_its_call(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            from rebeam import futures as rf
            Supervisor(modules=[Echo("a")])
            f = call_async("a", "sleep", 0.5, timeout=30)
            print("cancelled:", f.cancel(), f.cancelled(), flush=True)
            print("next:", call_async("a", "double", 21, timeout=30).result(timeout=30), flush=True)
            time.sleep(0.2)
            print("left waiting:", len(rf._resolver._waiting), len(rf._resolver._early), flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    out = lines(r)
    assert "cancelled: True True" in out
    assert "next: ('ok', 42)" in out  # after the cancelled call's late answer, which was dropped
    assert "left waiting: 0 0" in out


def test_futures_in_plain_python_and_shutdown_resolves_the_rest(tmp_path):
    r = run_python(tmp_path, script('''
        class Stuck(Echo):
            shutdown = 0.2  # seconds to stop politely: its handler never will

        Supervisor(modules=[Echo("a"), Stuck("stuck")])
        futures = [call_async("a", "double", i) for i in range(200)]
        print("answers:", [f.result(timeout=30) for f in futures] == [("ok", 2 * i) for i in range(200)], flush=True)
        stuck = call_async("stuck", "sleep", 60, timeout=60)
        time.sleep(0.3)
        rebeam.shutdown()
        try:
            status, err = stuck.result(timeout=30)
            print("after shutdown:", status, type(err).__name__, flush=True)
        except ShuttingDown:
            print("after shutdown: raised ShuttingDown", flush=True)
    '''))
    check(r)
    out = lines(r)
    assert "answers: True" in out
    # The governor fails the call as it stops the actor, or the connection closes first.
    ends = {"after shutdown: error ActorDown", "after shutdown: raised ShuttingDown"}
    assert ends & set(out), r.stdout
