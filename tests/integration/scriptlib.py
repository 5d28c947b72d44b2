"""Helpers the test *programs* import (run_rebeam puts this folder on their PYTHONPATH)."""

from __future__ import annotations

import os
import time

import rebeam
from rebeam import call, whereis
from rebeam.errors import NoProcess


def retry_call(target, subject, message=None, deadline=15.0):
    """call(), retried while the target is between two incarnations (NoProcess)."""
    end = time.monotonic() + deadline
    while True:
        r = call(target, subject, message, timeout=10)
        if not (r[0] == "error" and isinstance(r[1], NoProcess)) or time.monotonic() > end:
            return r
        time.sleep(0.02)


def wait_for(what, pred, deadline=15.0):
    """Polls `pred` until it is truthy; on time-out says so and ends the run with status 3."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    print(f"TIMED OUT waiting for {what}", flush=True)
    rebeam.shutdown(3)
    time.sleep(60)


def wait_new_pid(name, old, deadline=15.0):
    """The next incarnation of `name` (a ProcessID other than `old`)."""
    return wait_for(f"a new {name}", lambda: (p := whereis(name)) is not None and p != old and p, deadline)


def show(label, r):
    """Prints a call's result as `label: status value`, naming exceptions by their type."""
    v = r[1]
    print(f"{label}:", r[0], type(v).__name__ if isinstance(v, BaseException) else repr(v), flush=True)


def zygotes_of(governor: int) -> list[int]:
    """The governor's live children named as the zygote names itself (see rebeam._zygote)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == governor and comm == "rebeam-zygote":
            found.append(int(pid))
    return found
