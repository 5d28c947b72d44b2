"""Data-plane workloads: `data_bench.py <system> <workload> [key=value ...]`.

system:   rebeam (run under `rebeam --workers 2`), mp (Pipe and shared_memory, plain python),
          ray (its object store, num_cpus=2; `all` runs every workload after one ray.init()).
workload: array - a 64 MiB float64 NumPy array (`array_mib`) sent in a call from the main
                  process to an actor in another process, which checks its shape and two
                  elements and replies with a small tuple; `array_reps` calls, p50 in ms. Once
                  as an ordinary array (mp: `Pipe.send`; Ray: the array as an argument) and
                  once allocated in shared memory from the start (rebeam: `shared_array`, when
                  the build has it; mp: `shared_memory.SharedMemory`, its name sent; Ray: one
                  `ray.put`, the reference sent). Then the reply direction: a small call
                  answered with the actor's own 64 MiB array (`reply_p50_ms`), and the array
                  sent and returned as it arrived (`both_p50_ms`), the caller checking it.
          thru  - message throughput in MB/s: `thru_small_n` casts of 1 KiB `bytes`, then
                  `thru_big_n` casts of 1 MiB, one sender to one receiver in another process,
                  timed until the receiver has counted them all.
          fan   - fan-out 1 → N (one sender, `fan_n` receivers, `fan_m` casts to each) and
                  fan-in N → 1 (`fan_n` senders, `fan_m` casts each, one receiver): msgs/s
                  from the first send until every message is counted.
          busy  - call round trip p50 (µs) from the main process to an actor while 2 × cores
                  actors (mp: processes) spin pure-Python loops; `busy_n` calls.

Prints one `BENCH_JSON {...}` line per workload, as the other workload scripts do.
"""

import os
import sys
import threading
import time

from common import emit, opt, pct, wait_workers_ready  # noqa: E402  (beside this script)

MIB = 1 << 20
SMALL, BIG = 1024, MIB  # the two message sizes of `thru`
WORKERS = 2
SPIN_SLICE_S = 0.05  # one slice of a busy rebeam actor's loop (see Sink.spin)


def array_mib():
    return opt("array_mib", 64)


def make_array(out=None):
    """The payload: float64 counting up, so a receiver can check its first and last element."""
    import numpy as np

    n = array_mib() * MIB // 8
    a = np.arange(n, dtype=np.float64) if out is None else out
    if out is not None:
        a[:] = np.arange(n, dtype=np.float64)
    return a


def looks_right(shape, first, last):
    n = array_mib() * MIB // 8
    return tuple(shape) == (n,) and first == 0.0 and last == float(n - 1)


def summary(arr):
    """The receiver's small reply: enough to show the array arrived whole, without reading it all."""
    return (tuple(arr.shape), float(arr[0]), float(arr[-1]))


def ms_stats(samples_ns, **extra):
    s = sorted(samples_ns)
    return {"reps": len(s), "p50_ms": pct(s, 50) / 1000.0, "min_ms": s[0] / 1e6, "max_ms": s[-1] / 1e6, **extra}


def timed(reps, one):
    """Runs `one()` once to warm up, then `reps` times; nanoseconds per run."""
    one()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        one()
        out.append(time.perf_counter_ns() - t0)
    return out


def thru_result(small_s, n_small, big_s, n_big):
    return {
        "workload": "thru",
        "small_n": n_small,
        "small_mb_per_s": n_small * SMALL / small_s / 1e6,
        "small_msgs_per_s": n_small / small_s,
        "big_n": n_big,
        "big_mb_per_s": n_big * BIG / big_s / 1e6,
        "big_msgs_per_s": n_big / big_s,
    }


def fan_result(n, m, out_s, in_s, **extra):
    return {
        "workload": "fan",
        "n": n,
        "m": m,
        "out_msgs_per_s": n * m / out_s,
        "in_msgs_per_s": n * m / in_s,
        **extra,
    }


def spin(seconds):
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1
    return x


def busy_actors():
    return 2 * (os.cpu_count() or 1)


# --- rebeam ----------------------------------------------------------------------------------


try:  # the actors must live at module level, where rebeam's workers import them from
    import rebeam
    from rebeam import GenPy, Supervisor, call, cast, receive, response_ok, start
except ImportError:  # a peer's run without rebeam installed
    rebeam = None
    GenPy = object

    def receive(_tag):
        return lambda f: f

    def start():
        return lambda f: f


def check(reply, what):
    status, value = reply
    if status != "ok":
        raise RuntimeError(f"{what} failed: {value!r}")
    return value


