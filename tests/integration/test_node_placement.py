"""Placement on a named node, end to end on loopback: `spawn(..., node=)` starting an actor on
another node's governor, and a supervisor on node a whose child runs on b (allowed on b or c)
restarted on c when the whole of node b is SIGKILLed under steady calls by name."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import textwrap
import time

from helpers import wait_until
from test_nodes import cookie_file, finish, free_port

PROGRAM = textwrap.dedent(
    '''
    import json, os, sys, threading, time
    import rebeam
    from rebeam import GenPy, StartError, Supervisor, call, child, receive, spawn

    NODE = os.environ["NODE_TAG"]
    CALL_TIMEOUT = 10.0

    class Svc(GenPy):
        def __init__(self, name):
            self.name = name

        @receive("where")
        def where(self, source, _):
            return os.environ["NODE_TAG"]

    def wait_nodes(*names):
        end = time.monotonic() + 30
        while not set(names) <= set(rebeam.nodes()):
            if time.monotonic() > end:
                print("TIMED OUT waiting for nodes", rebeam.nodes(), flush=True)
                sys.exit(3)
            time.sleep(0.05)

    def spawning():
        wait_nodes("a", "b")
        pid = spawn(Svc("far"), node="b")
        print("pid:", repr(pid), flush=True)
        print("by name:", call("far", "where"), flush=True)
        print("by pid:", call(pid, "where"), flush=True)
        for node, name in [("nowhere", "x"), ("b", "far")]:
            try:
                spawn(Svc(name), node=node)
                print(f"{node}: started", flush=True)
            except StartError as e:
                print(f"{node}: StartError", e, flush=True)
        near = spawn(Svc("near"), node="a")
        print("near:", repr(near), call(near, "where"), flush=True)
        rebeam.shutdown()

    def failover(killed_file, out_file):
        wait_nodes("a", "b", "c")
        Supervisor(modules=[child(Svc("svc"), node=["b", "c"])], max_restarts=5)
        results, lock, stop = [], threading.Lock(), threading.Event()

        def caller(i):
            while not stop.is_set():
                t0 = time.time()
                status, value = call("svc", "where", timeout=CALL_TIMEOUT)
                t1 = time.time()
                kind = value if status == "ok" else type(value).__name__
                with lock:
                    results.append((i, t0, t1, status, kind))
                if status != "ok":
                    time.sleep(0.002)

        def served(node, since=0.0):
            with lock:
                return [sum(1 for r in results if r[0] == i and r[4] == node and r[1] > since) for i in range(3)]

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        end = time.monotonic() + 60
        while min(served("b")) < 20 and time.monotonic() < end:
            time.sleep(0.01)
        print("LOADED", served("b"), flush=True)
        while not os.path.exists(killed_file) and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(0.05)
        killed = float(open(killed_file).read())
        end = time.monotonic() + 60
        while min(served("c", killed)) < 20 and time.monotonic() < end:
            time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join()
        with open(out_file, "w") as f:
            json.dump(results, f)
        print("DONE", served("c", killed), flush=True)
        rebeam.shutdown()

    def probe():
        wait_nodes("c", "d")
        status, value = call("svc", "where")
        print("probe:", status, type(value).__name__, flush=True)

    if __name__ == "__main__":
        if ROLE == "probe":
            probe()
        elif ROLE == "spawning":
            spawning()
        elif ROLE == "failover":
            failover(*ARGS)
        else:
            print("IDLE READY", flush=True)
            while True:
                time.sleep(60)
    '''
)


def program(role: str = "idle", *args: str) -> str:
    """The one program every node runs (so that a child's class is importable on each), with
    this node's part in the test."""
    return f"ROLE = {role!r}\nARGS = {list(args)!r}\n" + PROGRAM


def descendants(pid: int) -> list[int]:
    """`pid` and every process under it."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return found


def test_spawn_on_a_named_node_starts_it_there_and_a_node_not_up_or_refusing_is_a_clear_error(nodes, tmp_path):
    _, endpoint = nodes.listening("b", program(), ready="IDLE READY")
    a = nodes.start("a", program("spawning"), "--connect", endpoint, cookie=nodes.cookie)
    code, out, err = finish(a)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert re.search(r"pid: ProcessID\(\d+, 'far', node='b'\)", out), out
    assert "by name: ('ok', 'b')" in out, out
    assert "by pid: ('ok', 'b')" in out, out
    assert "nowhere: StartError" in out and "node nowhere is not up" in out, out
    refused = out.split("b: StartError", 1)[1].splitlines()[0]
    assert "on node b" in refused and "'far'" in refused, out
    assert re.search(r"near: ProcessID\(\d+, 'near'\) \('ok', 'a'\)", out), out


def test_a_child_on_a_node_killed_whole_restarts_on_a_node_that_remains_with_every_call_answered(nodes, tmp_path):
    cookie = cookie_file(tmp_path, "s3cret-shared")
    port_c = free_port()
    port_b = free_port()
    c = nodes.start("c", program(), "--listen", f"tcp/127.0.0.1:{port_c}", cookie=cookie)
    nodes.wait_line(c, "IDLE READY")
    b = nodes.start("b", program(), "--listen", f"tcp/127.0.0.1:{port_b}", "--connect", f"tcp/127.0.0.1:{port_c}",
                    cookie=cookie)
    nodes.wait_line(b, "IDLE READY")
    killed_file, out_file = tmp_path / "killed", tmp_path / "calls.json"
    a = nodes.start("a", program("failover", str(killed_file), str(out_file)), "--connect",
                    f"tcp/127.0.0.1:{port_c}", cookie=cookie)
    seen = nodes.wait_line(a, "LOADED")
    # The whole of node b: its governor and every process under it, at once.
    whole_b = descendants(b.pid)
    assert len(whole_b) >= 2, whole_b
    killed_at = time.time()
    for pid in whole_b:
        # A process listed a moment ago may have ended since (the zygote's short-lived fork).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed_file.write_text(repr(killed_at))
    code, out, err = finish(a, timeout=120)
    out = seen + out
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "DONE" in out, out
    calls = json.loads(out_file.read_text())
    kinds = {kind for *_, status, kind in calls if status != "ok"}
    assert kinds <= {"ActorDown", "NoProcess"}, f"every call answered, none timed out: {kinds}"
    served = {kind for *_, status, kind in calls if status == "ok"}
    assert served == {"b", "c"}, served
    first_c = min(t1 for _, t0, t1, status, kind in calls if kind == "c" and status == "ok")
    after = [kind for _, t0, t1, status, kind in calls if t0 > first_c and status == "ok"]
    assert after and set(after) == {"c"}, "once it serves on c, it serves on c alone (b is gone)"
    assert not any(t0 > killed_at + 1 and status == "ok" and kind == "b" for _, t0, _, status, kind in calls)
    assert wait_until(lambda: all(not os.path.exists(f"/proc/{p}") or _zombie(p) for p in whole_b), timeout=10)
    # a's shutdown stopped its tree, and so the child it had placed on c.
    probe = nodes.start("d", program("probe"), "--connect", f"tcp/127.0.0.1:{port_c}", cookie=cookie)
    code, out, err = finish(probe)
    assert code == 0 and "probe: error NoProcess" in out, f"{out}\n--- stderr ---\n{err}"
    # The figures: node loss → callers answered → serving again on c (read, not asserted).
    in_flight = [t1 for _, t0, t1, *_ in calls if t0 <= killed_at <= t1]
    answered = (max(in_flight) - killed_at) * 1000 if in_flight else 0.0
    print(f"node loss -> callers answered {answered:.1f} ms -> serving on c {(first_c - killed_at) * 1000:.1f} ms")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
