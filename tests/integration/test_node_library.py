"""Library mode as a node: a plain `python` program that calls rebeam.init(node=..., connect=...)
joins a `rebeam --node` run: it calls an actor there by name, its own actor is called from
there (by name and by a ProcessID it handed over), it sees rebeam.nodes(), and a call into the
other node gets ActorDown when that node is SIGKILLed; and it places actors with spawn(node=) on
the other node and on its own, with StartError naming a node that is not up or a name taken
there."""

from __future__ import annotations

import os
import signal
import textwrap

from test_nodes import CALLER, HOST, cookie_file, finish

# The host's Counter, and an actor that calls back whatever it is given (a name or a pid).
CALLS_BACK = HOST.replace('if __name__ == "__main__":', textwrap.dedent('''
    class Caller(GenPy):
        name = "caller"

        @receive("call_back")
        def call_back(self, source, target):
            return rebeam.call(target, "hello", "a")

    if __name__ == "__main__":
        Supervisor(name="callers", modules=[Caller()])'''), 1)

LIBRARY = CALLER + textwrap.dedent('''
    from rebeam import GenPy, receive

    class Echo(GenPy):
        @receive("hello")
        def hello(self, source, who):
            return f"hello {who}, from {os.environ['NODE_TAG']}"

    rebeam.init(1, node="b", connect=[sys.argv[1]])
    wait_nodes("a", "b")
    print("nodes:", rebeam.nodes(), flush=True)
    echo = rebeam.spawn(Echo(), name="echo")
    show("add", call("counter", "add", 2))
    show("by name", call("caller", "call_back", "echo"))
    show("by pid", call("caller", "call_back", echo))
    show("sleep", call("counter", "sleep", 600, timeout=300))
    end = time.monotonic() + 20
    while "a" in rebeam.nodes() and time.monotonic() < end:
        time.sleep(0.02)
    print("nodes after:", rebeam.nodes(), flush=True)
''')


def test_a_plain_python_program_joins_as_a_node_calls_is_called_and_sees_the_other_node_lost(nodes, tmp_path):
    host, endpoint = nodes.listening("a", CALLS_BACK)
    # The cookie as REBEAM_COOKIE, as `rebeam --node` takes it without --cookie-file.
    library = nodes.python("b", LIBRARY, endpoint, env={"REBEAM_COOKIE": nodes.cookie.read_text().strip()})
    nodes.wait_line(host, "SLEEPING")
    os.kill(host.pid, signal.SIGKILL)
    code, out, err = finish(library, timeout=60)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "nodes: ['a', 'b']" in out, out
    assert "add: ok (2, 'a')" in out, out
    assert "by name: ok ('ok', 'hello a, from b')" in out, out
    assert "by pid: ok ('ok', 'hello a, from b')" in out, out
    assert "sleep: error ActorDown" in out and "node a was lost" in out, out
    assert "nodes after: ['b']" in out, out


def test_a_library_node_with_another_cookie_is_refused_and_runs_nothing(nodes, tmp_path):
    _, endpoint = nodes.listening("a")
    stranger = nodes.python("intruder", textwrap.dedent('''
        import sys
        import rebeam
        try:
            rebeam.init(1, node="intruder", connect=sys.argv[1], cookie_file=sys.argv[2], join_timeout=1)
        except rebeam.NotRunning as e:
            print("refused:", e, flush=True)
        else:
            print("JOINED", rebeam.nodes(), flush=True)
    '''), endpoint, str(cookie_file(tmp_path, "a-guess", "wrong-cookie")))
    code, out, err = finish(stranger)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "JOINED" not in out and "refused: the rebeam governor did not start" in out, out
    assert "intruder cannot join" in err and "same cookie" in err, err


# One source for both nodes, as a real deployment has: under `rebeam --node a` it serves, and
# as a plain `python` program it joins as node b and places actors on both nodes.
PLACING = CALLER + textwrap.dedent('''
    from rebeam import GenPy, StartError, Supervisor, receive, spawn

    class Svc(GenPy):
        def __init__(self, name):
            self.name = name

        @receive("where")
        def where(self, source, _):
            return os.environ["NODE_TAG"]

    if __name__ == "__main__":
        if os.environ["NODE_TAG"] == "a":
            Supervisor(modules=[Svc("home")])
            print("HOST READY", flush=True)
        else:
            rebeam.init(1, node="b", connect=[sys.argv[1]])
            wait_nodes("a", "b")
            far = spawn(Svc("far"), node="a")
            print("far:", far.node, call("far", "where"), call(far, "where"), flush=True)
            near = spawn(Svc("near"), node="b")
            print("near:", near.node, call(near, "where"), flush=True)
            for node, name in [("nowhere", "lost"), ("a", "far")]:
                try:
                    spawn(Svc(name), node=node)
                    print(f"{node}: started", flush=True)
                except StartError as e:
                    print(f"{node}: StartError", e, flush=True)
            rebeam.shutdown()
''')


def test_a_library_node_places_actors_on_the_other_node_and_on_its_own(nodes, tmp_path):
    _, endpoint = nodes.listening("a", PLACING)
    library = nodes.python("b", PLACING, endpoint, env={"REBEAM_COOKIE": nodes.cookie.read_text().strip()})
    code, out, err = finish(library, timeout=60)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "far: a ('ok', 'a') ('ok', 'a')" in out, out
    assert "near: None ('ok', 'b')" in out, out
    assert "nowhere: StartError cannot start actor Svc: node nowhere is not up (nodes up: a, b)" in out, out
    assert "a: StartError on node a: the name 'far' is already registered" in out, out
