"""Raising an exception in another Python thread: how a stop or a disarm reaches running code."""

from __future__ import annotations

import ctypes
import threading


def raise_in_thread(ident: int | None, exc: type[BaseException]) -> None:
    """Raises ``exc`` in the thread ``ident`` at its next bytecode (not inside a C call)."""
    if ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))


def clear_async_exc() -> None:
    """Drops an asynchronous exception set for this thread but not raised yet."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(threading.get_ident()), None)
