"""Output of worker processes: every line an actor prints is prefixed with its name."""

from __future__ import annotations

import io
import itertools
import threading

from . import _runtime


class PrefixedStream(io.TextIOBase):
    """A text stream that writes whole lines, each prefixed with the current actor's label.

    Lines are buffered per thread so two actors printing at once never interleave mid-line,
    and each line reaches the terminal in one write.
    """

    def __init__(self, raw: io.TextIOBase, fallback: str):
        self._raw = raw
        self._fallback = fallback
        self._local = threading.local()
        self._lock = threading.Lock()
        # Every thread's unfinished line, by thread: a worker exits from its command thread,
        # and what an actor printed without a final newline must not die with its thread's
        # local buffer (see flush_all).
        self._partial: dict[int, tuple[str, str]] = {}
        self._keys = itertools.count()

    def _key(self) -> int:
        # Not the thread ident: idents are reused, and a dead thread's line must survive it.
        key = getattr(self._local, "key", None)
        if key is None:
            key = self._local.key = next(self._keys)
        return key

    def _prefix(self) -> str:
        pid = _runtime.current()
        if pid is None:
            return f"[{self._fallback}] "
        return f"[{pid.name or f'<{pid.id}>'}] "

    def write(self, s: str) -> int:
        buf = getattr(self._local, "buf", "") + s
        *lines, rest = buf.split("\n")
        self._local.buf = rest
        prefix = self._prefix()
        out = "".join(f"{prefix}{line}\n" for line in lines)
        with self._lock:
            if rest:
                self._partial[self._key()] = (prefix, rest)
            else:
                self._partial.pop(self._key(), None)
            if out:
                self._raw.write(out)
                self._raw.flush()
        return len(s)

    def flush(self) -> None:
        rest = getattr(self._local, "buf", "")
        with self._lock:
            if rest:
                self._local.buf = ""
                self._partial.pop(self._key(), None)
                self._raw.write(f"{self._prefix()}{rest}\n")
            self._raw.flush()

    def flush_all(self) -> None:
        """Writes every thread's unfinished line (the process is about to exit)."""
        with self._lock:
            partial, self._partial = self._partial, {}
            for prefix, rest in partial.values():
                self._raw.write(f"{prefix}{rest}\n")
            self._raw.flush()
        self._local.buf = ""

    def isatty(self) -> bool:
        return self._raw.isatty()

    def fileno(self) -> int:
        return self._raw.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._raw.encoding

    def writable(self) -> bool:
        return True
