"""A partition, made real and healed: three nodes on loopback, the third (c) in a network
namespace of its own (`unshare -rn`), so that it reaches the others only through links the test
carries for it; the test cuts them, then lets them through again. Calls across the cut are
answered with errors, calls after the heal succeed, the cut-off node disarmed itself and arms
again only when the authority arms after the heal. Also calls by name among three nodes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading

import pytest

from helpers import REBEAM, program_env, wait_until, write_script
from test_node_safety import CONTACT, Log
from test_nodes import CALLER, HOST, Nodes, cookie_file, free_port

# Runs in c's namespace: brings its loopback up, opens the listening sockets c connects to and
# hands them to the test (which carries their links to the other nodes), then becomes c's node.
INSIDE = textwrap.dedent(
    '''
    import os, socket, subprocess, sys
    desk, count, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    listeners = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        listeners.append(s)
    ports = [str(s.getsockname()[1]) for s in listeners]
    with socket.socket(socket.AF_UNIX) as u:
        u.connect(desk)
        socket.send_fds(u, [" ".join(ports).encode()], [s.fileno() for s in listeners])
        u.recv(1)
    for s in listeners:
        s.close()
    for i, port in enumerate(ports):
        cmd = [a.replace(f"@PORT{i}@", port) for a in cmd]
    os.execvp(cmd[0], cmd)
    '''
)

CEE = textwrap.dedent(
    '''
    import os, time
    from rebeam import GenPy, Supervisor, receive

    class Cee(GenPy):
        name = "cee"

        @receive("where")
        def where(self, source, _):
            return os.environ["NODE_TAG"]

        @receive("sleep")
        def sleep(self, source, seconds):
            print("SLEEPING", flush=True)
            time.sleep(seconds)
            return "slept"
    '''
)

# What each side does around the cut: the test says when the cut and the heal are made.
PHASES = textwrap.dedent(
    '''
    def wait_file(name):
        while not os.path.exists(name):   # in the test's directory, every node's cwd
            time.sleep(0.02)

    def until_ok(label, *args):
        end = time.monotonic() + 30
        while True:
            r = call(*args, timeout=5)
            if r[0] == "ok" or time.monotonic() > end:
                return show(label, r)
            time.sleep(0.05)

    def phases(me, far, name, subject, arg):
        until_ok(f"{me} before", name, subject, arg)
        print(f"{me} PHASE1", flush=True)
        wait_file("cut")
        end = time.monotonic() + 20
        while far in rebeam.nodes() and time.monotonic() < end:
            time.sleep(0.02)
        print(f"{me} nodes cut:", rebeam.nodes(), flush=True)
        show(f"{me} during", call(name, subject, arg, timeout=5))
        print(f"{me} PHASE2", flush=True)
        wait_file("healed")
        until_ok(f"{me} after", name, subject, arg)
        print(f"{me} DONE", flush=True)
    '''
)


class Bridge:
    """Carries the TCP links made to `listener` (in c's namespace) to `port` (here), until cut."""

    def __init__(self, listener: socket.socket, port: int):
        self.listener, self.port = listener, port
        self.severed = threading.Event()
        self.lock = threading.Lock()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            if self.severed.is_set():
                near.close()
                continue
            try:
                far = socket.create_connection(("127.0.0.1", self.port))
            except OSError:
                near.close()
                continue
            with self.lock:
                self.pairs.append((near, far))
            for src, dst in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def sever(self):
        self.severed.set()
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def heal(self):
        self.severed.clear()

    def close(self):
        self.sever()
        self.listener.close()


def namespaces_work() -> bool:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    r = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=10)
    return r.returncode == 0


