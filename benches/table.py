"""The comparison tables: which rows there are, how each cell and ratio is read off the
results, and the markdown they print as (used by bench.py)."""

from __future__ import annotations

PEERS = ["mp", "pykka", "ray"]
BOC_PEERS = ["bocpy"]
LABEL = {
    "rebeam": "rebeam",
    "mp": "mp (Pipe/Pool)",
    "pykka": "Pykka",
    "ray": "Ray",
    "bocpy": "bocpy",
    "pyo3": "in-process PyO3",
    "py2py": "Python→Python (rebeam)",
}


def g(d: dict, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def node_vs_parts(nodes: dict | None) -> float | None:
    """A cross-node call's p50 over the parts it is made of, each measured in the same run:
    Zenoh's own query (the link) plus a call by the governor's path within one node (the
    hops a cross-node call has on its two sides, main -> governor and governor -> worker)."""
    parts = [g(nodes or {}, *path) for path in (("p50_us",), ("zenoh", "p50_us"), ("same_node_governor_p50_us",))]
    if any(not isinstance(x, (int, float)) for x in parts) or parts[1] + parts[2] <= 0:
        return None
    return parts[0] / (parts[1] + parts[2])


ROWS = [
    # key, measure, unit, lower_is_better, getter, target, format
    (
        "call_p50",
        "1. call round trip p50, actor→actor across processes",
        "µs",
        True,
        lambda s: g(s, "call", "p50_us"),
        "≤ 15 µs",
        "{:.1f}",
    ),
    ("call_p99", "1. call round trip p99", "µs", True, lambda s: g(s, "call", "p99_us"), "—", "{:.1f}"),
    (
        "cast_rate",
        "2. cast throughput, 1 sender → 1 actor in another process",
        "msgs/s",
        False,
        lambda s: g(s, "cast", "msgs_per_s"),
        "≥ 500k/s",
        "{:,.0f}",
    ),
    (
        "cpu_time2",
        "3. CPU job (4 chunks) on 2 workers, best of reps",
        "s",
        True,
        lambda s: g(s, "cpu", "seconds_2"),
        "—",
        "{:.3f}",
    ),
    (
        "cpu_speedup",
        "3. CPU speedup, 2 workers vs 1 (best of reps)",
        "×",
        False,
        lambda s: g(s, "cpu", "speedup"),
        "≥ 1.85×",
        "{:.2f}",
    ),
    (
        "hello",
        "4. start to first reply (whole command, wall)",
        "ms",
        True,
        lambda s: g(s, "hello", "median_ms"),
        "≤ 150 ms",
        "{:.0f}",
    ),
    (
        "hello_reply",
        "4. launch to first reply (shutdown excluded)",
        "ms",
        True,
        lambda s: g(s, "hello", "to_reply_median_ms"),
        "—",
        "{:.0f}",
    ),
    (
        "crash_raise",
        "5. crash → serving again (handler raises)",
        "ms",
        True,
        lambda s: g(s, "crash", "raise", "median_ms"),
        "≤ 50 ms",
        "{:.2f}",
    ),
    (
        "crash_exit",
        "5. crash → serving again (os._exit, worker dies)",
        "ms",
        True,
        lambda s: g(s, "crash", "exit", "median_ms"),
        "≤ 50 ms",
        "{:.2f}",
    ),
    ("rss", "6. idle worker RSS", "MB", True, lambda s: g(s, "rss", "mean_worker_rss_mb"), "≤ 20 MB", "{:.1f}"),
    (
        "disarm_loop",
        "7. disarm → pure-Python loop stopped (caller gets SafetyError)",
        "ms",
        True,
        lambda s: g(s, "safety", "loop_error_median_ms"),
        "≤ 20 ms",
        "{:.2f}",
    ),
    (
        "disarm_loop_landed",
        "7. disarm → SafetyInterrupt lands in the loop (worker)",
        "ms",
        True,
        lambda s: g(s, "safety", "loop_stopped_median_ms"),
        "—",
        "{:.2f}",
    ),
    (
        "disarm_kill",
        "7. disarm → worker stuck in C (time.sleep) killed, pid gone",
        "ms",
        True,
        lambda s: g(s, "safety", "kill_gone_median_ms"),
        "≤ grace + 20 ms (220)",
        "{:.1f}",
    ),
    (
        "exec_small",
        "10. Executor.map over 10,000 small tasks (mp: ProcessPoolExecutor; Ray: tasks), 2 workers",
        "tasks/s",
        False,
        lambda s: g(s, "exec", "small_tasks_per_s"),
        "—",
        "{:,.0f}",
    ),
    (
        "exec_cpu",
        "10. Executor.map over 64 CPU-bound tasks, 2 workers",
        "s",
        True,
        lambda s: g(s, "exec", "cpu_seconds"),
        "—",
        "{:.3f}",
    ),
    (
        "acall_rate",
        "11. 10,000 acalls in flight from one event loop (Ray: async actor calls)",
        "calls/s",
        False,
        lambda s: g(s, "acalls", "calls_per_s"),
        "—",
        "{:,.0f}",
    ),
    ("acall_p99", "11. 10,000 acalls in flight: p99 latency", "ms", True, lambda s: g(s, "acalls", "p99_ms"), "—",
     "{:.1f}"),
    (
        "array_call",
        "16. 64 MiB NumPy array in a call, small reply, p50 (mp: Pipe; Ray: the array as an argument)",
        "ms",
        True,
        lambda s: g(s, "array", "p50_ms"),
        "≤ 10 ms",
        "{:.1f}",
    ),
    (
        "array_shared",
        "16. the same, allocated in shared memory (rebeam.shared_array; mp: shared_memory by name; Ray: ray.put once)",
        "ms",
        True,
        lambda s: g(s, "array", "shared_p50_ms"),
        "≤ 1 ms",
        "{:.2f}",
    ),
    (
        "array_reply",
        "16. 64 MiB NumPy array in the reply to a small call, p50 (mp: Pipe; Ray: returned)",
        "ms",
        True,
        lambda s: g(s, "array", "reply_p50_ms"),
        "—",
        "{:.1f}",
    ),
    (
        "array_both",
        "16. 64 MiB NumPy array both ways (sent, and returned as it arrived), p50 (mp: Pipe; Ray: argument, returned)",
        "ms",
        True,
        lambda s: g(s, "array", "both_p50_ms"),
        "—",
        "{:.1f}",
    ),
    (
        "thru_1k",
        "17. message throughput, 1 KiB messages, 1 sender → 1 receiver",
        "MB/s",
        False,
        lambda s: g(s, "thru", "small_mb_per_s"),
        "—",
        "{:,.1f}",
    ),
    (
        "thru_1m",
        "17. message throughput, 1 MiB messages",
        "MB/s",
        False,
        lambda s: g(s, "thru", "big_mb_per_s"),
        "—",
        "{:,.0f}",
    ),
    ("fan_out", "18. fan-out 1 → 4, small casts", "msgs/s", False, lambda s: g(s, "fan", "out_msgs_per_s"), "—",
     "{:,.0f}"),
    ("fan_in", "18. fan-in 4 → 1, small casts", "msgs/s", False, lambda s: g(s, "fan", "in_msgs_per_s"), "—",
     "{:,.0f}"),
    (
        "busy_p50",
        "19. call round trip p50 while 2 × cores actors spin (main → actor)",
        "µs",
        True,
        lambda s: g(s, "busy", "p50_us"),
        "—",
        "{:.1f}",
    ),
    ("node_p50", "20. call by name to another node (loopback) p50", "µs", True, lambda s: g(s, "nodes", "p50_us"),
     "—", "{:.1f}"),
    ("node_p99", "20. call to another node p99", "µs", True, lambda s: g(s, "nodes", "p99_us"), "—", "{:.1f}"),
    ("node_zenoh_p50", "20. Zenoh's own query/reply p50, same run (the floor)", "µs", True,
     lambda s: g(s, "nodes", "zenoh", "p50_us"), "—", "{:.1f}"),
    ("node_same_p50", "20. the same call within one node, same run, p50", "µs", True,
     lambda s: g(s, "nodes", "same_node_p50_us"), "—", "{:.1f}"),
    ("node_same_gov_p50", "20. the same call within one node by the governor's path (a group's name), p50", "µs",
     True, lambda s: g(s, "nodes", "same_node_governor_p50_us"), "—", "{:.1f}"),
    ("node_vs_zenoh", "20. call to another node p50 / Zenoh's query p50", "×", True,
     lambda s: g(s, "nodes", "vs_zenoh_p50"), "≤ 1.2×", "{:.2f}"),
    ("node_vs_parts", "20. call to another node p50 / (Zenoh's query p50 + the governor's path p50)", "×", True,
     lambda s: node_vs_parts(g(s, "nodes")), "—", "{:.2f}"),
    ("node_casts", "20. casts to another node, 1 → 1 (main → actor, loopback)", "msgs/s", False,
     lambda s: g(s, "nodes", "casts_per_s"), "—", "{:,.0f}"),
    ("node_same_casts", "20. the same casts within one node, same run", "msgs/s", False,
     lambda s: g(s, "nodes", "same_node_casts_per_s"), "—", "{:,.0f}"),
    ("failover_answered", "21. node SIGKILLed → its callers answered (3 nodes, loopback, median)", "ms", True,
     lambda s: g(s, "failover", "answered_ms"), "—", "{:.1f}"),
    ("failover_serving", "21. node SIGKILLed → its child serving again on another node (median)", "ms", True,
     lambda s: g(s, "failover", "serving_ms"), "—", "{:.1f}"),
]

BOC_ROWS = [
    (
        "boc_rate",
        "8. trivial behaviours/s, scheduled in a loop until all have run (2 workers)",
        "behaviours/s",
        False,
        lambda s: g(s, "boc_trivial", "behaviours_per_s"),
        "≥ 100k/s",
        "{:,.0f}",
    ),
    (
        "boc_cpu_time1",
        "9. CPU-bound behaviours on independent cowns, 1 worker (best of reps)",
        "s",
        True,
        lambda s: g(s, "boc_cpu", "seconds_1"),
        "—",
        "{:.3f}",
    ),
    (
        "boc_cpu_time2",
        "9. CPU-bound behaviours on independent cowns, 2 workers (best of reps)",
        "s",
        True,
        lambda s: g(s, "boc_cpu", "seconds_2"),
        "—",
        "{:.3f}",
    ),
    (
        "boc_cpu_speedup",
        "9. CPU-bound speedup, 2 workers vs 1 (best of reps)",
        "×",
        False,
        lambda s: g(s, "boc_cpu", "speedup"),
        "≥ 1.85×",
        "{:.2f}",
    ),
]

#: The host table: a Rust host (crate rebeam) calling a Python actor, next to the same Python
#: function called in-process through PyO3 and to a Python → Python call (row 1's, same run).
HOST_PEERS = ["pyo3", "py2py"]
HOST_ROWS = [
    (
        "host_call_p50",
        "12. Rust host → Python actor call p50",
        "µs",
        True,
        lambda s: g(s, "call_p50"),
        "≤ PyO3 + 10 µs",
        "{:.1f}",
    ),
    ("host_call_p99", "12. Rust host → Python actor call p99", "µs", True, lambda s: g(s, "call_p99"), "—", "{:.1f}"),
    (
        "host_miss_100hz",
        "13. deadline misses per 10,000 ticks, 100 Hz (5 ms deadline)",
        "misses",
        True,
        lambda s: g(s, "miss_100hz"),
        "0",
        "{:.0f}",
    ),
    (
        "host_miss_1khz",
        "13. deadline misses per 10,000 ticks, 1 kHz (0.5 ms deadline)",
        "misses",
        True,
        lambda s: g(s, "miss_1khz"),
        "—",
        "{:.0f}",
    ),
    (
        "host_crash",
        "14. policy crash → serving again, as the host sees it",
        "ms",
        True,
        lambda s: g(s, "crash_ms"),
        "—",
        "{:.1f}",
    ),
    (
        "host_disarm",
        "15. disarm → running gated policy stopped, as the host sees it",
        "ms",
        True,
        lambda s: g(s, "disarm_ms"),
        "—",
        "{:.1f}",
    ),
]


def host_systems(raw: dict) -> dict:
    """The host table's columns, from rebeam's raw results: the host bench and row 1's call."""
    rb = raw.get("rebeam") or {}
    host = rb.get("host")
    if not isinstance(host, dict):
        return {}
    if "error" in host:
        return {"rebeam": {"host": host}}
    return {
        "rebeam": {
            "call_p50": g(host, "call", "host", "p50_us"),
            "call_p99": g(host, "call", "host", "p99_us"),
            "miss_100hz": g(host, "loop", "100hz", "missed_per_10k"),
            "miss_1khz": g(host, "loop", "1khz", "missed_per_10k"),
            "crash_ms": g(host, "crash", "median_ms"),
            "disarm_ms": g(host, "disarm", "stopped_median_ms"),
        },
        "pyo3": {"call_p50": g(host, "call", "pyo3", "p50_us"), "call_p99": g(host, "call", "pyo3", "p99_us")},
        "py2py": {"call_p50": g(rb, "call", "p50_us"), "call_p99": g(rb, "call", "p99_us")},
    }

NODE_ROWS = (
    "node_p50", "node_p99", "node_zenoh_p50", "node_same_p50", "node_same_gov_p50", "node_vs_zenoh", "node_vs_parts",
    "node_casts", "node_same_casts",
    "failover_answered", "failover_serving",
)

NA = {  # peer cells that are not applicable, and why
    ("pykka", "rss"): "n/a (threads)",
    ("pykka", "crash_raise"): "n/a (no supervisor)",
    ("pykka", "crash_exit"): "n/a (no supervisor)",
    ("mp", "crash_raise"): "n/a (no supervisor)",
    ("mp", "crash_exit"): "n/a (no supervisor)",
    ("ray", "crash_raise"): "n/a (exception keeps actor)",
    **{(p, k): "n/a (no safety gate)" for p in PEERS for k in ("disarm_loop", "disarm_loop_landed", "disarm_kill")},
    ("pykka", "exec_small"): "n/a (threads)",
    ("pykka", "exec_cpu"): "n/a (threads)",
    ("pykka", "acall_rate"): "n/a (no asyncio calls)",
    ("pykka", "acall_p99"): "n/a (no asyncio calls)",
    ("mp", "acall_rate"): "n/a (no actors)",
    ("mp", "acall_p99"): "n/a (no actors)",
    **{(p, k): "n/a" for p in HOST_PEERS for k in ("host_miss_100hz", "host_miss_1khz", "host_crash", "host_disarm")},
    **{
        ("pykka", k): "n/a (threads)"
        for k in ("array_call", "array_shared", "thru_1k", "thru_1m", "fan_out", "fan_in", "busy_p50")
    },
    **{("pykka", k): "n/a (threads)" for k in ("array_reply", "array_both")},
    **{(p, k): "n/a (one node)" for p in PEERS for k in NODE_ROWS},
}


def cell(system: str, key: str, data: dict | None, getter, fmt: str, workload: str) -> tuple[str, float | None]:
    if data is None:
        return "skipped", None
    if (system, key) in NA:
        return NA[(system, key)], None
    v = getter(data)
    if v is None and g(data, workload, "not_measured", key):  # the workload says why not
        return f"n/a ({g(data, workload, 'not_measured', key)})", None
    if v is None:
        err = g(data, workload, "error") or g(data, workload, "raise", "error") or g(data, workload, "exit", "error")
        return ("error" if err or g(data, workload) else "—"), None
    return fmt.format(v), float(v)


def ratio_text(
    rebeam: float | None, peer: float | None, lower_better: bool, peer_name: str
) -> tuple[str, float | None]:
    """'rebeam 2.1×' or 'mp 7.6×': who is better and by how much; raw = peer/rebeam or rebeam/peer."""
    if rebeam is None or peer is None or rebeam <= 0 or peer <= 0:
        return "", None
    raw = peer / rebeam if lower_better else rebeam / peer  # > 1: rebeam better
    if abs(raw - 1) < 0.05:
        return f"≈ ({raw:.2f})", raw
    return (f"rebeam {raw:.2f}× better" if raw > 1 else f"{peer_name} {1 / raw:.2f}× better"), raw


WORKLOAD_OF = {
    "call_p50": "call",
    "call_p99": "call",
    "cast_rate": "cast",
    "cpu_time2": "cpu",
    "cpu_speedup": "cpu",
    "hello": "hello",
    "hello_reply": "hello",
    "crash_raise": "crash",
    "crash_exit": "crash",
    "rss": "rss",
    "disarm_loop": "safety",
    "disarm_loop_landed": "safety",
    "disarm_kill": "safety",
    "exec_small": "exec",
    "exec_cpu": "exec",
    "acall_rate": "acalls",
    "acall_p99": "acalls",
    "array_call": "array",
    "array_shared": "array",
    "array_reply": "array",
    "array_both": "array",
    "thru_1k": "thru",
    "thru_1m": "thru",
    "fan_out": "fan",
    "fan_in": "fan",
    "busy_p50": "busy",
    "node_p50": "nodes",
    "node_p99": "nodes",
    "node_zenoh_p50": "nodes",
    "node_same_p50": "nodes",
    "node_same_gov_p50": "nodes",
    "node_vs_zenoh": "nodes",
    "node_vs_parts": "nodes",
    "node_casts": "nodes",
    "node_same_casts": "nodes",
    "failover_answered": "nodes",
    "failover_serving": "nodes",
    "boc_rate": "boc_trivial",
    "boc_cpu_time1": "boc_cpu",
    "boc_cpu_time2": "boc_cpu",
    "boc_cpu_speedup": "boc_cpu",
    **{row[0]: "host" for row in HOST_ROWS},
}


def group_of(workload: str) -> str:
    """The `--only` name of a workload: boc_trivial and boc_cpu are both `boc`."""
    return "boc" if workload.startswith("boc_") else workload


def build_table(
    data: dict, peers: list[str], rows_spec: list = ROWS, only: set[str] | None = None, rebeam: str = "rebeam"
) -> tuple[str, list[dict]]:
    """The markdown table and its rows as data, for the rows whose workload is in `only`."""
    head = (
        ["measure", "unit", rebeam] + [LABEL[p] for p in peers] + [f"vs {LABEL[p]}" for p in peers] + ["rebeam target"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = []
    for key, measure, unit, lower, getter, target, fmt in rows_spec:
        if only is not None and group_of(WORKLOAD_OF[key]) not in only:
            continue
        w = WORKLOAD_OF[key]
        rtext, rval = cell("rebeam", key, data.get("rebeam"), getter, fmt, w)
        cells, ratios, row = (
            [],
            [],
            {
                "key": key,
                "measure": measure,
                "unit": unit,
                "better": "lower" if lower else "higher",
                "target": target,
                "rebeam": rval,
                "peers": {},
                "ratios": {},
            },
        )
        for p in peers:
            ptext, pval = cell(p, key, data.get(p), getter, fmt, w)
            cells.append(ptext)
            rt, raw = ratio_text(rval, pval, lower, LABEL[p].split()[0])
            ratios.append(rt)
            row["peers"][p] = pval if pval is not None else ptext
            row["ratios"][p] = raw
        arrow = "↓" if lower else "↑"
        lines.append("| " + " | ".join([measure, f"{unit} {arrow}", rtext] + cells + ratios + [target]) + " |")
        rows.append(row)
    return "\n".join(lines), rows
