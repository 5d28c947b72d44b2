"""rebeam: run Python programs as parallel, fault-tolerant systems.

Run your script with ``rebeam main.py``. In it, build actors (``GenPy`` subclasses) and
supervise them::

    from rebeam import GenPy, Supervisor, start, receive, response_ok, call

    class Counter(GenPy):
        def __init__(self, name=None):
            self.name = name

        @start()
        def init(self):
            self.state["n"] = 0

        @receive("add")
        def add(self, source, message):
            self.state["n"] += message
            return response_ok(self.state["n"])

    Supervisor(modules=[Counter(name="counter")])
    print(call("counter", "add", 2))     # ('ok', 2)
"""

from . import errors
from ._runtime import ProcessID
from .actor import (
    DEFAULT_CALL_TIMEOUT,
    DOWN,
    Down,
    GenPy,
    Response,
    call,
    cast,
    demonitor,
    monitor,
    nodes,
    receive,
    receive_down,
    response_error,
    response_ok,
    self_pid,
    shutdown,
    start,
    stats,
    whereis,
)
from .errors import (
    ActorDown,
    CallTimeout,
    CapacityError,
    InvalidRequest,
    MessageTooLarge,
    NoMailbox,
    NoProcess,
    NoQueue,
    NotRunning,
    RebeamError,
    RemoteError,
    ReservedTopic,
    SafetyError,
    SafetyInterrupt,
    SerializationError,
    ShuttingDown,
    StartError,
    WorkerCrashed,
)
from .groups import LEAST_BUSY, ROUND_ROBIN, Group, broadcast, members
from .safety import armed, cancelled, dropped, off, on, publish, requires_armed, safety_state
from .supervisor import (
    ANY_NODE,
    ONE_FOR_ALL,
    ONE_FOR_ONE,
    PERMANENT,
    REST_FOR_ONE,
    TEMPORARY,
    TRANSIENT,
    Child,
    Supervisor,
    child,
    spawn,
)

__version__ = "0.1.0"

#: Exported names whose module loads on first use: ``import rebeam`` (in every worker and in
#: the main process, before the script's first line) then skips what they import.
_LAZY = {
    "acall": "futures",
    "acast": "futures",
    "call_async": "futures",
    "Executor": "executor",
    "handle": "handles",
    "init": "_library",
    "HandleError": "handles",
    "shared_array": "_shared",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rebeam' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is an ordinary one
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "GenPy", "Supervisor", "ProcessID", "Response", "Down", "Child",
    "start", "receive", "call", "cast", "response_ok", "response_error", "call_async", "acall", "acast",
    "Group", "members", "broadcast", "ROUND_ROBIN", "LEAST_BUSY",
    "spawn", "whereis", "stats", "shutdown", "monitor", "demonitor", "receive_down", "self_pid", "child",
    "nodes", "ANY_NODE", "init",
    "ONE_FOR_ONE", "ONE_FOR_ALL", "REST_FOR_ONE", "PERMANENT", "TRANSIENT", "TEMPORARY",
    "DOWN", "DEFAULT_CALL_TIMEOUT", "errors",
    "requires_armed", "safety_state", "armed", "cancelled", "on", "off", "publish", "dropped",
    "SafetyError", "ReservedTopic", "SafetyInterrupt",
    "RebeamError", "NoProcess", "ActorDown", "RemoteError", "CallTimeout", "MessageTooLarge",
    "SerializationError", "StartError", "InvalidRequest", "ShuttingDown", "NoMailbox", "NotRunning",
    "CapacityError", "NoQueue", "WorkerCrashed", "Executor", "handle", "HandleError", "shared_array",
]
