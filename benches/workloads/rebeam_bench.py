"""rebeam side of the benchmark: `rebeam --workers N rebeam_bench.py <workload> [key=value ...]`.

Prints one line `BENCH_JSON {...}` with the results, then stops the system with
rebeam.shutdown(). Workloads: call, cast, cpu, crash, rss, safety (see benches/README.md).
Sizes: call_n, call_warm, cast_n, cast_reps, cpu_total, cpu_chunks, cpu_reps, crash_reps,
rss_settle, safety_reps, kill_reps (the driver, benches/bench.py, passes the same sizes to
every system).
"""

import os
import select
import sys
import threading
import time

import rebeam
from rebeam import GenPy, SafetyInterrupt, Supervisor, call, cast, receive, requires_armed, response_ok, start

from common import children, emit, is_zygote, memory_kb, opt, pct, rss_kb, wait_workers_ready  # noqa: E402  (beside this script)

WORKLOAD = sys.argv[1] if len(sys.argv) > 1 else "call"


def check(reply, what):
    status, value = reply
    if status != "ok":
        raise RuntimeError(f"{what} failed: {value!r}")
    return value


# --- actors -----------------------------------------------------------------------------------


class Echo(GenPy):
    """B: answers pings, counts casts."""

    def __init__(self, name):
        self.name = name

    @start()
    def init(self):
        self.state["n"] = 0

    @receive("ping")
    def ping(self, source, message):
        return response_ok(message)

    @receive("inc")
    def inc(self, source, message):
        self.state["n"] += 1

    @receive("count")
    def count(self, source, message):
        n = self.state["n"]
        self.state["n"] = 0
        return response_ok(n)

    @receive("pid")
    def pid(self, source, message):
        return response_ok(os.getpid())


class Driver(GenPy):
    """A: drives the call / cast loops against `target`, timing inside the actor."""

    def __init__(self, name, target):
        self.name = name
        self.target = target

    @receive("pid")
    def pid(self, source, message):
        return response_ok(os.getpid())

    @receive("calls")
    def calls(self, source, n):
        target = self.target
        clock = time.perf_counter_ns
        samples = [0] * n
        for i in range(n):
            t0 = clock()
            status, _ = call(target, "ping", i)
            samples[i] = clock() - t0
            if status != "ok":
                raise RuntimeError(f"ping {i} failed")
        return response_ok(samples)

    @receive("casts")
    def casts(self, source, n):
        target = self.target
        t0 = time.perf_counter_ns()
        for i in range(n):
            cast(target, "inc", i)
        status, got = call(target, "count", None, 60.0)
        t1 = time.perf_counter_ns()
        return response_ok((t1 - t0, got))


class Cruncher(GenPy):
    def __init__(self, name):
        self.name = name

    @receive("pid")
    def pid(self, source, message):
        return response_ok(os.getpid())

    @receive("chunk")
    def chunk(self, source, bounds):
        lo, hi = bounds
        s = 0
        for i in range(lo, hi):
            s += i * i
        return response_ok(s)


class Fragile(GenPy):
    def __init__(self, name):
        self.name = name

    @receive("ping")
    def ping(self, source, message):
        return response_ok(os.getpid())

    @receive("raise")
    def boom(self, source, message):
        raise RuntimeError("deliberate crash (benchmark)")

    @receive("exit")
    def die(self, source, message):
        os._exit(1)


class Gated(GenPy):
    """Gated work for the disarm measurements: a pure-Python loop, and a C call."""

    def __init__(self, name):
        self.name = name

    @start()
    def init(self):
        self.state["stopped_at"] = None

    @receive("pid")
    def pid(self, source, message):
        return response_ok(os.getpid())

    @receive("stopped_at")
    def stopped_at(self, source, message):
        return response_ok(self.state["stopped_at"])

    @requires_armed
    @receive("spin")
    def spin(self, source, message):
        self.state["stopped_at"] = None
        try:
            rebeam.publish("bench.started", "spin")
            while True:
                pass
        except SafetyInterrupt:
            # CLOCK_MONOTONIC, the same clock as the main process's perf_counter_ns.
            self.state["stopped_at"] = time.perf_counter_ns()
            raise

    @requires_armed
    @receive("sleep")
    def sleep(self, source, message):
        rebeam.publish("bench.started", "sleep")
        time.sleep(60)


