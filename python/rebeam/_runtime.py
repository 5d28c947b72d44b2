"""This process's place in a rebeam run: its connection, its role, and who is running now.

Messages are pickled with protocol 5; large buffers (NumPy arrays, bytes) travel out of band.
Code (actor instances, functions given as children) is pickled by reference when it can be,
and with cloudpickle when it cannot (lambdas, closures, classes defined in a REPL).
"""

from __future__ import annotations

import _queue
import contextvars
import io
import os
import sys
import threading

# The C modules behind pickle and queue, which those modules re-export: importing pickle.py,
# queue.py, dataclasses and typing costs the main process more than the rest of its start
# before the script's first line (re, inspect, ast...), and a script that needs them imports
# them itself.
import _pickle as pickle

from . import _env
from .errors import NotRunning, SerializationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ROLE: str | None = os.environ.get(_env.ROLE)
_conn = None


class _ThreadState(threading.local):
    """What each thread runs for rebeam. Every attribute has a class default: looking up one a
    thread never set would otherwise raise (and catch) an AttributeError, several µs each, and
    ``connection()`` and ``current()`` look them up on every message sent."""

    actor: Any = None  # ProcessID of the actor running on this thread
    host: Any = None  # its _worker.Host
    importing_script: str | None = None  # a script a worker imports for a type it defines
    # What the behaviour running on this thread holds (see boc._cowns.run_behaviour).
    acquired: set | None = None  # the cowns it acquired, None outside a behaviour
    lost: Any = ()  # those of them whose value was lost with a worker
    notices: Any = None  # its noticeboard snapshot, once it read one


_local = _ThreadState()


#: This process's node (``rebeam --node NAME``), or None when the run is not a node.
NODE: str | None = os.environ.get(_env.NODE)


