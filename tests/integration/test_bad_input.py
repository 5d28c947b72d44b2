"""Bad input gets a clear error and loses nothing; the governor never crashes because of it."""

from __future__ import annotations

import os
import socket
import subprocess

from helpers import REBEAM, run_rebeam, write_script

ECHO = """
    import rebeam
    from rebeam import GenPy, receive, Supervisor, call, cast

    class Echo(GenPy):
        name = "echo"
        @receive("echo")
        def echo(self, source, message):
            return message
"""


def test_missing_script(tmp_path):
    r = subprocess.run([REBEAM, "nope.py"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "cannot open script nope.py" in r.stderr


def test_syntax_error_names_file_and_line(tmp_path):
    r = run_rebeam(tmp_path, "x = 1\ndef f(:\n    pass\n")
    assert r.returncode == 1
    assert 'main.py", line 2' in r.stderr
    assert "SyntaxError" in r.stderr


def test_exception_while_importing_the_script(tmp_path):
    r = run_rebeam(tmp_path, "print('before', flush=True)\nraise ValueError('bad config')\n")
    assert r.returncode == 1
    assert r.stdout.count("before") == 1, "the script body must run once, in the main process only"
    assert 'main.py", line 2' in r.stderr and "ValueError: bad config" in r.stderr


def test_unpicklable_message_is_refused_and_nothing_is_sent(tmp_path):
    r = run_rebeam(tmp_path, ECHO + """
    import threading
    Supervisor(modules=[Echo()])
    try:
        call("echo", "echo", {"lock": threading.Lock()})
    except rebeam.SerializationError as e:
        print("refused:", e, flush=True)
    print(call("echo", "echo", "after"), flush=True)
    rebeam.shutdown(0)
    """)
    assert r.returncode == 0, r.stderr
    assert "refused:" in r.stdout and "lock" in r.stdout
    assert "('ok', 'after')" in r.stdout


def test_message_over_the_limit(tmp_path):
    r = run_rebeam(tmp_path, ECHO + """
    Supervisor(modules=[Echo()])
    for send in (lambda m: call("echo", "echo", m), lambda m: cast("echo", "echo", m)):
        try:
            send(b"x" * 200_000)
        except rebeam.MessageTooLarge as e:
            print("too large:", e, flush=True)
    print(call("echo", "echo", b"y" * 1000)[0], flush=True)
    rebeam.shutdown(0)
    """, rebeam_args=("--max-message-bytes", "100000"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("too large:") == 2
    assert "--max-message-bytes" in r.stdout
    assert r.stdout.strip().endswith("ok")


def test_unknown_name_and_dead_actor(tmp_path):
    r = run_rebeam(tmp_path, ECHO + """
    from rebeam import NoProcess
    Supervisor(modules=[Echo()])
    status, err = call("nobody", "x", 1)
    print(status, type(err).__name__, err, flush=True)
    print(cast("nobody", "x", 1), flush=True)
    old = rebeam.whereis("echo")
    rebeam.shutdown(0)
    """)
    assert r.returncode == 0, r.stderr
    assert "error NoProcess no actor named 'nobody' is running" in r.stdout
    assert "False" in r.stdout


def test_unknown_subject_does_not_crash_the_actor(tmp_path):
    r = run_rebeam(tmp_path, ECHO + """
    Supervisor(modules=[Echo()])
    pid = rebeam.whereis("echo")
    status, err = call("echo", "nope", 1)
    print(status, type(err).__name__, flush=True)
    print(rebeam.whereis("echo") == pid, flush=True)
    rebeam.shutdown(0)
    """)
    assert r.returncode == 0, r.stderr
    assert "error InvalidRequest" in r.stdout
    assert "True" in r.stdout


def _socket_of(governor_pid: int) -> str:
    uid = os.getuid()
    base = os.environ.get("XDG_RUNTIME_DIR")
    d = os.path.join(base, "rebeam") if base else f"/tmp/rebeam-{uid}"
    return os.path.join(d, f"run-{governor_pid}.sock")


def test_garbage_on_the_governor_socket_is_dropped(tmp_path):
    """Write garbage and truncated frames to the real socket; the governor logs, drops, keeps serving."""
    write_script(tmp_path, ECHO + """
    import sys, time
    Supervisor(modules=[Echo()])
    print("ready", flush=True)
    for line in sys.stdin:
        print(call("echo", "echo", line.strip()), flush=True)
    rebeam.shutdown(0)
    """)
    proc = subprocess.Popen([REBEAM, "--workers", "1", "main.py"], cwd=tmp_path, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "ready"
        path = _socket_of(proc.pid)
        payloads = [
            b"\xff\xff\xff\xff garbage",                 # length prefix past the limit
            b"\x10\x00\x00\x00not a frame at all!",      # a frame that does not decode
            b"\x40\x00\x00\x00short",                    # truncated: closes mid-frame
            b"",                                          # says nothing, just closes
        ]
        for data in payloads:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
                s.sendall(data)
        proc.stdin.write("still alive\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "('ok', 'still alive')"
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        err = proc.stderr.read()
        assert "dropped a connection" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_malformed_frame_from_a_worker_drops_only_that_worker(tmp_path):
    """A worker whose connection sends a bad frame is cut off and replaced; its actor restarts."""
    r = run_rebeam(tmp_path, ECHO + """
    import os
    from rebeam import _runtime

    class Saboteur(GenPy):
        name = "saboteur"
        @receive("garbage")
        def garbage(self, source, message):
            _runtime.connection()._send_raw(b"\\x08\\x00\\x00\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff")
            return os.getpid()

        @receive("ping")
        def ping(self, source, message):
            return "pong"

    Supervisor(modules=[Saboteur()])
    first = rebeam.whereis("saboteur")
    print(call("saboteur", "garbage", None, timeout=10)[0], flush=True)
    import time
    for _ in range(200):
        pid = rebeam.whereis("saboteur")
        if pid is not None and pid != first:
            break
        time.sleep(0.05)
    print("back:", pid is not None and pid != first, flush=True)
    print(call("saboteur", "ping"), flush=True)
    rebeam.shutdown(0)
    """, workers=1)
    assert r.returncode == 0, r.stderr
    assert "sent a bad frame" in r.stderr
    assert "back: True" in r.stdout
    assert "('ok', 'pong')" in r.stdout


def test_interpreter_without_rebeam_is_named(tmp_path):
    """The base interpreter of the test venv does not see the venv's packages."""
    import sys

    base = os.path.join(sys.base_prefix, "bin", "python3")
    r = run_rebeam(tmp_path, "print('never')\n", rebeam_args=("--python", base))
    assert r.returncode != 0
    assert "never" not in r.stdout
    assert f"check that {base} can `import rebeam`" in r.stderr


def test_messages_to_a_task_are_refused(tmp_path):
    r = run_rebeam(tmp_path, """
    import time
    import rebeam
    from rebeam import Supervisor, call, cast, child

    def pump():
        time.sleep(30)

    if __name__ == "__main__":
        Supervisor(modules=[child(pump, name="pump")])
        status, err = call("pump", "x", 1)
        print(status, type(err).__name__, flush=True)
        print("cast:", cast("pump", "x", 1), flush=True)
        rebeam.shutdown(0)
    """, rebeam_args=("--shutdown-timeout", "2"))
    assert "error NoMailbox" in r.stdout
    assert "cast: False" in r.stdout
