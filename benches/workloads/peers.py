"""Peer side of the benchmark: `python peers.py <system> <workload> [args]`.

system:   mp (multiprocessing: Pipe ping-pong, Pool), pykka (threads in one process), ray.
workload: call, cast, cpu, crash, rss, or `all` (every workload in one process; used for Ray so
          ray.init() is paid once — its start-up cost is measured by the `hello` run instead).

Prints one line `BENCH_JSON {...}` per workload. The same sizes and message shapes as
rebeam_bench.py: a small int as the message, the same reply; timing with perf_counter_ns.
"""

import os
import sys
import time

from common import emit, opt, pct, rss_kb  # noqa: E402  (beside this script)


def lat_stats(samples, **extra):
    samples = sorted(samples)
    return {
        "n": len(samples),
        "p50_us": pct(samples, 50),
        "p99_us": pct(samples, 99),
        "mean_us": sum(samples) / len(samples) / 1000.0,
        "min_us": samples[0] / 1000.0,
        **extra,
    }


def crunch(bounds):
    lo, hi = bounds
    s = 0
    for i in range(lo, hi):
        s += i * i
    return s


def cpu_bounds(total, chunks):
    step = total // chunks
    return [(k * step, total if k == chunks - 1 else (k + 1) * step) for k in range(chunks)]


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


CPU_TOTAL, CPU_CHUNKS, CPU_REPS = opt("cpu_total", 12_000_000), opt("cpu_chunks", 4), opt("cpu_reps", 3)


def cpu_result(times1, times2, extra=None):
    """Speedup from the best (shortest) of the reps: the least disturbed by other load."""
    b1, b2 = min(times1), min(times2)
    return {
        "total": CPU_TOTAL,
        "chunks": CPU_CHUNKS,
        "reps": CPU_REPS,
        "seconds_1": b1,
        "seconds_2": b2,
        "speedup": b1 / b2,
        "median_seconds_1": median(times1),
        "median_seconds_2": median(times2),
        "median_speedup": median(times1) / median(times2),
        **(extra or {}),
    }


# --- multiprocessing -----------------------------------------------------------------------------


def _mp_echo(conn):
    while True:
        m = conn.recv()
        if m is None:
            return
        conn.send(m)


def _mp_counter(conn):
    n = 0
    while True:
        m = conn.recv()
        if m == "count":
            conn.send(n)
            n = 0
        elif m is None:
            return
        else:
            n += 1


def mp_call():
    n, warm = opt("call_n", 20000), opt("call_warm", 2000)
    import multiprocessing as mp

    a, b = mp.Pipe()
    p = mp.Process(target=_mp_echo, args=(b,))
    p.start()
    clock = time.perf_counter_ns
    for i in range(warm):
        a.send(i)
        a.recv()
    samples = [0] * n
    for i in range(n):
        t0 = clock()
        a.send(i)
        a.recv()
        samples[i] = clock() - t0
    a.send(None)
    p.join(5)
    return lat_stats(samples, start_method=mp.get_start_method())


def mp_cast():
    n, reps = opt("cast_n", 300000), opt("cast_reps", 3)
    import multiprocessing as mp

    a, b = mp.Pipe()
    p = mp.Process(target=_mp_counter, args=(b,))
    p.start()
    for i in range(5000):
        a.send(i)
    a.send("count")
    a.recv()
    rates, lost = [], 0
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        for i in range(n):
            a.send(i)
        a.send("count")
        got = a.recv()
        dt = time.perf_counter_ns() - t0
        lost += n - got
        rates.append(n / (dt / 1e9))
    a.send(None)
    p.join(5)
    return {"n": n, "reps": reps, "msgs_per_s": median(rates), "best_msgs_per_s": max(rates), "lost": lost}


def mp_cpu():
    """Pool(1) and Pool(2) both started, runs alternating (same background load for both)."""
    import multiprocessing as mp

    bounds = cpu_bounds(CPU_TOTAL, CPU_CHUNKS)
    expect = (CPU_TOTAL - 1) * CPU_TOTAL * (2 * CPU_TOTAL - 1) // 6
    times = {1: [], 2: []}
    with mp.Pool(1) as p1, mp.Pool(2) as p2:
        pools = {1: p1, 2: p2}
        for procs, pool in pools.items():
            pool.map(crunch, [(0, 1000)] * procs, chunksize=1)  # warm up: workers started
        for _ in range(CPU_REPS):
            for procs in (2, 1):
                t0 = time.perf_counter()
                assert sum(pools[procs].map(crunch, bounds, chunksize=1)) == expect
                times[procs].append(time.perf_counter() - t0)
    return cpu_result(times[1], times[2], {"start_method": mp.get_start_method()})


def _mp_idle(conn):
    conn.send(os.getpid())
    conn.recv()


