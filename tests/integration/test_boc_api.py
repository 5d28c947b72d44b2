"""rebeam.boc's bocpy API surface, end to end: acquire/release, the noticeboard, start(),
wait()/quiesce() return shapes, parameter checks, and bad input getting bocpy's error types."""

from __future__ import annotations

from helpers import check, lines, outputs, run_python, run_rebeam


ACQUIRE = """
    import os
    from rebeam.boc import Cown, quiesce, wait, when

    c = Cown(1)
    print("acquired before:", c.acquired, flush=True)
    try:
        c.value
    except RuntimeError as e:
        print("unacquired:", "is not acquired" in str(e), flush=True)

    for _ in range(50):
        @when(c)
        def bump(c):
            c.value += 1
            return os.getpid()

    with c as v:                                # waits for the 50 behaviours before it
        print("with:", v, c.acquired, flush=True)
        c.value = 1000                          # written in the main process ...
        try:
            c.acquire()
        except RuntimeError as e:
            print("twice:", "already acquired" in str(e), flush=True)
    print("released:", c.acquired, flush=True)

    MAIN = os.getpid()

    @when(c)
    def after(c):                               # ... and seen by the next behaviour, in a worker
        return c.value, os.getpid() != MAIN

    quiesce()
    print("after:", after.unwrap(), flush=True)
    print("consumed:", after.unwrap(), flush=True)  # unwrap empties the cown, as in bocpy

    @when(c)
    def fails(c):
        raise KeyError("missing")

    quiesce()
    print("exception flag:", fails.exception, flush=True)
    try:
        fails.unwrap()
    except KeyError as e:
        print("unwrap re-raises:", repr(e), flush=True)

    c.acquire()
    c.release()
    try:
        c.release()
    except RuntimeError as e:
        print("release twice:", "not acquired" in str(e), flush=True)

    @when(c)
    def inside(c):
        try:
            c.acquire()
        except RuntimeError as e:
            return "refused in a behaviour"

    @when(c)
    def leaves(c):                              # a BaseException lands on the result cown too
        raise SystemExit(3)

    @when(c)
    def still_there(c):                         # and the worker, and the cown, are still there
        return c.value

    quiesce()
    print("inside:", inside.unwrap(), flush=True)
    print("base exception:", leaves.exception, flush=True)
    try:
        leaves.unwrap()
    except SystemExit as e:
        print("unwrap re-raises SystemExit:", e.code, flush=True)
    print("still there:", still_there.unwrap(), flush=True)
    print("ordering:", sorted([Cown(0), c])[0] is c, Cown._handle(c._id) == c, flush=True)
    wait()
"""


def assert_acquire(out: list[str]) -> None:
    assert "acquired before: False" in out
    assert "unacquired: True" in out
    assert "with: 51 True" in out
    assert "twice: True" in out
    assert "released: False" in out
    assert "after: (1000, True)" in out
    assert "consumed: None" in out
    assert "exception flag: True" in out
    assert "unwrap re-raises: KeyError('missing')" in out
    assert "release twice: True" in out
    assert "inside: refused in a behaviour" in out
    assert "base exception: True" in out
    assert "unwrap re-raises SystemExit: 3" in out
    assert "still there: 1000" in out
    assert "ordering: True True" in out


def test_acquire_and_release_in_the_main_process(tmp_path):
    r = run_rebeam(tmp_path, ACQUIRE, timeout=120)
    check(r)
    assert_acquire(outputs(r))


def test_acquire_and_release_in_plain_python(tmp_path):
    r = run_python(tmp_path, ACQUIRE, timeout=120)
    check(r)
    assert_acquire(outputs(r))


