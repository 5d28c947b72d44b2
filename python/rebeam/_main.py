"""The main process: runs the user's script as ``python script.py`` would.

Run as ``python -m rebeam._main script.py args...`` by the governor. When the body ends it
tells the governor and waits: the run goes on while a supervision tree runs.
"""

from __future__ import annotations

import builtins
import os
import signal
import sys
import threading
import types

from . import _rebeam, _runtime
from ._dispatch import Handler
from ._exits import error_info, exit_now

_shutdown = threading.Event()
_shutdown_code = [0]
_body_running = [True]


class _Stop(BaseException):
    """Raised in the main thread when the governor ends the run while the body still runs."""


def events(conn, library: bool = False) -> None:
    """Handles the governor's commands for the main process. In library mode, a shutdown only
    closes the runtime: the user's process goes on. Start it with :func:`start_events`."""
    from ._handled import command_handled

    handler = MainHandler(conn, library)
    while True:
        cmd = conn.next_command()
        if cmd is None:
            continue
        try:
            if not handler.command(cmd):
                return
        finally:
            command_handled()  # pump() waits for what was sent before it (see _handled)


def start_events(conn, library: bool = False) -> None:
    """Starts the thread that handles ``conn``'s commands (one per connection)."""
    from ._handled import new_connection

    new_connection()
    threading.Thread(target=events, args=(conn, library), name="rebeam-events", daemon=True).start()


class MainHandler(Handler):
    """The commands of the main process (see _dispatch.TABLE); the rest are workers'."""

    def __init__(self, conn, library: bool) -> None:
        super().__init__(conn)
        self.library = library

    def on_run_behaviour(self, cmd: _rebeam.RunBehaviour) -> None:
        from . import boc

        boc.queue_main_behaviour(cmd.job)

    def on_publication(self, cmd: _rebeam.Publication) -> None:
        _runtime.bus_dropped[cmd.subscription] = cmd.dropped
        fn = _runtime.bus_handlers.get(cmd.subscription)
        if fn is not None:
            _bus_queue().put((fn, cmd.topic, cmd.data, cmd.buffers))

    def on_down(self, cmd: _rebeam.Down) -> None:
        from .actor import Down

        _runtime.down_notices.put(Down(cmd.monitor, _runtime.ProcessID(*cmd.actor), cmd.reason))

    def on_shutdown(self, cmd: _rebeam.Shutdown) -> bool:
        if self.library:
            if _runtime._conn is self.conn:
                _runtime._conn = None
            return False
        _shutdown_code[0] = max(cmd.code, 0)
        _shutdown.set()
        if _body_running[0]:
            # Wake the main thread even from time.sleep or a blocking read.
            os.kill(os.getpid(), signal.SIGTERM)
        return False


_bus: list = []


def _bus_queue():
    """Bus handlers of the main process run one at a time on this thread (until `pump()`
    lets an event loop run them)."""
    import queue

    if not _bus:
        q: queue.SimpleQueue = queue.SimpleQueue()
        _bus.append(q)
        threading.Thread(target=_run_bus, args=(q,), name="rebeam-bus", daemon=True).start()
    return _bus[0]


def _run_bus(q) -> None:
    while True:
        fn, topic, data, buffers = q.get()
        try:
            fn(topic, _runtime.loads(data, buffers))
        except Exception:
            import traceback

            traceback.print_exc()


def _on_sigterm(signum, frame):
    if not _body_running[0]:
        # The body is over (maybe printing why it raised): nothing left to interrupt, and
        # raising here would only bury that report under a traceback of our own.
        _shutdown.set()
        return
    if _shutdown.is_set():
        raise _Stop()
    raise SystemExit(128 + signum)


def _print_exception(e: BaseException, script: str) -> None:
    tb = e.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != script:
        tb = tb.tb_next
    # Ctrl-C: where the script was is the news, not the rebeam call it was blocked in.
    limit = _user_depth(tb) if isinstance(e, KeyboardInterrupt) else None
    import traceback  # here, not at import: it imports re, textwrap... (only a failure needs it)

    traceback.print_exception(type(e), e, tb, limit=limit)


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _user_depth(tb) -> int | None:
    """How many frames of ``tb`` come before the rebeam frames at its end."""
    depth, last_user = 0, None
    while tb is not None:
        depth += 1
        if os.path.dirname(os.path.abspath(tb.tb_frame.f_code.co_filename)) != _PACKAGE:
            last_user = depth
        tb = tb.tb_next
    return last_user


def _run_as_main(script: str) -> None:
    """Runs the script as `python script.py` does: a fresh `__main__` module, `__file__`
    absolute, `sys.argv[0]` as the user typed it."""
    module = types.ModuleType("__main__")
    module.__file__ = script
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    # Workers import the script as `__rebeam_main__` (see _script.py): what they pickle by
    # reference under that name is this module here.
    sys.modules["__rebeam_main__"] = module
    with open(script, "rb") as f:
        code = compile(f.read(), script, "exec")
    exec(code, module.__dict__)


def main() -> None:
    # Whole lines, as the workers write them: output from several processes then interleaves
    # by line, never mid-line, even through a pipe (`rebeam main.py | tee log`).
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            # write_through=False too: PYTHONUNBUFFERED=1 makes every piece of a print() its
            # own write, and another process's line could land between them.
            stream.reconfigure(line_buffering=True, write_through=False)
    script = os.path.abspath(sys.argv[1])
    if not os.path.isfile(script):
        print(f"rebeam: cannot open script {sys.argv[1]}: no such file", file=sys.stderr)
        exit_now(2)
    conn = _runtime.connect()
    start_events(conn)
    conn.ready()
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(script)
    signal.signal(signal.SIGTERM, _on_sigterm)
    error = exit_code = None
    try:
        try:
            _run_as_main(script)
        finally:
            _body_running[0] = False
    except _Stop:
        pass
    except SystemExit as e:
        if not _shutdown.is_set():
            # The run ends with this status now, as `python main.py` would (or the script is
            # restarted: rebeam --restart).
            # An exit status is one byte, as the operating system keeps it (sys.exit(-1) is 255).
            exit_code = e.code % 256 if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, (int, type(None))):
                print(e.code, file=sys.stderr)
    except KeyboardInterrupt as e:
        if not _shutdown.is_set():
            _print_exception(e, script)
            error = error_info(e)
    except BaseException as e:
        if not _shutdown.is_set():
            _print_exception(e, script)
            error = error_info(e)
    _body_running[0] = False
    try:
        if not _shutdown.is_set():
            # As ProcessPoolExecutor at exit: executors left running finish their tasks first
            # (only a script that made one has the module loaded).
            executor = sys.modules.get(f"{__package__}.executor")
            if executor is not None:
                executor.shutdown_all()
            conn.body_done(error, exit_code)
        while not _shutdown.wait(0.5):
            pass
    except (_Stop, SystemExit, KeyboardInterrupt):
        pass
    except Exception:
        pass
    exit_now(0 if error is None else 1)


if __name__ == "__main__":
    main()
