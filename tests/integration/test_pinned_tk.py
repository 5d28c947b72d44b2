"""rebeam.boc pumped from a real Tk event loop, on a virtual X display (Xvfb).

Xvfb is a dependency of the test suite (./test.sh installs it), so this test never skips.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import subprocess
import time
import uuid

import pytest
from helpers import check, lines, processes_with, run_rebeam, wait_until

TK_PROGRAM = """
    import os, sys, threading, time, traceback
    import tkinter as tk
    from rebeam.boc import Cown, PinnedCown, pump, quiesce, when

    MAIN_PID = os.getpid()
    K = 5                                        # pinned behaviours per batch

    root = tk.Tk()
    label = tk.Label(root, text="waiting")
    label.pack()
    log = []                                     # what main-side behaviours did, in order
    view = PinnedCown({"label": label, "log": log})   # Tk objects: they never leave this process
    limited = [tk.Label(root, text="todo") for _ in range(K)]
    unlimited = [tk.Label(root, text="todo") for _ in range(K)]
    for lbl in limited + unlimited:
        lbl.pack()
    root.update()

    def here():
        return os.getpid() == MAIN_PID and threading.current_thread() is threading.main_thread()

    @when(view)
    def greet(view):
        view.value["label"].config(text="computing")
        view.value["log"].append(("greet", here()))

    chunks = [Cown(list(range(i * 1000, (i + 1) * 1000))) for i in range(4)]
    partials = []
    for chunk in chunks:
        @when(chunk)
        def partial(chunk):                      # an ordinary cown: runs in a worker
            return sum(chunk.value), os.getpid()
        partials.append(partial)

    @when(view, partials)
    def render(view, partials):                  # holds the pinned cown: runs here, when pumped
        results = [p.value for p in partials]
        view.value["label"].config(text=f"total={sum(s for s, _ in results)}")
        view.value["log"].append(("render", here(), all(pid != MAIN_PID for _, pid in results)))

    def mark(labels):                            # K independent pinned behaviours, runnable at once
        for lbl in labels:
            @when(PinnedCown(lbl))
            def finish(lbl):
                lbl.value.config(text="done" if here() else "off the main thread")

    def done(labels):                            # side effects, counted: labels no longer "todo"
        return sum(lbl.cget("text") != "todo" for lbl in labels)

    state = {"phase": "compute", "slowest": 0.0, "failed": None}
    per_tick = {"limited": [], "unlimited": []}

    def pump5(**kw):                             # what an event loop does: pump, never block
        t = time.monotonic()
        pump(deadline_ms=5, **kw)
        state["slowest"] = max(state["slowest"], time.monotonic() - t)

    def start(phase):
        state["phase"] = phase
        tick()

    def tick():
        phase = state["phase"]
        if phase == "compute":
            pump5()
            if len(log) == 2:
                mark(limited)
                state["phase"] = "queueing"
                root.after(1000, start, "limited")    # let all K reach the main queue
                return
        elif phase == "limited":
            before = done(limited)
            pump5(max_behaviors=1)
            per_tick["limited"].append(done(limited) - before)
            if done(limited) == K:
                mark(unlimited)
                state["phase"] = "queueing"
                root.after(1000, start, "unlimited")
                return
        elif phase == "unlimited":
            before = done(unlimited)
            pump(deadline_ms=2000)
            per_tick["unlimited"].append(done(unlimited) - before)
            if done(unlimited) == K:
                root.quit()
                return
        root.after(10, tick)

    def fail(why):
        state["failed"] = why
        root.quit()

    def callback_failed(*exc):
        traceback.print_exception(*exc)
        fail("a Tk callback raised")

    root.report_callback_exception = callback_failed
    root.after(60_000, fail, "timed out")        # the safety net: the test fails, never hangs
    root.after(10, tick)
    root.mainloop()
    if state["failed"]:
        ticks = {k: v[:20] for k, v in per_tick.items()}
        print("FAILED:", state["failed"], "in phase", state["phase"], "log:", log, "ticks:", ticks, flush=True)
        sys.exit(3)

    quiesce(30)
    print("screen:", root.winfo_screen(), flush=True)
    print("label:", label.cget("text"), flush=True)
    print("log:", log, flush=True)
    print("limited per tick:", per_tick["limited"], flush=True)
    print("unlimited per tick:", per_tick["unlimited"], flush=True)
    print("batch labels:", sorted({lbl.cget("text") for lbl in limited + unlimited}), flush=True)
    print("each 5 ms pump returned within 1 s:", state["slowest"] < 1.0, flush=True)
    root.destroy()
