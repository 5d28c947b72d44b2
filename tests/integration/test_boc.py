"""rebeam.boc, end to end: behaviours run in worker processes, in order, without deadlock."""

from __future__ import annotations

from helpers import check, lines, outputs, run_python, run_rebeam

SCENARIOS = """
    import os, time
    from rebeam.boc import Cown, quiesce, when, whencall, wait

    def report(label, *cowns):
        # Behaviours print from their worker; the test reads the lines.
        whencall(lambda *cs: print(label, [c.value for c in cs], flush=True), list(cowns), [])

    counter = Cown(0)
    for _ in range(500):
        @when(counter)
        def inc(counter):
            counter.value += 1

    accounts = [Cown(100) for _ in range(4)]
    for i in range(40):
        src, dst = accounts[i % 4], accounts[(i * 3 + 1) % 4]
        if src is dst:
            continue
        @when(src, dst)
        def transfer(src, dst):
            src.value -= 5
            dst.value += 5

    @when(accounts)                           # a group: one argument, a list of cowns
    def total(accounts):
        return sum(a.value for a in accounts)

    @when(counter, counter)                   # duplicates are requested once
    def twice(c1, c2):
        return c1.value == c2.value

    @when(counter)
    def boom(counter):
        raise ValueError("boom")

    @when(boom)                               # chaining on a result cown
    def seen(boom):
        return boom.exception, type(boom.value).__name__

    @when(boom)
    def unwrapped(boom):
        try:
            boom.unwrap()
        except ValueError as e:
            return f"re-raised {e}"

    offset = 10
    @when(counter)
    def closure(counter):                     # closures and lambdas travel by value
        return counter.value + offset

    quiesce(60)
    report("counter:", counter)
    report("total:", total)
    report("twice:", twice)
    report("seen:", seen)
    report("unwrapped:", unwrapped)
    report("closure:", closure)
    quiesce(60)

    # Independent cowns run in parallel, in different workers.
    def spin(c):
        t = time.time()
        while time.time() - t < 0.3:
            pass
        c.value = os.getpid()

    left, right = Cown(None), Cown(None)
    whencall(spin, [left], [])
    whencall(spin, [right], [])
    quiesce(60)
    whencall(lambda l, r: print("parallel:", l.value != r.value, flush=True), [left, right], [])
    assert wait(60) is None

    try:
        counter.value
    except RuntimeError as e:
        print("outside:", e, flush=True)
"""


def assert_scenarios(out: list[str]) -> None:
    assert "counter: [500]" in out
    assert "total: [400]" in out
    assert "twice: [True]" in out
    assert "seen: [(True, 'ValueError')]" in out
    assert "unwrapped: ['re-raised boom']" in out
    assert "closure: [510]" in out
    assert "parallel: True" in out
    assert any(x.startswith("outside: Cown<") and "is not acquired" in x for x in out)


def test_scenarios_under_rebeam(tmp_path):
    r = run_rebeam(tmp_path, SCENARIOS, timeout=120)
    check(r)
    assert_scenarios(outputs(r))


def test_scenarios_in_plain_python(tmp_path):
    r = run_python(tmp_path, SCENARIOS, timeout=120)
    check(r)
    assert_scenarios(outputs(r))


def test_numpy_inside_behaviours(tmp_path):
    r = run_rebeam(tmp_path, """
        import numpy as np
        from rebeam.boc import Cown, when, wait

        grid = Cown(np.zeros((100, 100)))
        for i in range(10):
            @when(grid)
            def step(grid):
                grid.value += 1.5

        @when(grid)
        def show(grid):
            print("sum:", float(grid.value.sum()), flush=True)

        wait(60)
    """, timeout=120)
    check(r)
    assert any(x.endswith("sum: 150000.0") for x in lines(r))


PINNED = """
    import asyncio, os, threading, time
    from rebeam.boc import Cown, PinnedCown, quiesce, when, wait, pump

    MAIN_PID = os.getpid()
    ui = PinnedCown({"events": []})
    data = Cown(0)

    @when(data)
    def compute(data):
        data.value = sum(range(1000))
        return os.getpid() != MAIN_PID            # ordinary behaviours run in workers

    @when(ui, data)
    def render(ui, data):                        # holds a pinned cown: runs in the main process
        on_main = os.getpid() == MAIN_PID and threading.current_thread() is threading.main_thread()
        ui.value["events"].append(("render", data.value, on_main))

    async def event_loop():
        # The user's own loop pumps main-side work cooperatively, never blocking past 5 ms.
        for _ in range(400):
            t = time.monotonic()
            r = pump(deadline_ms=5)
            assert time.monotonic() - t < 1.0
            if r.executed:
                return r
            await asyncio.sleep(0.01)

    print("asyncio pump:", asyncio.run(event_loop()), flush=True)

    pins = [PinnedCown(0) for _ in range(5)]
    for i, pin in enumerate(pins):               # independent: all five queue at once
        @when(pin)
        def tick(pin, i=i):
            pin.value = i + 1

    time.sleep(0.5)
    print("max_behaviors:", pump(max_behaviors=2).executed, flush=True)

    @when(ui)
    def nested(ui):
        try:
            pump()
        except RuntimeError as e:
            return str(e)

    @when(compute, nested)
    def collect(compute, nested):
        return compute.value, nested.value

    quiesce(30)                                   # quiesce() pumps the rest by itself

    @when(ui, collect, pins)
    def show(ui, collect, pins):
        print("events:", ui.value["events"], flush=True)
        print("collect:", collect.value, flush=True)
        print("ticks:", [p.value for p in pins], flush=True)

    wait(30)
    import pickle
    try:
        pickle.dumps(ui)
    except TypeError as e:
        print("serialise:", e, flush=True)
"""


