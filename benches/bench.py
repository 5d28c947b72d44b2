#!/usr/bin/env python3
"""Runs the same workloads on rebeam and its peers and prints the comparison tables.

Run through benches/run.sh (it prepares the bench venv); by hand:

    .bench-venv/bin/python benches/bench.py [--systems rebeam,mp,pykka,ray,bocpy] [--only boc] [--quick]

Three tables: rebeam's actors next to multiprocessing, Pykka and Ray (rows 1-7, Executor.map
and acalls in flight, rows 10-11, and the data plane, rows 16-19), rebeam.boc next to bocpy
(rows 8-9), and the Rust host next to in-process PyO3 (rows 12-15); row 20 is a call to another
node beside Zenoh's own query. `--only` runs some workloads and updates their rows in
latest.json, keeping the other rows from the previous run.

Every workload runs in its own subprocess under `timeout`, so a hang costs its time limit and
shows as "error" in the table, never a stuck run. Results: the table on stdout, the full data in
benches/results/latest.json, each subprocess's output in benches/results/logs/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from table import BOC_PEERS, BOC_ROWS, HOST_PEERS, HOST_ROWS, LABEL, PEERS, ROWS, build_table, g, host_systems

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads"
sys.path.insert(0, str(WORKLOADS))
from bench_host import DESK, ControlDesk  # noqa: E402  (beside the workloads it serves)
RESULTS = HERE / "results"
LOGS = RESULTS / "logs"
PY = sys.executable
VENV_BIN = Path(PY).parent
# The bench venv: every process started from it is ours (used to find leftovers).
VENV_DIR = str(VENV_BIN.parent)

# Sizes: the same for every system unless a system is too slow for them (then noted).
SIZES = {
    "call_n": 20000,
    "call_warm": 2000,
    "cast_n": 30000,
    "cast_reps": 3,
    "cpu_total": 16_000_000,
    "cpu_chunks": 4,
    "cpu_reps": 7,
    "crash_reps": 10,
    "rss_settle": 1.0,
    "hello_reps": 7,
    "safety_reps": 10,
    "kill_reps": 5,
    # rebeam.boc and bocpy (boc_bench.py)
    "boc_n": 20000,
    "boc_cowns": 8,
    "boc_reps": 3,
    "boc_cpu_k": 4,
    "boc_cpu_m": 4_000_000,
    "boc_cpu_reps": 3,
    "boc_cpu_rounds": 2,
    # Executor.map and acalls in flight (executor_bench.py)
    "exec_small_n": 10000,
    "exec_cpu_n": 64,
    "exec_cpu_m": 2_000_000,
    "acall_n": 10000,
    # The Rust host (benches/host): calls, control-loop ticks per rate, crashes, disarms
    "host_call_n": 20000,
    "host_call_warm": 2000,
    "host_ticks": 10000,
    "host_crash_reps": 10,
    "host_disarm_reps": 10,
    # The data plane (data_bench.py)
    "array_mib": 64,
    "array_reps": 10,
    "thru_small_n": 20000,
    "thru_big_n": 300,
    "fan_n": 4,
    "fan_m": 5000,
    "busy_n": 2000,
    "busy_seconds": 120,
    # Two nodes on loopback (nodes_bench.py) and Zenoh's own query floor
    "node_n": 5000,
    "node_warm": 500,
    # Cross-node casts wait for their node's word that they were delivered: ~1 round trip each.
    "node_cast_n": 5000,
    "node_cast_reps": 3,
    # Three nodes on loopback, the child's node SIGKILLed (failover_bench.py): runs, median kept
    "failover_reps": 3,
}
QUICK = {
    "call_n": 3000,
    "call_warm": 300,
    "cast_n": 5000,
    "cpu_total": 4_000_000,
    "crash_reps": 3,
    "cpu_reps": 3,
    "rss_settle": 0.3,
    "hello_reps": 3,
    "safety_reps": 5,
    "kill_reps": 3,
    "boc_n": 3000,
    "boc_reps": 2,
    "boc_cpu_m": 1_000_000,
    "boc_cpu_reps": 2,
    "boc_cpu_rounds": 1,
    "exec_small_n": 2000,
    "exec_cpu_m": 500_000,
    "acall_n": 2000,
    "host_call_n": 3000,
    "host_call_warm": 300,
    "host_ticks": 1000,
    "host_crash_reps": 3,
    "host_disarm_reps": 3,
    "array_reps": 3,
    "thru_small_n": 3000,
    "thru_big_n": 50,
    "fan_m": 1000,
    "busy_n": 300,
    "node_n": 1000,
    "node_warm": 100,
    "node_cast_n": 1000,
    "node_cast_reps": 1,
    "failover_reps": 1,
}
# Per-system overrides: a size that would take minutes on that system.
OVERRIDES = {
    "mp": {"cast_n": 300000},
    "pykka": {"cast_n": 200000},
    "ray": {
        "call_n": 5000,
        "call_warm": 500,
        "cast_n": 20000,
        "crash_reps": 3,
        "hello_reps": 2,
        "thru_small_n": 5000,
        "fan_m": 1000,
        "busy_n": 500,
    },
}

HELLO = {
    "mp": (
        "import multiprocessing as mp\n"
        "def f(c): c.send('hello ' + c.recv())\n"
        "if __name__ == '__main__':\n"
        "    a, b = mp.Pipe(); p = mp.Process(target=f, args=(b,)); p.start()\n"
        "    a.send('world'); assert a.recv() == 'hello world'\n"
        "    import time; print('BENCH_JSON {\"t_reply_epoch\": %.6f}' % time.time(), flush=True); p.join()\n"
    ),
    "pykka": (
        "import pykka\n"
        "class H(pykka.ThreadingActor):\n"
        "    def on_receive(self, m): return 'hello ' + m\n"
        "r = H.start(); assert r.ask('world') == 'hello world'\n"
        "import time; print('BENCH_JSON {\"t_reply_epoch\": %.6f}' % time.time(), flush=True); r.stop()\n"
    ),
    "ray": (
        "import ray\n"
        "ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level='ERROR')\n"
        "@ray.remote\n"
        "class H:\n"
        "    def hi(self, m): return 'hello ' + m\n"
        "h = H.remote(); assert ray.get(h.hi.remote('world')) == 'hello world'\n"
        "import time; print('BENCH_JSON {\"t_reply_epoch\": %.6f}' % time.time(), flush=True); ray.shutdown()\n"
    ),
    "python": "pass\n",
}

#: rebeam's workloads before the host's and the data plane's.
BASE_WORKLOADS = ("call", "cast", "cpu", "crash", "rss", "safety", "hello", "boc", "exec", "acalls")
#: The data plane's workloads (data_bench.py): one process per system and workload, and one
#: ray.init() for all of Ray's.
DATA_WORKLOADS = ("array", "thru", "fan", "busy")

# What each system runs (`--only` picks among them).
WORKLOADS_OF = {
    "rebeam": [*BASE_WORKLOADS, "host", "nodes", *DATA_WORKLOADS],
    "mp": ["call", "cast", "cpu", "rss", "hello", "exec", *DATA_WORKLOADS],
    "pykka": ["call", "cast", "cpu", "hello"],
    "ray": ["call", "cast", "cpu", "rss", "crash", "hello", "exec", "acalls", *DATA_WORKLOADS],
    "bocpy": ["boc"],
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    try:
        return [float(x) for x in open("/proc/loadavg").read().split()[:3]]
    except OSError:
        return []


# --- subprocesses ----------------------------------------------------------------------------

_log_seq = [0]


def run(name: str, cmd: list[str], limit: float, env: dict | None = None) -> dict:
    """Runs cmd under `timeout` in its own session; returns wall time, exit code and JSON lines."""
    _log_seq[0] += 1
    full = ["timeout", "-k", "5", str(int(limit))] + cmd
    e = dict(os.environ)
    e.update(env or {})
    load = loadavg()[:1]
    epoch0 = time.time()
    t0 = time.perf_counter()
    p = subprocess.Popen(
        full,
        cwd=WORKLOADS,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = p.communicate(timeout=limit + 20)
    except subprocess.TimeoutExpired:  # `timeout` itself stuck: kill its whole group
        _killpg(p.pid)
        out, err = p.communicate()
    wall = time.perf_counter() - t0
    _killpg(p.pid)  # anything left in the group it led
    (LOGS / f"{_log_seq[0]:02d}-{name}.log").write_text(
        f"$ {' '.join(full)}\nexit {p.returncode}, {wall:.3f} s\n--- stdout\n{out}\n--- stderr\n{err}"
    )
    results = []
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            try:
                results.append(json.loads(line[len("BENCH_JSON ") :]))
            except json.JSONDecodeError:
                pass
    timed_out = p.returncode in (124, 137)
    for r in results:
        r.setdefault("load_1m_before", load[0] if load else None)
    return {
        "wall_s": wall,
        "code": p.returncode,
        "results": results,
        "timed_out": timed_out,
        "t_launch_epoch": epoch0,
        "stderr_tail": err.strip().splitlines()[-3:] if err.strip() else [],
    }


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def leftovers() -> list[tuple[int, str]]:
    """Processes still running from the bench venv (all started by this run), except us."""
    found = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in (me, os.getppid()):
            continue
        try:
            cmd = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            exe = os.readlink(f"/proc/{d}/exe")
        except OSError:
            continue
        if (VENV_DIR in cmd or exe.startswith(VENV_DIR)) and "bench.py" not in cmd:
            found.append((int(d), cmd.strip()[:160]))
    return found


_preexisting: set[int] = set()


def reap_leftovers(after: str, notes: list[str]) -> None:
    """Kills (by pid) processes of the bench venv that this run left behind; reports them."""
    time.sleep(0.3)
    left = [(pid, cmd) for pid, cmd in leftovers() if pid not in _preexisting]
    if not left:
        return
    own_venv = os.path.basename(VENV_DIR) == ".bench-venv"
    notes.append(
        f"after {after}: {len(left)} process(es) still running{', killed' if own_venv else ''}: "
        + "; ".join(f"{pid} {cmd}" for pid, cmd in left[:5])
    )
    if not own_venv:  # not our private venv: never touch processes we cannot be sure are ours
        return
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def first(run_out: dict, workload: str | None = None) -> dict:
    for r in run_out["results"]:
        if workload is None or r.get("workload") == workload:
            return r
    why = "timed out" if run_out["timed_out"] else f"exit {run_out['code']}, no result"
    tail = " | ".join(run_out["stderr_tail"])
    return {"error": f"{why}: {tail}"[:300]}


def kv(sizes: dict) -> list[str]:
    return [f"{k}={v}" for k, v in sizes.items() if k != "hello_reps" and not k.startswith("boc_")]


#: The workloads of executor_bench.py (one process per system and workload).
TASK_WORKLOADS = ("exec", "acalls")


def bench_tasks(system: str, sizes: dict, only: set[str], env: dict | None = None) -> dict:
    """Executor.map (next to ProcessPoolExecutor and Ray tasks) and acalls in flight (next to
    Ray's async actor calls): executor_bench.py, under `rebeam --workers 2` for rebeam."""
    out: dict = {}
    for w in TASK_WORKLOADS:
        if w not in only or w not in WORKLOADS_OF[system]:
            continue
        out[w] = run_on_two_workers(system, "executor_bench.py", w, sizes, env)
    return out


def run_on_two_workers(system: str, script: str, w: str, sizes: dict, env: dict | None) -> dict:
    """Workload `w` of `script`: under `rebeam --workers 2` for rebeam, plain Python for a peer."""
    log(f"{system}: {w}")
    args = [script, system, w] + kv(sizes)
    if system == "rebeam":
        cmd = [str(VENV_BIN / "rebeam"), "--workers", "2"] + args
        env = {**(env or {}), "BENCH_EXPECT_WORKERS": "3"}  # the pool + rebeam's one warm spare
    else:
        cmd = [PY] + args
    return first(run(f"{system}-{w}", cmd, 240, env), w)


def bench_data(system: str, sizes: dict, only: set[str], env: dict | None = None) -> dict:
    """The data plane's rows (data_bench.py): a 64 MiB array in a call, 1 KiB and 1 MiB
    throughput, fan-out and fan-in, calls while every core is busy."""
    mine = [w for w in DATA_WORKLOADS if w in only and w in WORKLOADS_OF[system]]
    if system == "ray" and mine:
        log(f"ray: data plane ({', '.join(mine)}) in one ray.init()")
        r = run("ray-data", [PY, "data_bench.py", "ray", *mine] + kv(sizes), 300, env)
        return {w: first(r, w) for w in mine}
    out: dict = {}
    for w in mine:
        out[w] = run_on_two_workers(system, "data_bench.py", w, sizes, env)
    return out


def hello_times(name: str, cmd: list[str], reps: int, limit: float, env: dict | None = None) -> dict:
    """Whole-command wall time; and launch → first reply, from the reply's time.time() stamp."""
    walls, to_reply, inside, errors = [], [], [], []
    for i in range(reps):
        r = run(f"hello-{name}-{i}", cmd, limit, env)
        if r["code"] == 0:
            walls.append(r["wall_s"] * 1000)
            res = r["results"][0] if r["results"] else {}
            if "t_reply_epoch" in res:
                to_reply.append((res["t_reply_epoch"] - r["t_launch_epoch"]) * 1000)
            if "in_script_ms" in res:
                inside.append(res["in_script_ms"])
        else:
            errors.append(first(r).get("error", f"exit {r['code']}"))
    if not walls:
        return {"error": errors[0] if errors else "no run"}

    def med(xs):
        return sorted(xs)[len(xs) // 2] if xs else None

    walls.sort()
    out = {
        "reps": len(walls),
        "median_ms": med(walls),
        "min_ms": walls[0],
        "max_ms": walls[-1],
        "to_reply_median_ms": med(to_reply),
        "in_script_median_ms": med(inside),
    }
    if errors:
        out["failed_runs"] = errors
    return out


# --- systems ---------------------------------------------------------------------------------


def bench_rebeam(sizes: dict, only: set[str], notes: list[str]) -> dict:
    rebeam = str(VENV_BIN / "rebeam")
    out: dict = {}

    def go(workload: str, workers: int, limit: float) -> dict:
        env = {"BENCH_EXPECT_WORKERS": str(workers + 1)}  # the pool + rebeam's one warm spare
        # Only the host arms: this driver is the safety workload's host (bench_host.py).
        desk = ControlDesk() if workload == "safety" else None
        host = ["--control-socket", desk.control] if desk else []
        try:
            r = run(
                f"rebeam-{workload}-w{workers}",
                [rebeam, "--workers", str(workers), *host, "rebeam_bench.py", workload] + kv(sizes),
                limit,
                {**env, **({DESK: desk.desk} if desk else {})},
            )
        finally:
            if desk:
                desk.close()
        res = first(r, workload)
        res["wall_s"] = r["wall_s"]
        return res

    for workload, limit, what in (
        ("call", 120, ""),
        ("cast", 120, ""),
        ("cpu", 180, " (2 actors on 2 workers vs on 1 worker, alternating)"),
        ("crash", 120, ""),
        ("rss", 60, ""),
        ("safety", 120, " (disarm → loop interrupted, disarm → stuck worker killed)"),
    ):
        if workload in only:
            log(f"rebeam: {workload}{what}")
            out[workload] = go(workload, 2, limit)
    if "hello" in only:
        log("rebeam: hello")
        out["hello"] = hello_times("rebeam", [rebeam, "--workers", "2", "hello.py"], sizes["hello_reps"], 30)
        # For context: the same with the fewest processes (1 worker, no spare): how much of the
        # start-up is several interpreters starting at once on few cores.
        out["hello_1_worker_no_spare"] = hello_times(
            "rebeam-w1-s0", [rebeam, "--workers", "1", "--spares", "0", "hello.py"], sizes["hello_reps"], 30
        )
    if "boc" in only:
        out.update(bench_boc("rebeam", sizes))
    out.update(bench_tasks("rebeam", sizes, only))
    if "host" in only:
        out["host"] = bench_host(sizes)
    out.update(bench_data("rebeam", sizes, only))
    if "nodes" in only:
        log("rebeam: nodes (a cross-node call on loopback, beside Zenoh's own query)")
        out["nodes"] = bench_nodes(rebeam, sizes)
        log("rebeam: failover (three nodes, the child's node SIGKILLed under calls)")
        out["failover"] = bench_failover(rebeam, sizes)
    reap_leftovers("rebeam", notes)
    return out


#: The host bench: its own cargo workspace (it links libpython through PyO3; crate rebeam never does).
HOST_BENCH = HERE / "host"
HOST_WORKLOADS = ("call", "loop", "crash", "disarm")


def bench_host(sizes: dict) -> dict:
    """Rows 12-15 (benches/host): a Rust host calling a Python actor next to the same function
    in-process through PyO3, control-loop deadline misses, crash and disarm as the host sees them."""
    target = HERE.parent / "target"
    log("rebeam: host bench (cargo build --release of benches/host)")
    built = subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--manifest-path", str(HOST_BENCH / "Cargo.toml")],
        env={**os.environ, "CARGO_TARGET_DIR": str(target)},
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        return {"error": f"cannot build benches/host: {built.stderr.strip()[-300:]}"}
    env = {"PYTHONPATH": str(WORKLOADS), "REBEAM_VENV": VENV_DIR}
    keys = [f"{k}={v}" for k, v in sizes.items() if k.startswith("host_")]
    out: dict = {}
    for w in HOST_WORKLOADS:
        log(f"rebeam: host {w}")
        res = first(run(f"rebeam-host-{w}", [str(target / "release" / "host-bench"), w, *keys], 600, env), f"host_{w}")
        out[w] = res.get("result", res)
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Zenoh floor sessions timed for row 20 (see `bench_nodes`).
FLOOR_SESSIONS = 3


def bench_nodes(rebeam: str, sizes: dict) -> dict:
    """Row 20: calls by name from node b to node a (two `rebeam --node` runs on loopback), and
    in the same run Zenoh's own query/reply between two processes (rebeam-zenoh-floor, built
    with `cargo build --release -p rebeam-node`; its sessions opened as a node's are, cookie
    handshake and lease included), both with one call in flight at a time."""
    floor = os.environ.get("REBEAM_ZENOH_FLOOR") or str(HERE.parent / "target" / "release" / "rebeam-zenoh-floor")
    if not os.path.exists(floor):
        return {"error": f"no {floor}: cargo build --release -p rebeam-node builds it"}
    # A pair of Zenoh sessions on two cores is fast or slow by where its threads land (on these
    # machines its p50 is either ~25 or ~95 µs, the same for a whole session): the floor is the
    # median session of FLOOR_SESSIONS, each a fresh pair of processes, all of them in the JSON.
    sessions = []
    for _ in range(FLOOR_SESSIONS):
        ep = f"tcp/127.0.0.1:{free_port()}"
        server = subprocess.Popen([floor, "serve", ep], stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            server.stdout.readline()  # "ready"
            q = subprocess.run([floor, "query", ep, str(sizes["node_n"])], capture_output=True, text=True, timeout=120)
            if q.returncode != 0:
                sessions = [{"error": q.stderr[-300:]}]
                break
            sessions.append(json.loads(q.stdout.strip().splitlines()[-1]))
        finally:
            _killpg(server.pid)
            server.wait()
    zenoh = sorted(sessions, key=lambda z: z.get("p50_us", 0))[len(sessions) // 2]
    if "error" not in zenoh:
        zenoh["session_p50s_us"] = [z["p50_us"] for z in sessions]
    ep = f"tcp/127.0.0.1:{free_port()}"
    env = {**os.environ, "REBEAM_COOKIE": "bench-" + os.urandom(8).hex()}
    node = [rebeam, "--workers", "1", "--spares", "0", "--node"]
    host = subprocess.Popen(
        [*node, "a", "--listen", ep, "nodes_bench.py", "host"],
        cwd=WORKLOADS, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        host.stdout.readline()  # "HOST READY"
        r = run("rebeam-nodes", [*node, "b", "--connect", ep, "nodes_bench.py", "caller"] + kv(sizes), 180, env)
    finally:
        host.send_signal(signal.SIGTERM)
        try:
            host.wait(timeout=20)
        except subprocess.TimeoutExpired:
            _killpg(host.pid)
    out = first(r, "nodes")
    out["zenoh"] = zenoh
    if "p50_us" in out and "p50_us" in zenoh:
        out["vs_zenoh_p50"] = out["p50_us"] / zenoh["p50_us"]
    return out


def bench_failover(rebeam: str, sizes: dict) -> dict:
    """Row 21: three nodes on loopback (failover_bench.py), a supervisor on a whose child runs on
    b (allowed on b or c) under calls by name from a; the whole of node b SIGKILLed (its
    process group: governor and workers); the time from the kill to the last caller answered,
    and to the child serving again on c. `failover_reps` fresh systems, the median of each."""
    runs = []
    for rep in range(sizes["failover_reps"]):
        env = {**os.environ, "REBEAM_COOKIE": "bench-" + os.urandom(8).hex()}
        node = [rebeam, "--workers", "1", "--spares", "0", "--node"]
        ep_c, ep_b = f"tcp/127.0.0.1:{free_port()}", f"tcp/127.0.0.1:{free_port()}"
        killed = WORKLOADS / f".failover-killed-{os.getpid()}-{rep}"
        killed.unlink(missing_ok=True)
        started = []

        def start(name: str, *args: str) -> subprocess.Popen:
            p = subprocess.Popen(
                [*node, name, *args, "failover_bench.py", "idle"],
                cwd=WORKLOADS, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                start_new_session=True,
            )
            started.append(p)
            p.stdout.readline()  # "IDLE READY"
            return p

        try:
            start("c", "--listen", ep_c)
            b = start("b", "--listen", ep_b, "--connect", ep_c)
            cmd = [*node, "a", "--connect", ep_c, "failover_bench.py", "supervisor", str(killed)] + kv(sizes)
            a = subprocess.Popen(
                ["timeout", "-k", "5", "180", *cmd], cwd=WORKLOADS, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, start_new_session=True,
            )
            started.append(a)
            lines = []
            for line in a.stdout:
                lines.append(line)
                if "LOADED" in line:
                    break
            t = time.time()
            _killpg(b.pid)
            killed.write_text(repr(t))
            out, err = a.communicate(timeout=200)
            result = [json.loads(x.split(" ", 1)[1]) for x in (lines + out.splitlines()) if x.startswith("BENCH_JSON ")]
            runs.append(result[0] if result else {"error": f"exit {a.returncode}: {err[-300:]}"})
        finally:
            for p in started:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in started:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    _killpg(p.pid)
            killed.unlink(missing_ok=True)
    good = [r for r in runs if "serving_ms" in r]
    if not good:
        return runs[0] if runs else {"error": "no run"}
    return {key: statistics.median(r[key] for r in good) for key in ("answered_ms", "serving_ms")} | {"runs": runs}


def bench_boc(system: str, sizes: dict) -> dict:
    """rebeam.boc or bocpy (boc_bench.py): trivial behaviours/s on 2 workers; CPU-bound
    behaviours with 1 and with 2 workers, a fresh process for each run, the two alternating."""

    def go(workload: str, workers: int, tag: str) -> dict:
        args = ["boc_bench.py", system, workload, f"workers={workers}"]
        args += [f"{k}={v}" for k, v in sizes.items() if k.startswith("boc_")]
        if system == "rebeam":
            cmd = [str(VENV_BIN / "rebeam"), "--workers", str(workers)] + args
            env = {"BENCH_EXPECT_WORKERS": str(workers + 1)}  # the pool + rebeam's one warm spare
        else:  # bocpy: worker sub-interpreters in this one process, bocpy.start(worker_count=workers)
            cmd, env = [PY] + args, {}
        return first(run(f"{system}-boc-{workload}-w{workers}{tag}", cmd, 240, env), f"boc_{workload}")

    out: dict = {}
    log(f"{system}: boc trivial behaviours ({sizes['boc_n']} over {sizes['boc_cowns']} cowns, 2 workers)")
    out["boc_trivial"] = go("trivial", 2, "")
    log(f"{system}: boc CPU-bound behaviours, 1 worker vs 2 (a fresh process each, alternating)")
    runs: dict[int, list] = {1: [], 2: []}
    for i in range(sizes["boc_cpu_rounds"]):
        for workers in (2, 1):
            runs[workers].append(go("cpu", workers, f"-{i}"))
    out["boc_cpu"] = boc_speedup(runs)
    return out


def boc_speedup(runs: dict[int, list]) -> dict:
    """Speedup from the best (shortest) run with each worker count, as row 3."""
    errors = [r["error"] for rs in runs.values() for r in rs if "error" in r]
    times = {w: [t for r in rs if "error" not in r for t in r["times"]] for w, rs in runs.items()}
    out: dict = {"runs_1": runs[1], "runs_2": runs[2]}
    if errors:
        out["error"] = errors[0]
    if not times[1] or not times[2]:
        return out
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    last2 = next(r for r in reversed(runs[2]) if "error" not in r)
    out.update(
        {
            "k": last2["k"],
            "m": last2["m"],
            "seconds_1": min(times[1]),
            "seconds_2": min(times[2]),
            "speedup": min(times[1]) / min(times[2]),
            "median_seconds_1": med(times[1]),
            "median_seconds_2": med(times[2]),
            "median_speedup": med(times[1]) / med(times[2]),
            "times_1": times[1],
            "times_2": times[2],
            "processes_2": last2["processes"],
            "executors_2": last2["executors"],
        }
    )
    return out


def bench_peer(system: str, sizes: dict, only: set[str], notes: list[str]) -> dict:
    out: dict = {}
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"} if system == "ray" else {}
    mine = [
        w for w in WORKLOADS_OF[system] if w in only and w not in ("hello", "boc", *TASK_WORKLOADS, *DATA_WORKLOADS)
    ]
    if system == "ray" and mine:
        log(f"ray: {', '.join(mine)} in one ray.init()")
        r = run("ray-all", [PY, "peers.py", "ray", "all"] + mine + kv(sizes), 240, env)
        for w in ["init"] + mine:
            out[w] = first(r, w)
    else:
        for w in mine:
            log(f"{system}: {w}")
            out[w] = first(run(f"{system}-{w}", [PY, "peers.py", system, w] + kv(sizes), 120, env), w)
    if "hello" in only and "hello" in WORKLOADS_OF[system]:
        log(f"{system}: hello")
        out["hello"] = hello_times(system, [PY, "-c", HELLO[system]], sizes["hello_reps"], 60, env)
    if "boc" in only and "boc" in WORKLOADS_OF[system]:
        out.update(bench_boc(system, sizes))
    out.update(bench_tasks(system, sizes, only, env))
    out.update(bench_data(system, sizes, only, env))
    reap_leftovers(system, notes)
    return out


def available(system: str) -> tuple[bool, str]:
    if system == "rebeam":
        ok = (VENV_BIN / "rebeam").exists()
        return ok, "" if ok else f"no rebeam binary in {VENV_BIN}"
    if system == "mp":
        return True, ""
    mod = system
    r = run(f"import-{system}", [PY, "-c", f"import {mod}"], 120)
    if r["code"] == 0:
        return True, ""
    note = os.environ.get(f"BENCH_SKIP_{system.upper()}", "")
    return False, note or f"`import {mod}` failed in the bench venv"


def version_of(mod: str) -> str | None:
    r = subprocess.run(
        ["timeout", "60", PY, "-c", f"import importlib.metadata as m; print(m.version('{mod}'))"],
        capture_output=True,
        text=True,
    )
    return r.stdout.strip() or None


ALL_WORKLOADS = [*BASE_WORKLOADS, "host", "nodes", *DATA_WORKLOADS]


def merge_into(previous_path: str, report: dict, only: set[str]) -> dict:
    """A run of some workloads (`--only`): their rows replace those of the previous latest.json,
    whose other rows stay, so the file keeps one row for every measure. The partial run's time,
    load and notes go under `updates`."""
    try:
        prev = json.loads(Path(previous_path).read_text())
    except (OSError, ValueError):
        return report
    raw = prev.get("raw") or {}
    for system, d in report["raw"].items():
        if not isinstance(raw.get(system), dict):
            raw[system] = {}
        raw[system].update(d)
    for key in ("sizes", "versions"):
        merged = prev.get(key) or {}
        for k, v in report[key].items():
            merged[k] = {**merged.get(k, {}), **v} if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
        prev[key] = merged
    skipped = {k: v for k, v in (prev.get("skipped") or {}).items() if k not in report["raw"]}
    skipped.update(report["skipped"])
    table, rows = build_table(raw, [p for p in PEERS if p in raw])
    boc_table, boc_rows = build_table(raw, [p for p in BOC_PEERS if p in raw], BOC_ROWS, rebeam="rebeam.boc")
    hosts = host_systems(raw)
    host_table, host_rows = build_table(hosts, [p for p in HOST_PEERS if p in hosts], HOST_ROWS, rebeam="Rust host")
    label = ",".join(w for w in ALL_WORKLOADS if w in only)
    updates = prev.get("updates") or {}
    updates[label] = {
        "when": report["when"],
        "systems": list(report["raw"]),
        "machine": report["machine"],
        "elapsed_s": report["elapsed_s"],
        "notes": report["notes"],
    }
    prev.update(
        skipped=skipped,
        updates=updates,
        table=rows + boc_rows + host_rows,
        raw=raw,
        markdown=table,
        markdown_boc=boc_table,
        markdown_host=host_table,
    )
    return prev


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--systems", default="rebeam,mp,pykka,ray,bocpy", help="comma-separated subset of rebeam,mp,pykka,ray,bocpy"
    )
    ap.add_argument(
        "--only",
        default=",".join(ALL_WORKLOADS),
        help=f"comma-separated subset of {','.join(ALL_WORKLOADS)}: run only these; latest.json keeps "
        "the other rows from the previous run",
    )
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test, numbers are noisy)")
    ap.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = ap.parse_args()
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if only - set(ALL_WORKLOADS) or set(systems) - set(WORKLOADS_OF):
        ap.error(f"unknown workload or system in --only {args.only!r} / --systems {args.systems!r}")
    partial = only != set(ALL_WORKLOADS)
    # A system with nothing to run under --only (Ray for `--only boc`) is left out, not skipped.
    systems = [s for s in systems if only & set(WORKLOADS_OF[s])]

    RESULTS.mkdir(parents=True, exist_ok=True)
    if LOGS.exists():
        shutil.rmtree(LOGS)
    LOGS.mkdir(parents=True)
    sizes = dict(SIZES)
    if args.quick:
        sizes.update(QUICK)
    peers = [p for p in PEERS if p in systems]
    boc_peers = [p for p in BOC_PEERS if p in systems]
    t_start = time.perf_counter()
    load_before = loadavg()
    notes: list[str] = []
    if load_before and load_before[0] > 0.7:
        notes.append(
            f"load average {load_before[0]:.2f} before the run on a {os.cpu_count()}-core machine: "
            "something else is using the CPU, so the numbers are noisier than usual"
        )
    early = leftovers()
    _preexisting.update(pid for pid, _ in early)
    if early:
        notes.append(f"{len(early)} process(es) from the bench venv were already running before the run (left alone)")

    data: dict = {}
    skipped: dict = {}
    used_sizes: dict = {}
    for system in systems:
        ok, why = available(system)
        if not ok:
            skipped[system] = why
            log(f"{system}: SKIPPED ({why})")
            continue
        s = dict(sizes)
        if not args.quick:
            s.update(OVERRIDES.get(system, {}))
        else:
            s.update({k: min(v, sizes[k]) for k, v in OVERRIDES.get(system, {}).items()})
        used_sizes[system] = s
        try:
            if system == "rebeam":
                data[system] = bench_rebeam(s, only, notes)
            else:
                data[system] = bench_peer(system, s, only, notes)
        except Exception as e:  # never lose the other systems' results
            data[system] = {"error": f"{type(e).__name__}: {e}"}
            notes.append(f"{system}: driver error {type(e).__name__}: {e}")
    baseline: dict = {}
    if "hello" in only:
        log("python -c pass (interpreter start, for reference)")
        baseline = hello_times("python", [PY, "-c", HELLO["python"]], 5, 30)

    for sys_name in ["rebeam"] + peers + boc_peers:
        d = data.get(sys_name) or {}
        for w, v in d.items():
            if isinstance(v, dict) and "error" in v:
                notes.append(f"{sys_name} {w}: {v['error']}")
    rb = data.get("rebeam") or {}
    if g(rb, "call", "different_processes") is False:
        notes.append("rebeam call: both actors ended up in the same worker process (see latest.json)")

    table, rows = build_table(data, peers, ROWS, only)
    boc_table, boc_rows = build_table(data, boc_peers, BOC_ROWS, only, rebeam="rebeam.boc")
    hosts = host_systems(data)
    host_table, host_rows = build_table(hosts, [p for p in HOST_PEERS if p in hosts], HOST_ROWS, only, "Rust host")
    elapsed = time.perf_counter() - t_start
    report = {
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_before": load_before,
            "load_after": loadavg(),
        },
        "versions": {
            "rebeam": version_of("rebeam"),
            **{m: version_of(m) for m in ("pykka", "ray", "bocpy", "numpy") if m in systems or m == "numpy"},
        },
        "sizes": used_sizes,
        "skipped": skipped,
        "notes": notes,
        "baseline_python_start_ms": baseline.get("median_ms"),
        "elapsed_s": elapsed,
        "table": rows + boc_rows + host_rows,
        "raw": data,
        "markdown": table,
        "markdown_boc": boc_table,
        "markdown_host": host_table,
    }
    saved = merge_into(args.out, report, only) if partial else report
    Path(args.out).write_text(json.dumps(saved, indent=2, default=str) + "\n")

    print()
    print(
        f"rebeam vs peers — {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{report['when']}, run took {elapsed:.0f} s"
    )
    if rows:
        print()
        print(table)
    if boc_rows:
        print()
        print("Behaviour-oriented concurrency: rebeam.boc next to bocpy")
        print()
        print(boc_table)
    if host_rows:
        print()
        print("The Rust host (crate rebeam): a Python actor called from Rust, next to in-process PyO3")
        print("and a Python→Python call (row 1's, same run).")
        print()
        print(host_table)
    print()
    print(
        "↓ lower is better, ↑ higher is better. `vs X`: who wins and by how much "
        "(X/rebeam for ↓ rows, rebeam/X for ↑ rows; ≈ within 5%)."
    )
    if baseline.get("median_ms") is not None:
        print(f"For reference: `python -c pass` takes {baseline['median_ms']:.0f} ms here.")
    small = g(rb, "hello_1_worker_no_spare", "median_ms")
    if small is not None:
        print(f"rebeam start to first reply with --workers 1 --spares 0 (2 interpreters instead of 4): {small:.0f} ms.")
    inside = g(rb, "hello", "in_script_median_ms")
    if inside is not None:
        print(
            f"rebeam start to first reply: {inside:.0f} ms of it inside hello.py (import to reply), "
            "the rest is the governor, process start-up and shutdown."
        )
    safety = rb.get("safety") or {}
    if "grace_s" in safety:
        print(
            f"Rows 7 (rebeam only: no peer has a safety gate; in-process embedding cannot stop a C call): "
            f"median of {safety['loop_reps']} / {safety['kill_reps']} disarms, from the control request "
            f"to the caller's SafetyError / to the worker's exit, --safety-grace {safety['grace_s'] * 1000:.0f} ms; "
            f"in the kill case the caller had its SafetyError after {safety['kill_error_median_ms']:.2f} ms."
        )
    if boc_rows:
        print_boc_notes(data, used_sizes)
    for system, why in skipped.items():
        print(f"SKIPPED {LABEL.get(system, system)}: {why}")
    for n in notes:
        print(f"note: {n}")
    kept = " (the other rows kept from the previous run)" if partial and saved is not report else ""
    print(f"\nFull results: {os.path.relpath(args.out)}{kept}; subprocess logs: {os.path.relpath(LOGS)}/")
    return 0


def print_boc_notes(data: dict, used_sizes: dict) -> None:
    """What rows 8 and 9 measured, and where the behaviours ran."""
    sizes = next(iter(used_sizes.values()), SIZES)
    sched = {
        LABEL.get(s, s): g(data, s, "boc_trivial", "schedule_only_per_s")
        for s in ["rebeam"] + BOC_PEERS
        if g(data, s, "boc_trivial", "schedule_only_per_s")
    }
    print(
        f"Row 8: {sizes['boc_n']} behaviours `c.value += 1` over {sizes['boc_cowns']} cowns, median of "
        f"{sizes['boc_reps']} runs; the scheduling loop alone (the @when calls) ran at "
        + ", ".join(f"{k} {v:,.0f}/s" for k, v in sched.items())
        + "."
    )
    where = []
    rb, bp = g(data, "rebeam", "boc_cpu") or {}, g(data, "bocpy", "boc_cpu") or {}
    if "processes_2" in rb:
        where.append(f"rebeam's in {rb['processes_2']} worker process(es)")
    if "executors_2" in bp:
        where.append(f"bocpy's on {bp['executors_2']} worker thread(s) (sub-interpreters) of its one process")
    print(
        f"Row 9: {sizes['boc_cpu_k']} behaviours on independent cowns, each summing i*i over "
        f"{sizes['boc_cpu_m']:,} ints; every run in a fresh process (`rebeam --workers N`, "
        f"`bocpy.start(worker_count=N)`), 1 and 2 workers alternating, best of "
        f"{sizes['boc_cpu_rounds']} × {sizes['boc_cpu_reps']} runs each."
        + (f" The last run on 2 workers ran {'; '.join(where)}." if where else "")
    )
    if "speedup" in bp and sys.version_info < (3, 12):
        print(
            f"bocpy's workers are sub-interpreters of one process, and before CPython 3.12 they share one "
            f"GIL: pure-Python behaviours cannot run in parallel, hence its {bp['speedup']:.2f}× "
            f"on Python {platform.python_version()} (expected, not a fault of the harness)."
        )


if __name__ == "__main__":
    sys.exit(main())
