"""`rebeam.Executor`: a concurrent.futures.Executor over supervised workers, in real runs under
`rebeam` and in plain `python`, with tasks that kill their worker process."""

from __future__ import annotations

import textwrap

from helpers import check, lines, run_python, run_rebeam

PRELUDE = textwrap.dedent(
    '''
    import concurrent.futures as cf
    import ctypes, os, time
    import rebeam
    from rebeam import Executor, WorkerCrashed

    def square(x):
        return x * x

    def add(a, b):
        return a + b

    def fail(x):
        raise KeyError(x)

    def nap(seconds):
        time.sleep(seconds)
        return seconds

    def hazard(i):
        if i == 17:
            ctypes.string_at(0)  # a segfault
        if i == 33:
            os._exit(7)
        return i * 2
    '''
)


def script(body: str) -> str:
    return PRELUDE + textwrap.dedent(body)


MAIN = '''
    if __name__ == "__main__":
        with Executor() as ex:
            f = ex.submit(square, 7)
            print("submit:", f.result(timeout=30), flush=True)
            print("map:", list(ex.map(add, range(5), range(5))), flush=True)
            print("chunked:", list(ex.map(square, range(23), chunksize=5)) == [i * i for i in range(23)], flush=True)
            try:
                ex.submit(fail, "k").result()
            except KeyError as e:
                print("raised:", repr(e), "worker" in "".join(getattr(e, "__notes__", [])), flush=True)
            futures = [ex.submit(hazard, i) for i in range(50)]
            done = list(cf.as_completed(futures, timeout=60))
            crashed = [i for i, f in enumerate(futures) if isinstance(f.exception(), WorkerCrashed)]
            print("completed:", len(done), flush=True)
            print("crashed:", crashed, isinstance(futures[17].exception(), rebeam.RebeamError), flush=True)
            print("others:", all(f.result() == 2 * i for i, f in enumerate(futures) if i not in (17, 33)), flush=True)
            print("after:", ex.submit(square, 3).result(timeout=30), flush=True)
'''

EXPECTED = ["submit: 49", "map: [0, 2, 4, 6, 8]", "chunked: True", "raised: KeyError('k') True",
            "completed: 50", "crashed: [17, 33] True", "others: True", "after: 9"]


def test_results_exceptions_and_crashing_tasks_under_rebeam(tmp_path):
    r = run_rebeam(tmp_path, script(MAIN), timeout=120)
    check(r)
    assert lines(r) == EXPECTED


def test_results_exceptions_and_crashing_tasks_in_library_mode(tmp_path):
    r = run_python(tmp_path, script(MAIN), timeout=120)
    check(r)
    assert lines(r) == EXPECTED


def test_shutdown_refuses_new_tasks_and_cancel_futures_cancels_those_not_started(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            ex = Executor(max_workers=1)
            first = ex.submit(nap, 0.5)
            rest = [ex.submit(nap, 0) for _ in range(5)]
            ex.shutdown(wait=True, cancel_futures=True)
            print("first:", first.result(), flush=True)
            print("rest cancelled:", all(f.cancelled() for f in rest), flush=True)
            try:
                ex.submit(square, 2)
            except RuntimeError:
                print("after shutdown: RuntimeError", flush=True)
            ex2 = Executor(max_workers=2)
            waited = [ex2.submit(nap, 0.2) for _ in range(4)]
            ex2.shutdown(wait=True)
            print("waited:", all(f.done() for f in waited), flush=True)
            ex3 = Executor()
            left = ex3.submit(nap, 0.3)  # never shut down: the end of the script waits for it
    '''), timeout=60)
    check(r)
    assert lines(r) == ["first: 0.5", "rest cancelled: True", "after shutdown: RuntimeError", "waited: True"]


def test_map_keeps_order_and_its_timeout_bounds_the_iteration(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            with Executor(max_workers=2) as ex:
                print("order:", list(ex.map(nap, [0.3, 0.0, 0.1])), flush=True)
                try:
                    list(ex.map(nap, [5.0], timeout=0.2))
                except TimeoutError:
                    print("timeout: TimeoutError", flush=True)
    '''), timeout=60)
    check(r)
    assert lines(r) == ["order: [0.3, 0.0, 0.1]", "timeout: TimeoutError"]


def test_in_library_mode_the_interpreters_exit_waits_for_a_running_executors_tasks(tmp_path):
    r = run_python(tmp_path, script('''
        import pathlib

        def late(path):
            time.sleep(0.5)
            pathlib.Path(path).write_text("done")
            return path

        if __name__ == "__main__":
            ex = Executor(max_workers=1)
            ex.submit(late, str(pathlib.Path("late.txt").resolve()))
            print("body ended", flush=True)
    '''), timeout=60)
    check(r)
    assert lines(r) == ["body ended"]
    assert (tmp_path / "late.txt").read_text() == "done"
