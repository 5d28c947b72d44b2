"""Actors: ``GenPy`` classes, their handlers, and messaging (``call``, ``cast``).

Rules an actor can rely on:

- One message at a time: its handlers never run concurrently, so ``self.state`` needs no lock.
  An ``async def`` handler (or ``@start()`` hook) runs on its worker's event loop and may
  ``await rebeam.acall(...)``; the actor's next message waits until it returns.
- Unless it opts in: with ``max_concurrency = N`` (a class attribute, N ≥ 1), up to N runs
  of its ``async def`` handlers interleave at their ``await``s, started in arrival order,
  each answering its own caller. A synchronous handler (and a bus handler, a stop) still
  runs alone: it starts once the runs before it have ended, and nothing starts until it
  returns. A run that raises crashes the actor as a synchronous handler does: its caller
  gets the error, the other runs in flight are cancelled and their callers get ``ActorDown``.
- FIFO per sender → receiver pair.
- ``self.state`` is private to one incarnation; a restarted actor starts from a fresh copy of
  the instance you built (its ``@start`` runs again).
- A handler's exception crashes the actor: the caller gets ``("error", RemoteError)`` with
  the remote traceback and the supervisor decides what happens next.
- A handler may block in ``call()``: other actors in the same worker keep running.
"""

from __future__ import annotations

import sys
import warnings
from collections import namedtuple

# pickle.py re-exports these C functions; importing it would cost every process of the run
# its own imports (re, struct...) before the script's first line.
from _pickle import dumps as _c_pickle_dumps

from . import _rebeam, _runtime
from ._runtime import ProcessID

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: Default time ``call`` waits for an answer, in seconds (declared in rebeam-core).
DEFAULT_CALL_TIMEOUT: float = _rebeam.DEFAULT_CALL_TIMEOUT

#: Subject of the message a watcher receives when an actor it monitors ends.
DOWN = "DOWN"


#: What a handler returns to answer a call: ``(status, value)``, a named tuple (as
#: ``typing.NamedTuple`` would make it, without importing typing).
Response = namedtuple("Response", ("status", "value"))
Response.__annotations__ = {"status": "str", "value": "Any"}


def response_ok(value: Any = None) -> Response:
    """Answer a call successfully: the caller gets ``("ok", value)``."""
    return Response("ok", value)


def response_error(value: Any = None) -> Response:
    """Answer a call with an error of your own: the caller gets ``("error", value)``."""
    return Response("error", value)


def start() -> Callable:
    """Marks the method that initialises an actor; it runs in the worker before any message
    (an ``async def`` one on the worker's event loop)."""

    def mark(fn: Callable) -> Callable:
        fn._rebeam_start = True
        return fn

    return mark


def receive(subject: str | Callable | None = None) -> Callable:
    """Marks a handler for ``subject``; bare ``@receive()`` handles every other subject.

    A handler is called as ``handler(self, source, message)``: ``source`` is the sender's
    ProcessID (None when the sender is not an actor) and ``message`` the value sent. It may
    be ``async def``: its coroutine runs to the end on the worker's event loop, alone unless
    the actor sets ``max_concurrency`` above 1.
    """
    if callable(subject):  # used as @receive without parentheses
        subject._rebeam_subject = None
        return subject

    def mark(fn: Callable) -> Callable:
        fn._rebeam_subject = subject
        return fn

    return mark


