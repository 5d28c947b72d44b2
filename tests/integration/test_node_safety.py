"""One arming authority across nodes, end to end on loopback: real `rebeam --node` runs, the host
arming at the authority with `rebeam ctl`, gated work on another node refused, allowed and
stopped mid-flight as the authority says, `arm` refused at a follower, and a follower that loses
the authority disarming itself and waiting for a new arm once contact returns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import textwrap
import threading
import time

import pytest

from helpers import REBEAM, wait_until
from test_nodes import CALLER, cookie_file, finish, free_port

MOTOR = textwrap.dedent(
    '''
    import os, time
    import rebeam
    from rebeam import GenPy, Supervisor, call, receive, requires_armed

    class Motor(GenPy):
        name = "motor"

        @receive("echo")
        def echo(self, source, n):
            return n

        @requires_armed
        @receive("move")
        def move(self, source, target):
            return f"moved to {target} on {os.environ['NODE_TAG']}"

        @requires_armed
        @receive("spin")
        def spin(self, source, _):
            print("SPINNING", flush=True)
            while not rebeam.cancelled():
                time.sleep(0.005)
            return "stopped"

    if __name__ == "__main__":
        Supervisor(modules=[Motor()])
        print("MOTOR READY", flush=True)
    '''
)


class Log:
    """A node's log lines as they come, so that a test can wait for one while it runs."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._thread.start()

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def text(self) -> str:
        self._thread.join(30)
        return "".join(self.lines)


CONTACT = "in contact with the arming authority, node a"


@pytest.fixture
def sockets():
    # Short, private: a Unix socket path has at most 108 bytes.
    d = tempfile.mkdtemp(prefix="rbn-", dir="/tmp")
    yield d
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


def ctl(socket_path: str, action: str) -> subprocess.CompletedProcess:
    return subprocess.run([REBEAM, "ctl", "--socket", socket_path, action], capture_output=True, text=True, timeout=20)


def state(socket_path: str) -> str:
    r = subprocess.run([REBEAM, "ctl", "--socket", socket_path, "--json", "status"],
                       capture_output=True, text=True, timeout=20)
    return json.loads(r.stdout)["safety"] if r.returncode == 0 else f"unreachable: {r.stderr}"


def test_gated_work_on_a_follower_goes_by_the_authority(nodes, tmp_path, sockets):
    cookie = cookie_file(tmp_path, "s3cret-shared")
    port = free_port()
    a_sock, b_sock = os.path.join(sockets, "a.sock"), os.path.join(sockets, "b.sock")
    go = tmp_path / "armed"
    caller = nodes.start("a", CALLER + textwrap.dedent(f'''
        wait_nodes("a", "b")
        end = time.monotonic() + 20
        while not call("motor", "echo", 1)[0] == "ok" and time.monotonic() < end:
            time.sleep(0.05)
        show("disarmed", call("motor", "move", 1))
        print("READY TO ARM", flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.02)
        show("armed", call("motor", "move", 2))
        show("spin", call("motor", "spin", None, timeout=60))
    '''), "--authority", "--listen", f"tcp/127.0.0.1:{port}", "--control-socket", a_sock, cookie=cookie)
    motor = nodes.start("b", MOTOR, "--connect", f"tcp/127.0.0.1:{port}", "--control-socket", b_sock, cookie=cookie)
    motor_log = Log(motor.stderr)
    before = nodes.wait_line(caller, "READY TO ARM")
    # An arm b did not see happen would not arm it: the host arms once b is in contact.
    assert wait_until(lambda: motor_log.count(CONTACT) == 1, timeout=10), motor_log.lines
    assert "disarmed: error SafetyError" in before, before
    refused = ctl(b_sock, "arm")
    assert refused.returncode != 0 and "node a is this system's arming authority" in refused.stderr, refused
    assert state(b_sock) == "disarmed"
    armed = ctl(a_sock, "arm")
    assert armed.returncode == 0, armed
    assert wait_until(lambda: state(b_sock) == "armed", timeout=10), state(b_sock)
    go.touch()
    nodes.wait_line(motor, "SPINNING")
    assert ctl(a_sock, "disarm").returncode == 0
    code, out, err = finish(caller)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "armed: ok 'moved to 2 on b'" in out, out
    assert "spin: error SafetyError" in out and "interrupted" in out.split("spin says:")[1], out
    assert wait_until(lambda: state(b_sock) == "disarmed", timeout=10), state(b_sock)


def test_a_follower_that_loses_the_authority_disarms_itself_until_it_arms_again(nodes, tmp_path, sockets):
    cookie = cookie_file(tmp_path, "s3cret-shared")
    port = free_port()
    a_sock, b_sock = os.path.join(sockets, "a.sock"), os.path.join(sockets, "b.sock")
    idle = "import time\nprint('AUTHORITY READY', flush=True)\ntime.sleep(600)\n"
    authority = nodes.start("a", idle, "--authority", "--listen", f"tcp/127.0.0.1:{port}",
                            "--control-socket", a_sock, cookie=cookie)
    nodes.wait_line(authority, "AUTHORITY READY")
    # b's own script runs gated work on b, which the authority's loss must stop.
    follower = nodes.start("b", MOTOR + textwrap.dedent('''
        import sys
        while rebeam.safety_state() != "armed":
            time.sleep(0.02)
        r = call("motor", "spin", None, timeout=120)
        print("spin:", r[0], type(r[1]).__name__, r[1], flush=True)
        time.sleep(600)
    '''), "--connect", f"tcp/127.0.0.1:{port}", "--control-socket", b_sock, cookie=cookie)
    follower_log = Log(follower.stderr)
    nodes.wait_line(follower, "MOTOR READY")
    assert wait_until(lambda: follower_log.count(CONTACT) == 1, timeout=10), follower_log.lines
    assert ctl(a_sock, "arm").returncode == 0
    assert wait_until(lambda: state(b_sock) == "armed", timeout=10), state(b_sock)
    nodes.wait_line(follower, "SPINNING")
    lost_at = time.monotonic()
    os.kill(authority.pid, signal.SIGKILL)
    authority.wait()
    out = nodes.wait_line(follower, "spin:")
    assert "spin: error SafetyError" in out and "interrupted" in out, out
    assert wait_until(lambda: state(b_sock) == "disarmed", timeout=10), state(b_sock)
    # Bounded: the authority's token goes with its link, and silence past the timeout would do
    # it too; either is far inside this.
    assert time.monotonic() - lost_at < 10
    # Contact returns with a new authority at the same place; b stays disarmed until it arms.
    again = nodes.start("a", idle, "--authority", "--listen", f"tcp/127.0.0.1:{port}",
                        "--control-socket", a_sock, cookie=cookie)
    nodes.wait_line(again, "AUTHORITY READY")
    assert wait_until(lambda: follower_log.count(CONTACT) == 2, timeout=10), follower_log.lines
    assert state(b_sock) == "disarmed"
    assert ctl(a_sock, "arm").returncode == 0
    assert wait_until(lambda: state(b_sock) == "armed", timeout=20), state(b_sock)
    follower.send_signal(signal.SIGTERM)
    follower.wait(timeout=30)
    err = follower_log.text()
    assert "lost contact with the arming authority, node a" in err, err
    assert "this node disarms itself" in err, err
    assert "armed by the arming authority, node a" in err, err
