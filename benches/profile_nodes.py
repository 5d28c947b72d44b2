"""Where a cross-node call's time goes: the critical path of row 20, hand-off by hand-off, beside
Zenoh's own floor, from the kernel's scheduler trace (`perf sched`).

    python3 benches/profile_nodes.py [--seconds S] [--keep DIR]

Runs, one after the other: `rebeam-zenoh-floor` serving and querying on loopback, then one
node calling a group of one by its name (the governor's path, the hops a cross-node call has on
each side), then two
`rebeam --node` runs with `workloads/nodes_bench.py` (node b calling an echo actor on node a, one
call at a time), and records every context switch and wake-up on the machine for `--seconds`
of each (`perf sched record -a`). It then follows each call through the trace: every thread
that wakes the next one on the call's way (a socket write, an eventfd, a futex) is a hand-off,
and for each hand-off it prints the median wake-up latency (woken → running) and the median
time to the next hand-off (the woken thread's wake-up and its work). Last, the CPU each kind of
thread used per call (spinning included).

Needs `perf` with the scheduler tracepoints (Debian's `linux-perf`; root, or
`kernel.perf_event_paranoid` at -1) and a built tree (`./bootstrap.sh`, and `cargo build
--release -p rebeam-node --bin rebeam-zenoh-floor`). The trace itself slows every hand-off by a
few microseconds, so read the shares and the count of hand-offs, not the absolute figures;
`benches/run.sh` has those. Nothing here is a test: it is the profile that a closing note cites.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKLOADS = HERE / "workloads"

# Each step: the thread kinds of the waker and of the woken, and what the hand-off is.
# A node's Zenoh runs on one thread (`rebeam_node::ZENOH_RUNTIME`): its sending, receiving and
# callbacks are one kind, "zenoh" (with Zenoh's default runtimes, its tx threads are of it too).
FLOOR_PATH = [
    ("q.main", "q.zenoh", "query: the querying task -> its Zenoh thread (the query out)"),
    ("q.zenoh", "s.zenoh", "query -> serve: TCP; the reply sent from the callback"),
    ("s.zenoh", "q.zenoh", "serve -> query: TCP, to the querying side's Zenoh"),
    ("q.zenoh", "q.main", "query: Zenoh -> the querying task"),
    ("q.main", "q.zenoh", "(the next query)"),
]
GOVERNOR_PATH = [
    ("m.main", "g.main", "main's Python -> the governor (socket)"),
    ("g.main", "w.reader", "the governor -> the worker's socket reader"),
    ("w.reader", "w.main", "the worker's reader -> its Python thread"),
    ("w.main", "g.main", "the worker's answer -> the governor (socket)"),
    ("g.main", "m.reader", "the governor -> main's socket reader"),
    ("m.reader", "m.main", "main's reader -> main's Python thread"),
    ("m.main", "g.main", "(the next call)"),
]
REBEAM_PATH = [
    ("mb.main", "gb.tokio", "b: main's Python -> b's governor (socket)"),
    ("gb.tokio", "gb.zenoh", "b: the router sends the query -> b's Zenoh"),
    ("gb.zenoh", "ga.zenoh", "b -> a: TCP, to a's Zenoh"),
    ("ga.zenoh", "ga.tokio", "a: the query callback -> a's router (channel)"),
    ("ga.tokio", "wa.reader", "a: the router -> the worker's socket reader"),
    ("wa.reader", "wa.main", "a: the worker's reader -> its Python thread"),
    ("wa.main", "ga.tokio", "a: the worker's answer -> a's router (socket)"),
    ("ga.tokio", "ga.zenoh", "a: the router replies -> a's Zenoh"),
    ("ga.zenoh", "gb.zenoh", "a -> b: TCP, to b's Zenoh"),
    ("gb.zenoh", "gb.tokio", "b: the reply -> b's governor (its task, the router)"),
    ("gb.tokio", "mb.reader", "b: the router -> main's socket reader"),
    ("mb.reader", "mb.main", "b: main's reader -> main's Python thread"),
    ("mb.main", "gb.tokio", "(the next call)"),
]

LINE = re.compile(r"^\s*(\d+\.\d+)\s+\[(\d+)\]\s+(.+?)\[(\d+)(?:/(\d+))?\]\s+(.*)$")
WOKE = re.compile(r"awakened: (.+?)\[(\d+)(?:/(\d+))?\]")
THREAD = re.compile(r"(\S+?)\[(\d+)(?:/(\d+))?\]")


def kind_of(comm: str) -> str:
    """A thread's kind, by the name its runtime gives it."""
    if comm.startswith("tokio-rt"):
        return "tokio"
    if comm.startswith("tx-"):
        return "tx"
    if re.match(r"(rx|app|acc|net)-", comm):
        return "zenoh"
    if comm == "rebeam-reader":
        return "reader"
    if comm.startswith(("python", "rebeam-zenoh")) or comm == "rebeam":
        return "main"
    return "other"