class ProcessID:
    """One incarnation of an actor. A restarted actor gets a new id but keeps its name.

    ``node`` is the node the actor runs on when that is another node than this process's, else
    None. A ProcessID pickled on a node carries that node, so one handed to another node (in a
    message, a reply) still names its actor there; unpickled on its own node it is local again.

    Immutable, compared and hashed by its three fields (what ``@dataclass(frozen=True)`` would
    make, written out: dataclasses imports inspect, and every process of a run imports this).
    """

    __slots__ = ("id", "name", "node")
    __match_args__ = ("id", "name", "node")

    id: int
    name: str | None
    node: str | None

    def __init__(self, id: int, name: str | None = None, node: str | None = None) -> None:
        _set = object.__setattr__
        _set(self, "id", id)
        _set(self, "name", name)
        _set(self, "node", node)

    def __setattr__(self, attr: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {attr!r}: a ProcessID is immutable")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError(f"cannot delete field {attr!r}: a ProcessID is immutable")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not ProcessID:
            return NotImplemented
        return (self.id, self.name, self.node) == (other.id, other.name, other.node)

    def __hash__(self) -> int:
        return hash((self.id, self.name, self.node))

    def __repr__(self) -> str:
        if self.node:
            return f"ProcessID({self.id}, {self.name!r}, node={self.node!r})"
        return f"ProcessID({self.id}, {self.name!r})" if self.name else f"ProcessID({self.id})"

    def __reduce__(self):
        node = self.node or NODE
        if node is None:
            return (ProcessID, (self.id, self.name))
        return (_process_id, (self.id, self.name, node))


def _process_id(id: int, name: str | None, node: str) -> ProcessID:
    """A ProcessID unpickled from a node: local again on its own node."""
    return ProcessID(id, name, None if node == NODE else node)


def connect():
    """Connects this process to the governor that started it."""
    global _conn
    from . import _rebeam

    try:
        socket, token = os.environ[_env.SOCKET], os.environ[_env.TOKEN]
    except KeyError:
        raise NotRunning("this process was not started by rebeam") from None
    _conn = _rebeam.Connection.connect(socket, token, ROLE or "main")
    _stop_flusher_at_exit(_conn)
    return _conn


def _stop_flusher_at_exit(conn) -> None:
    """The connection's flusher (the thread that sends held @whens and "done"s) is stopped
    while the interpreter is whole: at exit it must not wait for the GIL any more."""
    import atexit

    atexit.register(conn.stop_flusher)


def connection():
    importing = _local.importing_script
    if importing:
        raise NotRunning(
            f"{importing} called rebeam while a worker imported it for a type it defines; put the "
            "script's main code under `if __name__ == \"__main__\":` so it runs only in the main process"
        )
    if _conn is None and ROLE in (None, "main"):
        from . import _library

        if _library.enabled():
            return _library.start()
    if _conn is None:
        raise NotRunning(
            "rebeam is not running in this process: run your script with `rebeam script.py` "
            "instead of `python script.py`"
        )
    return _conn


def starts_trees() -> bool:
    """Whether a Supervisor built here starts its tree: in the main process of a run, or in
    library mode (workers only describe trees)."""
    if ROLE is not None:
        # A run's own process: no need to load library mode (and what it imports) to know.
        return ROLE == "main"
    from . import _library

    return _library.enabled()


#: The actor an ``async def`` handler's task runs as (see ``_aio``): on the worker's event loop
#: thread, coroutines of several actors take turns, so a thread-local cannot say whose turn it is.
current_task_actor: contextvars.ContextVar[ProcessID | None] = contextvars.ContextVar("rebeam_actor", default=None)


def current() -> ProcessID | None:
    """The actor whose code runs on this thread (or in this coroutine), if any."""
    return current_task_actor.get() or _local.actor


def set_current(pid: ProcessID | None) -> None:
    _local.actor = pid


#: The delivery an ``async def`` handler's task runs (an ``_aio.Run``), for the same reason: its
#: ``gated`` and ``cancelled`` are what ``rebeam.cancelled()`` reads in that coroutine.
current_run: contextvars.ContextVar[Any] = contextvars.ContextVar("rebeam_run", default=None)


def current_work() -> Any:
    """What this coroutine or thread runs for the safety gate: an ``_aio.Run`` in an ``async
    def`` handler, else the thread's ``_worker.Host`` (both have ``gated`` and ``cancelled``),
    or None outside actors."""
    return current_run.get() or _local.host


#: In library mode workers have no script to import: what the main process defines in
#: ``__main__`` (a class of the REPL, of ``python prog.py``) travels by value instead.
main_by_value = False


_sent_path: list | None = None
_sent_path_lock = threading.Lock()


def share_sys_path() -> None:
    """Workers unpickle what the main process sends, so they must find the modules it finds:
    tell the governor this process's ``sys.path`` whenever it changed (a test runner or a
    script adding its own directory). Called before anything leaves the main process, so
    the workers have the path before what may need it; one comparison when nothing changed.
    """
    global _sent_path
    if ROLE == "worker" or _conn is None or sys.path == _sent_path:
        return
    with _sent_path_lock:
        snapshot = list(sys.path)
        if snapshot != _sent_path:
            _conn.sys_path([p for p in snapshot if isinstance(p, str)])
            _sent_path = snapshot


def dumps(obj: Any, what: str) -> tuple[bytes, list]:
    share_sys_path()
    buffers: list = []
    try:
        data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        if main_by_value and b"__main__" in data:
            raise pickle.PicklingError("refers to __main__, which workers cannot import")
    except Exception as e:
        # Lambdas, closures and classes defined in the script travel by value.
        try:
            from . import _codepickle

            buffers = []
            data = _codepickle.dumps(obj, buffer_callback=buffers.append)
            return data, [b.raw() for b in buffers]
        except Exception:
            pass
        raise SerializationError(
            f"{what} cannot be pickled ({type(obj).__name__}: {e}); nothing was sent. "
            "Send plain data (numbers, strings, lists, dicts, dataclasses, NumPy arrays)."
        ) from e
    return data, [b.raw() for b in buffers]


class _Unpickler(pickle.Unpickler):
    """Resolves ``__main__.X`` in a worker by importing the user's script on first need."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("__main__", "__rebeam_main__") and ROLE == "worker":
            from ._script import ensure_main_script

            ensure_main_script()
        return super().find_class(module, name)


def is_host_value(data: bytes) -> bool:
    """Whether a payload is a Rust host's neutral value rather than a pickle."""
    # Asked of every message a worker takes (twice): the tag is looked up once, not imported
    # each time, and plain bytes need no memoryview.
    tag = _host_value_tag or _load_host_value_tag()
    if type(data) is bytes:
        return data.startswith(tag)
    # A memoryview: large payloads arrive as a read-only buffer (shared.rs), not as bytes.
    return memoryview(data)[:4] == tag


_host_value_tag: bytes = b""


def _load_host_value_tag() -> bytes:
    global _host_value_tag
    from . import _rebeam

    _host_value_tag = _rebeam.VALUE_TAG
    return _host_value_tag


#: The native module, looked up on the first host value (as the tag above): a ``from .
#: import`` in a function walks the package's import machinery each time (0.4 us), and a Rust
#: host's call takes two of them (its message and its reply).
_native: Any = None


def _load_native() -> Any:
    global _native
    from . import _rebeam

    _native = _rebeam
    return _rebeam


def dumps_host_value(obj: Any, what: str) -> tuple[bytes, list]:
    """A reply to a Rust host: the neutral value model, which Rust reads without pickle."""
    try:
        return (_native or _load_native()).value_dumps(obj)
    except (TypeError, ValueError) as e:
        raise SerializationError(f"{what}: {e}") from e


def dumps_publication(obj: Any, what: str) -> tuple[bytes, list]:
    """A publication: the neutral value model where it carries ``obj`` exactly, so a Rust host
    can read it and Python subscribers get the same objects as from a pickle; a pickle otherwise
    (a tuple, a dataclass, a NumPy scalar...: the host cannot read those)."""
    from . import _rebeam

    exact = _rebeam.value_dumps_exact(obj)
    return exact if exact is not None else dumps(obj, what)


def host_actor(spec: dict) -> Any:
    """The actor a Rust host spawned: ``{"class": "package.module:Class", "args": [...],
    "kwargs": {...}}``, constructed here as ``Class(*args, **kwargs)``."""
    import importlib

    where = spec["class"]
    module, _, name = where.partition(":")
    if not module or not name:
        raise ValueError(f"the Rust host named the class {where!r}; write it as 'package.module:Class'")
    cls = importlib.import_module(module)
    for part in name.split("."):
        cls = getattr(cls, part)
    return cls(*spec.get("args", []), **spec.get("kwargs", {}))


def loads(data: bytes, buffers: list, host_value: bool | None = None) -> Any:
    """A received payload's value; ``host_value`` is ``is_host_value(data)`` if the caller
    has asked it already."""
    if host_value or (host_value is None and is_host_value(data)):
        return (_native or _load_native()).value_loads(data, buffers)
    # Only a pickle naming the script's module needs the worker's own unpickler; a scan for
    # that name costs far less than a Python-level unpickler (a behaviour's captures, say).
    if ROLE != "worker" or (type(data) is bytes and b"main__" not in data):  # __main__, __rebeam_main__
        # A plain value (a cast's small int, say) has no out-of-band buffers to hand over.
        return pickle.loads(data, buffers=buffers) if buffers else pickle.loads(data)
    return _Unpickler(io.BytesIO(data), buffers=buffers).load()


def dumps_code(obj: Any, what: str) -> tuple[bytes, list]:
    """Pickles code with cloudpickle: importable things by reference (the script's module-level
    classes and functions too, which workers import as ``__rebeam_main__``); lambdas, closures
    and library mode's ``__main__`` by value, keeping their file names (see ``_codepickle``).
    The code carries this process's logging configuration to the worker (see ``_logsync``)."""
    share_sys_path()
    try:
        from . import _codepickle, _logsync

        return _codepickle.dumps(_logsync.wrap(obj)), []
    except Exception as e:
        raise SerializationError(f"{what} cannot be sent to a worker: {type(e).__name__}: {e}") from e


#: Values of the cowns this process holds, by cown id (see rebeam.boc).
cown_store: dict = {}
#: When main-side behaviours were last pumped, and when the oldest waiting one arrived.
last_pump: float = 0.0
main_queued_at: float = 0.0

#: Bus handlers of this process, by subscription id.
bus_handlers: dict = {}
#: Publications each subscription has dropped, as the governor last reported.
bus_dropped: dict = {}

#: Down notices for monitors set by the main process (see ``rebeam.receive_down``).
down_notices: _queue.SimpleQueue = _queue.SimpleQueue()
