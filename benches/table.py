"""The comparison tables: which rows there are, how each cell and ratio is read off the
results, and the markdown they print as (used by bench.py)."""

from __future__ import annotations

PEERS = ["mp", "pykka", "ray"]
BOC_PEERS = ["bocpy"]
LABEL = {"rebeam": "rebeam", "mp": "mp (Pipe/Pool)", "pykka": "Pykka", "ray": "Ray", "bocpy": "bocpy"}


def g(d: dict, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


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
    ("node_p50", "12. call by name to another node (loopback) p50", "µs", True, lambda s: g(s, "nodes", "p50_us"),
     "—", "{:.1f}"),
    ("node_p99", "12. call to another node p99", "µs", True, lambda s: g(s, "nodes", "p99_us"), "—", "{:.1f}"),
    ("node_zenoh_p50", "12. Zenoh's own query/reply p50, same run (the floor)", "µs", True,
     lambda s: g(s, "nodes", "zenoh", "p50_us"), "—", "{:.1f}"),
    ("node_same_p50", "12. the same call within one node, same run, p50", "µs", True,
     lambda s: g(s, "nodes", "same_node_p50_us"), "—", "{:.1f}"),
    ("node_vs_zenoh", "12. call to another node p50 / Zenoh's query p50", "×", True,
     lambda s: g(s, "nodes", "vs_zenoh_p50"), "≤ 1.2×", "{:.2f}"),
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

NODE_ROWS = ("node_p50", "node_p99", "node_zenoh_p50", "node_same_p50", "node_vs_zenoh")

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
    **{(p, k): "n/a (one node)" for p in PEERS for k in NODE_ROWS},
}


def cell(system: str, key: str, data: dict | None, getter, fmt: str, workload: str) -> tuple[str, float | None]:
    if data is None:
        return "skipped", None
    if (system, key) in NA:
        return NA[(system, key)], None
    v = getter(data)
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
    "node_p50": "nodes",
    "node_p99": "nodes",
    "node_zenoh_p50": "nodes",
    "node_same_p50": "nodes",
    "node_vs_zenoh": "nodes",
    "boc_rate": "boc_trivial",
    "boc_cpu_time1": "boc_cpu",
    "boc_cpu_time2": "boc_cpu",
    "boc_cpu_speedup": "boc_cpu",
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
