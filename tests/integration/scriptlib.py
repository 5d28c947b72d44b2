"""Helpers the test *programs* import (run_rebeam puts this folder on their PYTHONPATH)."""

from __future__ import annotations

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
