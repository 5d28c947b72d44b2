"""rebeam.boc when things go wrong: a worker dying while a behaviour gathers its values, a
value a worker cannot unpickle, and modules only the main process's sys.path can find."""

from __future__ import annotations

from helpers import check, lines, run_python, run_rebeam

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


TARGET_DIES_WHILE_GATHERING = """
    import os, signal, time
    from rebeam.boc import Cown, quiesce, when

    def where(c):
        time.sleep(0.3)                       # busy, so the cowns spread over both workers
        return os.getpid()

    cowns = [Cown(i) for i in range(8)]
    placed = [when(c)(where) for c in cowns]
    quiesce(30)
    by_pid = {}
    for c, r in zip(cowns, placed):
        by_pid.setdefault(r.unwrap(), []).append(c)
    (x, on_x), (y, on_y) = sorted(by_pid.items(), key=lambda kv: -len(kv[1]))[:2]
    assert len(on_x) >= 2 and len(on_y) >= 2, {pid: len(cs) for pid, cs in by_pid.items()}

    @when(on_y[0])
    def freeze(c):                            # worker y stops, command thread and all
        os.kill(os.getpid(), signal.SIGSTOP)

    def stopped(pid):
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"

    deadline = time.monotonic() + 30
    while not stopped(y) and time.monotonic() < deadline:
        time.sleep(0.01)

    @when(on_x[0], on_x[1], on_y[1])          # runs in x (it holds two), waits for y's value
    def gather(a, b, c):
        return a.value + b.value + c.value

    time.sleep(0.5)
    os.kill(x, signal.SIGKILL)                # the behaviour's destination dies first
    time.sleep(0.5)
    os.kill(y, signal.SIGCONT)                # y's value arrives for a behaviour that is gone
    try:
        quiesce(20)
        print("quiesced", flush=True)
    except TimeoutError as e:
        print("hung:", e, flush=True)
    try:
        gather.unwrap()
    except RuntimeError as e:
        print("gather:", e, flush=True)

    @when(on_y[1])
    def value_of_c(c):                        # lost on its way to x
        try:
            return c.value
        except RuntimeError as e:
            return f"lost: {e}"
    quiesce(20)
    print("c:", value_of_c.unwrap(), flush=True)
"""


def test_a_worker_dying_while_it_gathers_a_behaviours_values_does_not_hang_wait(tmp_path):
    r = run_rebeam(tmp_path, TARGET_DIES_WHILE_GATHERING, workers=2, timeout=60)
    check(r)
    out = lines(r)
    assert "quiesced" in out, r.stdout + r.stderr
    assert any(x.startswith("gather:") and "was lost" in x for x in out), out
    assert any(x.startswith("c: lost:") and "was lost" in x for x in out), out


UNPICKLABLE_IN_WORKERS = """
    import os
    from rebeam.boc import Cown, quiesce, send, receive, when

    def rebuild(n):
        if os.environ.get("REBEAM_ROLE") == "worker":
            raise ValueError("cannot rebuild a Fragile here")
        return Fragile(n)

    class Fragile:                            # unpickles in the main process only
        def __init__(self, n):
            self.n = n
        def __reduce__(self):
            return (rebuild, (self.n,))

    if __name__ == "__main__":                # workers import this script to find rebuild()
        c = Cown(Fragile(7))

        @when(c)
        def use(c):
            send("ran", True)
            return c.value.n

        @when(c)
        def again(c):                         # the value stays undecoded in that worker
            send("ran", True)
            c.value = "overwritten"

        quiesce(30)
        print("ran:", receive("ran", 0), flush=True)
        print("exception:", use.exception, again.exception, flush=True)
        for r in (use, again):
            try:
                r.unwrap()
            except ValueError as e:
                print("unwrap:", e, "|", "cannot be unpickled in worker" in " ".join(e.__notes__), flush=True)
        with c as v:                          # the user's value came back intact
            print("value kept:", type(v).__name__, v.n, flush=True)
"""


def assert_value_kept(out: list[str]) -> None:
    assert "ran: ('__timeout__', None)" in out, out
    assert "exception: True True" in out, out
    assert out.count("unwrap: cannot rebuild a Fragile here | True") == 2, out
    assert "value kept: Fragile 7" in out, out


def test_a_value_a_worker_cannot_unpickle_fails_the_behaviour_and_is_kept(tmp_path):
    r = run_rebeam(tmp_path, UNPICKLABLE_IN_WORKERS, workers=1, timeout=60)
    check(r)
    assert_value_kept(lines(r))


def test_a_value_a_worker_cannot_unpickle_is_kept_in_plain_python(tmp_path):
    r = run_python(tmp_path, UNPICKLABLE_IN_WORKERS, timeout=60, env={"REBEAM_WORKERS": "1"})
    check(r)
    assert_value_kept(lines(r))


IMPORTS_LIKE_MAIN = """
    import os, sys
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "lib"))     # as a test runner or a script does
    import shapes
    from rebeam.boc import Cown, quiesce, when, whencall

    c = Cown(shapes.Square(3))

    @when(c)
    def area(c):
        return c.value.area()

    doubled = whencall(shapes.double, [c], [])          # a function of that module, by reference
    quiesce(30)
    for label, r in (("area", area), ("double", doubled)):
        try:
            print(f"{label}:", r.unwrap(), flush=True)
        except Exception as e:
            print(f"{label} failed:", type(e).__name__, e, flush=True)

    sys.path.append(os.path.join(here, "lib2"))          # changed again, after workers ran behaviours
    import late
    t = Cown(late.Thing())

    @when(t)
    def name(t):
        return t.value.name()

    quiesce(30)
    try:
        print("late:", name.unwrap(), flush=True)
    except Exception as e:
        print("late failed:", type(e).__name__, e, flush=True)
"""


def write_modules(tmp_path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "shapes.py").write_text(
        "class Square:\n    def __init__(self, side):\n        self.side = side\n"
        "    def area(self):\n        return self.side ** 2\n\n"
        "def double(c):\n    c.value = Square(c.value.side * 2)\n    return c.value.side\n"
    )
    (tmp_path / "lib2").mkdir()
    (tmp_path / "lib2" / "late.py").write_text("class Thing:\n    def name(self):\n        return 'late'\n")


def assert_imports_like_main(out: list[str]) -> None:
    assert "area: 9" in out, out
    assert "double: 6" in out, out
    assert "late: late" in out, out


def test_workers_import_with_the_main_process_sys_path(tmp_path):
    write_modules(tmp_path)
    r = run_rebeam(tmp_path, IMPORTS_LIKE_MAIN, timeout=60)
    check(r)
    assert_imports_like_main(lines(r))


def test_workers_import_with_the_main_process_sys_path_in_plain_python(tmp_path):
    write_modules(tmp_path)
    r = run_python(tmp_path, IMPORTS_LIKE_MAIN, timeout=60)
    check(r)
    assert_imports_like_main(lines(r))
