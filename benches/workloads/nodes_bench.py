"""Cross-node calls: `rebeam --node a … nodes_bench.py host` serves an Echo actor on node a;
`rebeam --node b … nodes_bench.py caller [key=value ...]` times calls by name from b's main
process to it (b's governor → Zenoh query → a's governor → a's worker, and back), then the same
calls to an Echo on b itself, by its direct channel and then by the governor's path (a group of
one: a group's name never gets a direct channel, so each call goes main → b's governor → the
worker and back, the hops a cross-node call has on each side); then casts from b's main process
to each Echo, `node_cast_n` a
rep, timed to the answer of a call sent after them (casts and calls from one sender to one actor
stay in order, across nodes too), the median of `node_cast_reps`; and prints one `BENCH_JSON`
line. Sizes: node_n, node_warm, node_cast_n, node_cast_reps.

`rebeam … nodes_bench.py governor_path` calls such a group by its name until stopped (for
`benches/profile_nodes.py`).
"""

import sys
import time

import rebeam
from rebeam import GenPy, Group, Supervisor, call, cast, receive, response_ok

from common import emit, opt, pct  # noqa: E402  (beside this script)

ROLE = sys.argv[1] if len(sys.argv) > 1 else "caller"


class Echo(GenPy):
    def __init__(self, name=None):
        self.name = name
        self.casts = 0

    @receive("ping")
    def ping(self, source, message):
        return response_ok(message)

    @receive("inc")
    def inc(self, source, message):
        self.casts += 1

    @receive("count")
    def count(self, source, message):
        n, self.casts = self.casts, 0
        return response_ok(n)


def timed(target, n):
    samples = []
    for i in range(n):
        t = time.perf_counter_ns()
        status, value = call(target, "ping", i)
        samples.append(time.perf_counter_ns() - t)
        if status != "ok":
            raise RuntimeError(f"call {i} to {target} failed: {value!r}")
    return sorted(samples)


def cast_rate(target, n, reps):
    """Casts a second (the median of `reps`) and how many of all were lost."""
    rates, lost = [], 0
    for _ in range(reps):
        t = time.perf_counter_ns()
        for i in range(n):
            cast(target, "inc", i)
        status, got = call(target, "count", None, 300.0)
        ns = time.perf_counter_ns() - t
        if status != "ok":
            raise RuntimeError(f"counting the casts to {target} failed: {got!r}")
        lost += n - got
        rates.append(n / (ns / 1e9))
    return sorted(rates)[len(rates) // 2], lost


def caller():
    n, warm = opt("node_n", 5000), opt("node_warm", 500)
    Supervisor(modules=[Echo("local_echo"), Group(Echo(), 1, "local_group")])
    end = time.monotonic() + 30
    while "a" not in rebeam.nodes():
        if time.monotonic() > end:
            raise RuntimeError(f"node a never came up: {rebeam.nodes()}")
        time.sleep(0.01)
    timed("remote_echo", warm)
    remote = timed("remote_echo", n)
    timed("local_echo", warm)
    local = timed("local_echo", n)
    timed("local_group", warm)
    governed = timed("local_group", n)
    cast_n, cast_reps = opt("node_cast_n", 5000), opt("node_cast_reps", 3)
    cast_rate("remote_echo", cast_n // 4, 1)
    remote_casts, remote_lost = cast_rate("remote_echo", cast_n, cast_reps)
    cast_rate("local_echo", cast_n // 4, 1)
    local_casts, local_lost = cast_rate("local_echo", cast_n, cast_reps)
    emit({
        "n": n,
        "p50_us": pct(remote, 50),
        "p99_us": pct(remote, 99),
        "same_node_p50_us": pct(local, 50),
        "same_node_p99_us": pct(local, 99),
        "same_node_governor_p50_us": pct(governed, 50),
        "same_node_governor_p99_us": pct(governed, 99),
        "cast_n": cast_n,
        "casts_per_s": remote_casts,
        "casts_lost": remote_lost,
        "same_node_casts_per_s": local_casts,
        "same_node_casts_lost": local_lost,
        "nodes": rebeam.nodes(),
        "workload": "nodes",
    })
    rebeam.shutdown()


if __name__ == "__main__":
    if ROLE == "host":
        Supervisor(modules=[Echo("remote_echo")])
        print("HOST READY", flush=True)
    elif ROLE == "governor_path":
        Supervisor(modules=[Group(Echo(), 1, "local_group")])
        print("GOVERNOR PATH READY", flush=True)
        while True:
            call("local_group", "ping", 0)
    else:
        caller()