# --- workloads --------------------------------------------------------------------------------


def w_call():
    n, warm = opt("call_n", 20000), opt("call_warm", 2000)
    Supervisor(modules=[Driver("a", "b"), Echo("b")])
    pa, pb = check(call("a", "pid"), "pid a"), check(call("b", "pid"), "pid b")
    check(call("a", "calls", warm, 120.0), "warm-up")
    samples = sorted(check(call("a", "calls", n, 300.0), "calls"))
    return {
        "n": n,
        "p50_us": pct(samples, 50),
        "p99_us": pct(samples, 99),
        "mean_us": sum(samples) / len(samples) / 1000.0,
        "min_us": samples[0] / 1000.0,
        "pids": [pa, pb],
        "different_processes": pa != pb,
    }


def w_cast():
    n, reps = opt("cast_n", 20000), opt("cast_reps", 3)
    Supervisor(modules=[Driver("a", "b"), Echo("b")])
    pa, pb = check(call("a", "pid"), "pid a"), check(call("b", "pid"), "pid b")
    check(call("a", "casts", 5000, 60.0), "warm-up")
    rates, lost = [], 0
    for _ in range(reps):
        ns, got = check(call("a", "casts", n, 300.0), "casts")
        lost += n - got
        rates.append(n / (ns / 1e9))
    rates.sort()
    return {
        "n": n,
        "reps": reps,
        "msgs_per_s": rates[len(rates) // 2],
        "best_msgs_per_s": rates[-1],
        "lost": lost,
        "pids": [pa, pb],
        "different_processes": pa != pb,
    }


def w_cpu():
    """4 chunks over 2 actors in 2 workers vs 2 actors in 1 worker, interleaved run by run.

    Three Crunchers on 2 workers: least-loaded placement puts c0 and c2 on one worker and c1
    on the other (checked with their pids). "1 worker" sends the chunks to the pair sharing
    a worker, "2 workers" to a pair on different workers; the two alternate, so both see the
    same background load. Best (shortest) run of each is used for the speedup.
    """
    total, chunks, reps = opt("cpu_total", 12_000_000), opt("cpu_chunks", 4), opt("cpu_reps", 3)
    names = ["c0", "c1", "c2"]
    Supervisor(modules=[Cruncher(n) for n in names])
    pids = {n: check(call(n, "pid"), "pid") for n in names}
    same = next(((a, b) for i, a in enumerate(names) for b in names[i + 1 :] if pids[a] == pids[b]), None)
    diff = next(((a, b) for i, a in enumerate(names) for b in names[i + 1 :] if pids[a] != pids[b]), None)
    if same is None or diff is None:
        raise RuntimeError(f"cannot find actor pairs on one and on two workers: {pids}")
    step = total // chunks
    bounds = [(k * step, total if k == chunks - 1 else (k + 1) * step) for k in range(chunks)]
    expect = (total - 1) * total * (2 * total - 1) // 6
    for n in names:  # warm up: the code is loaded in every worker
        assert check(call(n, "chunk", (0, 1000)), "warm-up") == sum(i * i for i in range(1000))

    def one_run(pair):
        results = [None] * chunks

        def go(k):
            results[k] = check(call(pair[k % 2], "chunk", bounds[k], 300.0), "chunk")

        t0 = time.perf_counter()
        threads = [threading.Thread(target=go, args=(k,)) for k in range(chunks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
        assert sum(results) == expect
        return dt

    t1, t2 = [], []
    for _ in range(reps):
        t2.append(one_run(diff))
        t1.append(one_run(same))
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {
        "total": total,
        "chunks": chunks,
        "reps": reps,
        "seconds_1": min(t1),
        "seconds_2": min(t2),
        "speedup": min(t1) / min(t2),
        "median_seconds_1": med(t1),
        "median_seconds_2": med(t2),
        "median_speedup": med(t1) / med(t2),
        "times_1": t1,
        "times_2": t2,
        "pair_1_worker": same,
        "pair_2_workers": diff,
        "pids": pids,
    }


def wait_serving(name, deadline_s=10.0):
    """Calls `name` until it answers ok; returns (ns when it did, attempts)."""
    attempts = 0
    end = time.perf_counter() + deadline_s
    while time.perf_counter() < end:
        attempts += 1
        status, value = call(name, "ping", None, 1.0)
        if status == "ok":
            return time.perf_counter_ns(), attempts, value
        time.sleep(0.0005)
    raise RuntimeError(f"{name} did not serve again within {deadline_s}s")


def w_crash():
    reps = opt("crash_reps", 10)
    Supervisor(modules=[Fragile("f")], max_restarts=1000, max_seconds=1)
    out = {}
    for mode in ("raise", "exit"):
        samples, from_error, attempts = [], [], []
        check(call("f", "ping"), "ping")
        for _ in range(reps):
            pid_before = check(call("f", "ping"), "ping")
            t0 = time.perf_counter_ns()
            status, err = call("f", mode, None, 5.0)
            t_err = time.perf_counter_ns()
            if status != "error":
                raise RuntimeError(f"{mode} did not fail: {err!r}")
            t1, n, pid_after = wait_serving("f")
            samples.append((t1 - t0) / 1e6)
            from_error.append((t1 - t_err) / 1e6)
            attempts.append(n)
            if mode == "exit" and pid_after == pid_before:
                raise RuntimeError("worker did not change after os._exit")
            time.sleep(0.05)  # let the spare worker come back before the next round
        samples.sort()
        from_error.sort()
        out[mode] = {
            "reps": reps,
            "median_ms": samples[len(samples) // 2],
            "max_ms": samples[-1],
            "min_ms": samples[0],
            "median_from_error_ms": from_error[len(from_error) // 2],
            "median_attempts": sorted(attempts)[len(attempts) // 2],
            "last_error": type(err).__name__,
        }
    return out


def w_rss():
    settle = opt("rss_settle", 1.0)
    Supervisor(modules=[Echo("r0"), Echo("r1")])
    pids = [check(call(f"r{i}", "pid"), "pid") for i in range(2)]
    time.sleep(settle)
    worker_rss = [rss_kb(p) for p in pids]
    governor = os.getppid()
    others = [p for p in children(governor) if p not in pids and p != os.getpid()]
    spare_rss = [rss_kb(p) for p in others if not is_zygote(p)]
    return {
        "worker_pids": pids,
        # VmRSS, the row's figure: pages a forked worker shares with the zygote count in full.
        "worker_rss_kb": worker_rss,
        "worker_memory_kb": [memory_kb(p) for p in pids],
        "zygote_memory_kb": [memory_kb(p) for p in others if is_zygote(p)],
        "mean_worker_rss_mb": sum(worker_rss) / len(worker_rss) / 1024.0,
        "spare_rss_kb": spare_rss,
        "main_rss_kb": rss_kb(os.getpid()),
        "governor_rss_kb": rss_kb(governor),
    }


def control(action):
    """Has the host (the bench driver: Python may not) send one request on the control
    socket, as `rebeam ctl` does. Returns perf_counter_ns() taken just before it is written."""
    from rebeam import _rebeam

    from bench_host import via_host

    t0, reply = via_host(_rebeam._control_frame(action))
    if not reply or b"refused" in reply:
        raise RuntimeError(f"{action!r} on the control socket: {reply!r}")
    return t0


def wait_state(state, deadline_s=10.0):
    end = time.perf_counter() + deadline_s
    while rebeam.safety_state() != state:
        if time.perf_counter() > end:
            raise RuntimeError(f"safety state {rebeam.safety_state()!r}, expected {state!r}")
        time.sleep(0.001)


def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def w_safety():
    """Disarm latencies: a pure-Python loop interrupted, a worker stuck in C killed."""
    loop_reps, kill_reps = opt("safety_reps", 10), opt("kill_reps", 5)
    grace = float(os.environ.get("BENCH_SAFETY_GRACE", "0.2"))
    Supervisor(modules=[Gated("g")], max_restarts=1000, max_seconds=1)
    started = threading.Event()
    rebeam.on("bench.started", lambda topic, what: started.set())

    def disarm_during(subject):
        """Arms, starts `subject` from a thread, disarms once it runs. Returns (t_disarm, t_error, reply)."""
        control("arm")
        wait_state("armed")
        started.clear()
        box = {}

        def caller():
            r = call("g", subject, None, 30.0)
            box["t"] = time.perf_counter_ns()
            box["r"] = r

        t = threading.Thread(target=caller)
        t.start()
        if not started.wait(10):
            raise RuntimeError(f"{subject} did not start")
        time.sleep(0.01)  # well inside the work
        t0 = control("disarm")
        t.join(30)
        status, err = box["r"]
        if status != "error" or not isinstance(err, rebeam.SafetyError):
            raise RuntimeError(f"{subject}: expected a SafetyError, got {box['r']!r}")
        return t0, box["t"], err

    loop_error, loop_stop = [], []
    pid = check(call("g", "pid"), "pid")
    for _ in range(loop_reps):
        t0, t_err, _ = disarm_during("spin")
        stopped = check(call("g", "stopped_at"), "stopped_at")
        if stopped is None:
            raise RuntimeError("the loop was not interrupted")
        loop_error.append((t_err - t0) / 1e6)
        loop_stop.append((stopped - t0) / 1e6)
        wait_state("disarmed")
    if check(call("g", "pid"), "pid") != pid:
        raise RuntimeError("the worker changed: the loop was killed, not interrupted")

    kill_gone, kill_error = [], []
    for _ in range(kill_reps):
        pid = check(call("g", "pid"), "pid")
        pidfd = os.pidfd_open(pid)
        try:
            t0, t_err, _ = disarm_during("sleep")
            if not select.select([pidfd], [], [], 10)[0]:  # readable once the process has exited
                raise RuntimeError(f"worker {pid} was not killed")
            t_gone = time.perf_counter_ns()
        finally:
            os.close(pidfd)
        kill_gone.append((t_gone - t0) / 1e6)
        kill_error.append((t_err - t0) / 1e6)
        wait_state("disarmed")
        end = time.perf_counter() + 10
        while call("g", "pid", None, 1.0)[0] != "ok":  # the actor restarted on the spare
            if time.perf_counter() > end:
                raise RuntimeError("the actor did not come back after the kill")
            time.sleep(0.005)
        wait_workers_ready()  # and a new spare is up before the next round
    return {
        "grace_s": grace,
        "loop_reps": loop_reps,
        "loop_error_median_ms": med(loop_error),
        "loop_stopped_median_ms": med(loop_stop),
        "loop_error_ms": loop_error,
        "loop_stopped_ms": loop_stop,
        "kill_reps": kill_reps,
        "kill_gone_median_ms": med(kill_gone),
        "kill_error_median_ms": med(kill_error),
        "kill_gone_ms": kill_gone,
        "kill_error_ms": kill_error,
    }


WORKLOADS = {"call": w_call, "cast": w_cast, "cpu": w_cpu, "crash": w_crash, "rss": w_rss, "safety": w_safety}

if __name__ == "__main__":
    code = 0
    try:
        waited = wait_workers_ready()
        result = WORKLOADS[WORKLOAD]()
        result["waited_for_workers_s"] = waited
        result["workload"] = WORKLOAD
        emit(result)
    except Exception as e:  # report, don't hang
        import traceback

        traceback.print_exc()
        emit({"workload": WORKLOAD, "error": f"{type(e).__name__}: {e}"})
        code = 1
    rebeam.shutdown(code)
