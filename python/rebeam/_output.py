"""Output of worker processes: every line an actor prints is prefixed with its name."""

from __future__ import annotations

import io
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

    def _prefix(self) -> str:
        pid = _runtime.current()
        if pid is None:
            return f"[{self._fallback}] "
        return f"[{pid.name or f'<{pid.id}>'}] "

    def write(self, s: str) -> int:
        buf = getattr(self._local, "buf", "") + s
        *lines, rest = buf.split("\n")
        self._local.buf = rest
        if lines:
            prefix = self._prefix()
            out = "".join(f"{prefix}{line}\n" for line in lines)
            with self._lock:
                self._raw.write(out)
                self._raw.flush()
        return len(s)

    def flush(self) -> None:
        rest = getattr(self._local, "buf", "")
        if rest:
            self._local.buf = ""
            with self._lock:
                self._raw.write(f"{self._prefix()}{rest}\n")
        with self._lock:
            self._raw.flush()

    def isatty(self) -> bool:
        return self._raw.isatty()

    def fileno(self) -> int:
        return self._raw.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._raw.encoding

    def writable(self) -> bool:
        return True