@pytest.fixture
def sockets():
    d = tempfile.mkdtemp(prefix="rbp-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def state(socket_path: str) -> str:
    r = subprocess.run([REBEAM, "ctl", "--socket", socket_path, "--json", "status"],
                       capture_output=True, text=True, timeout=20)
    return json.loads(r.stdout)["safety"] if r.returncode == 0 else f"unreachable: {r.stderr}"


def ctl(socket_path: str, action: str) -> subprocess.CompletedProcess:
    return subprocess.run([REBEAM, "ctl", "--socket", socket_path, action], capture_output=True, text=True, timeout=20)


def wait_all(p: subprocess.Popen, *texts: str) -> str:
    """Reads `p`'s output until every one of `texts` was seen, in any order."""
    seen, left = [], set(texts)
    for line in p.stdout:
        seen.append(line)
        left = {t for t in left if t not in line}
        if not left:
            return "".join(seen)
    raise AssertionError(f"never saw {left} in:\n{''.join(seen)}")


def start_cut_off(nodes: Nodes, tmp_path, sockets, ports: list[int], *args: str, cookie) -> tuple:
    """Node c in its own network namespace, linked to `ports` only through bridges."""
    desk_path = os.path.join(sockets, "desk.sock")
    desk = socket.socket(socket.AF_UNIX)
    desk.bind(desk_path)
    desk.listen(1)
    inside = write_script(tmp_path, INSIDE, "inside.py")
    script = write_script(tmp_path, CEE + CALLER + PHASES + textwrap.dedent('''
        Supervisor(modules=[Cee()])
        wait_nodes("a", "b", "c")
        phases("c", "a", "counter", "add", 1)
    '''), "c.py")
    connects = [x for i in range(len(ports)) for x in ("--connect", f"tcp/127.0.0.1:@PORT{i}@")]
    cmd = ["unshare", "-rn", sys.executable, str(inside), desk_path, str(len(ports)),
           REBEAM, "--workers", "1", "--node", "c", "--cookie-file", str(cookie), *connects, *args, str(script)]
    env = program_env({"REBEAM_TEST_MARK": nodes.mark, "NODE_TAG": "c"})
    p = subprocess.Popen(cmd, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    nodes.procs.append(p)
    desk.settimeout(30)
    conn, _ = desk.accept()
    msg, fds, _, _ = socket.recv_fds(conn, 1024, len(ports))
    conn.send(b"k")
    conn.close()
    desk.close()
    assert len(fds) == len(ports), msg
    bridges = [Bridge(socket.socket(fileno=fd), port) for fd, port in zip(fds, ports, strict=True)]
    return p, bridges, Log(p.stderr)



@pytest.mark.skipif(not namespaces_work(), reason="network namespaces (unshare -rn) are not allowed here")
def test_a_partition_cut_and_healed(nodes, tmp_path, sockets):
    cookie = cookie_file(tmp_path, "s3cret-shared")
    port_a, port_b = free_port(), free_port()
    socks = {n: os.path.join(sockets, f"{n}.sock") for n in "abc"}
    a = nodes.start("a", HOST, "--authority", "--listen", f"tcp/127.0.0.1:{port_a}",
                    "--control-socket", socks["a"], cookie=cookie)
    nodes.wait_line(a, "HOST READY")
    b_script = CALLER + PHASES + textwrap.dedent('''
        wait_nodes("a", "b", "c")
        show("b three", call("counter", "add", 0))
        phases("b", "c", "cee", "where", None)
    ''')
    b = nodes.start("b", b_script, "--listen", f"tcp/127.0.0.1:{port_b}", "--connect", f"tcp/127.0.0.1:{port_a}",
                    "--control-socket", socks["b"], cookie=cookie)
    b_log = Log(b.stderr)
    c, bridges, c_log = start_cut_off(nodes, tmp_path, sockets, [port_a, port_b], "--control-socket", socks["c"],
                               cookie=cookie)
    try:
        before_b = wait_all(b, "b PHASE1")
        before_c = wait_all(c, "c PHASE1")
        # Three nodes, calls by name: b reaches a's name and c's; c reaches a's.
        assert "b three: ok (" in before_b and "'a')" in before_b, before_b
        assert "b before: ok 'c'" in before_b, before_b
        assert "c before: ok (" in before_c and "'a')" in before_c, before_c
        # The host arms once both are in contact: an arm a node did not see happen arms it not.
        assert wait_until(lambda: b_log.count(CONTACT) == c_log.count(CONTACT) == 1, timeout=10)
        assert ctl(socks["a"], "arm").returncode == 0
        assert wait_until(lambda: state(socks["b"]) == state(socks["c"]) == "armed", timeout=10)

        for bridge in bridges:
            bridge.sever()
        # The cut-off node disarms itself; the side with the authority stays armed.
        assert wait_until(lambda: state(socks["c"]) == "disarmed", timeout=10), state(socks["c"])
        assert state(socks["b"]) == "armed"
        (tmp_path / "cut").touch()
        during_b, during_c = wait_all(b, "b PHASE2"), wait_all(c, "c PHASE2")
        assert "b nodes cut: ['a', 'b']" in during_b, during_b
        assert "c nodes cut: ['c']" in during_c, during_c
        # Across the cut: at once, the name is on no node this side can reach.
        assert "b during: error NoProcess" in during_b and "'cee'" in during_b, during_b
        assert "c during: error NoProcess" in during_c and "'counter'" in during_c, during_c

        for bridge in bridges:
            bridge.heal()
        (tmp_path / "healed").touch()
        after_b, after_c = wait_all(b, "b DONE"), wait_all(c, "c DONE")
        assert "b after: ok 'c'" in after_b, after_b
        assert "c after: ok (" in after_c and "'a')" in after_c, after_c
        # Contact is back and the authority is still armed, at the arm c was cut off from: c
        # stays disarmed until the host arms again.
        assert wait_until(lambda: c_log.count(CONTACT) == 2, timeout=10), c_log.lines
        assert c_log.count("it is armed already, so this node stays disarmed") == 1, c_log.lines
        assert state(socks["c"]) == "disarmed"
        assert ctl(socks["a"], "disarm").returncode == 0 and ctl(socks["a"], "arm").returncode == 0
        assert wait_until(lambda: state(socks["c"]) == "armed", timeout=10), state(socks["c"])
    finally:
        for bridge in bridges:
            bridge.close()
    c.send_signal(signal.SIGTERM)
    c.wait(timeout=30)
    assert "lost contact with the arming authority, node a" in c_log.text(), c_log.lines
