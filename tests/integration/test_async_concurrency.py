"""Actors that opt into concurrency (`max_concurrency = N`): up to N runs of their `async def`
handlers interleave on the worker's loop, started in arrival order, each answering its own
caller; synchronous handlers still run alone; a crash in one run crashes the actor as a
synchronous one does. In real runs, under `rebeam` and in plain `python`.

Overlap is shown by what each run saw, never by how long things took: a run of a batch waits
until every run of its batch has started (a one-at-a-time actor would never get there and
says so after a while), and the actor counts the runs in flight.
"""

from __future__ import annotations

import textwrap

from helpers import check, lines, run_python, run_rebeam

PRELUDE = textwrap.dedent(
    '''
    import asyncio, os, time
    import concurrent.futures as cf
    import rebeam
    from rebeam import GenPy, Supervisor, acall, call, call_async, receive, self_pid
    from scriptlib import retry_call, show

    #: How long a run waits for the rest of its batch before it reports that they never came.
    PATIENCE = 30.0


    class Back(GenPy):
        name = "back"

        @receive("double")
        def double(self, source, n):
            return source, n * 2


    class Wide(GenPy):
        max_concurrency = 4

        def __init__(self, name):
            self.name = name

        def counts(self):
            return self.state.setdefault("counts", {"started": 0, "in_flight": 0, "most": 0, "order": []})

        @receive("batch")
        async def batch(self, source, job):
            i, size, patience = job
            c = self.counts()
            c["started"] += 1
            c["in_flight"] += 1
            c["most"] = max(c["most"], c["in_flight"])
            c["order"].append(i)
            # Wait for the whole batch of `size` runs this one belongs to.
            target = (i // size + 1) * size
            end = time.monotonic() + patience
            while c["started"] < target:
                if time.monotonic() > end:
                    c["in_flight"] -= 1
                    return "the rest of the batch never started"
                await asyncio.sleep(0.005)
            who, doubled = (await acall("back", "double", i))[1]
            c["in_flight"] -= 1
            return i, doubled, who == self_pid(), rebeam.cancelled()

        @receive("stats")
        def stats(self, source, _):
            c = self.counts()
            return c["in_flight"], c["started"], c["most"], c["order"]


    class Narrow(Wide):
        max_concurrency = 1

        @receive("step")
        async def step(self, source, i):
            log = self.state.setdefault("log", [])
            log.append(("start", i))
            await asyncio.sleep(0.002)
            log.append(("end", i))
            return i

        @receive("log")
        def get_log(self, source, _):
            return self.state.get("log", [])


    class Fragile(GenPy):
        name = "fragile"
        max_concurrency = 3

        @receive("work")
        async def work(self, source, i):
            self.state["started"] = self.state.get("started", 0) + 1
            end = time.monotonic() + PATIENCE
            while self.state["started"] < 3 and time.monotonic() < end:
                await asyncio.sleep(0.005)
            if i == 1:
                raise ValueError("run 1 failed while two others were in flight")
            try:
                await asyncio.sleep(PATIENCE)
            except asyncio.CancelledError:
                open(f"cancelled-{i}", "w").close()
                raise
            return "never cancelled"

        @receive("ping")
        def ping(self, source, _):
            return "pong", self.state.get("started", 0)


    def gather(target, subject, messages):
        futures = [call_async(target, subject, m, timeout=60) for m in messages]
        return [f.result(timeout=90) for f in futures]


    def overlap():
        first = gather("wide", "batch", [(i, 4, PATIENCE) for i in range(4)])
        print("first batch:", first, flush=True)
        print("stats between:", call("wide", "stats"), flush=True)
        second = gather("wide", "batch", [(i, 4, PATIENCE) for i in range(4, 12)])
        print("next batches:", second == [("ok", (i, 2 * i, True, False)) for i in range(4, 12)], flush=True)
        in_flight, started, most, order = call("wide", "stats")[1]
        print("after:", in_flight, started, most, order == list(range(12)), flush=True)
        steps = gather("narrow", "step", range(6))
        print("narrow answers:", steps == [("ok", i) for i in range(6)], flush=True)
        log = call("narrow", "log")[1]
        print("narrow one at a time:", log == [(e, i) for i in range(6) for e in ("start", "end")], flush=True)
        # One at a time, the first of a batch of two waits in vain: the second starts after it.
        pair = gather("narrow", "batch", [(i, 2, 1.0) for i in range(2)])
        print("narrow pair:", pair, flush=True)


    def crash():
        futures = [call_async("fragile", "work", i, timeout=60) for i in range(3)]
        for i, f in enumerate(futures):
            show(f"run {i}", f.result(timeout=90))
        print("error:", futures[1].result()[1], flush=True)
        print("restarted:", retry_call("fragile", "ping"), flush=True)
        deadline = time.monotonic() + 15
        while not all(os.path.exists(f"cancelled-{i}") for i in (0, 2)) and time.monotonic() < deadline:
            time.sleep(0.02)
        print("others cancelled:", [os.path.exists(f"cancelled-{i}") for i in (0, 2)], flush=True)
    '''
)