def mp_rss():
    settle = opt("rss_settle", 1.0)
    import multiprocessing as mp

    out = {}
    for method in ("fork", "spawn"):
        ctx = mp.get_context(method)
        a, b = ctx.Pipe()
        p = ctx.Process(target=_mp_idle, args=(b,))
        p.start()
        pid = a.recv()
        time.sleep(settle)
        out[method] = rss_kb(pid)
        a.send(None)
        p.join(5)
    default = mp.get_start_method()
    return {
        "worker_rss_kb": out,
        "start_method": default,
        "mean_worker_rss_mb": out[default] / 1024.0,
        "note": "a multiprocessing.Process blocked on Pipe.recv(); fork children share pages with the parent",
    }


# --- pykka ---------------------------------------------------------------------------------------


def _pykka_classes():
    import pykka

    class Echo(pykka.ThreadingActor):
        def __init__(self):
            super().__init__()
            self.n = 0

        def on_receive(self, message):
            if message == "count":
                n, self.n = self.n, 0
                return n
            if isinstance(message, tuple):  # ("inc", i): a tell
                self.n += 1
                return None
            if isinstance(message, dict) and message.get("op") == "chunk":
                return crunch(message["bounds"])
            return message

    class Driver(pykka.ThreadingActor):
        def __init__(self, b):
            super().__init__()
            self.b = b

        def on_receive(self, message):
            op, n = message["op"], message["n"]
            b = self.b
            if op == "calls":
                clock = time.perf_counter_ns
                samples = [0] * n
                for i in range(n):
                    t0 = clock()
                    b.ask(i)
                    samples[i] = clock() - t0
                return samples
            if op == "casts":
                t0 = time.perf_counter_ns()
                for i in range(n):
                    b.tell(("inc", i))
                got = b.ask("count")
                return time.perf_counter_ns() - t0, got

    return pykka, Echo, Driver


def pykka_call():
    n, warm = opt("call_n", 20000), opt("call_warm", 2000)
    pykka, Echo, Driver = _pykka_classes()
    b = Echo.start()
    a = Driver.start(b)
    try:
        a.ask({"op": "calls", "n": warm})
        return lat_stats(a.ask({"op": "calls", "n": n}), note="threads in one process")
    finally:
        pykka.ActorRegistry.stop_all()


def pykka_cast():
    n, reps = opt("cast_n", 200000), opt("cast_reps", 3)
    pykka, Echo, Driver = _pykka_classes()
    b = Echo.start()
    a = Driver.start(b)
    try:
        a.ask({"op": "casts", "n": 5000})
        rates, lost = [], 0
        for _ in range(reps):
            ns, got = a.ask({"op": "casts", "n": n})
            lost += n - got
            rates.append(n / (ns / 1e9))
        return {"n": n, "reps": reps, "msgs_per_s": median(rates), "best_msgs_per_s": max(rates), "lost": lost}
    finally:
        pykka.ActorRegistry.stop_all()


def pykka_cpu():
    """1 actor vs 2 actors (threads), runs alternating."""
    pykka, Echo, _ = _pykka_classes()
    bounds = cpu_bounds(CPU_TOTAL, CPU_CHUNKS)
    expect = (CPU_TOTAL - 1) * CPU_TOTAL * (2 * CPU_TOTAL - 1) // 6
    times = {1: [], 2: []}
    try:
        actors = [Echo.start() for _ in range(2)]
        for _ in range(CPU_REPS):
            for count in (2, 1):
                t0 = time.perf_counter()
                futures = [
                    actors[k % count].ask({"op": "chunk", "bounds": bounds[k]}, block=False) for k in range(CPU_CHUNKS)
                ]
                assert sum(f.get() for f in futures) == expect
                times[count].append(time.perf_counter() - t0)
    finally:
        pykka.ActorRegistry.stop_all()
    return cpu_result(times[1], times[2], {"note": "1 actor vs 2 actors (threads share the GIL)"})


# --- Ray -----------------------------------------------------------------------------------------


