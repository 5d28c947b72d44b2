"""Opaque handles: a Python object that stays in its worker, referenced by a Rust host.

A handler returns ``rebeam.handle(obj)`` (alone or inside its reply); the host gets a
``rebeam::Handle`` and passes it in later calls, whose handlers receive ``obj`` itself.

The rules (the Rust crate ``rebeam``'s ``Handle`` states them too):

- The object lives in this worker's table, owned by the actor whose handler made the handle
  (its *holder*). On the wire a handle is ``{HANDLE_KEY: {"id", "worker", "pid", "owner"}}``;
  decoding a host's message puts the object in its place (:func:`resolve`).
- The host's drop of its ``Handle`` casts a release to the holder, taken before any handler
  (:func:`release`); the table lets the object go. When the holder ends, every handle it made
  ends too (:func:`end_holder`): a release could no longer reach it.
- A handle is never moved between workers: resolving it in another worker raises
  :class:`HandleError` naming both (moving would pickle the very object a handle keeps in place).
- Resolving a handle that was released, or whose holder ended, raises :class:`HandleError`.
- Only a Rust host releases handles: a Python caller that gets one receives its wire dict, and
  the object stays until the holder ends.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
from typing import Any

from . import _rebeam, _runtime

#: The subject of the host's release cast.
RELEASE_SUBJECT: str = _rebeam.HANDLE_RELEASE
#: This worker process, as handles name it: a pid can be reused by a later worker, this cannot.
WORKER = secrets.token_hex(8)

_lock = threading.Lock()
_ids = itertools.count(1)
#: The objects of live handles: id → (holder actor id, object).
_table: dict[int, tuple[int, Any]] = {}


class HandleError(LookupError):
    """A handle that does not resolve here: released, its holder ended, or another worker's."""


class Handle(dict):
    """What :func:`handle` returns: the wire form of a handle (a dict the host's codec carries)."""

    @property
    def id(self) -> int:
        return self[_rebeam.HANDLE_KEY]["id"]

    def __repr__(self) -> str:
        ref = self[_rebeam.HANDLE_KEY]
        return f"<rebeam handle {ref['id']} of actor <{ref['owner']}> in worker pid {ref['pid']}>"


def handle(obj: Any) -> Handle:
    """Keeps ``obj`` in this worker and returns a handle for a Rust host to refer to it.

    Call it in an actor's handler: that actor holds the object until the host drops the
    handle, or until the actor ends.
    """
    me = _runtime.current()
    if me is None:
        raise RuntimeError("rebeam.handle(obj) belongs in an actor's handler: the actor holds the object")
    with _lock:
        n = next(_ids)
        _table[n] = (me.id, obj)
    return Handle({_rebeam.HANDLE_KEY: {"id": n, "worker": WORKER, "pid": os.getpid(), "owner": me.id}})


def resolve(ref: dict) -> Any:
    """The object a host's handle stands for (called while decoding a host's message)."""
    n, here = ref.get("id"), os.getpid()
    if ref.get("worker") != WORKER or ref.get("pid") != here:
        raise HandleError(
            f"handle {n} is held in worker pid {ref.get('pid')}, not in this one (pid {here}): handles "
            f"never leave their worker; call an actor in that worker (its holder, actor <{ref.get('owner')}>). "
            "If that worker died, the object died with it: make a new handle"
        )
    with _lock:
        entry = _table.get(n)
    if entry is None:
        raise HandleError(
            f"handle {n} is gone: the host released it, or its holder actor <{ref.get('owner')}> ended "
            "(a holder's handles end with it); make a new handle"
        )
    return entry[1]


def release(holder: int, message: Any) -> None:
    """The host dropped a handle of ``holder``'s: let its object go."""
    n = message.get("id") if isinstance(message, dict) else None
    with _lock:
        entry = _table.get(n)
        if entry is not None and entry[0] == holder:
            del _table[n]
    # The object's finalizer runs here, outside the lock, once the last reference is gone.
    del entry


def end_holder(holder: int) -> None:
    """``holder`` ended: every handle it made ends with it."""
    with _lock:
        gone = [n for n, (owner, _) in _table.items() if owner == holder]
        objects = [_table.pop(n) for n in gone]
    del objects


def held() -> int:
    """How many objects this worker keeps for handles (for tests and diagnostics)."""
    with _lock:
        return len(_table)


__all__ = ["Handle", "HandleError", "RELEASE_SUBJECT", "handle", "resolve", "release", "end_holder", "held"]