class Sink(GenPy):
    """Counts what it is sent; answers arrays with a summary; spins on request."""

    def __init__(self, name):
        self.name = name

    @start()
    def init(self):
        self.state["n"] = 0
        self.state["nbytes"] = 0

    @receive("array")
    def array(self, source, arr):
        return response_ok(summary(arr))

    @receive("give")
    def give(self, source, _):
        if "arr" not in self.state:  # made once: the row times the reply, not the making
            self.state["arr"] = make_array()
        return response_ok(self.state["arr"])

    @receive("back")
    def back(self, source, arr):
        return response_ok(arr)

    @receive("msg")
    def msg(self, source, payload):
        self.state["n"] += 1
        self.state["nbytes"] += len(payload)

    @receive("total")
    def total(self, source, _):
        return response_ok((self.state["n"], self.state["nbytes"]))

    @receive("ping")
    def ping(self, source, x):
        return response_ok(x)

    @receive("pid")
    def pid(self, source, _):
        return response_ok(os.getpid())

    # Busy for as long as it is told: slices of SPIN_SLICE_S, each casting the next to itself, so
    # a "stop" in the mailbox ends it at the next slice and the run ends cleanly.
    @receive("spin")
    def spin(self, source, _):
        if not self.state.get("stop"):
            spin(SPIN_SLICE_S)
            self.state["slices"] = self.state.get("slices", 0) + 1
            cast(self.name, "spin", None)

    @receive("stop")
    def stop(self, source, _):
        self.state["stop"] = True

    @receive("slices")
    def slices(self, source, _):
        return response_ok(self.state.get("slices", 0))


class Sender(GenPy):
    """Casts `m` small messages to each of `targets` in turn, then waits until all are counted."""

    def __init__(self, name):
        self.name = name

    @receive("send")
    def send(self, source, job):
        targets, m = job
        t0 = time.perf_counter_ns()
        for _ in range(m):
            for t in targets:
                cast(t, "msg", b"x")
        for t in targets:  # FIFO per pair: this call is answered after that pair's casts
            check(call(t, "total", None, 120.0), "total")
        return response_ok(time.perf_counter_ns() - t0)

    @receive("pid")
    def pid(self, source, _):
        return response_ok(os.getpid())


