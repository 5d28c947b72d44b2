"""A run of casts for a synchronous actor, as ``Worker.run_casts`` runs it.

The rules:

- **In order, as delivered.** Each cast runs as ``Worker.deliver`` would run it, one after
  another, until the run ends or the actor does (the rest are lost, as those in its mailbox
  are).
- **Plain casts run here.** A cast whose handler is plain (a synchronous, ungated handler of
  an actor) and whose payload is a plain pickle (``bytes``, no out-of-band buffers, not a Rust
  host's value, naming no script module) is run in this loop: its pickle loaded (by the native
  ``cast_message``, which tells a plain payload and decodes small values itself; one that
  cannot be loaded is dropped, as ``deliver`` drops it), its handler called, a coroutine it returns
  run to its end, an exception crashing the actor as in ``Worker.dispatch``, and what it
  returns dropped (a cast has nobody to answer). Every other cast goes through
  ``Worker.deliver``.
- **Looked up once per subject.** Consecutive casts with the same subject share one look-up of
  its handler, and those from the same sender one ProcessID (a burst from one sender is one
  subject object and one sender object, see the native ``Casts``).
"""

from __future__ import annotations

import types
from typing import Any

from . import _aio, _rebeam
from .errors import SafetyInterrupt

# pickle.loads of a plain payload, small values decoded in Rust; NOT_PLAIN for the rest.
_message = _rebeam.cast_message
_NOT_PLAIN = _rebeam.NOT_PLAIN
_Coroutine = types.CoroutineType


def plain_handler(host: Any, subject: str) -> Any:
    """The bound handler a cast with ``subject`` runs, if it is plain (see the rules), else None."""
    obj = host.instance
    if obj is None:  # a task
        return None
    subjects, catch_all, _ = host.handlers
    method = subjects.get(subject, catch_all)
    if method is None or method in host.async_methods:
        return None
    handler = getattr(obj, method)
    if getattr(getattr(handler, "__func__", handler), "_rebeam_requires_armed", False):
        return None
    return handler


def run(worker: Any, host: Any, items: list) -> None:
    """Runs ``items`` (mailbox items of casts, in reverse order: taken from the end, so that
    each goes once run) in ``host``'s actor."""
    last = handler = from_ = source = None
    while items and not host.dead:
        _, delivery, subject, sender, data, buffers = items.pop()
        if subject is not last:
            last, handler = subject, plain_handler(host, subject)
        if handler is None or delivery is not None or buffers:
            worker.deliver(host, delivery, subject, sender, data, buffers)
            continue
        try:
            message = _message(data)
        except BaseException:
            continue
        if message is _NOT_PLAIN:
            worker.deliver(host, delivery, subject, sender, data, buffers)
            continue
        try:
            if sender is not from_:
                from_, source = sender, host.source(sender)
            result = handler(source, message)
            if type(result) is _Coroutine:
                _aio.resolve(result)
        except SafetyInterrupt:
            worker.interrupted(host, None, subject)
        except BaseException as e:
            worker.crashed(host, None, e)
