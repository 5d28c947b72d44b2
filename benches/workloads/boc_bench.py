"""Behaviour-oriented concurrency: rebeam.boc next to bocpy, the same behaviour bodies on both.

    rebeam --workers N boc_bench.py rebeam <workload> workers=N [key=value ...]
    python boc_bench.py bocpy <workload> workers=N [key=value ...]

`python boc_bench.py rebeam ...` runs too (rebeam's library mode: start() below starts the
governor with N workers), but start() does not wait for the workers, and there the CPU
behaviours were seen all running in one worker process of two. bench.py uses the `rebeam`
command and waits until the workers are connected, as for the actors.

Workloads (see benches/README.md, rows 8 and 9):
  trivial  `boc_n` behaviours `c.value += 1` over `boc_cowns` cowns, scheduled in a loop, then
           wait until all have run; behaviours/s, median of `boc_reps` runs.
  cpu      `boc_cpu_k` behaviours on independent cowns, each a pure-Python loop over
           `boc_cpu_m` ints; the time until all have run, best of `boc_cpu_reps` runs. The
           driver runs it with 1 and with 2 workers (a fresh process each) for the speedup.

Prints one line `BENCH_JSON {...}`. The bodies are written in bocpy's style, which rebeam also
accepts: no closures, extra values as default-valued parameters (`m=m`), imports inside the
body. Both sides call `start(worker_count=N)` first and time up to `quiesce()` (every scheduled
behaviour has run, the runtime stays up): bocpy's `wait()` also stops its workers.
"""

import statistics
import sys
import time

TAG = "boc_bench.total"


def api(system):
    if system == "bocpy":
        import bocpy

        return bocpy
    import rebeam.boc

    return rebeam.boc


def settle(boc):
    """Blocks until every scheduled behaviour has run, leaving the runtime up (a rebeam without
    quiesce() yet does that in wait())."""
    quiesce = getattr(boc, "quiesce", None)
    (quiesce or boc.wait)()


def collect(boc, module, cowns):
    """The cowns' values, read by one behaviour over all of them and sent to this process."""

    @boc.when(cowns)
    def _(cs, module=module, tag=TAG):
        import importlib

        importlib.import_module(module).send(tag, [c.value for c in cs])

    _tag, values = boc.receive(TAG, 120)
    settle(boc)
    return values


def w_trivial(boc, module, opt):
    n, ncowns, reps = opt("boc_n", 20000), opt("boc_cowns", 8), opt("boc_reps", 3)
    cowns = [boc.Cown(0) for _ in range(ncowns)]
    for c in cowns:  # warm-up: code paths loaded, the cowns in the workers
        for _ in range(50):

            @boc.when(c)
            def _(c):
                c.value += 1

    settle(boc)
    rates, sched_rates = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        for i in range(n):

            @boc.when(cowns[i % ncowns])
            def _(c):
                c.value += 1

        t1 = time.perf_counter()
        settle(boc)
        t2 = time.perf_counter()
        rates.append(n / (t2 - t0))
        sched_rates.append(n / (t1 - t0))
    values = collect(boc, module, cowns)
    expect = ncowns * 50 + n * reps
    if sum(values) != expect:
        raise RuntimeError(f"the cowns count {sum(values)} increments, expected {expect}")
    return {
        "n": n,
        "cowns": ncowns,
        "reps": reps,
        "behaviours_per_s": statistics.median(rates),
        "best_behaviours_per_s": max(rates),
        "rates": rates,
        "schedule_only_per_s": statistics.median(sched_rates),
    }


def w_cpu(boc, module, opt):
    k, m, reps = opt("boc_cpu_k", 4), opt("boc_cpu_m", 3_000_000), opt("boc_cpu_reps", 2)
    cowns = [boc.Cown(None) for _ in range(k)]
    for c in cowns:  # warm-up: a short run of the same body on every cown

        @boc.when(c)
        def _(c, m=1000):
            import os
            import threading

            s = 0
            for i in range(m):
                s += i * i
            c.value = (s, os.getpid(), threading.get_native_id())

    settle(boc)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for c in cowns:

            @boc.when(c)
            def _(c, m=m):
                import os
                import threading

                s = 0
                for i in range(m):
                    s += i * i
                c.value = (s, os.getpid(), threading.get_native_id())

        settle(boc)
        times.append(time.perf_counter() - t0)
    values = collect(boc, module, cowns)
    expect = (m - 1) * m * (2 * m - 1) // 6
    if any(v[0] != expect for v in values):
        raise RuntimeError(f"wrong sums: {[v[0] for v in values]}, expected {expect}")
    return {
        "k": k,
        "m": m,
        "reps": reps,
        "seconds": min(times),
        "times": times,
        # Where the last run's behaviours ran: (pid, thread) pairs, to see the parallelism.
        "executors": len({(v[1], v[2]) for v in values}),
        "processes": len({v[1] for v in values}),
    }


WORKLOADS = {"trivial": w_trivial, "cpu": w_cpu}


def main():
    from common import OPTS, emit, opt  # beside this script; not imported by bocpy's workers

    system, workload = sys.argv[1], sys.argv[2]
    result = {"workload": f"boc_{workload}", "system": system}
    code = 0
    try:
        boc = api(system)
        module = boc.__name__
        workers = opt("workers", 2)
        if system == "rebeam":  # under `rebeam --workers N`: wait until the workers are connected
            from common import wait_workers_ready

            result["waited_for_workers_s"] = wait_workers_ready()
        if hasattr(boc, "start"):  # bocpy starts its workers; rebeam under its command: a check
            t0 = time.perf_counter()
            boc.start(worker_count=workers)
            result["start_s"] = time.perf_counter() - t0
        result["workers"] = workers
        result.update(WORKLOADS[workload](boc, module, opt))
        if system == "bocpy":
            t0 = time.perf_counter()
            boc.wait()  # bocpy's wait() stops its workers: how long that takes, for the record
            result["teardown_s"] = time.perf_counter() - t0
            result["version"] = boc.__version__
    except Exception as e:  # report, don't hang
        import traceback

        traceback.print_exc()
        result["error"] = f"{type(e).__name__}: {e}"
        code = 1
    result["sizes"] = OPTS
    emit(result)
    if system == "rebeam":
        import rebeam

        rebeam.shutdown(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
