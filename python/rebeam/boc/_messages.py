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
    blocking receive would freeze the loop, so only ``timeout=0`` is allowed."""
    tags = _tags(tags)
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
    """bocpy assigns its fixed set of queues to tags here and clears them. rebeam's queues are
    made per tag on first use, so this only checks the tags and clears every queue."""
    if _runtime.ROLE == "worker":
        raise RuntimeError("set_tags() can only be called from the main process")
    _tags(list(tags))
    _runtime.connection().drain_all()
