"""Python reads the safety state and never changes it, whatever road it takes.

Every road a Python process of a run has to the control socket is tried for real: `rebeam ctl`
from an actor and from the main script, from a grandchild that called `setsid` and was
re-parented to the governor, raw Arm frames (made by the real encoder) sent to every socket
file in the runtime directory, and in library mode from the user's own process and its
children. Each is refused and the state does not move; `rebeam ctl status` still answers
them; the harness, which is the host (hostlib), arms and disarms. The programs are given the
private runtime directory on purpose: knowing where the socket is must not be enough.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

from helpers import REBEAM, check, lines, outputs, program_env, run_python, run_rebeam, write_script
from hostlib import Host

ROADS = textwrap.dedent(
    '''
    import glob, os, socket, subprocess, sys, time
    from pathlib import Path

    import rebeam
    from hostlib import ctl as host

    HERE = os.path.dirname(os.path.abspath(__file__))
    REBEAM = os.environ.get("REBEAM_BIN") or str(Path(sys.executable).with_name("rebeam"))
    RUNTIME = os.path.join(os.environ["XDG_RUNTIME_DIR"], "rebeam")


    def try_ctl(action):
        """`rebeam ctl ACTION` run by this Python process itself (it finds the only run)."""
        r = subprocess.run([REBEAM, "ctl", action], capture_output=True, text=True, timeout=20)
        return f"{r.returncode} {(r.stdout + r.stderr).strip()}".replace(chr(10), " | ")


    def raw_arm_everywhere():
        """An Arm control frame, as `rebeam ctl arm` encodes it, sent to every socket there."""
        from rebeam import _rebeam

        seen = []
        for path in sorted(glob.glob(os.path.join(RUNTIME, "*.sock"))):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                try:
                    s.connect(path)
                    s.sendall(_rebeam._control_frame("arm"))
                    reply = s.recv(65536)
                except OSError as e:
                    reply = repr(e).encode()
            kind = os.path.basename(path).split("-")[0]
            seen.append(f"{kind} {'refused' if b'changed only by the host' in reply else repr(reply[:80])}")
        return ", ".join(seen)


    def leaked_env():
        return sorted(k for k, v in os.environ.items() if k == "REBEAM_CONTROL" or "/ctl-" in v)
    '''
)

# A single-threaded helper (fork is unsafe in a threaded worker): it double-forks, the middle
# process calls setsid and exits, and the orphan, re-parented, tries to arm.
ORPHAN = '''
import os, subprocess, sys, time

out, rebeam_bin = sys.argv[1], sys.argv[2]
if os.fork() == 0:
    os.setsid()
    middle = os.getpid()
    if os.fork() != 0:
        os._exit(0)
    end = time.monotonic() + 15
    while os.getppid() == middle and time.monotonic() < end:
        time.sleep(0.01)
    parent = os.getppid()
    r = subprocess.run([rebeam_bin, "ctl", "arm"], capture_output=True, text=True, timeout=20)
    with open(out + ".tmp", "w") as f:
        f.write(f"{parent} {os.getsid(0) == middle} {r.returncode} {(r.stdout + r.stderr).strip()}")
    os.rename(out + ".tmp", out)
    os._exit(0)
os.wait()
'''

CLI = ROADS + textwrap.dedent(
    '''
    from rebeam import GenPy, Supervisor, call, receive


    class Intruder(GenPy):
        name = "intruder"

        @receive("ctl")
        def ctl(self, source, action):
            return try_ctl(action)

        @receive("raw")
        def raw(self, source, _):
            return raw_arm_everywhere()

        @receive("env")
        def env(self, source, _):
            return leaked_env()

        @receive("orphan")
        def orphan(self, source, _):
            out = os.path.join(HERE, "orphan.out")
            subprocess.run([sys.executable, os.path.join(HERE, "orphan.py"), out, REBEAM], timeout=30)
            end = time.monotonic() + 30
            while not os.path.exists(out) and time.monotonic() < end:
                time.sleep(0.02)
            parent, own_session, rest = open(out).read().split(" ", 2)
            governor = os.environ["REBEAM_GOVERNOR_PID"]
            return f"re-parented to the governor: {parent == governor}, own session: {own_session}, ctl: {rest}"


    if __name__ == "__main__":
        Supervisor(modules=[Intruder()])
        print("env main:", leaked_env(), flush=True)
        print("env actor:", call("intruder", "env")[1], flush=True)
        print("ctl arm from main:", try_ctl("arm"), flush=True)
        print("ctl arm from an actor:", call("intruder", "ctl", "arm", timeout=30)[1], flush=True)
        print("orphan:", call("intruder", "orphan", timeout=60)[1], flush=True)
        print("raw from main:", raw_arm_everywhere(), flush=True)
        print("raw from an actor:", call("intruder", "raw", timeout=30)[1], flush=True)
        time.sleep(0.3)
        print("state after the roads:", rebeam.safety_state(), flush=True)
        print("status from main:", try_ctl("status").split(" | ")[0], flush=True)
        print("status from an actor:", call("intruder", "ctl", "status", timeout=30)[1].split(" | ")[0], flush=True)
        print("host arms:", host("arm").returncode, flush=True)
        end = time.monotonic() + 15
        while not rebeam.armed() and time.monotonic() < end:
            time.sleep(0.01)
        for action in ("disarm", "force-disarm"):
            print(f"ctl {action} from main:", try_ctl(action), flush=True)
            print(f"ctl {action} from an actor:", call("intruder", "ctl", action, timeout=30)[1], flush=True)
        time.sleep(0.3)
        print("state after disarms from Python:", rebeam.safety_state(), flush=True)
        print("host disarms:", host("disarm").returncode, flush=True)
        rebeam.shutdown(0)
    '''
)


def refused(line: str, action: str) -> bool:
    return (line.startswith("1 rebeam ctl: refused: ") and f"{action} from pid " in line
            and "The safety state is changed only by the host" in line
            and f"run `rebeam ctl {action}` from outside the run" in line)


def test_no_python_process_of_a_run_can_change_the_safety_state(tmp_path):
    xdg = tempfile.mkdtemp(prefix="rbt-", dir="/tmp")
    try:
        (tmp_path / "orphan.py").write_text(ORPHAN)
        with Host(runtime_dir=xdg) as host:
            r = run_rebeam(tmp_path, CLI, timeout=120,
                           env={"XDG_RUNTIME_DIR": xdg, "REBEAM_BIN": REBEAM, **host.env()})
        check(r)
        out = outputs(r)
        value = {x.split(": ", 1)[0]: x.split(": ", 1)[1] for x in out if ": " in x}
        assert value["env main"] == "[]" and value["env actor"] == "[]", r.stdout
        for road in ("ctl arm from main", "ctl arm from an actor"):
            assert refused(value[road], "arm"), (road, value[road])
        orphan = value["orphan"]
        assert orphan.startswith("re-parented to the governor: True, own session: True, ctl: 1 "), orphan
        assert refused(orphan.split("ctl: ", 1)[1], "arm"), orphan
        for road in ("raw from main", "raw from an actor"):
            assert value[road] == "ctl refused, run b''", (road, value[road])  # the process socket hangs up
        assert value["state after the roads"] == "disarmed"
        assert value["status from main"] == "0 safety:  disarmed"
        assert value["status from an actor"] == "0 safety:  disarmed"
        assert value["host arms"] == "0"
        for action in ("disarm", "force-disarm"):
            assert refused(value[f"ctl {action} from main"], action), value
            assert refused(value[f"ctl {action} from an actor"], action), value
        assert value["state after disarms from Python"] == "armed"
        assert value["host disarms"] == "0"
        # The governor names who was refused, and only the host's arm went through.
        assert "refused `arm` on the control socket from pid" in r.stderr
        assert "it descends from the governor" in r.stderr  # the re-parented orphan
        assert r.stderr.count("safety: disarmed → armed (armed by the host)") == 1, r.stderr
        assert r.stderr.count("safety: armed → disarming") == 1, r.stderr
    finally:
        shutil.rmtree(xdg, ignore_errors=True)


LIBRARY = ROADS + textwrap.dedent(
    '''
    CHILD = (
        "import sys; sys.path[:0] = [%r]; from prog_roads import *; "
        "print(try_ctl('arm')); print(raw_arm_everywhere())" % HERE
    )

    if __name__ == "__main__":
        print("state at start:", rebeam.safety_state(), flush=True)  # starts the governor
        print("env:", leaked_env(), flush=True)
        print("ctl arm from the user's process:", try_ctl("arm"), flush=True)
        print("raw from the user's process:", raw_arm_everywhere(), flush=True)
        child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
        ctl_line, raw_line = (child.stdout.splitlines() + ["-", "-"])[:2]
        print("ctl arm from its child:", ctl_line, child.stderr.strip()[-300:], flush=True)
        print("raw from its child:", raw_line, flush=True)
        time.sleep(0.3)
        print("state after the roads:", rebeam.safety_state(), flush=True)
        print("status from the user's process:", try_ctl("status").split(" | ")[0], flush=True)
        print("host arms:", host("arm").returncode, flush=True)
        end = time.monotonic() + 15
        while not rebeam.armed() and time.monotonic() < end:
            time.sleep(0.01)
        print("ctl disarm from the user's process:", try_ctl("disarm"), flush=True)
        print("state after:", rebeam.safety_state(), flush=True)
        print("host disarms:", host("disarm").returncode, flush=True)
    '''
)


def test_in_library_mode_the_users_process_and_its_children_cannot_change_it(tmp_path):
    xdg = tempfile.mkdtemp(prefix="rbt-", dir="/tmp")
    try:
        (tmp_path / "prog_roads.py").write_text(ROADS)
        with Host(runtime_dir=xdg) as host:
            r = run_python(tmp_path, LIBRARY, timeout=120,
                           env={"XDG_RUNTIME_DIR": xdg, "REBEAM_BIN": REBEAM, "REBEAM_LOG": "info", **host.env()})
        check(r)
        value = {x.split(": ", 1)[0]: x.split(": ", 1)[1] for x in lines(r) if ": " in x}
        assert value["state at start"] == "disarmed"
        assert value["env"] == "[]"
        assert refused(value["ctl arm from the user's process"], "arm"), value
        assert refused(value["ctl arm from its child"], "arm"), value
        assert value["raw from the user's process"] == "ctl refused, run b''", value
        assert value["raw from its child"] == "ctl refused, run b''", value
        assert value["state after the roads"] == "disarmed"
        assert value["status from the user's process"] == "0 safety:  disarmed"
        assert value["host arms"] == "0"
        assert refused(value["ctl disarm from the user's process"], "disarm"), value
        assert value["state after"] == "armed"
        assert value["host disarms"] == "0"
        assert "it is the main process (pid" in r.stderr and "it descends from the main process (pid" in r.stderr
        assert r.stderr.count("safety: disarmed → armed (armed by the host)") == 1, r.stderr
    finally:
        shutil.rmtree(xdg, ignore_errors=True)


NAMED = '''
import os, time
import rebeam
from hostlib import ctl as host

if __name__ == "__main__":
    print("leaked:", sorted(k for k, v in os.environ.items() if "ctl.sock" in v or k == "REBEAM_CONTROL"), flush=True)
    print("host status:", host("status").stdout.splitlines()[0], flush=True)
    print("host arms:", host("arm").stdout.strip().replace(chr(10), " | "), flush=True)
    end = time.monotonic() + 15
    while not rebeam.armed() and time.monotonic() < end:
        time.sleep(0.01)
    print("python sees:", rebeam.safety_state(), flush=True)
    rebeam.shutdown(0)
'''


def test_the_host_names_the_control_socket_and_python_is_not_told(tmp_path):
    with Host() as host:
        r = run_rebeam(tmp_path, NAMED, rebeam_args=host.rebeam_args(), env=host.env())
        check(r)
        out = lines(r)
        assert "leaked: []" in out
        assert "host status: safety:  disarmed" in out
        assert "host arms: disarmed → armed: armed by the host | safety: armed" in out
        assert "python sees: armed" in out
        start_line = next(x for x in r.stderr.splitlines() if x.startswith("rebeam info: started "))
        assert start_line.endswith(f"; control socket {host.named}"), start_line
        assert not os.path.exists(host.named)  # removed at exit


def test_a_control_socket_path_others_could_tamper_with_is_refused(tmp_path):
    write_script(tmp_path, "print('ran')\n")
    shared = tempfile.mkdtemp(prefix="rbs-", dir="/tmp")
    try:
        def start(path):
            return subprocess.run([REBEAM, "--workers", "1", "--control-socket", path, "main.py"], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=60, env=program_env())

        os.chmod(shared, 0o777)
        r = start(f"{shared}/ctl.sock")
        assert r.returncode != 0 and "ran" not in r.stdout
        assert (f"rebeam: refusing to put the control socket at {shared}/ctl.sock: its directory {shared} is "
                "writable by group or others (mode 777); use a directory only you can write (chmod go-w)") in r.stderr

        os.chmod(shared, 0o700)
        if os.getuid() == 0:
            os.chown(shared, 65534, -1)
            r = start(f"{shared}/ctl.sock")
            assert r.returncode != 0 and f"its directory {shared} belongs to uid 65534, not to this user" in r.stderr
            os.chown(shared, 0, -1)

        precious = os.path.join(shared, "notes.txt")
        with open(precious, "w") as f:
            f.write("keep me")
        r = start(precious)
        assert r.returncode != 0
        assert "a file that is not a socket is already there; choose another path" in r.stderr
        assert open(precious).read() == "keep me"

        r = start(f"{shared}/ctl.sock")  # a private directory of ours: fine
        check(r)
        assert "ran" in r.stdout
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_python_cannot_find_the_path_through_the_ready_pipe_either(tmp_path):
    r = run_python(tmp_path, '''
        import rebeam
        from rebeam import _runtime
        print("state:", rebeam.safety_state(), flush=True)
        print("control path known:", hasattr(_runtime, "control_path"), flush=True)
    ''', env={"REBEAM_BIN": REBEAM})
    check(r)
    assert "state: disarmed" in lines(r)
    assert "control path known: False" in lines(r)


# Item 4: the disarm ladder never kills the main process. A gated behaviour on a PinnedCown runs
# in it; this one swallows the interrupt and would run on, so after the grace the governor must
# choose between killing the host and saying it cannot stop the work: it says so (`error`).
STUBBORN = '''
import os, sys, threading, time

import rebeam
from rebeam import requires_armed
from rebeam.boc import PinnedCown, quiesce, receive, send, when
from hostlib import ctl as host


def wait_state(state):
    end = time.monotonic() + 15
    while rebeam.safety_state() != state and time.monotonic() < end:
        time.sleep(0.01)
    return rebeam.safety_state()


def one_line(r):
    return f"{r.returncode} {(r.stdout + r.stderr).strip()}".replace(chr(10), " | ")


ui = PinnedCown(0)
MAIN = os.getpid()


def operator():
    receive("started", 30)
    print("disarm:", one_line(host("disarm")), flush=True)


print("host arms:", host("arm").returncode, wait_state("armed"), flush=True)
threading.Thread(target=operator).start()


@when(ui)
@requires_armed
def stubborn(ui):
    swallowed, announced = [], False
    end = time.monotonic() + 30  # bounded: it stops once the governor gives up on it
    while True:
        try:  # the interrupt may land anywhere from the announcement on: all of it is in here
            if not announced:
                announced = True
                send("started", os.getpid())
            while rebeam.safety_state() != "error" and time.monotonic() < end:
                time.sleep(0.02)
            return rebeam.safety_state(), swallowed, os.getpid() == MAIN
        except BaseException as e:  # swallows the SafetyInterrupt: a behaviour that will not stop
            swallowed.append(type(e).__name__)


quiesce(60)
saw, swallowed, in_main = stubborn.unwrap()
print("stubborn saw:", saw, "in the main process:", in_main, flush=True)
print("swallowed:", swallowed, flush=True)
print("main process alive, state:", rebeam.safety_state(), flush=True)
print("arm in error:", one_line(host("arm")), flush=True)
print("force-disarm:", one_line(host("force-disarm")), flush=True)
print("arm again:", host("arm").returncode, wait_state("armed"), flush=True)


@when(ui)
@requires_armed
def again(ui):
    return "ran"


quiesce(60)
print("after recovery:", again.unwrap(), flush=True)
host("disarm")
print("end of script", flush=True)
'''


def check_stubborn(r):
    value = {x.split(": ", 1)[0]: x.split(": ", 1)[1] for x in lines(r) if ": " in x}
    assert value["host arms"] == "0 armed"
    assert value["disarm"] == "0 armed → disarming: disarm requested by the host | safety: disarming"
    assert value["stubborn saw"] == "error in the main process: True"
    assert "SafetyInterrupt" in value["swallowed"]  # step 2 of the ladder did happen
    assert value["main process alive, state"] == "error"
    assert value["arm in error"].startswith("1 rebeam ctl: refused: cannot arm: the safety state is error")
    assert value["force-disarm"] == "0 error → disarmed: forced by the host | safety: disarmed"
    assert value["arm again"] == "0 armed"
    assert value["after recovery"] == "ran"
    assert "end of script" in lines(r)
    assert ("safety: gated work in the main process (pid ") in r.stderr
    assert ("did not stop within 200ms of the disarm, and rebeam never kills the main process; make the "
            "behaviour return when rebeam.cancelled() turns true") in r.stderr
    assert "safety: disarming → error (gated work could not be confirmed stopped: " in r.stderr
    assert "killing it" not in r.stderr


def test_the_ladder_never_kills_the_script_under_rebeam(tmp_path):
    xdg = tempfile.mkdtemp(prefix="rbt-", dir="/tmp")
    with Host(runtime_dir=xdg) as host:
        r = run_rebeam(tmp_path, STUBBORN, env={"XDG_RUNTIME_DIR": xdg, **host.env()}, timeout=120)
    shutil.rmtree(xdg, ignore_errors=True)
    check(r)
    check_stubborn(r)


def test_the_ladder_never_kills_the_users_process_in_library_mode(tmp_path):
    path = write_script(tmp_path, STUBBORN, "prog.py")
    xdg = tempfile.mkdtemp(prefix="rbt-", dir="/tmp")
    with Host(runtime_dir=xdg) as host:
        # The user's process leads its own process group, as a shell job does: the group a
        # careless kill_group(main) would take down, REPL and all.
        r = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           process_group=0, env=program_env({"REBEAM_BIN": REBEAM, "REBEAM_LOG": "info", "XDG_RUNTIME_DIR": xdg,
                                                            **host.env()}))
    shutil.rmtree(xdg, ignore_errors=True)
    check(r)
    check_stubborn(r)