class GenPy:
    """Base class of actors (Elixir's GenServer, in Python).

    Set ``name`` to register the actor under that name (names survive restarts). Class
    attributes ``restart`` ("permanent", "transient", "temporary") and ``shutdown`` (seconds
    for a polite stop, None to wait forever; ``DEFAULT_SHUTDOWN`` unless set) tune how a
    supervisor treats it. ``max_concurrency`` (a whole number ≥ 1, default 1) is how many
    runs of its ``async def`` handlers may be in flight at once (see the module's rules).
    """

    name: str | None = None
    restart: str = _rebeam.DEFAULT_RESTART
    shutdown: float | None = _rebeam.DEFAULT_SHUTDOWN
    max_concurrency: int = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_concurrency(cls.__dict__.get("max_concurrency", 1), cls.__qualname__)

    @property
    def state(self) -> dict:
        """Private state of this incarnation."""
        st = self.__dict__.get("_rebeam_state")
        if st is None:
            st = self.__dict__["_rebeam_state"] = {}
        return st

    @state.setter
    def state(self, value: dict) -> None:
        self.__dict__["_rebeam_state"] = value

    @property
    def pid(self) -> ProcessID | None:
        """This incarnation's ProcessID (set once the actor runs in a worker)."""
        return self.__dict__.get("_rebeam_pid")

    def __getstate__(self) -> dict:
        # An actor is sent to its worker as built: state is per incarnation, never shipped.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_rebeam_")}

    @classmethod
    def _rebeam_gating(cls) -> tuple[list[str], list[str], bool]:
        """(subjects with a handler, gated subjects, whether the catch-all is gated)."""
        subjects, catch_all, _ = cls._rebeam_handlers()

        def gated(name):
            return bool(getattr(getattr(cls, name), "_rebeam_requires_armed", False))

        return list(subjects), [s for s, m in subjects.items() if gated(m)], bool(catch_all and gated(catch_all))

    @classmethod
    def _rebeam_async_methods(cls) -> frozenset[str]:
        """The names of its handler methods that are ``async def``."""
        cached = cls.__dict__.get("_rebeam_async_cache")
        if cached is None:
            import inspect

            subjects, catch_all, _ = cls._rebeam_handlers()
            names = {*subjects.values(), *([catch_all] if catch_all else [])}
            cached = frozenset(n for n in names if inspect.iscoroutinefunction(getattr(cls, n)))
            cls._rebeam_async_cache = cached
        return cached

    @classmethod
    def _rebeam_handlers(cls) -> tuple[dict[str, str], str | None, str | None]:
        """(subject → method name, catch-all method name, start method name)."""
        cached = cls.__dict__.get("_rebeam_handler_cache")
        if cached is not None:
            return cached
        subjects: dict[str, str] = {}
        catch_all = start_name = None
        for klass in reversed(cls.__mro__):
            for attr, fn in vars(klass).items():
                if getattr(fn, "_rebeam_start", False):
                    start_name = attr
                if hasattr(fn, "_rebeam_subject"):
                    if fn._rebeam_subject is None:
                        catch_all = attr
                    else:
                        subjects[fn._rebeam_subject] = attr
        cached = (subjects, catch_all, start_name)
        cls._rebeam_handler_cache = cached
        return cached


def check_concurrency(value: Any, who: str) -> int:
    """``value`` as an actor's ``max_concurrency``; ValueError unless a whole number ≥ 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{who}: max_concurrency={value!r} must be a whole number ≥ 1 (how many runs of its "
            "async def handlers may be in flight at once; 1 = one message at a time)"
        )
    return value


def _sender(sender_pid: ProcessID | None) -> int | None:
    pid = sender_pid if sender_pid is not None else _runtime.current()
    return pid.id if pid is not None else None


def _check_target(target: Any) -> Any:
    if isinstance(target, (str, ProcessID)):
        return target
    raise TypeError(f"a target is an actor's name (str) or its ProcessID, not {type(target).__name__}")


def call(
    target: str | ProcessID, subject: str, message: Any = None, timeout: float = DEFAULT_CALL_TIMEOUT
) -> tuple[str, Any]:
    """Sends ``message`` to ``target`` and waits for its answer.

    Returns ``("ok", value)`` or ``("error", value)`` as the handler answered, or
    ``("error", exc)`` with a :class:`~rebeam.errors.RebeamError` when the call failed:
    ``CallTimeout``, ``NoProcess``, ``ActorDown``, or ``RemoteError`` when the handler raised.
    Never waits longer than ``timeout`` seconds. It blocks the calling thread: in a coroutine,
    ``await`` :func:`~rebeam.acall` instead (a blocking call there warns once); for several
    calls at once, :func:`~rebeam.call_async`.
    """
    _warn_if_loop_running()
    data, buffers = _payload(target, subject, message)
    return call_result(_runtime.connection().call(target, subject, data, buffers, _sender(None), float(timeout)))


def _payload(target: Any, subject: str, message: Any) -> tuple[bytes, Any]:
    """The target checked and the message pickled, as every call and cast sends them: a plain
    value directly (nothing of it can go out of band or name a module: ``pickle.dumps(message,
    5)`` byte for byte, small values written natively), anything else through ``dumps``."""
    if type(target) is not str:
        _check_target(target)
    if type(message) in _PLAIN:
        _runtime.share_sys_path()
        return _plain_dumps(message), ()
    return _runtime.dumps(message, f"the message for {target!r} (subject {subject!r})")


def call_result(result: tuple) -> tuple[str, Any]:
    """A call's answer as the native connection gives it, as ``call`` returns it."""
    if result[0] == "failed":
        return ("error", result[1])
    status, data, buffers = result
    return (status, _runtime.loads(data, buffers))


_warned_loop = False