def roles(timehist: str, pids: dict[str, int]) -> dict[str, set[int]]:
    """Thread ids by role (`PROCESS.KIND`); a Zenoh tx thread is one of its Zenoh threads too."""
    by_pid = {str(pid): name for name, pid in pids.items()}
    out: dict[str, set[int]] = {}
    for line in timehist.splitlines():
        for comm, tid, pid in THREAD.findall(line):
            name = by_pid.get(pid or tid)
            if name is None:
                continue
            kind = kind_of(comm)
            out.setdefault(f"{name}.{kind}", set()).add(int(tid))
            if kind == "tx":
                out.setdefault(f"{name}.zenoh", set()).add(int(tid))
    return out


def parse(timehist: str):
    """The wake-ups (time, waker tid, woken tid), each thread's runs (ends and starts, by end),
    its CPU time, and the trace's span in seconds."""
    wakes, starts, cpu, first, last = [], {}, {}, None, 0.0
    for line in timehist.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        t, tid, rest = float(m[1]), int(m[4]), m[6]
        first, last = first if first is not None else t, t
        woke = WOKE.search(rest)
        if woke:
            wakes.append((t, tid, int(woke[2])))
            continue
        fields = rest.split()
        if len(fields) == 3:  # wait, scheduling delay, run time (ms), at the switch out
            run = float(fields[2]) / 1e3
            starts.setdefault(tid, []).append((t, t - run))
            cpu[tid] = cpu.get(tid, 0.0) + run
    for v in starts.values():
        v.sort()
    return wakes, starts, cpu, last - (first or last)


def follow(timehist: str, pids: dict[str, int], path) -> dict:
    """Each call's chain of hand-offs along `path`: per step, the medians."""
    role = roles(timehist, pids)
    wakes, starts, cpu, span = parse(timehist)
    steps = [(role.get(a, set()), role.get(b, set())) for a, b, _ in path]
    to_next = [[] for _ in path]
    latency = [[] for _ in path]
    chains = []
    i = 0
    while i < len(wakes):
        found, j = [], i
        for waker, woken in steps:
            while j < len(wakes) and not (wakes[j][1] in waker and wakes[j][2] in woken):
                j += 1
            if j == len(wakes):
                break
            found.append(wakes[j])
            j += 1
        if len(found) < len(steps):
            break
        if found[-1][0] - found[0][0] < 0.005:  # one call's hand-offs, not a pause between runs
            chains.append(found[-1][0] - found[0][0])
            for k, (t, _, woken) in enumerate(found):
                if k + 1 < len(found):
                    to_next[k].append(found[k + 1][0] - t)
                # The run that ends first after the wake-up: it began after it (the latency), or
                # the woken thread was running already (it spun, or had not yet slept): none.
                runs = starts.get(woken, [])
                at = bisect.bisect_left(runs, (t, 0.0))
                if at < len(runs):
                    latency[k].append(max(0.0, runs[at][1] - t))
        i = j
    med = lambda xs: statistics.median(xs) * 1e6 if xs else float("nan")  # noqa: E731
    # Each kind of thread's CPU over the trace, as a share of one core (a call at a time runs
    # throughout, so the shares are the cost of back-to-back calls).
    busy = {}
    for name, tids in role.items():
        if name.endswith(".zenoh"):
            tids = tids - role.get(name[: -len("zenoh")] + "tx", set())
        busy[name] = 100 * sum(cpu.get(t, 0.0) for t in tids) / (span or 1)
    return {
        "calls": len(chains),
        "chain_p50_us": med(chains),
        "steps": [
            {"hand_off": label, "wake_up_us": med(latency[k]), "to_next_us": med(to_next[k])}
            for k, (_, _, label) in enumerate(path)
        ],
        "busy_percent_of_a_core": dict(sorted(busy.items(), key=lambda kv: -kv[1])),
    }


