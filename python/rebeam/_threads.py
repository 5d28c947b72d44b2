"""Raising an exception in another Python thread: how a stop or a disarm reaches running code."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable

from .errors import SafetyInterrupt


#: Threads ``raise_in_thread`` aimed at since each last cleared: only they can have an
#: exception pending, so clearing asks the interpreter only for them (every message a worker
#: runs ends with a clear, and the ctypes call cost more than a small message's dispatch).
_aimed_at: set[int] = set()


def raise_in_thread(ident: int | None, exc: type[BaseException]) -> None:
    """Raises ``exc`` in the thread ``ident`` at its next bytecode (not inside a C call)."""
    if ident is not None:
        # Noted before it is set, so a clear racing it finds it (as before, one set after
        # the clear lands in what the thread runs next; callers hold the lock that prevents it).
        _aimed_at.add(ident)
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))


def clear_async_exc() -> None:
    """Drops an asynchronous exception set for this thread but not raised yet."""
    ident = threading.get_ident()
    if ident in _aimed_at:
        _aimed_at.discard(ident)
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)


def end_interruptible(
    lock: threading.Lock, forget: Callable[[], None], interrupt: type[BaseException] = SafetyInterrupt
) -> None:
    """Ends work that ``interrupt`` (a disarm's, or a stop's) may be raised in: under ``lock``
    (the one the interrupter takes), ``forget()`` it so no new interrupt targets it, and drop
    one that came too late to land in it, so it never reaches what this thread runs next. One
    landing right here is swallowed."""
    while True:
        try:
            with lock:
                forget()
                clear_async_exc()
            return
        except interrupt:
            continue
