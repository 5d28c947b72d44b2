"""Several nodes on loopback, end to end: real `rebeam --node` runs joined over Zenoh, calls by
name across them, a stranger with the wrong cookie, and a node SIGKILLed mid-call."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import uuid

from helpers import REBEAM, processes_with, program_env, wait_until, write_script

HOST = textwrap.dedent(
    '''
    import os, time
    import rebeam
    from rebeam import GenPy, Supervisor, receive, start

    class Counter(GenPy):
        def __init__(self, name):
            self.name = name

        @start()
        def init(self):
            self.state["n"] = 0

        @receive("add")
        def add(self, source, n):
            self.state["n"] += n
            return (self.state["n"], os.environ["NODE_TAG"])

        @receive("sleep")
        def sleep(self, source, seconds):
            print("SLEEPING", flush=True)
            time.sleep(seconds)
            return "slept"

        @receive("boom")
        def boom(self, source, _):
            raise ValueError("boom on the host node")

        @receive("push")
        def push(self, source, item):
            self.state.setdefault("pushed", []).append(item)

        @receive("pushed")
        def pushed(self, source, _):
            return self.state.get("pushed", [])

        @receive("whoami")
        def whoami(self, source, _):
            return self.pid

        @receive("is_me")
        def is_me(self, source, pid):
            return (pid == self.pid, repr(pid))

    if __name__ == "__main__":
        Supervisor(modules=[Counter("counter")])
        print("HOST READY", flush=True)
    '''
)

CALLER = textwrap.dedent(
    '''
    import os, sys, time
    import rebeam
    from rebeam import call

    def wait_nodes(*names):
        end = time.monotonic() + 20
        while not set(names) <= set(rebeam.nodes()):
            if time.monotonic() > end:
                print("TIMED OUT waiting for nodes", rebeam.nodes(), flush=True)
                sys.exit(3)
            time.sleep(0.05)

    def show(label, r):
        v = r[1]
        print(f"{label}:", r[0], type(v).__name__ if isinstance(v, BaseException) else repr(v), flush=True)
        if isinstance(v, BaseException):
            print(f"{label} says:", v, flush=True)
    '''
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cookie_file(tmp_path, text: str, name: str = "cookie"):
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


class Nodes:
    """Nodes started by one test, all marked so that the test can tell nothing is left."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.mark = f"nodes-{uuid.uuid4().hex}"
        self.procs: list[subprocess.Popen] = []
        self._cookie = None

    @property
    def cookie(self):
        """The system's cookie file, made on first use: the nodes of a test share it."""
        if self._cookie is None:
            self._cookie = cookie_file(self.tmp_path, "s3cret-shared")
        return self._cookie

    def listening(self, name: str, source: str = HOST, *args: str, ready: str = "HOST READY", scheme: str = "tcp",
                  cookie=None, workers: int = 1) -> tuple[subprocess.Popen, str]:
        """Node `name` listening on a free loopback port, once it printed `ready`: its process and
        its endpoint (the others `--connect` to it). The cookie is the system's unless one is given."""
        endpoint = f"{scheme}/127.0.0.1:{free_port()}"
        p = self.start(name, source, "--listen", endpoint, *args, cookie=cookie or self.cookie, workers=workers)
        self.wait_line(p, ready)
        return p, endpoint

    def start(self, name: str, source: str, *args: str, cookie, workers: int = 1) -> subprocess.Popen:
        script = write_script(self.tmp_path, source, f"{name}.py")
        cmd = [REBEAM, "--workers", str(workers), "--node", name, "--cookie-file", str(cookie), *args, str(script)]
        env = program_env({"REBEAM_TEST_MARK": self.mark, "NODE_TAG": name})
        p = subprocess.Popen(cmd, cwd=self.tmp_path, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        return p

    def python(self, name: str, source: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        """A plain `python` program (library mode) that joins as a node itself (rebeam.init)."""
        script = write_script(self.tmp_path, source, f"{name}.py")
        env = program_env({"REBEAM_TEST_MARK": self.mark, "NODE_TAG": name, **(env or {})})
        p = subprocess.Popen([sys.executable, str(script), *args], cwd=self.tmp_path, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        return p

    def wait_line(self, p: subprocess.Popen, text: str) -> str:
        seen = []
        for line in p.stdout:
            seen.append(line)
            if text in line:
                return "".join(seen)
        raise AssertionError(f"no {text!r} in the output:\n{''.join(seen)}\n--- stderr ---\n{p.stderr.read()}")

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        leftovers = wait_until(lambda: not processes_with(self.mark), timeout=10)
        assert leftovers, f"processes left behind: {processes_with(self.mark)}"


def finish(p: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def test_a_name_on_one_node_is_callable_from_another(nodes, tmp_path):
    host, endpoint = nodes.listening("a")
    caller = nodes.start("b", CALLER + textwrap.dedent('''
        wait_nodes("a", "b")
        print("nodes:", rebeam.nodes(), flush=True)
        show("add", call("counter", "add", 2))
        show("add again", call("counter", "add", 3))
        show("boom", call("counter", "boom"))
        show("nobody", call("nobody", "add", 1))
    '''), "--connect", endpoint, cookie=nodes.cookie)
    code, out, err = finish(caller)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "nodes: ['a', 'b']" in out
    # The actor ran on node a, and kept its state between the calls.
    assert "add: ok (2, 'a')" in out
    assert "add again: ok (5, 'a')" in out
    assert "boom: error RemoteError" in out and "boom on the host node" in out
    assert "nobody: error NoProcess" in out
    assert "'nobody'" in out.split("nobody says:")[1]


def test_a_stranger_with_another_cookie_is_refused(nodes, tmp_path):
    host, endpoint = nodes.listening("a", cookie=cookie_file(tmp_path, "the-real-one"))
    stranger = nodes.start("intruder", CALLER + textwrap.dedent('''
        print("STRANGER RAN", flush=True)
        show("add", call("counter", "add", 1))
    '''), "--connect", endpoint, "--join-timeout", "1",
        cookie=cookie_file(tmp_path, "a-guess", "wrong-cookie"))
    code, out, err = finish(stranger)
    assert code != 0, out
    assert "STRANGER RAN" not in out, "a node that cannot join runs nothing"
    assert "intruder cannot join" in err and "same cookie" in err, err
    # The host never saw it: a caller with the right cookie finds only a and itself.
    caller = nodes.start("b", CALLER + textwrap.dedent('''
        wait_nodes("a", "b")
        print("nodes:", rebeam.nodes(), flush=True)
    '''), "--connect", endpoint, cookie=cookie_file(tmp_path, "the-real-one", "right-cookie"))
    code, out, err = finish(caller)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "nodes: ['a', 'b']" in out
    host.send_signal(signal.SIGTERM)
    _, host_err = host.communicate(timeout=30)
    assert "refused a link from a node whose cookie is not this node's" in host_err, host_err


def test_a_node_killed_mid_call_gives_its_callers_actor_down_at_once(nodes, tmp_path):
    host, endpoint = nodes.listening("a")
    caller = nodes.start("b", CALLER + textwrap.dedent('''
        wait_nodes("a", "b")
        show("add", call("counter", "add", 1))
        # Far longer than the test waits: only the node's loss can end this call in time.
        show("sleep", call("counter", "sleep", 600, timeout=300))
        end = time.monotonic() + 20
        while "a" in rebeam.nodes() and time.monotonic() < end:
            time.sleep(0.02)
        print("nodes after:", rebeam.nodes(), flush=True)
        show("after", call("counter", "add", 1))
    '''), "--connect", endpoint, cookie=nodes.cookie)
    nodes.wait_line(host, "SLEEPING")
    # The call runs on node a, which dies whole: its governor, then its workers with it.
    os.kill(host.pid, signal.SIGKILL)
    code, out, err = finish(caller, timeout=60)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "sleep: error ActorDown" in out, out
    assert "node a was lost" in out, out
    assert "nodes after: ['b']" in out, out
    assert "after: error NoProcess" in out, out


def test_three_nodes_a_caller_reaches_a_name_on_a_node_it_was_not_told_of(nodes, tmp_path):
    _, endpoint_a = nodes.listening("a", "import time\nprint('IDLE READY', flush=True)\ntime.sleep(600)\n",
                                    ready="IDLE READY")
    nodes.listening("b", HOST, "--connect", endpoint_a)
    # c knows only a's endpoint; it learns of b through a.
    caller = nodes.start("c", CALLER + textwrap.dedent('''
        wait_nodes("a", "b", "c")
        print("nodes:", rebeam.nodes(), flush=True)
        show("add", call("counter", "add", 40))
    '''), "--connect", endpoint_a, cookie=nodes.cookie)
    code, out, err = finish(caller)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "nodes: ['a', 'b', 'c']" in out
    assert "add: ok (40, 'b')" in out


def test_casts_cross_nodes_in_order_and_a_cast_to_a_name_on_no_node_is_not_delivered(nodes, tmp_path):
    host, endpoint = nodes.listening("a")
    caller = nodes.start("b", CALLER + textwrap.dedent('''
        from rebeam import cast
        wait_nodes("a", "b")
        sent = [cast("counter", "push", i) for i in range(300)]
        print("all delivered:", all(sent), flush=True)
        show("pushed", call("counter", "pushed"))
        print("to nobody:", cast("nobody", "push", 1), flush=True)
    '''), "--connect", endpoint, cookie=nodes.cookie)
    code, out, err = finish(caller)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "all delivered: True" in out, out
    # Every cast arrived, in the order sent (FIFO from one sender to one actor).
    assert f"pushed: ok {list(range(300))!r}" in out, out
    assert "to nobody: False" in out, out


def test_a_process_id_handed_to_another_node_names_its_node_and_reaches_its_actor(nodes, tmp_path):
    host, endpoint = nodes.listening("a")
    caller = nodes.start("b", CALLER + textwrap.dedent('''
        from rebeam import cast, ProcessID
        wait_nodes("a", "b")
        pid = call("counter", "whoami")[1]
        print("pid:", repr(pid), flush=True)
        show("by pid", call(pid, "add", 5))
        print("cast by pid:", cast(pid, "push", "x"), flush=True)
        show("pushed", call(pid, "pushed"))
        # Handed back to its own node, it is a local pid again.
        show("is me", call("counter", "is_me", pid))
        gone = ProcessID(pid.id, None, "gone")
        show("gone", call(gone, "add", 1))
        print("cast gone:", cast(gone, "push", 1), flush=True)
        show("stale", call(ProcessID(pid.id + 1000, None, "a"), "add", 1))
    '''), "--connect", endpoint, cookie=nodes.cookie)
    code, out, err = finish(caller)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert re.search(r"pid: ProcessID\(\d+, 'counter', node='a'\)", out), out
    assert "by pid: ok (5, 'a')" in out, out
    assert "cast by pid: True" in out, out
    assert "pushed: ok ['x']" in out, out
    assert "is me: ok (True, \"ProcessID" in out and "node=" not in out.split("is me:")[1].splitlines()[0], out
    assert "gone: error NoProcess" in out and "node gone, which is not up" in out, out
    assert "cast gone: False" in out, out
    assert "stale: error NoProcess" in out, out


def test_a_monitor_on_another_node_s_actor_fires_when_it_ends_and_when_its_node_is_lost(nodes, tmp_path):
    host, endpoint = nodes.listening("a")
    caller = nodes.start("b", CALLER + textwrap.dedent('''
        from rebeam import monitor, receive_down
        wait_nodes("a", "b")
        first = monitor("counter")
        show("boom", call("counter", "boom"))
        d = receive_down(20)
        print("down on crash:", d.reason[0], d.ref == first, d.pid.name, flush=True)
        monitor("nobody")
        d = receive_down(20)
        print("down on nobody:", d.reason[0], d.reason[1], flush=True)
        end = time.monotonic() + 20
        while call("counter", "add", 0)[0] != "ok" and time.monotonic() < end:
            time.sleep(0.02)
        by_pid = monitor(call("counter", "whoami")[1])
        print("READY TO KILL", flush=True)
        d = receive_down(30)
        print("down on loss:", d.reason[0], d.ref == by_pid, d.reason[1], flush=True)
    '''), "--connect", endpoint, cookie=nodes.cookie)
    seen = nodes.wait_line(caller, "READY TO KILL")
    os.kill(host.pid, signal.SIGKILL)
    code, out, err = finish(caller)
    out = seen + out
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "down on crash: crashed True counter" in out, out
    assert "down on nobody: killed noproc:" in out, out
    assert "down on loss: killed True node lost: node a" in out, out