def test_pinned_cowns_run_on_the_main_thread_when_pumped(tmp_path):
    r = run_rebeam(tmp_path, PINNED, timeout=120)
    check(r)
    out = lines(r)
    assert "asyncio pump: PumpResult(executed=1, deadline_reached=False, raised=0)" in out
    assert "max_behaviors: 2" in out
    assert "events: [('render', 499500, True)]" in out
    assert "ticks: [1, 2, 3, 4, 5]" in out
    assert "collect: (True, 'pump() called from inside a main-side behaviour; return to your event loop first')" in out
    assert any(x.startswith("serialise: PinnedCown<") and "never leaves the main process" in x for x in out)


PUMP_RIGHT_AFTER_WHEN = """
    from rebeam.boc import Cown, PinnedCown, pump, wait, when

    ui, data = PinnedCown(0), Cown(5)
    executed = []
    for i in range(20):
        @when(ui)
        def tick(ui):
            ui.value += 1
        executed.append(pump().executed)      # no sleep in between: the behaviour is already here
    @when(ui, data)                           # ordinary cowns come along (here they start in this process)
    def both(ui, data):
        return ui.value + data.value
    executed.append(pump().executed)
    print("executed:", executed, flush=True)
    wait()
    print("both:", both.unwrap(), flush=True)
"""


def test_pump_right_after_when_sees_the_behaviour(tmp_path):
    for run in (run_rebeam, run_python):
        r = run(tmp_path, PUMP_RIGHT_AFTER_WHEN, timeout=60)
        check(r)
        assert f"executed: {[1] * 21}" in lines(r), r.stdout
        assert "both: 25" in lines(r)


def test_the_watchdog_warns_when_nobody_pumps(tmp_path):
    r = run_rebeam(tmp_path, """
        import time
        from rebeam.boc import PinnedCown, when, wait

        ui = PinnedCown(0)

        @when(ui)
        def starved(ui):
            ui.value += 1

        time.sleep(3)          # an event loop that forgot to pump
        wait(30)
    """, timeout=60)
    check(r)
    assert "main-side behaviour(s) (PinnedCown) have waited" in r.stderr
    assert "call rebeam.boc.pump() from your event loop" in r.stderr


def test_send_and_selective_receive_between_processes(tmp_path):
    r = run_rebeam(tmp_path, """
        import time
        from rebeam.boc import Cown, TIMEOUT, drain, receive, send, wait, when

        worker = Cown(None)

        @when(worker)
        def producer(worker):                     # runs in a worker process
            send("noise", "ignore me")
            for i in range(3):
                send("job", i)
            send("done", "all sent")

        print("done:", receive("done", timeout=30), flush=True)
        print("either:", receive(["job", "done"], timeout=5), flush=True)   # oldest first
        print("jobs:", [receive("job", 5)[1] for _ in range(2)], flush=True)
        print("timeout:", receive("job", timeout=0.2), flush=True)
        print("after:", receive("job", timeout=0.2, after=lambda: ("job", "self-tick")), flush=True)
        drain("noise")
        print("drained:", receive("noise", timeout=0.2)[0] == TIMEOUT, flush=True)
        try:
            send("x" * 64, 1)
        except ValueError as e:
            print("long tag:", e, flush=True)
        wait(30)
    """, timeout=60)
    check(r)
    out = lines(r)
    assert "done: ('done', 'all sent')" in out
    assert "either: ('job', 0)" in out
    assert "jobs: [1, 2]" in out
    assert "timeout: ('__timeout__', None)" in out
    assert "after: ('job', 'self-tick')" in out
    assert "drained: True" in out
    assert any(x.startswith("long tag:") and "63 UTF-8 bytes" in x for x in out)


def test_a_refused_behaviour_leaves_nothing_pending(tmp_path):
    r = run_rebeam(tmp_path, """
        import rebeam
        from rebeam.boc import Cown, quiesce, whencall

        ghost = Cown._handle(999_999)             # no such cown
        whencall(lambda g: None, [ghost], [])     # not awaited: refused at the next quiesce
        try:
            quiesce(10)
        except rebeam.InvalidRequest as e:
            print("refused:", e, flush=True)
        print("nothing pending:", quiesce(10) is None, flush=True)
    """, timeout=60)
    check(r)
    out = lines(r)
    assert any(x.startswith("refused: a behaviour scheduled earlier was refused: unknown cown 999999") for x in out), out
    assert "nothing pending: True" in out


def test_a_warm_one_cown_site_raises_an_earlier_refusal_and_sees_a_rebound_global(tmp_path):
    # A @when on one cown whose site ran before takes the short path in the main process:
    # the same refusal, raised before anything is sent, and a global rebound since is seen.
    r = run_rebeam(tmp_path, """
        import time
        import rebeam
        from rebeam.boc import Cown, quiesce, when, whencall

        c = Cown(0)
        K = 1

        def bump():
            @when(c)
            def r(c):
                c.value += K
                return c.value

            return r

        for _ in range(3):
            bump()
        quiesce(10)
        whencall(lambda g: None, [Cown._handle(999_999)], [])  # no such cown: refused
        for _ in range(2000):
            try:
                bump()
            except rebeam.InvalidRequest as e:
                print("refused:", e, flush=True)
                break
            time.sleep(0.005)
        quiesce(10)
        with c as before:
            pass
        K = 100
        bump()
        quiesce(10)
        with c as after:
            pass
        print("added:", after - before, flush=True)
    """, timeout=60)
    check(r)
    out = lines(r)
    assert any(x.startswith("refused: a behaviour scheduled earlier was refused: unknown cown 999999") for x in out), out
    assert "added: 100" in out, out
