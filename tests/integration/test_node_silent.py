"""A silent cut between real nodes on loopback: a node SIGSTOPped sends nothing and closes
nothing, so only the link's lease can tell. Its callers are answered when the lease runs out
(not at their own, far longer timeout), monitors fire "node lost", and on SIGCONT the node
rejoins and serves again."""

from __future__ import annotations

import os
import signal
import textwrap

import pytest

from test_nodes import CALLER, HOST, Nodes, finish

# Short, so the test waits little; the rule is the same at the default.
LEASE = "2"


@pytest.fixture
def nodes(tmp_path):
    n = Nodes(tmp_path)
    yield n
    for p in n.procs:  # a stopped node cannot take the SIGTERM that ends it
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
    n.stop()


def test_a_stopped_node_is_lost_at_its_lease_and_rejoins_when_it_goes_on(nodes, tmp_path):
    host, endpoint = nodes.listening("a", HOST, "--lease", LEASE)
    caller = nodes.start("b", CALLER + textwrap.dedent('''
        import pathlib
        from rebeam import monitor, receive_down
        wait_nodes("a", "b")
        show("add", call("counter", "add", 1))
        ref = monitor("counter")
        time.sleep(0.3)
        print("READY TO STOP", flush=True)
        while not pathlib.Path("stopped").exists():
            time.sleep(0.02)
        # Far longer than the test waits: only the lease can end this call in time.
        show("during", call("counter", "add", 1, timeout=300))
        d = receive_down(30)
        print("down:", d.ref == ref, d.reason[0], d.reason[1], flush=True)
        # The node set reaches this process on its own way: wait for it, boundedly.
        end = time.monotonic() + 10
        while "a" in rebeam.nodes() and time.monotonic() < end:
            time.sleep(0.02)
        print("nodes during:", rebeam.nodes(), flush=True)
        print("LOST", flush=True)
        end = time.monotonic() + 40
        while time.monotonic() < end:
            if "a" in rebeam.nodes() and call("counter", "add", 0)[0] == "ok":
                break
            time.sleep(0.1)
        show("after", call("counter", "add", 1))
    '''), "--connect", endpoint, "--lease", LEASE, cookie=nodes.cookie)
    seen = nodes.wait_line(caller, "READY TO STOP")
    # The governor alone: its link goes silent, and nothing closes it.
    os.kill(host.pid, signal.SIGSTOP)
    (tmp_path / "stopped").touch()
    seen += nodes.wait_line(caller, "LOST")
    os.kill(host.pid, signal.SIGCONT)
    code, out, err = finish(caller, timeout=90)
    out = seen + out
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "add: ok (1, 'a')" in out, out
    assert "during: error ActorDown" in out and "node a was lost" in out, out
    assert "down: True killed node lost: node a" in out, out
    assert "nodes during: ['b']" in out, out
    # Back, with its state: the actor was never stopped, only its node's link.
    assert "after: ok (" in out and ", 'a')" in out.split("after:")[1], out
