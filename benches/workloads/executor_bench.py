"""Task and futures workloads: `executor_bench.py <system> <workload> [key=value ...]`.

system:   rebeam (run under `rebeam --workers 2`), mp (ProcessPoolExecutor, 2 workers, plain
          python), ray (tasks and an async actor, num_cpus=2).
workload: exec   - map over `exec_small_n` small tasks (chunksize 1), then over `exec_cpu_n`
                   CPU-bound tasks of `exec_cpu_m` loop steps each: tasks/s and seconds;
          acalls - `acall_n` calls in flight at once from one event loop to one actor in
                   another process (Ray: an async actor's method): calls/s and p99 latency.

Prints one `BENCH_JSON {...}` line per workload, as the other workload scripts do.
"""

import asyncio
import sys
import time

from common import emit, opt, pct, wait_workers_ready  # noqa: E402  (beside this script)

WORKERS = 2


def small(x):
    return x + 1


def crunch(m):
    s = 0
    for i in range(m):
        s += i * i
    return s


def _exec_result(small_s, n_small, cpu_s, n_cpu, m):
    return {
        "workload": "exec",
        "small_n": n_small,
        "small_seconds": small_s,
        "small_tasks_per_s": n_small / small_s,
        "cpu_n": n_cpu,
        "cpu_m": m,
        "cpu_seconds": cpu_s,
    }


def exec_pool(make):
    """Times `map` over the small tasks, then over the CPU-bound ones, on one warm pool."""
    n, n_cpu, m = opt("exec_small_n", 10000), opt("exec_cpu_n", 64), opt("exec_cpu_m", 2_000_000)
    with make() as ex:
        list(ex.map(small, range(WORKERS * 4)))  # warm: every worker has run a task
        t0 = time.perf_counter()
        out = list(ex.map(small, range(n)))
        small_s = time.perf_counter() - t0
        assert out == [x + 1 for x in range(n)]
        t0 = time.perf_counter()
        list(ex.map(crunch, [m] * n_cpu))
        cpu_s = time.perf_counter() - t0
    emit(_exec_result(small_s, n, cpu_s, n_cpu, m))


def acall_stats(starts, ends, wall):
    lat = sorted(e - s for s, e in zip(starts, ends, strict=True))
    return {
        "workload": "acalls",
        "n": len(lat),
        "calls_per_s": len(lat) / wall,
        "p50_ms": pct(lat, 50) / 1000.0,
        "p99_ms": pct(lat, 99) / 1000.0,
        "wall_s": wall,
    }


def rebeam_acalls():
    import rebeam
    from rebeam import GenPy, Supervisor, receive

    class Echo(GenPy):
        name = "echo"

        @receive("echo")
        def echo(self, source, x):
            return x

    Supervisor(modules=[Echo()])
    n = opt("acall_n", 10000)

    async def one(i, starts, ends):
        starts[i] = time.perf_counter_ns()
        status, value = await rebeam.acall("echo", "echo", i, timeout=60)
        assert status == "ok" and value == i
        ends[i] = time.perf_counter_ns()

    async def run():
        await rebeam.acall("echo", "echo", 0)  # warm
        starts, ends = [0] * n, [0] * n
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, starts, ends) for i in range(n)))
        return starts, ends, time.perf_counter() - t0

    emit(acall_stats(*asyncio.run(run())))


def ray_acalls(ray):
    @ray.remote
    class Echo:
        async def echo(self, x):
            return x

    n = opt("acall_n", 10000)
    h = Echo.remote()
    ray.get(h.echo.remote(0))

    async def one(i, starts, ends):
        starts[i] = time.perf_counter_ns()
        assert await h.echo.remote(i) == i
        ends[i] = time.perf_counter_ns()

    async def run():
        starts, ends = [0] * n, [0] * n
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, starts, ends) for i in range(n)))
        return starts, ends, time.perf_counter() - t0

    emit(acall_stats(*asyncio.run(run())))


def ray_exec(ray):
    n, n_cpu, m = opt("exec_small_n", 10000), opt("exec_cpu_n", 64), opt("exec_cpu_m", 2_000_000)
    rsmall, rcrunch = ray.remote(small), ray.remote(crunch)
    ray.get([rsmall.remote(x) for x in range(WORKERS * 4)])
    t0 = time.perf_counter()
    assert ray.get([rsmall.remote(x) for x in range(n)]) == [x + 1 for x in range(n)]
    small_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray.get([rcrunch.remote(m) for _ in range(n_cpu)])
    emit(_exec_result(small_s, n, time.perf_counter() - t0, n_cpu, m))


def main():
    system, workload = sys.argv[1], sys.argv[2]
    if system == "rebeam":
        wait_workers_ready()
        if workload == "exec":
            import rebeam

            exec_pool(lambda: rebeam.Executor(max_workers=WORKERS))
        else:
            rebeam_acalls()
            import rebeam

            rebeam.shutdown()
    elif system == "mp":
        from concurrent.futures import ProcessPoolExecutor

        exec_pool(lambda: ProcessPoolExecutor(max_workers=WORKERS))
    elif system == "ray":
        import ray

        ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        (ray_exec if workload == "exec" else ray_acalls)(ray)
        ray.shutdown()
    else:
        raise SystemExit(f"unknown system {system!r}")


if __name__ == "__main__":
    main()