def rebeam_main(workload):
    def w_array():
        reps = opt("array_reps", 10)
        Supervisor(modules=[Sink("sink")])
        pid = check(call("sink", "pid"), "pid")
        arr = make_array()

        def one(a):
            def go():
                got = check(call("sink", "array", a, 60.0), "array")
                assert looks_right(*got), got

            return go

        out = ms_stats(timed(reps, one(arr)), sink_pid=pid, main_pid=os.getpid())
        if hasattr(rebeam, "shared_array"):
            shared = rebeam.shared_array(arr.shape, arr.dtype)
            make_array(out=shared)
            s = ms_stats(timed(reps, one(shared)))
            out["shared_p50_ms"], out["shared_min_ms"] = s["p50_ms"], s["min_ms"]
        else:
            out["not_measured"] = {"array_shared": "no rebeam.shared_array yet"}
        check(call("sink", "give", None, 60.0), "give")

        def reply(what, a):
            def go():
                assert looks_right(*summary(check(call("sink", what, a, 60.0), what)))

            return go

        r = ms_stats(timed(reps, reply("give", None)))
        out["reply_p50_ms"], out["reply_min_ms"] = r["p50_ms"], r["min_ms"]
        b = ms_stats(timed(reps, reply("back", arr)))
        out["both_p50_ms"], out["both_min_ms"] = b["p50_ms"], b["min_ms"]
        return out

    def w_thru():
        n_small, n_big = opt("thru_small_n", 20000), opt("thru_big_n", 300)
        Supervisor(modules=[Sink("sink")])
        check(call("sink", "pid"), "pid")

        def burst(n, size):
            payload = b"x" * size
            before = check(call("sink", "total"), "total")[0]
            t0 = time.perf_counter()
            for _ in range(n):
                cast("sink", "msg", payload)
            got = check(call("sink", "total", None, 300.0), "total")[0] - before
            if got != n:
                raise RuntimeError(f"{n - got} of {n} casts lost")
            return time.perf_counter() - t0

        burst(n_small // 10, SMALL)  # warm up
        return thru_result(burst(n_small, SMALL), n_small, burst(n_big, BIG), n_big)

    def w_fan():
        n, m = opt("fan_n", 4), opt("fan_m", 5000)
        sinks = [f"s{i}" for i in range(n)]
        senders = [f"d{i}" for i in range(n)]
        Supervisor(modules=[Sink(s) for s in sinks] + [Sink("sink")] + [Sender(d) for d in senders])
        pids = {x: check(call(x, "pid"), "pid") for x in sinks + senders + ["sink"]}
        check(call("d0", "send", (sinks, m // 10), 120.0), "warm-up")
        out_s = check(call("d0", "send", (sinks, m), 300.0), "fan-out") / 1e9
        # Fan-in: every sender at once, from threads of this process; timed until the sink has
        # counted every message (a sender's own call returns once its casts were counted).
        base = check(call("sink", "total"), "total")[0]
        t0 = time.perf_counter()

        def drive(d):
            check(call(d, "send", (["sink"], m), 300.0), d)

        threads = [threading.Thread(target=drive, args=(d,)) for d in senders]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = check(call("sink", "total"), "total")[0] - base
        in_s = time.perf_counter() - t0
        if got != n * m:
            raise RuntimeError(f"fan-in: {n * m - got} of {n * m} casts lost")
        return fan_result(n, m, out_s, in_s, processes=len(set(pids.values())))

    def w_busy():
        n, k = opt("busy_n", 2000), busy_actors()
        spinners = [f"busy{i}" for i in range(k)]
        Supervisor(modules=[Sink("echo")] + [Sink(s) for s in spinners])
        pids = {x: check(call(x, "pid"), "pid") for x in ["echo"] + spinners}
        for i in range(200):
            check(call("echo", "ping", i), "warm-up")
        for x in spinners:
            cast(x, "spin", None)
        time.sleep(0.2)  # every spinner has started
        samples = []
        for i in range(n):
            t0 = time.perf_counter_ns()
            check(call("echo", "ping", i, 60.0), "ping")
            samples.append(time.perf_counter_ns() - t0)
        spun = []
        for x in spinners:
            cast(x, "stop", None)
            spun.append(check(call(x, "slices", None, 60.0), "slices"))
        s = sorted(samples)
        return {
            "workload": "busy",
            "n": n,
            "busy_actors": k,
            "p50_us": pct(s, 50),
            "p99_us": pct(s, 99),
            "slices_spun": spun,
            "spinners_beside_echo": sum(1 for x in spinners if pids[x] == pids["echo"]),
        }

    wait_workers_ready()
    code = 0
    try:
        result = {"array": w_array, "thru": w_thru, "fan": w_fan, "busy": w_busy}[workload]()
        result["workload"] = workload
        emit(result)
    except Exception as e:  # report, don't hang
        import traceback

        traceback.print_exc()
        emit({"workload": workload, "error": f"{type(e).__name__}: {e}"})
        code = 1
    rebeam.shutdown(code)


# --- multiprocessing -------------------------------------------------------------------------


def _mp_sink(conn):
    """Answers arrays (pickled, or by shared-memory name) with a summary; counts messages."""
    import numpy as np
    from multiprocessing import resource_tracker, shared_memory

    n, kept = 0, None
    while True:
        kind, body = conn.recv()
        if kind == "array":
            conn.send(summary(body))
        elif kind == "shm":
            name, shape = body
            shm = shared_memory.SharedMemory(name=name)
            # Attaching registers the segment with the (shared) resource tracker too (before
            # Python 3.13), which would then warn of a leak the creator's unlink already ended.
            resource_tracker.unregister(shm._name, "shared_memory")
            arr = np.ndarray(shape, dtype=np.float64, buffer=shm.buf)
            conn.send(summary(arr))
            del arr
            shm.close()
        elif kind == "give":  # the sink's own array (made once), or the one sent, back
            if body is None and kept is None:
                kept = make_array()
            conn.send(kept if body is None else body)
        elif kind == "bytes":
            m = body
            for _ in range(m):
                n += len(conn.recv_bytes())
            conn.send(n)
        elif kind == "ping":
            conn.send(body)
        else:
            return


def _mp_counter(conn):
    n = 0
    while True:
        m = conn.recv()
        if m == "count":
            conn.send(n)
        elif m is None:
            return
        else:
            n += 1


def _mp_sender(conn, m):
    conn.recv()  # the start signal
    for _ in range(m):
        conn.send(b"x")
    conn.send("done")


def _mp_spin(seconds):
    spin(seconds)


def mp_main(workload):
    import multiprocessing as mp
    from multiprocessing.connection import wait

    def sink():
        a, b = mp.Pipe()
        p = mp.Process(target=_mp_sink, args=(b,))
        p.start()
        return a, p

    def stop(a, p):
        a.send(("stop", None))
        p.join(5)

    if workload == "array":
        from multiprocessing import shared_memory

        import numpy as np

        reps = opt("array_reps", 10)
        a, p = sink()
        arr = make_array()

        def piped():
            a.send(("array", arr))
            assert looks_right(*a.recv())

        out = ms_stats(timed(reps, piped), start_method=mp.get_start_method())
        shm = shared_memory.SharedMemory(create=True, size=arr.nbytes)
        shared = make_array(out=np.ndarray(arr.shape, dtype=arr.dtype, buffer=shm.buf))

        def by_name():
            a.send(("shm", (shm.name, shared.shape)))
            assert looks_right(*a.recv())

        s = ms_stats(timed(reps, by_name))
        out["shared_p50_ms"], out["shared_min_ms"] = s["p50_ms"], s["min_ms"]
        del shared
        shm.close()
        shm.unlink()

        def reply(x):
            def go():
                a.send(("give", x))
                assert looks_right(*summary(a.recv()))

            return go

        a.send(("give", None))
        a.recv()
        r = ms_stats(timed(reps, reply(None)))
        out["reply_p50_ms"], out["reply_min_ms"] = r["p50_ms"], r["min_ms"]
        b = ms_stats(timed(reps, reply(arr)))
        out["both_p50_ms"], out["both_min_ms"] = b["p50_ms"], b["min_ms"]
        stop(a, p)
    elif workload == "thru":
        n_small, n_big = opt("thru_small_n", 20000), opt("thru_big_n", 300)
        a, p = sink()

        def burst(n, size):
            payload = b"x" * size
            t0 = time.perf_counter()
            a.send(("bytes", n))
            for _ in range(n):
                a.send_bytes(payload)
            a.recv()
            return time.perf_counter() - t0

        burst(n_small // 10, SMALL)
        out = thru_result(burst(n_small, SMALL), n_small, burst(n_big, BIG), n_big)
        stop(a, p)
    elif workload == "fan":
        n, m = opt("fan_n", 4), opt("fan_m", 5000)
        pipes = [mp.Pipe() for _ in range(n)]
        procs = [mp.Process(target=_mp_counter, args=(b,)) for _, b in pipes]
        for q in procs:
            q.start()
        t0 = time.perf_counter()
        for _ in range(m):
            for a, _ in pipes:
                a.send(b"x")
        for a, _ in pipes:
            a.send("count")
        assert sum(a.recv() for a, _ in pipes) == n * m
        out_s = time.perf_counter() - t0
        for a, _ in pipes:
            a.send(None)
        for q in procs:
            q.join(5)
        # Fan-in: this process is the receiver, reading every sender's pipe as it is ready.
        pipes = [mp.Pipe() for _ in range(n)]
        procs = [mp.Process(target=_mp_sender, args=(b, m)) for _, b in pipes]
        for q in procs:
            q.start()
        t0 = time.perf_counter()
        for a, _ in pipes:
            a.send("go")
        got, open_ = 0, [a for a, _ in pipes]
        while open_:
            for c in wait(open_):
                if c.recv() == "done":
                    open_.remove(c)
                else:
                    got += 1
        in_s = time.perf_counter() - t0
        assert got == n * m
        for q in procs:
            q.join(5)
        out = fan_result(n, m, out_s, in_s)
    elif workload == "busy":
        n, k, seconds = opt("busy_n", 2000), busy_actors(), opt("busy_seconds", 120.0)
        a, p = sink()
        for i in range(200):
            a.send(("ping", i))
            a.recv()
        spinners = [mp.Process(target=_mp_spin, args=(seconds,)) for _ in range(k)]
        for q in spinners:
            q.start()
        time.sleep(0.2)
        samples = []
        for i in range(n):
            t0 = time.perf_counter_ns()
            a.send(("ping", i))
            a.recv()
            samples.append(time.perf_counter_ns() - t0)
        still_busy = all(q.is_alive() for q in spinners)
        for q in spinners:
            q.terminate()
            q.join(5)
        stop(a, p)
        s = sorted(samples)
        out = {
            "n": n,
            "busy_actors": k,
            "p50_us": pct(s, 50),
            "p99_us": pct(s, 99),
            "spinners_still_busy_at_end": still_busy,
        }
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    out["workload"] = workload
    emit(out)


# --- Ray -------------------------------------------------------------------------------------


def ray_main(workloads):
    import ray

    ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False, logging_level="ERROR")

    @ray.remote(num_cpus=0)
    class Sink:
        def __init__(self):
            self.n = 0
            self.kept = None

        def array(self, arr):
            return summary(arr)

        def give(self, arr=None):
            if arr is None and self.kept is None:
                self.kept = make_array()
            return self.kept if arr is None else arr

        def msg(self, payload):
            self.n += 1

        def total(self):
            return self.n

        def ping(self, x):
            return x

        def spin(self, seconds):
            return spin(seconds)

    @ray.remote(num_cpus=0)
    class Sender:
        def send(self, targets, m):
            t0 = time.perf_counter_ns()
            for _ in range(m):
                for t in targets:
                    t.msg.remote(b"x")
            ray.get([t.total.remote() for t in targets])  # actor calls are ordered per caller
            return time.perf_counter_ns() - t0

    def w_array():
        reps = opt("array_reps", 10)
        s = Sink.remote()
        arr = make_array()

        def one(x):
            def go():
                assert looks_right(*ray.get(s.array.remote(x)))

            return go

        out = ms_stats(timed(reps, one(arr)))
        ref = ray.put(arr)
        r = ms_stats(timed(reps, one(ref)))
        out["shared_p50_ms"], out["shared_min_ms"] = r["p50_ms"], r["min_ms"]

        def reply(x):
            def go():
                assert looks_right(*summary(ray.get(s.give.remote(x))))

            return go

        ray.get(s.give.remote())
        r = ms_stats(timed(reps, reply(None)))
        out["reply_p50_ms"], out["reply_min_ms"] = r["p50_ms"], r["min_ms"]
        b = ms_stats(timed(reps, reply(arr)))
        out["both_p50_ms"], out["both_min_ms"] = b["p50_ms"], b["min_ms"]
        return out

    def w_thru():
        n_small, n_big = opt("thru_small_n", 20000), opt("thru_big_n", 300)
        s = Sink.remote()
        ray.get(s.total.remote())

        def burst(n, size):
            payload = b"x" * size
            before = ray.get(s.total.remote())
            t0 = time.perf_counter()
            for _ in range(n):
                s.msg.remote(payload)
            assert ray.get(s.total.remote()) - before == n
            return time.perf_counter() - t0

        burst(max(1, n_small // 10), SMALL)
        return thru_result(burst(n_small, SMALL), n_small, burst(n_big, BIG), n_big)

    def w_fan():
        n, m = opt("fan_n", 4), opt("fan_m", 5000)
        sinks = [Sink.remote() for _ in range(n)]
        senders = [Sender.remote() for _ in range(n)]
        ray.get(senders[0].send.remote(sinks, max(1, m // 10)))
        out_s = ray.get(senders[0].send.remote(sinks, m)) / 1e9
        one = Sink.remote()
        base = ray.get(one.total.remote())
        t0 = time.perf_counter()
        ray.get([d.send.remote([one], m) for d in senders])
        got = ray.get(one.total.remote()) - base
        in_s = time.perf_counter() - t0
        assert got == n * m
        return fan_result(n, m, out_s, in_s)

    def w_busy():
        n, k, seconds = opt("busy_n", 2000), busy_actors(), opt("busy_seconds", 120.0)
        echo = Sink.remote()
        for i in range(200):
            ray.get(echo.ping.remote(i))
        spinners = [Sink.remote() for _ in range(k)]
        ray.get([x.ping.remote(0) for x in spinners])
        pending = [x.spin.remote(seconds) for x in spinners]
        time.sleep(0.2)
        samples = []
        for i in range(n):
            t0 = time.perf_counter_ns()
            ray.get(echo.ping.remote(i))
            samples.append(time.perf_counter_ns() - t0)
        still_busy = not ray.wait(pending, timeout=0)[0]
        for x in spinners:
            ray.kill(x)
        s = sorted(samples)
        return {
            "n": n,
            "busy_actors": k,
            "p50_us": pct(s, 50),
            "p99_us": pct(s, 99),
            "spinners_still_busy_at_end": still_busy,
        }

    table = {"array": w_array, "thru": w_thru, "fan": w_fan, "busy": w_busy}
    for w in workloads:
        try:
            r = table[w]()
        except Exception as e:
            import traceback

            traceback.print_exc()
            r = {"error": f"{type(e).__name__}: {e}"}
        r["workload"] = w
        emit(r)
    ray.shutdown()


ALL = ("array", "thru", "fan", "busy")

if __name__ == "__main__":
    system, workload = sys.argv[1], sys.argv[2]
    if system == "rebeam":
        rebeam_main(workload)
    elif system == "mp":
        mp_main(workload)
    elif system == "ray":
        ray_main([a for a in sys.argv[2:] if "=" not in a and a != "all"] or list(ALL))
    else:
        raise SystemExit(f"unknown system {system!r}")