def test_the_noticeboard(tmp_path):
    r = run_rebeam(tmp_path, """
        import os
        import rebeam
        from rebeam.boc import (REMOVED, Cown, notice_delete, notice_read, notice_seed, notice_update,
                                notice_write, noticeboard, quiesce, wait, when)

        notice_seed("config", {"gain": 2})        # live before any behaviour below is scheduled
        cells = [Cown(i) for i in range(8)]
        for cell in cells:
            @when(cell)
            def scale(cell):
                cell.value *= notice_read("config")["gain"]
        quiesce()

        @when(cells)
        def scaled(cells):
            return [c.value for c in cells]
        quiesce()
        print("seeded:", scaled.unwrap(), flush=True)

        # 200 concurrent read-modify-writes from behaviours in two workers lose nothing.
        for i in range(200):
            @when(cells[i % 8])
            def count(cell):
                notice_update("total", lambda v: v + 1, 0)
                return os.getpid()
        quiesce()
        print("total:", notice_read("total"), flush=True)

        @when(cells[0])
        def snapshot(cell):
            before = noticeboard()
            notice_write("late", 1)
            import time
            time.sleep(0.2)
            # One snapshot per behaviour: its own write is not in it.
            return "late" in before, "late" in noticeboard(), before is noticeboard()
        quiesce()
        print("snapshot:", snapshot.unwrap(), flush=True)
        print("next behaviour sees it:", notice_read("late"), flush=True)

        notice_update("late", lambda v: REMOVED)
        notice_delete("config")
        notice_update("total", lambda v: 1 / 0)   # fn raises: the entry keeps its value
        try:
            notice_write("x" * 64, 1)
        except ValueError as e:
            print("long key:", e, flush=True)
        try:
            notice_write(7, 1)
        except TypeError as e:
            print("non-str key:", e, flush=True)
        for i in range(63):
            notice_seed(f"k{i}", i)
        try:
            notice_seed("one too many", 0)
        except RuntimeError as e:
            print("full:", type(e).__name__, e, flush=True)
        notice_write("dropped", 0)                # fire-and-forget: dropped, with a warning
        board = wait(noticeboard=True)
        print("final:", sorted(board)[:3], len(board), board["total"], flush=True)
        print("emptied by wait:", wait(noticeboard=True), flush=True)
    """, timeout=120)
    check(r)
    out = outputs(r)
    assert "seeded: [0, 2, 4, 6, 8, 10, 12, 14]" in out
    assert "total: 200" in out
    assert "snapshot: (False, False, True)" in out
    assert "next behaviour sees it: 1" in out
    assert any(x.startswith("long key:") and "63 UTF-8 bytes" in x for x in out), out
    assert any(x.startswith("non-str key:") and "must be a str" in x for x in out), out
    assert any(x.startswith("full: CapacityError the noticeboard is full (64 keys)") for x in out), out
    assert "final: ['k0', 'k1', 'k10'] 64 200" in out
    assert "emptied by wait: {}" in out
    assert "notice_update('total')" in r.stderr and "ZeroDivisionError" in r.stderr
    assert "noticeboard write from the main process" in r.stderr and "not applied" in r.stderr


def test_when_checks_its_function_and_arguments(tmp_path):
    r = run_rebeam(tmp_path, """
        import pickle, threading
        import rebeam
        from rebeam.boc import Cown, drain, quiesce, receive, send, wait, when, whencall

        c = Cown(0)
        def attempt(label, fn):
            try:
                fn()
            except Exception as e:
                print(label, type(e).__name__, e, flush=True)

        def extra():
            @when(c)
            def needs_two(c, x):
                pass

        def missing():
            @when(c, c)
            def takes_one(c):
                pass

        def not_a_cown():
            @when(5)
            def five(c):
                pass

        def list_with_junk():
            whencall(lambda cs: None, [[c, "x"]], [])

        def asynchronous():
            @when(c)
            async def coro(c):
                pass

        attempt("extra:", extra)
        attempt("missing:", missing)
        attempt("not a cown:", not_a_cown)
        attempt("junk:", list_with_junk)
        attempt("async:", asynchronous)

        @when(c)
        def captured(c, k=10, name="n"):            # captures: trailing defaults
            return c.value + k, name
        print("captures:", whencall(lambda c, a, b: (a, b), [c], [1, 2]) is not None, flush=True)

        @when([], c)
        def empty_group(group, c):
            return group
        quiesce()
        print("captured:", captured.unwrap(), "empty group:", empty_group.unwrap(), flush=True)

        attempt("unpicklable:", lambda: send("t", threading.Lock()))
        lockbox = Cown(threading.Lock())          # fine here; a behaviour in a worker needs it
        @when(lockbox)
        def use_lock(lockbox):
            return lockbox.exception, type(lockbox.value).__name__, "cannot be pickled" in str(lockbox.value)
        quiesce()
        print("unpicklable value:", use_lock.unwrap(), flush=True)
        print("is PicklingError:", issubclass(rebeam.SerializationError, pickle.PicklingError), flush=True)
        sent = 0
        try:
            while True:
                send("flood", sent)
                sent += 1
        except RuntimeError as e:
            print("full queue:", type(e).__name__, sent, flush=True)
        drain("flood")
        print("drained:", receive("flood", 0)[0], flush=True)
        wait()
    """, timeout=120)
    check(r)
    out = outputs(r)
    assert any(x.startswith("extra: TypeError @when behavior 'needs_two' takes 2 parameter(s) for 1 cown(s)")
               for x in out), out
    assert any(x.startswith("missing: TypeError @when behavior 'takes_one' takes 1 parameter(s) but @when lists 2")
               for x in out), out
    assert any(x.startswith("not a cown: TypeError can only schedule over cowns or sequences of cowns, not int")
               for x in out), out
    assert any(x.startswith("junk: TypeError can only schedule over cowns") for x in out), out
    assert any(x.startswith("async: SyntaxError @when behavior 'coro' is an async function") for x in out), out
    assert "captures: True" in out
    assert "captured: (10, 'n') empty group: []" in out
    assert any(x.startswith("unpicklable: SerializationError the message for tag 't' cannot be pickled")
               for x in out), out
    assert "is PicklingError: True" in out
    assert "unpicklable value: (True, 'RuntimeError', True)" in out
    assert "the behaviour that needs it gets a RuntimeError" in r.stderr
    assert "full queue: CapacityError 16384" in out
    assert "drained: __timeout__" in out


