"""Node loss → callers answered → child serving again on another node. Three nodes on loopback
run this script: `… --node c … failover_bench.py idle`, the same for b, and node a runs
`failover_bench.py supervisor KILLED_FILE [key=value ...]`: a supervisor on a whose child "svc"
runs on b (allowed on b or c), and `failover_callers` threads on a calling it by name back to
back. Once every caller has been served by b, a prints LOADED; the driver SIGKILLs the whole of
node b and writes the wall-clock time it did so into KILLED_FILE. a then times, from that moment,
the last call in flight at the kill to be answered (ActorDown or NoProcess, or ok), and the first
call served again, by c, and prints one `BENCH_JSON` line.
"""

import os
import sys
import threading
import time

import rebeam
from rebeam import GenPy, Supervisor, call, child, receive

from common import emit, opt  # noqa: E402  (beside this script)

ROLE = sys.argv[1] if len(sys.argv) > 1 else "idle"
#: A call waits this long at most: far longer than a node's loss takes to be noticed.
CALL_TIMEOUT = 10.0
#: How long each phase (loaded, killed, served again) may take before the run gives up.
PHASE_LIMIT = 60.0


class Svc(GenPy):
    def __init__(self, name):
        self.name = name

    @receive("where")
    def where(self, source, _):
        return os.environ.get("REBEAM_NODE")


def wait_for(predicate, what):
    end = time.monotonic() + PHASE_LIMIT
    while not predicate():
        if time.monotonic() > end:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.005)


def supervisor(killed_file):
    callers, served_again = opt("failover_callers", 3), opt("failover_served", 20)
    wait_for(lambda: {"a", "b", "c"} <= set(rebeam.nodes()), f"nodes a, b and c (up: {rebeam.nodes()})")
    Supervisor(modules=[child(Svc("svc"), node=["b", "c"])], max_restarts=5)
    calls, lock, stop = [], threading.Lock(), threading.Event()

    def caller(i):
        while not stop.is_set():
            t0 = time.time()
            status, value = call("svc", "where", timeout=CALL_TIMEOUT)
            t1 = time.time()
            with lock:
                calls.append((i, t0, t1, value if status == "ok" else type(value).__name__))
            if status != "ok":
                time.sleep(0.001)

    def served(node, since=0.0):
        with lock:
            return min(sum(1 for c in calls if c[0] == i and c[3] == node and c[1] > since) for i in range(callers))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: served("b") >= served_again, "every caller served by b")
        print("LOADED", flush=True)
        wait_for(lambda: os.path.exists(killed_file) and os.path.getsize(killed_file) > 0, "the kill")
        killed = float(open(killed_file).read())
        wait_for(lambda: served("c", killed) >= served_again, "every caller served by c")
    finally:
        stop.set()
        for t in threads:
            t.join()
    in_flight = [t1 for _, t0, t1, _ in calls if t0 <= killed <= t1]
    first_c = min(t1 for _, _, t1, node in calls if node == "c")
    kinds = sorted({kind for *_, kind in calls if kind not in ("b", "c")})
    emit({
        "answered_ms": (max(in_flight) - killed) * 1000 if in_flight else 0.0,
        "serving_ms": (first_c - killed) * 1000,
        "in_flight": len(in_flight),
        "calls": len(calls),
        "errors": {k: sum(1 for *_, kind in calls if kind == k) for k in kinds},
        "workload": "failover",
    })
    rebeam.shutdown()


if __name__ == "__main__":
    if ROLE == "supervisor":
        supervisor(sys.argv[2])
    else:
        print("IDLE READY", flush=True)
        while True:
            time.sleep(60)
