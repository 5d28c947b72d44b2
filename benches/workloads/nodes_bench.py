"""Cross-node calls: `rebeam --node a … nodes_bench.py host` serves an Echo actor on node a;
`rebeam --node b … nodes_bench.py caller [key=value ...]` times calls by name from b's main
process to it (b's governor → Zenoh query → a's governor → a's worker, and back), then the same
calls to an Echo on b itself, and prints one `BENCH_JSON` line. Sizes: node_n, node_warm.
"""

import sys
import time

import rebeam
from rebeam import GenPy, Supervisor, call, receive, response_ok

from common import emit, opt, pct  # noqa: E402  (beside this script)

ROLE = sys.argv[1] if len(sys.argv) > 1 else "caller"


class Echo(GenPy):
    def __init__(self, name):
        self.name = name

    @receive("ping")
    def ping(self, source, message):
        return response_ok(message)


def timed(target, n):
    samples = []
    for i in range(n):
        t = time.perf_counter_ns()
        status, value = call(target, "ping", i)
        samples.append(time.perf_counter_ns() - t)
        if status != "ok":
            raise RuntimeError(f"call {i} to {target} failed: {value!r}")
    return sorted(samples)


def caller():
    n, warm = opt("node_n", 5000), opt("node_warm", 500)
    Supervisor(modules=[Echo("local_echo")])
    end = time.monotonic() + 30
    while "a" not in rebeam.nodes():
        if time.monotonic() > end:
            raise RuntimeError(f"node a never came up: {rebeam.nodes()}")
        time.sleep(0.01)
    timed("remote_echo", warm)
    remote = timed("remote_echo", n)
    timed("local_echo", warm)
    local = timed("local_echo", n)
    emit({
        "n": n,
        "p50_us": pct(remote, 50),
        "p99_us": pct(remote, 99),
        "same_node_p50_us": pct(local, 50),
        "same_node_p99_us": pct(local, 99),
        "nodes": rebeam.nodes(),
        "workload": "nodes",
    })
    rebeam.shutdown()


if __name__ == "__main__":
    if ROLE == "host":
        Supervisor(modules=[Echo("remote_echo")])
        print("HOST READY", flush=True)
    else:
        caller()
