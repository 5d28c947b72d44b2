"""How many of the governor's commands the main process's events thread has handled.

A pump (``rebeam.boc.pump``) must see every main-side behaviour the governor sent before the
pump began: ``expect_commands`` raises the count the next pump waits for, the events thread
counts what it handled. Kept apart from ``rebeam.boc`` so that the events thread, which
every main process starts, does not import the behaviour machinery before a behaviour exists.
"""

from __future__ import annotations

import threading

#: Commands handled on this connection, and how many a pump must wait for.
handled = [0, 0]
handled_cv = threading.Condition()


def new_connection() -> None:
    """A fresh connection counts its commands from zero."""
    with handled_cv:
        handled[:] = [0, 0]


def command_handled() -> None:
    """The events thread handled one more command from the governor."""
    with handled_cv:
        handled[0] += 1
        if handled[0] >= handled[1]:
            handled_cv.notify_all()


def expect_commands(count: int) -> None:
    """A main-side behaviour was scheduled and the governor has answered: if it could run,
    it is among the first ``count`` commands sent here, which the next pump waits for."""
    with handled_cv:
        handled[1] = max(handled[1], count)
