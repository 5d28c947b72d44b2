"""Casts across nodes, end to end on loopback: a cast to a node that is up is answered as sent
without waiting for that node (pipelined), so several senders' bursts stay in order per sender,
and casts in flight when their node is lost are counted as lost, never left to hang."""

from __future__ import annotations

import os
import re
import signal
import textwrap

from helpers import wait_until
from test_nodes import CALLER, HOST, finish

PER_SENDER = 2000
#: Seconds: longer than a loaded machine could take between stopping a node and killing it.
LONG_LEASE = "60"


def all_stopped(pid: int) -> bool:
    """Whether every thread of process `pid` is stopped (state T in its stat line)."""
    tasks = os.listdir(f"/proc/{pid}/task")
    states = []
    for task in tasks:
        with open(f"/proc/{pid}/task/{task}/stat") as f:
            states.append(f.read().rsplit(")", 1)[1].split()[0])
    return bool(states) and all(s == "T" for s in states)


def test_casts_from_several_senders_at_once_stay_in_order_per_sender(nodes, tmp_path):
    _, endpoint = nodes.listening("a")
    caller = nodes.start("b", CALLER + textwrap.dedent(f'''
        import threading
        from rebeam import cast
        wait_nodes("a", "b")
        call("counter", "add", 0)
        results = {{}}

        def burst(k):
            results[k] = all([cast("counter", "push", (k, i)) for i in range({PER_SENDER})])

        threads = [threading.Thread(target=burst, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("all sent:", all(results.values()), len(results), flush=True)
        status, pushed = call("counter", "pushed")
        for k in range(4):
            mine = [i for (who, i) in pushed if who == k]
            print(f"sender {{k}}:", mine == list(range({PER_SENDER})), len(mine), flush=True)
    '''), "--connect", endpoint, cookie=nodes.cookie)
    code, out, err = finish(caller, timeout=120)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "all sent: True 4" in out, out
    # Each sender's casts all arrived, in the order it sent them, and before the call after them.
    for k in range(4):
        assert f"sender {k}: True {PER_SENDER}" in out, out


def test_casts_in_flight_when_their_node_is_lost_are_counted_lost_and_later_ones_not_delivered(nodes, tmp_path):
    # A long lease: node a is stopped on purpose, and is to be lost only when it is killed.
    host, endpoint = nodes.listening("a", HOST, "--lease", LONG_LEASE)
    stopped = tmp_path / "a-stopped"
    caller = nodes.start("b", CALLER + textwrap.dedent(f'''
        from rebeam import cast
        wait_nodes("a", "b")
        show("warm", call("counter", "add", 0))
        print("READY TO STOP", flush=True)
        while not os.path.exists({str(stopped)!r}):
            time.sleep(0.01)
        # Node a is stopped: nothing it answers comes, yet these return at once, as sent.
        sent = [cast("counter", "push", i) for i in range(300)]
        print("sent while stopped:", sent.count(True), flush=True)
        print("READY TO KILL", flush=True)
        end = time.monotonic() + 30
        while "a" in rebeam.nodes() and time.monotonic() < end:
            time.sleep(0.02)
        print("a gone:", "a" not in rebeam.nodes(), flush=True)
        print("after the loss:", cast("counter", "push", -1), flush=True)
        time.sleep(2)
    '''), "--connect", endpoint, "--lease", LONG_LEASE, cookie=nodes.cookie)
    seen = nodes.wait_line(caller, "READY TO STOP")
    os.kill(host.pid, signal.SIGSTOP)
    # Every thread of it stopped before the casts start (a loaded machine may take a while).
    assert wait_until(lambda: all_stopped(host.pid), timeout=30), "node a did not stop"
    stopped.touch()
    seen += nodes.wait_line(caller, "READY TO KILL")
    os.kill(host.pid, signal.SIGKILL)
    code, out, err = finish(caller)
    out = seen + out
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "warm: ok (0, 'a')" in out, out
    assert "sent while stopped: 300" in out, out
    assert "a gone: True" in out, out
    assert "after the loss: False" in out, out
    # The 300 were in flight when node a was lost: counted, and logged as one run.
    lost = [int(n) for n in re.findall(r"(\d+) casts to other nodes, sent, were lost", err)]
    assert sum(lost) == 300, err
