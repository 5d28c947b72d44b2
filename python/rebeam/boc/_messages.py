"""bocpy's tagged messages: ``send``, selective ``receive``, ``drain``, between any processes.

The governor keeps one bounded queue per tag; ``receive`` takes the oldest message under
any of the tags it names, whichever process sent it.
"""

from __future__ import annotations

import threading
from typing import Any
from collections.abc import Callable, Sequence

from .. import _runtime

#: The tag of what ``receive`` returns when its timeout fires and there is no ``after``.
TIMEOUT = "__timeout__"

#: The longest tag, in UTF-8 bytes (as bocpy).
MAX_TAG_BYTES = 63


#: How many tags may have a message queue at once (bocpy's queue count).
MAX_TAGS = 16


def _tags(tags: Any) -> list[str]:
    tags = [tags] if isinstance(tags, str) else list(tags)
    for t in tags:
        if not isinstance(t, str) or not t:
            raise TypeError(f"a tag is a non-empty str, not {t!r}")
        if len(t.encode()) > MAX_TAG_BYTES:
            raise ValueError(f"tag {t[:20]!r}… is longer than {MAX_TAG_BYTES} UTF-8 bytes")
    return tags


def send(tag: str, contents: Any = None) -> None:
    """Queues ``contents`` under ``tag``, for whoever calls ``receive(tag)`` in any process.
    Raises ``CapacityError`` (a ``RuntimeError``) when the tag's queue is full."""
    (tag,) = _tags(tag)
    data, buffers = _runtime.dumps(contents, f"the message for tag {tag!r}")
    _runtime.connection().send_tagged(tag, data, buffers)


def receive(tags: str | Sequence[str], timeout: float = -1, after: Callable[[], Any] | None = None) -> Any:
    """The oldest message under any of ``tags``, as ``(tag, contents)``; blocks until one
    arrives. With a ``timeout`` (seconds; negative waits forever) it returns ``after()`` if
    given, else ``(TIMEOUT, None)``.

    A main-side behaviour (one holding a PinnedCown) runs inside your event loop: there a
    blocking receive would freeze the loop, so only ``timeout=0`` is allowed.

    A tag gets one of the 16 message queues on first use; past that, ``NoQueue`` (a
    ``KeyError``) is raised, as in bocpy."""
    tags = _tags(tags)
    if not tags:
        raise RuntimeError("receive(): tags must contain at least one value")
    wait = None if timeout is None or timeout < 0 else float(timeout)
    from ._pump import _pumping

    if getattr(_pumping, "active", False) and wait != 0 and threading.current_thread() is threading.main_thread():
        raise RuntimeError(
            f"receive({tags!r}) would block the event loop: it was called inside a main-side behaviour. "
            "Use receive(..., timeout=0) there, or receive in a behaviour on ordinary cowns"
        )
    got = _runtime.connection().receive(tags, wait)
    if got is None:
        return after() if after is not None else (TIMEOUT, None)
    tag, data, buffers = got
    return (tag, _runtime.loads(data, buffers))


def drain(tags: str | Sequence[str]) -> None:
    """Discards every message queued under ``tags``."""
    _runtime.connection().drain(_tags(tags))


def set_tags(tags: Sequence[str]) -> None:
    """Hands the 16 message queues to ``tags`` and empties them all, as bocpy does; the other
    tags lose their queues. An empty list lets tags take queues on first use again. More
    than 16 tags raise ``IndexError``."""
    if _runtime.ROLE == "worker":
        raise RuntimeError("set_tags() can only be called from the main process")
    tags = _tags(list(tags))
    if len(tags) > MAX_TAGS:
        raise IndexError(f"Only {MAX_TAGS} or fewer tags supported (got {len(tags)})")
    _runtime.connection().set_tags(tags)
