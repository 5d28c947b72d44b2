"""What every workload script shares: options, percentiles, RSS, the result line, worker readiness."""

import json
import os
import sys
import time

# `key=value` arguments after the workload name (and, for peers, the system name).
OPTS = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)


def opt(key, default):
    return type(default)(float(OPTS[key])) if key in OPTS else default


def pct(sorted_ns, p):
    """p-th percentile (nearest rank) of a sorted list of nanoseconds, in microseconds."""
    k = min(len(sorted_ns) - 1, max(0, int(round(p / 100.0 * len(sorted_ns))) - 1))
    return sorted_ns[k] / 1000.0


def emit(result):
    print("BENCH_JSON " + json.dumps(result), flush=True)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


# Placement happens only on workers that are ready when an actor starts, and the main script
# starts at the same time as the workers: a Supervisor built at once can land every actor on the
# first worker that is ready. So before placing actors the main process waits until every worker
# process (children of the governor running rebeam._worker) holds its connection to the
# governor (a socket fd), plus a short grace for its Ready to be processed.
def children(pid):
    kids = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


def _is_worker(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"rebeam._worker" in f.read() and not is_zygote(pid)
    except OSError:
        return False


def is_zygote(pid):
    """The process that forks rebeam's workers (it names itself so; it hosts no actor)."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == "rebeam-zygote"
    except OSError:
        return False


def memory_kb(pid):
    """RSS, PSS and USS (private clean + dirty) in KiB: a forked worker shares pages with the
    zygote, which RSS counts in full for each process, PSS shares out, and USS leaves out."""
    found = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                    found[key] = int(rest.split()[0])
    except OSError:
        return None
    return {"rss": found.get("Rss"), "pss": found.get("Pss"),
            "uss": found.get("Private_Clean", 0) + found.get("Private_Dirty", 0)}


def _connected(pid):
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:") for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def wait_workers_ready(timeout=10.0, grace=0.05):
    """Waits until BENCH_EXPECT_WORKERS worker processes (pool + spare) are connected; seconds waited."""
    expect = int(os.environ.get("BENCH_EXPECT_WORKERS", "0"))
    t0 = time.perf_counter()
    if not expect:
        return None
    governor = os.getppid()
    while time.perf_counter() - t0 < timeout:
        workers = [p for p in children(governor) if _is_worker(p)]
        if len([p for p in workers if _connected(p)]) >= expect:
            break
        time.sleep(0.002)
    time.sleep(grace)
    return time.perf_counter() - t0
