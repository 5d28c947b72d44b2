"""Workers log as the main process does: its root logger's level, format and destination.

A script's ``logging.basicConfig(level=logging.INFO, format=...)`` runs in the main process
only (under ``if __name__ == "__main__":``, or in library mode), so a worker's root logger would
stay at WARNING with no handler and an actor's INFO lines would vanish. Every piece of code the
main process sends (an actor, a task, a behaviour) carries a snapshot of the root logger's
configuration as it is then; the worker applies it before the code runs. A worker whose own
code configured logging (a handler rebeam did not add) is left alone.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

_STYLES = {logging.PercentStyle: "%", logging.StrFormatStyle: "{", logging.StringTemplateStyle: "$"}
_lock = threading.Lock()
_applied: tuple | None = None


def snapshot() -> tuple | None:
    """The root logger's level and its first handler's format and destination, or None when
    the process has not configured logging (nothing to pass on)."""
    root = logging.getLogger()
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
    """Pickles as ``with_logging(config, obj)``: unpickling applies ``config`` and gives
    back ``obj``, so no part of the start or behaviour protocol changes."""

    __slots__ = ("config", "obj")

    def __init__(self, config: tuple, obj: Any) -> None:
        self.config, self.obj = config, obj

    def __reduce__(self):
        return with_logging, (self.config, self.obj)


def wrap(obj: Any) -> Any:
    config = snapshot()
    return obj if config is None else Carrier(config, obj)


def with_logging(config: tuple, obj: Any) -> Any:
    apply(config)
    return obj


def apply(config: tuple) -> None:
    global _applied
    if config == _applied:
        return
    with _lock:
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
        _applied = config
