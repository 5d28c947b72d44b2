"""Names and down notices across nodes, end to end on loopback: `whereis` of a name on another
node gives a ProcessID naming that node, a down notice's ProcessID names the node of the actor
that ended, and a demonitor takes the monitor off the other node too."""

from __future__ import annotations

import re
import signal
import textwrap

from test_nodes import CALLER, HOST, finish


def test_whereis_of_a_name_on_another_node_names_that_node(nodes, tmp_path):
    _, endpoint = nodes.listening("a")
    caller = nodes.start("b", CALLER + textwrap.dedent('''
        from rebeam import whereis
        wait_nodes("a", "b")
        pid = whereis("counter")
        print("found:", repr(pid), flush=True)
        show("by found pid", call(pid, "add", 7))
        show("same actor", call("counter", "is_me", pid))
        print("nobody:", whereis("nobody"), flush=True)
    '''), "--connect", endpoint, cookie=nodes.cookie)
    code, out, err = finish(caller)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert re.search(r"found: ProcessID\(\d+, 'counter', node='a'\)", out), out
    assert "by found pid: ok (7, 'a')" in out, out
    assert "same actor: ok (True," in out, out
    assert "nobody: None" in out, out


def test_a_down_notice_names_the_actor_s_node_and_a_demonitor_takes_the_monitor_off_it(nodes, tmp_path):
    host, endpoint = nodes.listening("a", HOST, "--log-level", "info,rebeam_node=debug")
    caller = nodes.start("b", CALLER + textwrap.dedent('''
        from rebeam import demonitor, monitor, receive_down
        wait_nodes("a", "b")
        first = monitor("counter")
        show("boom", call("counter", "boom"))
        d = receive_down(20)
        print("down:", d.ref == first, repr(d.pid), flush=True)
        end = time.monotonic() + 20
        while call("counter", "add", 0)[0] != "ok" and time.monotonic() < end:
            time.sleep(0.02)
        # One taken off while its node may still be setting it, one once it is set.
        demonitor(monitor("counter"))
        later = monitor(call("counter", "whoami")[1])
        time.sleep(0.5)
        demonitor(later)
        print("DEMONITORED", flush=True)
        time.sleep(600)
    '''), "--connect", endpoint, cookie=nodes.cookie)
    seen = nodes.wait_line(caller, "DEMONITORED")
    assert re.search(r"down: True ProcessID\(\d+, 'counter', node='a'\)", seen), seen
    host.send_signal(signal.SIGTERM)
    _, err = host.communicate(timeout=30)
    # Both monitors were taken off node a (before, they stayed there until the actor ended).
    assert err.count("node b took off its monitor") == 2, err
