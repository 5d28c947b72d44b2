"""The safety gate and the topic bus, as Python sees them.

Python reads the safety state; it never changes it. The host arms and disarms the system
(``rebeam ctl arm`` / ``disarm``). Work marked :func:`requires_armed` (or all work, under
``rebeam --safety require-armed``) is refused before it starts unless the system is armed;
when the host disarms, running gated work is cancelled (:func:`cancelled` turns true),
interrupted (:class:`~rebeam.errors.SafetyInterrupt` in its thread) and, after a grace
period, its worker is killed. Its answer and its publications are discarded.

The bus: ``on("sensor.*", fn)`` subscribes (``*`` is one segment, ``**`` any number);
``publish("sensor.joint1", value)`` sends. Handlers run in the subscribing actor, one at a
time with its messages (in the main process, on a bus thread). Topics under ``safety.``,
``actuator.``, ``param.`` and ``rebeam.`` are the host's; safety transitions arrive on
``safety.transition`` as ``{"from", "to", "reason", "monotonic_ns"}``.
"""

from __future__ import annotations

from . import _rebeam, _runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: Default bound of a subscription's queue; when full, the oldest publication is dropped.
DEFAULT_QUEUE: int = _rebeam.DEFAULT_QUEUE


def requires_armed(fn: Callable) -> Callable:
    """Marks a handler as gated: it runs only while the host has armed the system."""
    fn._rebeam_requires_armed = True
    return fn


def safety_state() -> str:
    """"disarmed", "armed", "disarming" or "error"."""
    return _runtime.connection().safety_state()


def armed() -> bool:
    return safety_state() == "armed"


def cancelled() -> bool:
    """True inside gated work that a disarm has cancelled: stop as soon as you can.

    It turns true as soon as this process learns that the system left ``armed`` (the
    governor's broadcast, read without Python), before the work is interrupted. In an
    ``async def`` handler it is the flag of that handler's own delivery: the other runs of an
    actor with ``max_concurrency`` above 1 keep theirs.
    """
    work = _runtime.current_work()
    if work is None:
        return False
    return bool(work.cancelled or (work.gated and _runtime.connection().safety_state() != "armed"))


def on(pattern: str, fn: Callable[[str, Any], Any], throttle: float = 0.0, queue: int = DEFAULT_QUEUE) -> int:
    """Calls ``fn(topic, payload)`` for every publication matching ``pattern``.

    ``throttle``: at most one delivery per that many seconds (the newest wins; older ones are
    dropped), from 0 to ``MAX_THROTTLE`` (3600). ``queue``: how many undelivered publications
    to keep, from 1 to ``MAX_QUEUE`` (65536); other values raise ``ValueError``. Returns a subscription id
    for :func:`off`. Called in an actor, the subscription lives as long as that incarnation.
    """
    if not callable(fn):
        raise TypeError("on(pattern, fn): fn must be callable as fn(topic, payload)")
    _check_bounds(pattern, throttle, queue)
    me = _runtime.current()
    sub = _runtime.connection().subscribe(me.id if me else None, pattern, int(throttle * 1000), int(queue))
    _runtime.bus_handlers[sub] = fn
    return sub


def _check_bounds(pattern: str, throttle: float, queue: int) -> None:
    from ._rebeam import MAX_QUEUE, MAX_THROTTLE  # the governor's own bounds

    if isinstance(queue, bool) or not isinstance(queue, int) or not 1 <= queue <= MAX_QUEUE:
        raise ValueError(f"on({pattern!r}): queue={queue!r} must be a whole number from 1 to {MAX_QUEUE}")
    if not isinstance(throttle, (int, float)) or not 0 <= throttle <= MAX_THROTTLE:  # also refuses nan
        raise ValueError(
            f"on({pattern!r}): throttle={throttle!r} must be a number of seconds from 0 to {MAX_THROTTLE:g}"
        )


def dropped(subscription: int) -> int:
    """How many publications this subscription's bounded queue (or throttle) has dropped so
    far, as of the last one delivered."""
    return _runtime.bus_dropped.get(subscription, 0)


def off(subscription: int) -> None:
    _runtime.bus_handlers.pop(subscription, None)
    _runtime.connection().unsubscribe(subscription)


def publish(topic: str, payload: Any = None) -> bool:
    """Publishes ``payload`` on ``topic``. Returns False (and sends nothing) from gated work
    that a disarm cancelled. Raises ReservedTopic for the host's topics.

    A Rust host subscriber reads ``None``, ``bool``, ``int`` (64-bit), ``float``, ``str``,
    ``bytes``, ``list``, ``dict`` with str keys and C-contiguous NumPy arrays of bool, int and
    float dtypes, nested of these (not tuples, dataclasses or NumPy scalars: convert those
    first); Python subscribers receive any picklable payload."""
    if cancelled():
        return False
    data, buffers = _runtime.dumps_publication(payload, f"the payload for topic {topic!r}")
    _runtime.connection().publish(topic, data, buffers)
    return True
