"""The noticeboard: a small global key-value store (at most 64 keys) for read-mostly state.

The governor keeps it. ``notice_write`` and ``notice_delete`` are fire-and-forget;
``notice_seed`` returns once the entry is live; ``notice_update`` is atomic: it reads the
entry and its version, applies ``fn`` here, and sets the result only if no other write came
in between, retrying otherwise. Inside a behaviour, ``noticeboard()`` is a snapshot taken on
first use and kept for the rest of that behaviour, as in bocpy; outside one it is fresh.
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any
from collections.abc import Callable, Mapping

from .. import _runtime

log = logging.getLogger("rebeam.boc")

MAX_KEY_BYTES = 63


class _RemovedType:
    """Returned by a ``notice_update`` function: delete the entry."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REMOVED"

    def __reduce__(self):
        return (_RemovedType, ())


REMOVED = _RemovedType()


def _check_key(key: str) -> None:
    if not isinstance(key, str):
        raise TypeError(f"noticeboard key must be a str, not {type(key).__name__}")
    if "\x00" in key:
        raise ValueError("noticeboard key must not contain NUL characters")
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"noticeboard key must be 1 to {MAX_KEY_BYTES} UTF-8 bytes long, got {key[:20]!r}…")


def notice_write(key: str, value: Any) -> None:
    """Writes ``value`` under ``key`` without waiting. Eventually consistent: use cowns or
    messages, not the noticeboard, to order behaviours. A write of a 65th key is dropped
    with a warning in the governor's log (use ``notice_seed`` to be told)."""
    _check_key(key)
    data, buffers = _runtime.dumps(value, f"the noticeboard value for {key!r}")
    _runtime.connection().notice(key, data, buffers)


def notice_seed(key: str, value: Any) -> None:
    """Writes ``value`` under ``key`` from the main process and returns once every behaviour
    scheduled afterwards sees it. Raises ``CapacityError`` when the board has 64 other keys."""
    if _runtime.ROLE == "worker":
        raise RuntimeError("notice_seed may only be called from the main process; use notice_write in behaviours")
    _check_key(key)
    data, buffers = _runtime.dumps(value, f"the noticeboard value for {key!r}")
    _runtime.connection().notice_seed(key, data, buffers)


def notice_update(key: str, fn: Callable[[Any], Any], default: Any = None) -> None:
    """Atomically replaces the entry with ``fn(current)`` (``fn(default)`` when absent);
    ``fn`` returning :data:`REMOVED` deletes it. If ``fn`` raises, the entry keeps its value
    and a warning is logged, as in bocpy. ``fn`` may be a lambda or a closure here."""
    _check_key(key)
    if not callable(fn):
        raise TypeError("notice_update fn must be callable")
    conn = _runtime.connection()
    while True:
        entry = _entries(conn).get(key)
        version, current = entry if entry is not None else (0, default)
        try:
            new = fn(current)
        except Exception as e:
            log.warning("notice_update(%r): %s raised %s: %s; the entry is unchanged", key, fn, type(e).__name__, e)
            return
        if new is REMOVED:
            applied = conn.notice_update(key, version, None, [])
        else:
            data, buffers = _runtime.dumps(new, f"the noticeboard value for {key!r}")
            applied = conn.notice_update(key, version, data, buffers)
        if applied:
            return


def notice_delete(key: str) -> None:
    """Deletes ``key`` without waiting (a no-op when it is absent)."""
    _check_key(key)
    _runtime.connection().notice(key, None, [])


def _entries(conn, clear: bool = False) -> dict[str, tuple[int, Any]]:
    return {k: (ver, _runtime.loads(data, bufs)) for k, ver, data, bufs in conn.notices(clear)}


def snapshot(clear: bool = False) -> dict[str, Any]:
    """Every entry now, as a plain dict (``clear``: and empty the board)."""
    return {k: v for k, (_, v) in _entries(_runtime.connection(), clear).items()}


def noticeboard() -> Mapping[str, Any]:
    """A read-only snapshot of the noticeboard: the same one for the rest of a behaviour."""
    local = _runtime._local
    if getattr(local, "acquired", None) is None:
        return MappingProxyType(snapshot())
    if getattr(local, "notices", None) is None:
        local.notices = MappingProxyType(snapshot())
    return local.notices


def notice_read(key: str, default: Any = None) -> Any:
    """One entry of :func:`noticeboard`, or ``default``."""
    _check_key(key)
    return noticeboard().get(key, default)