"""


def _die_with_parent() -> None:
    """In the Xvfb child: SIGTERM when pytest dies, even by SIGKILL (Linux prctl)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _read_display(fd: int, proc: subprocess.Popen, log_path, timeout: float = 20) -> str:
    """Xvfb writes its display number to -displayfd once it accepts connections."""
    got = b""
    end = time.monotonic() + timeout
    while not got.endswith(b"\n"):
        left = end - time.monotonic()
        ready = select.select([fd], [], [], max(left, 0))[0]
        chunk = os.read(fd, 64) if ready else b""
        if not chunk:
            why = "did not report a display in time" if not ready else f"exited with status {proc.wait(5)}"
            pytest.fail(f"Xvfb {why}; its log:\n{log_path.read_text(errors='replace')}", pytrace=False)
        got += chunk
    return ":" + got.decode().strip()


@pytest.fixture
def xvfb_display(request, tmp_path):
    """A private Xvfb server for one test: yields its DISPLAY; killed (and its files gone) after."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.fail(
            "Xvfb is not on PATH: this test pumps rebeam.boc from a Tk event loop on a virtual X display. "
            "./test.sh installs it; by hand: sudo apt-get install --no-install-recommends xvfb",
            pytrace=False,
        )
    log_path = tmp_path / "xvfb.log"
    read_fd, write_fd = os.pipe()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [exe, "-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            preexec_fn=_die_with_parent,
        )
    os.close(write_fd)
    display = []

    def stop():
        os.close(read_fd)
        if proc.poll() is None:
            proc.terminate()  # Xvfb removes its lock file and socket on SIGTERM
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for n in display:  # after a SIGKILL they are stale: remove them
            for path in (f"/tmp/.X{n}-lock", f"/tmp/.X11-unix/X{n}"):
                if os.path.exists(path):
                    os.unlink(path)

    request.addfinalizer(stop)
    name = _read_display(read_fd, proc, log_path)
    display.append(name[1:])
    return name


def test_a_tk_event_loop_pumps_pinned_behaviours(tmp_path, xvfb_display):
    marker = f"rebeam-tk-{uuid.uuid4().hex}"
    r = run_rebeam(tmp_path, TK_PROGRAM, timeout=100, env={"DISPLAY": xvfb_display, "REBEAM_TEST_MARKER": marker})
    check(r)
    out = lines(r)
    assert f"screen: {xvfb_display}.0" in out  # Tk really drew on our Xvfb
    # The label shows the sum computed by worker processes; the pinned behaviours ran in order,
    # in the main process on its main thread, and only those two touched `view`.
    assert "label: total=7998000" in out
    assert "log: [('greet', True), ('render', True, True)]" in out
    # pump(max_behaviors=1): K runnable behaviours took K ticks, one each...
    assert "limited per tick: [1, 1, 1, 1, 1]" in out
    # ...while one unlimited pump runs all K queued the same way (so the limit above was real).
    assert "unlimited per tick: [5]" in out
    assert "batch labels: ['done']" in out  # each of the 10 ran on the main thread of the main process
    assert "each 5 ms pump returned within 1 s: True" in out
    assert "have waited" not in r.stderr  # the pump watchdog never saw main-side work starve
    assert wait_until(lambda: not processes_with(marker), timeout=10), processes_with(marker)