def ray_all():
    import ray

    t0 = time.perf_counter()
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (set by bench.py) keeps Ray on 127.0.0.1.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    init_s = time.perf_counter() - t0

    @ray.remote(num_cpus=0)
    class Echo:
        def __init__(self):
            self.n = 0

        def ping(self, m):
            return m

        def inc(self, m):
            self.n += 1

        def count(self):
            n, self.n = self.n, 0
            return n

        def pid(self):
            return os.getpid()

    @ray.remote(num_cpus=0)
    class Driver:
        def __init__(self, b):
            self.b = b

        def pid(self):
            return os.getpid()

        def calls(self, n):
            b = self.b
            clock = time.perf_counter_ns
            samples = [0] * n
            for i in range(n):
                t0 = clock()
                ray.get(b.ping.remote(i))
                samples[i] = clock() - t0
            return samples

        def casts(self, n):
            b = self.b
            t0 = time.perf_counter_ns()
            for i in range(n):
                b.inc.remote(i)
            got = ray.get(b.count.remote())
            return time.perf_counter_ns() - t0, got

    @ray.remote(num_cpus=1)
    class Cruncher:
        def chunk(self, bounds):
            return crunch(bounds)

    @ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
    class Fragile:
        def ping(self):
            return os.getpid()

        def die(self):
            os._exit(1)

    def run(name, fn):
        try:
            r = fn()
        except Exception as e:  # one workload failing must not lose the others
            r = {"error": f"{type(e).__name__}: {e}"}
        r["workload"] = name
        emit(r)

    def call_w():
        n, warm = opt("call_n", 5000), opt("call_warm", 500)
        b = Echo.remote()
        a = Driver.remote(b)
        pids = [ray.get(a.pid.remote()), ray.get(b.pid.remote())]
        ray.get(a.calls.remote(warm))
        r = lat_stats(ray.get(a.calls.remote(n)), pids=pids, different_processes=pids[0] != pids[1])
        ray.kill(a)
        ray.kill(b)
        return r

    def cast_w():
        n, reps = opt("cast_n", 20000), opt("cast_reps", 3)
        b = Echo.remote()
        a = Driver.remote(b)
        ray.get(a.casts.remote(2000))
        rates, lost = [], 0
        for _ in range(reps):
            ns, got = ray.get(a.casts.remote(n))
            lost += n - got
            rates.append(n / (ns / 1e9))
        ray.kill(a)
        ray.kill(b)
        return {"n": n, "reps": reps, "msgs_per_s": median(rates), "best_msgs_per_s": max(rates), "lost": lost}

    def cpu_w():
        """1 actor vs 2 actors (each its own process), runs alternating."""
        bounds = cpu_bounds(CPU_TOTAL, CPU_CHUNKS)
        expect = (CPU_TOTAL - 1) * CPU_TOTAL * (2 * CPU_TOTAL - 1) // 6
        actors = [Cruncher.remote() for _ in range(2)]
        ray.get([a.chunk.remote((0, 1000)) for a in actors])
        times = {1: [], 2: []}
        for _ in range(CPU_REPS):
            for count in (2, 1):
                t0 = time.perf_counter()
                refs = [actors[k % count].chunk.remote(bounds[k]) for k in range(CPU_CHUNKS)]
                assert sum(ray.get(refs)) == expect
                times[count].append(time.perf_counter() - t0)
        for a in actors:
            ray.kill(a)
        return cpu_result(times[1], times[2], {"note": "1 actor vs 2 actors, ray.init(num_cpus=2)"})

    def rss_w():
        settle = opt("rss_settle", 1.0)
        b = Echo.remote()
        pid = ray.get(b.pid.remote())
        time.sleep(settle)
        kb = rss_kb(pid)
        ray.kill(b)
        return {
            "worker_pid": pid,
            "worker_rss_kb": kb,
            "mean_worker_rss_mb": kb / 1024.0,
            "note": "the process of an idle Ray actor",
        }

    def crash_w():
        reps = opt("crash_reps", 3)
        f = Fragile.remote()
        ray.get(f.ping.remote())
        samples, errors = [], set()
        for _ in range(reps):
            before = ray.get(f.ping.remote())
            t0 = time.perf_counter_ns()
            try:
                ray.get(f.die.remote(), timeout=30)
                raise RuntimeError("die() returned")
            except ray.exceptions.RayActorError as e:
                errors.add(type(e).__name__)
            end = time.perf_counter() + 60
            while True:
                try:
                    after = ray.get(f.ping.remote(), timeout=30)
                    break
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                    if time.perf_counter() > end:
                        raise
                    time.sleep(0.001)
            samples.append((time.perf_counter_ns() - t0) / 1e6)
            assert after != before
        ray.kill(f)
        samples.sort()
        return {
            "exit": {
                "reps": reps,
                "median_ms": median(samples),
                "max_ms": samples[-1],
                "min_ms": samples[0],
                "errors": sorted(errors),
            },
            "raise": {"note": "n/a: an exception in a Ray actor method does not kill the actor"},
        }

    emit({"workload": "init", "ray_init_s": init_s, "ray_version": ray.__version__})
    only = [a for a in sys.argv[3:] if "=" not in a] or ["call", "cast", "cpu", "rss", "crash"]
    table = {"call": call_w, "cast": cast_w, "cpu": cpu_w, "rss": rss_w, "crash": crash_w}
    for name in only:
        run(name, table[name])
    ray.shutdown()


SYSTEMS = {
    "mp": {"call": mp_call, "cast": mp_cast, "cpu": mp_cpu, "rss": mp_rss},
    "pykka": {"call": pykka_call, "cast": pykka_cast, "cpu": pykka_cpu},
}

if __name__ == "__main__":
    system, workload = sys.argv[1], sys.argv[2]
    if system == "ray":
        ray_all()
        sys.exit(0)
    names = list(SYSTEMS[system]) if workload == "all" else [workload]
    for name in names:
        try:
            r = SYSTEMS[system][name]()
        except Exception as e:
            import traceback

            traceback.print_exc()
            r = {"error": f"{type(e).__name__}: {e}"}
        r["workload"] = name
        emit(r)
