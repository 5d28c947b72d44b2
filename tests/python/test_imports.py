"""What `import rebeam` and a worker's start cost: modules only some programs need load on
first use, and the names that load them still work as before."""

import subprocess
import sys

import pytest

import rebeam

# Loaded on first use, never by `import rebeam`, a worker's start or the main process's.
LATER = ("concurrent.futures", "asyncio", "runpy", "rebeam.futures", "rebeam.boc")


def loaded_after(code: str, later: tuple = LATER) -> list[str]:
    probe = f"import sys\n{code}\nprint(sorted(m for m in {later!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(out.stdout)


def test_the_package_the_worker_and_the_main_process_leave_them_for_later():
    assert loaded_after("import rebeam") == []
    assert loaded_after("import rebeam._worker") == []
    # The main process's events thread, waiting for its first command.
    events = (
        "import threading, time\nimport rebeam._main\n"
        "class Conn:\n    def next_command(self):\n        threading.Event().wait()\n"
        "rebeam._main.start_events(Conn())\ntime.sleep(0.2)"
    )
    # The worker's machinery is the workers' own.
    assert loaded_after(events, LATER + ("rebeam._worker",)) == []


def test_lazy_names_resolve_to_their_modules_and_are_listed():
    from rebeam import acall, acast, call_async
    from rebeam import futures

    assert (call_async, acall, acast) == (futures.call_async, futures.acall, futures.acast)
    assert {"call_async", "acall", "acast"} <= set(dir(rebeam))
    assert all(hasattr(rebeam, name) for name in rebeam.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rebeam.nope  # noqa: B018