def record(out: Path, seconds: float) -> str:
    subprocess.run(
        ["perf", "sched", "record", "-a", "-o", str(out), "--", "sleep", str(seconds)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    hist = subprocess.run(
        ["perf", "sched", "timehist", "-w", "-i", str(out)], check=True, capture_output=True, text=True
    )
    return hist.stdout


def children(parent: int) -> list[tuple[int, str, str]]:
    ps = subprocess.run(["ps", "-eo", "pid=,ppid=,comm=,args="], capture_output=True, text=True).stdout
    out = []
    for line in ps.splitlines():
        pid, ppid, comm, args = (line.split(None, 3) + [""])[:4]
        if int(ppid) == parent:
            out.append((int(pid), comm, args))
    return out


def python_of(governor: int, role: str) -> int:
    """The pid of a run's Python process of `role` ("worker", not the zygote; or "main")."""
    for pid, comm, args in children(governor):
        if f"rebeam._{role}" in args and comm != "rebeam-zygote":
            return pid
    raise SystemExit(f"profile_nodes: the run of governor {governor} has no {role} process")


def kill_group(p: subprocess.Popen, sig=signal.SIGTERM) -> None:
    try:
        os.killpg(p.pid, sig)
        p.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def profile_floor(floor: str, tmp: Path, seconds: float) -> dict:
    ep = "tcp/127.0.0.1:17447"
    serve = subprocess.Popen([floor, "serve", ep], stdout=subprocess.PIPE, text=True, start_new_session=True)
    query = None
    try:
        serve.stdout.readline()
        query = subprocess.Popen(
            [floor, "query", ep, "1000000"], stdout=subprocess.DEVNULL, start_new_session=True
        )
        time.sleep(2)
        hist = record(tmp / "floor.data", seconds)
    finally:
        for p in (query, serve):
            if p is not None:
                kill_group(p, signal.SIGKILL)
    return follow(hist, {"s": serve.pid, "q": query.pid}, FLOOR_PATH)


def profile_rebeam(rebeam: str, tmp: Path, seconds: float) -> dict:
    ep = "tcp/127.0.0.1:17448"
    env = {**os.environ, "REBEAM_COOKIE": "profile-" + os.urandom(8).hex()}
    node = [rebeam, "--workers", "1", "--spares", "0", "--node"]
    quiet = dict(cwd=WORKLOADS, env=env, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    host = subprocess.Popen([*node, "a", "--listen", ep, "nodes_bench.py", "host"], stdout=subprocess.PIPE, **quiet)
    caller = None
    try:
        host.stdout.readline()  # "HOST READY"
        caller = subprocess.Popen(
            [*node, "b", "--connect", ep, "nodes_bench.py", "caller", "node_n=1000000", "node_warm=2000"],
            stdout=subprocess.DEVNULL, **quiet,
        )
        time.sleep(5)  # joined, warmed up, calling
        worker, main = python_of(host.pid, "worker"), python_of(caller.pid, "main")
        hist = record(tmp / "rebeam.data", seconds)
    finally:
        for p in (caller, host):
            if p is not None:
                kill_group(p)
    pids = {"ga": host.pid, "gb": caller.pid, "wa": worker, "mb": main}
    return follow(hist, pids, REBEAM_PATH)


def profile_governor_path(rebeam: str, tmp: Path, seconds: float) -> dict:
    """One node: calls by a group's name, which go by the governor (no direct channel)."""
    cmd = [rebeam, "--workers", "1", "--spares", "0", "nodes_bench.py", "governor_path"]
    run = subprocess.Popen(cmd, cwd=WORKLOADS, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                           start_new_session=True)
    try:
        run.stdout.readline()  # "GOVERNOR PATH READY"
        time.sleep(2)
        worker, main = python_of(run.pid, "worker"), python_of(run.pid, "main")
        hist = record(tmp / "governor.data", seconds)
    finally:
        kill_group(run)
    return follow(hist, {"g": run.pid, "w": worker, "m": main}, GOVERNOR_PATH)


def table(name: str, result: dict) -> str:
    rows = [f"### {name}: {result['calls']} calls followed, median chain {result['chain_p50_us']:.0f} µs", ""]
    rows += ["| hand-off | wake-up, p50 µs | to the next hand-off, p50 µs |", "|---|---|---|"]
    for s in result["steps"]:
        to_next = "" if s["to_next_us"] != s["to_next_us"] else f"{s['to_next_us']:.0f}"
        rows.append(f"| {s['hand_off']} | {s['wake_up_us']:.0f} | {to_next} |")
    busy = {k: v for k, v in result["busy_percent_of_a_core"].items() if not k.endswith(".other")}
    rows += ["", f"CPU while calling, % of one core (spinning included; {sum(busy.values()):.0f}% in all, of 200%): "
             + ", ".join(f"{k} {v:.0f}%" for k, v in busy.items()), ""]
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.5, help="how long each trace records (default 1.5)")
    ap.add_argument("--keep", type=Path, help="keep the traces and the JSON in this directory")
    args = ap.parse_args()
    if shutil.which("perf") is None:
        print("profile_nodes: no `perf` here: install Debian's linux-perf (apt-get install linux-perf)",
              file=sys.stderr)
        return 2
    floor = os.environ.get("REBEAM_ZENOH_FLOOR") or str(ROOT / "target" / "release" / "rebeam-zenoh-floor")
    rebeam = shutil.which("rebeam") or str(ROOT / ".venv" / "bin" / "rebeam")
    builds = ((floor, "cargo build --release -p rebeam-node --bin rebeam-zenoh-floor"), (rebeam, "./bootstrap.sh"))
    for path, how in builds:
        if not os.path.exists(path):
            print(f"profile_nodes: no {path}: {how} builds it", file=sys.stderr)
            return 2
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="rebeam-profile-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        floor_result = profile_floor(floor, tmp, args.seconds)
        governor_result = profile_governor_path(rebeam, tmp, args.seconds)
        rebeam_result = profile_rebeam(rebeam, tmp, args.seconds)
    except subprocess.CalledProcessError as e:
        print(f"profile_nodes: `{' '.join(e.cmd)}` failed (perf needs root or kernel.perf_event_paranoid=-1)",
              file=sys.stderr)
        return 2
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(table("Zenoh's own query (rebeam-zenoh-floor)", floor_result))
    print(table("rebeam, one node: a call by a group's name (the governor's path)", governor_result))
    print(table("rebeam: a call by name from node b's main process to node a's worker", rebeam_result))
    if args.keep:
        results = {"floor": floor_result, "governor_path": governor_result, "rebeam": rebeam_result}
        (tmp / "profile.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
