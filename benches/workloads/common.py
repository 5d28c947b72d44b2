"""What every workload script shares: options, percentiles, RSS, and the result line."""

import json
import sys

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
