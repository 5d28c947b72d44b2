"""How a process of the run reports an exception and leaves: shared by the main process and
the workers, apart from the worker's own machinery so that the main process does not import it."""

from __future__ import annotations

import os
import sys

from . import _rebeam


def error_info(e: BaseException, kind: str = "crashed") -> _rebeam.ErrorInfo:
    # Drop rebeam's own frames at the top: the report starts in the user's code.
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None and _is_rebeam_frame(tb):
        tb = tb.tb_next
    import traceback  # here, not at import: it imports re, textwrap... (only a failure needs it)

    tb = "".join(traceback.format_exception(type(e), e, tb))
    return _rebeam.ErrorInfo(kind, str(e), type(e).__qualname__, tb)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _is_rebeam_frame(tb) -> bool:
    return os.path.dirname(os.path.abspath(tb.tb_frame.f_code.co_filename)) == _PACKAGE_DIR


def exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            # Every thread's unfinished line, not only this thread's (print(..., end="")).
            getattr(stream, "flush_all", stream.flush)()
        except Exception:
            pass
    os._exit(code)