def script(body: str) -> str:
    return PRELUDE + textwrap.dedent(body)


def check_overlap(out: list[str]) -> None:
    # Every run of the first batch saw the other three start before it went on, awaited
    # another actor as itself, and got its own answer back.
    assert "first batch: [" + ", ".join(f"('ok', ({i}, {2 * i}, True, False))" for i in range(4)) + "]" in out
    assert "stats between: ('ok', (0, 4, 4, [0, 1, 2, 3]))" in out  # a sync handler runs alone
    assert "next batches: True" in out
    assert "after: 0 12 4 True" in out  # never more than 4 at once; started in arrival order
    assert "narrow answers: True" in out and "narrow one at a time: True" in out
    assert "narrow pair: [('ok', 'the rest of the batch never started'), ('ok', (1, 2, True, False))]" in out


def test_concurrent_runs_overlap_up_to_the_limit_and_one_at_a_time_stays_strict(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Back(), Wide("wide"), Narrow("narrow")])
            overlap()
            rebeam.shutdown()
    '''), timeout=180)
    check(r)
    check_overlap(lines(r))


def test_concurrent_runs_in_plain_python(tmp_path):
    r = run_python(tmp_path, script('''
        Supervisor(modules=[Back(), Wide("wide"), Narrow("narrow")])
        overlap()
    '''), timeout=180)
    check(r)
    check_overlap(lines(r))


def check_crash(r) -> None:
    out = lines(r)
    assert "run 0: error ActorDown" in out and "run 2: error ActorDown" in out
    assert "run 1: error RemoteError" in out
    assert "error: ValueError: run 1 failed while two others were in flight" in out
    assert "restarted: ('ok', ('pong', 0))" in out  # a fresh incarnation
    assert "others cancelled: [True, True]" in out


def test_a_crash_in_one_of_several_runs_crashes_the_actor_and_cancels_the_others(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Fragile()])
            crash()
            rebeam.shutdown()
    '''), timeout=120)
    check(r)
    check_crash(r)
    assert "CRASH REPORT" in r.stderr and "run 1 failed" in r.stderr


def test_a_crash_in_one_of_several_runs_in_plain_python(tmp_path):
    r = run_python(tmp_path, script('''
        Supervisor(modules=[Fragile()])
        crash()
    '''), timeout=120)
    check(r)
    check_crash(r)


def test_max_concurrency_must_be_a_whole_number_of_at_least_one(tmp_path):
    r = run_python(tmp_path, script('''
        for bad in (0, -1, 2.5, True, "4"):
            try:
                type("Bad", (GenPy,), {"max_concurrency": bad})
                print("accepted:", repr(bad), flush=True)
            except ValueError as e:
                print("refused:", e, flush=True)

        class Odd(GenPy):
            name = "odd"

            def __init__(self):
                self.max_concurrency = 0      # on the instance: caught when it starts

        try:
            rebeam.spawn(Odd())
        except rebeam.RebeamError as e:
            print("start:", type(e).__name__, "max_concurrency=0" in str(e), flush=True)
    '''))
    out = lines(r)
    assert not [x for x in out if x.startswith("accepted:")], r.stdout
    assert sum(x.startswith("refused: Bad: max_concurrency=") for x in out) == 5, r.stdout
    assert any(x.startswith("start: ") and x.endswith(" True") for x in out), r.stdout + r.stderr
