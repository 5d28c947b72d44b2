"""Workers log as the main process does: its root logger's level, format and destination.

A script's ``logging.basicConfig(level=logging.INFO, format=...)`` runs in the main process
only (under ``if __name__ == "__main__":``, or in library mode), so a worker's root logger would
stay at WARNING with no handler and an actor's INFO lines would vanish. Every piece of code the
main process sends (an actor, a task, a behaviour) carries a snapshot of the root logger's
configuration as it is then; the worker applies it before the code runs, unless it already
applied a newer one. A worker whose own code configured logging (a handler rebeam did not add)
is left alone.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from . import _runtime

_STYLES = {logging.PercentStyle: "%", logging.StrFormatStyle: "{", logging.StringTemplateStyle: "$"}
_lock = threading.Lock()
#: In a worker: the (generation, config) applied last. In the main process: the config sent
#: last and its generation, which grows whenever the config changes, so that a restart (whose
#: code, and so config, was captured long ago) never undoes a newer one.
_applied: tuple | None = None
_sent: tuple = (0, None)


def snapshot() -> tuple | None:
    """(generation, config) to send with code, or None when there is nothing to pass on. A
    worker passes on what the main process sent it, never its own configuration."""
    global _sent
    if _runtime.ROLE == "worker":
        return _applied
    config = _root_config()
    if config is None:
        return None
    with _lock:
        if config != _sent[1]:
            _sent = (_sent[0] + 1, config)
        return _sent


def _root_config() -> tuple | None:
    """The root logger's level and its first handler's format and destination, or None when
    the process has not configured logging."""
    root = logging.root  # what getLogger() returns, without the call
    if not root.handlers and root.level == logging.WARNING:
        return None
    fmt = datefmt = dest = None
    style = "%"
    if root.handlers:
        handler = root.handlers[0]
        formatter = handler.formatter
        if formatter is not None:
            fmt, datefmt = formatter._fmt, formatter.datefmt
            style = _STYLES.get(type(formatter._style), "%")
        if isinstance(handler, logging.FileHandler):
            dest = ("file", handler.baseFilename)
        elif isinstance(handler, logging.StreamHandler):
            dest = ("stdout",) if handler.stream in (sys.stdout, sys.__stdout__) else ("stderr",)
    return (root.level, fmt, datefmt, style, dest)


class Carrier:
    """Pickles as ``with_logging((generation, config), obj)``: unpickling applies the config and
    gives back ``obj``, so no part of the start or behaviour protocol changes."""

    __slots__ = ("config", "obj")

    def __init__(self, sent: tuple, obj: Any) -> None:
        self.config, self.obj = sent, obj

    def __reduce__(self):
        return with_logging, (self.config, self.obj)


def wrap(obj: Any) -> Any:
    sent = snapshot()
    return obj if sent is None else Carrier(sent, obj)


def with_logging(sent: tuple, obj: Any) -> Any:
    apply(sent)
    return obj


def apply(sent: tuple) -> None:
    global _applied
    generation, config = sent
    with _lock:
        if _applied is not None and generation <= _applied[0]:
            return
        root = logging.getLogger()
        ours = [h for h in root.handlers if getattr(h, "_rebeam_mirror", False)]
        if len(ours) != len(root.handlers):
            return  # this worker's own code configured logging: it wins
        level, fmt, datefmt, style, dest = config
        root.setLevel(level)
        for h in ours:
            root.removeHandler(h)
            h.close()
        if dest is not None:
            if dest[0] == "file":
                handler: logging.Handler = logging.FileHandler(dest[1], mode="a", encoding="utf-8")
            else:
                # The worker's sys.stdout/sys.stderr prefix each line with the actor's name.
                handler = logging.StreamHandler(sys.stdout if dest[0] == "stdout" else sys.stderr)
            handler.setFormatter(logging.Formatter(fmt, datefmt, style=style))
            handler._rebeam_mirror = True  # type: ignore[attr-defined]
            root.addHandler(handler)
        _applied = (generation, config)