def _warn_if_loop_running() -> None:
    """Warns, once per process, of a blocking call made where an event loop runs: the loop
    stands still until the answer comes."""
    global _warned_loop
    asyncio = sys.modules.get("asyncio")  # no asyncio imported, no loop running
    if _warned_loop or asyncio is None or asyncio._get_running_loop() is None:
        return
    _warned_loop = True
    warnings.warn(
        "rebeam.call() blocks this thread's running event loop until the answer comes; "
        "in a coroutine use `await rebeam.acall(...)` instead",
        RuntimeWarning,
        stacklevel=3,
    )


def cast(target: str | ProcessID, subject: str, message: Any = None, sender_pid: ProcessID | None = None) -> bool:
    """Sends ``message`` without waiting; True if it reached a live actor's mailbox (or, sent
    straight to the actor's process, its ring: a cast that its actor's end overtakes there is
    lost, as one that reached the mailbox just before the end is). To a name or ProcessID on
    another node that is up and known to have it, True once it is on its way: one that its node
    is lost before delivering is lost, and the governor logs how many were.

    ``sender_pid`` is what the receiver sees as ``source`` (by default, the calling actor).
    """
    # `_payload`'s steps, inlined: casts are bound by the sender's CPU, and one more Python
    # call per cast is a measurable part of it.
    if type(target) is not str:
        _check_target(target)
    if type(message) in _PLAIN:
        _runtime.share_sys_path()
        data, buffers = _plain_dumps(message), ()
    else:
        data, buffers = _runtime.dumps(message, f"the message for {target!r} (subject {subject!r})")
    return _runtime.connection().cast(target, subject, data, buffers, _sender(sender_pid))


#: Message types ``call`` and ``cast`` pickle as they are: no buffer to take out of band, no
#: class to name.
_PLAIN = frozenset({int, float, str, bytes, bool, type(None)})
_pickle_dumps = _c_pickle_dumps
_plain_dumps = _rebeam.plain_dumps


def whereis(name: str) -> ProcessID | None:
    """The live actor registered as ``name``, or None. For a group's name: its first member
    present (:func:`~rebeam.members` lists them all). On a node, a name no actor here has is
    looked for on the other nodes: the ProcessID then names the node that has it (the first
    to answer, as names are not unique across nodes)."""
    found = _runtime.connection().whereis(name)
    return ProcessID(*found) if found else None


def stats() -> dict[str, int]:
    """Counters of this process's messaging. ``casts_dropped``: casts sent straight to an
    actor's process that were dropped (and returned False) because its ring stayed full for
    longer than a cast waits for room (the actor's process was not reading)."""
    return {"casts_dropped": _runtime.connection().casts_dropped}


def nodes() -> list[str]:
    """The nodes of the system that are up (``rebeam --node NAME``), this one included, sorted.
    Empty when this run is not a node. A node is up from its join until it leaves or its link
    is lost."""
    return _runtime.connection().nodes()


def self_pid() -> ProcessID | None:
    """The ProcessID of the actor running this code (None outside actors)."""
    return _runtime.current()


def shutdown(code: int = 0) -> None:
    """Stops the whole system gracefully (trees in reverse start order); rebeam exits with ``code``."""
    _runtime.connection().shutdown(int(code))


Down = namedtuple("Down", ("ref", "pid", "reason"))
Down.__doc__ = """Notice that a monitored actor ended. ``reason`` is ``(kind, detail)``: kind is
"normal", "shutdown", "crashed" (detail: error info) or "killed" (detail: why)."""
Down.__annotations__ = {"ref": "int", "pid": "ProcessID", "reason": "tuple"}


def monitor(target: str | ProcessID) -> int:
    """Watches ``target``: when it ends, the calling actor gets a ``"DOWN"`` message (a
    :class:`Down`); in the main process, :func:`receive_down` returns it. Returns a reference."""
    _check_target(target)
    me = _runtime.current()
    return _runtime.connection().monitor(me.id if me else None, target)


def demonitor(ref: int) -> None:
    """Stops watching (a notice already sent may still arrive)."""
    _runtime.connection().demonitor(ref)


def receive_down(timeout: float | None = None) -> Down | None:
    """In the main process: the next down notice for a monitor it set, or None after ``timeout``."""
    import math
    import queue

    if timeout is not None and not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout >= 0):
        raise ValueError(f"receive_down(): timeout={timeout!r} is not a finite number of seconds ≥ 0; pass one or None")

    try:
        return _runtime.down_notices.get(timeout=timeout)
    except queue.Empty:
        return None