def test_start_wait_and_stats(tmp_path):
    # Plain python: start() chooses the worker count; asking for another one later is refused.
    r = run_python(tmp_path, """
        import os
        from rebeam.boc import Cown, WaitResult, start, wait, when

        print("nothing started:", wait(), wait(stats=True), wait(noticeboard=True), flush=True)
        start(worker_count=1)
        start()                                     # idempotent
        try:
            start(worker_count=3)
        except RuntimeError as e:
            print("mismatch:", "already up with worker_count=1" in str(e), flush=True)
        cowns = [Cown(i) for i in range(6)]
        for c in cowns:
            @when(c)
            def pid(c):
                return os.getpid()
        result = wait(stats=True, noticeboard=True)
        print("shape:", type(result).__name__, result.noticeboard, flush=True)
        workers = [s for s in result.stats if not s["main"]]
        print("one worker:", len(workers), sum(s["behaviours"] for s in workers) >= 6, flush=True)
    """, timeout=120)
    check(r)
    out = lines(r)
    assert "nothing started: None [] {}" in out
    assert "mismatch: True" in out
    assert "shape: WaitResult {}" in out
    assert "one worker: 1 True" in out

    # Under `rebeam --workers 2`, a different count is reported and the run goes on.
    r = run_rebeam(tmp_path, """
        from rebeam.boc import Cown, start, wait, when
        start(worker_count=4)
        c = Cown(1)
        @when(c)
        def ok(c):
            print("ran", flush=True)
        wait()
    """, timeout=60)
    check(r)
    assert "start(worker_count=4) ignored: this run has 2 worker(s)" in r.stderr
    assert any(x.endswith("ran") for x in lines(r))


def test_receive_inside_a_main_side_behaviour_is_refused(tmp_path):
    r = run_rebeam(tmp_path, """
        from rebeam.boc import PinnedCown, quiesce, receive, send, when
        ui = PinnedCown(0)
        send("tick", 1)

        @when(ui)
        def blocking(ui):
            try:
                receive("tick")                   # would freeze the event loop
            except RuntimeError as e:
                print("refused:", e, flush=True)
            print("non-blocking:", receive("tick", timeout=0), flush=True)
        quiesce()
    """, timeout=60)
    check(r)
    out = lines(r)
    assert any(x.startswith("refused: receive(['tick']) would block the event loop") for x in out), out
    assert "non-blocking: ('tick', 1)" in out


BOCPY_LIMITS = """
    import time
    import rebeam.boc as boc
    from rebeam.boc import Cown, quiesce, receive, send, set_tags, when

    print("version:", boc.__version__ == __import__("rebeam").__version__, flush=True)
    for i in range(16):                       # 16 tags get queues on first use ...
        send(f"tag{i}", i)
    for what, fn in (("send", lambda: send("tag16", 16)), ("receive", lambda: receive("tag16", 0))):
        try:                                  # ... and a 17th finds none, with bocpy's KeyError
            fn()
        except KeyError as e:
            print(f"{what} past the cap:", type(e).__name__, "all 16 are taken" in str(e), flush=True)
    print("drained tags keep theirs:", receive("tag3", 0), flush=True)
    try:
        set_tags([f"t{i}" for i in range(17)])
    except IndexError as e:
        print("set_tags(17):", e, flush=True)
    set_tags(["only"])                        # hands the queues out anew, all empty
    print("after set_tags:", receive("tag0", 0), flush=True)
    try:
        receive([])
    except RuntimeError as e:
        print("receive([]):", e, flush=True)

    inner = Cown(5)
    outer = Cown(inner)                       # a cown holding a cown, as in bocpy

    @when(outer)
    def nested(outer):
        return type(outer.value).__name__, outer.value == inner

    @when(inner)
    def slow(inner):
        time.sleep(1)
        return inner.value

    try:
        slow.unwrap()                         # in flight: refused, not waited for
    except RuntimeError as e:
        print("unwrap in flight:", "still in flight" in str(e), flush=True)
    quiesce(30)
    print("unwrap after quiesce:", slow.unwrap(), nested.unwrap(), flush=True)
"""


def test_bocpy_limits_and_refusals_with_its_exception_types(tmp_path):
    for run in (run_rebeam, run_python):
        r = run(tmp_path, BOCPY_LIMITS, timeout=60)
        check(r)
        out = lines(r)
        assert "version: True" in out
        assert "send past the cap: NoQueue True" in out, out
        assert "receive past the cap: NoQueue True" in out, out
        assert "drained tags keep theirs: ('tag3', 3)" in out
        assert "set_tags(17): Only 16 or fewer tags supported (got 17)" in out
        assert "after set_tags: ('__timeout__', None)" in out
        assert "receive([]): receive(): tags must contain at least one value" in out
        assert "unwrap in flight: True" in out, out
        assert "unwrap after quiesce: 5 ('Cown', True)" in out, out
