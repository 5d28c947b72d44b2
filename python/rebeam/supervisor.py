"""Supervision trees, as in Erlang/OTP.

``Supervisor(modules=[...], strategy=ONE_FOR_ONE)`` built in the main process starts its
children, in order, before the constructor returns. Children are:

- a ``GenPy`` instance: an actor in a worker;
- a function or a module: a long-running task in a worker (a module runs its ``main()``);
- a path to a script: its GenPy class if it defines one, else the script run as a task;
- a nested ``Supervisor``;
- any of those wrapped in :func:`child` to set its name, restart kind or shutdown time.

Strategies: ``ONE_FOR_ONE`` restarts only the child that ended; ``ONE_FOR_ALL`` stops the
others and restarts them all; ``REST_FOR_ONE`` restarts it and the children started after it.
Restart kinds: ``PERMANENT`` always, ``TRANSIENT`` only after a crash, ``TEMPORARY`` never.
More than ``max_restarts`` restarts within ``max_seconds`` (by default
``DEFAULT_MAX_RESTARTS`` within ``DEFAULT_MAX_SECONDS``) and the supervisor gives up: it
stops its children and fails to its own parent; when the root fails, rebeam exits non-zero
with a crash report. The rules are those of OTP's supervisor, implemented in rebeam-core.
"""

from __future__ import annotations

import importlib
import os
import types

from . import _rebeam, _runtime
from .actor import GenPy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The spellings of rebeam-core's `Strategy` and `Restart`, which the native module parses
# into those enums for the wire (tests/python/test_stub.py checks they agree).
ONE_FOR_ONE = "one_for_one"
ONE_FOR_ALL = "one_for_all"
REST_FOR_ONE = "rest_for_one"
PERMANENT = "permanent"
TRANSIENT = "transient"
TEMPORARY = "temporary"

#: The default restart intensity and polite-stop time (declared in rebeam-core).
DEFAULT_MAX_RESTARTS: int = _rebeam.DEFAULT_MAX_RESTARTS
DEFAULT_MAX_SECONDS: float = _rebeam.DEFAULT_MAX_SECONDS
DEFAULT_SHUTDOWN: float = _rebeam.DEFAULT_SHUTDOWN

_UNSET = object()


class Child:
    """A child with explicit options; see :func:`child`.

    Immutable, compared by its fields (``@dataclass(frozen=True)`` written out: dataclasses
    imports inspect, and ``import rebeam`` runs before every script's first line)."""

    __slots__ = ("spec", "name", "restart", "shutdown", "node")
    __match_args__ = __slots__

    def __init__(
        self, spec: Any, name: str | None = None, restart: str | None = None, shutdown: Any = _UNSET, node: Any = None
    ) -> None:
        for field, value in zip(Child.__slots__, (spec, name, restart, shutdown, node), strict=True):
            object.__setattr__(self, field, value)

    def _fields(self) -> tuple:
        return (self.spec, self.name, self.restart, self.shutdown, self.node)

    def __setattr__(self, attr: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {attr!r}: a Child is immutable")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError(f"cannot delete field {attr!r}: a Child is immutable")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Child:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={v!r}" for f, v in zip(Child.__slots__, self._fields(), strict=True))
        return f"Child({shown})"

    def __reduce__(self):
        return (Child, self._fields())


#: A child's ``node=`` for "any node up" (the first in name order).
ANY_NODE: str = _rebeam.ANY_NODE


def child(
    spec: Any,
    *,
    name: str | None = None,
    restart: str | None = None,
    shutdown: Any = _UNSET,
    node: Any = None,
) -> Child:
    """Wraps a child to set its registered ``name``, ``restart`` kind, ``shutdown`` time
    (seconds for a polite stop before it is killed; 0 kills at once; None waits forever), or
    the ``node`` it runs on when the run is one node of several (``rebeam --node``).

    ``node`` is a node's name, a list of names, or :data:`ANY_NODE`; None (the default) is the
    supervisor's own node. The child starts on the first node of the list that is up (this
    node may be one of them), and so does each restart: a child whose node is lost restarts on
    a node that remains when its list has one (or it allows any); a child of one node that is
    lost fails to start, which its supervisor counts as a crash (it may give up). The node
    runs the same script, so the child's class must be importable there."""
    if restart is not None:
        _rebeam.check_restart(restart)
    return Child(spec, name, restart, shutdown, _check_node(node))


def _check_node(node: Any) -> Any:
    """``node=`` as the governor takes it: a name, a list of names, ANY_NODE, or None."""
    if node is None or isinstance(node, str):
        return node
    if isinstance(node, (list, tuple)) and node and all(isinstance(n, str) for n in node):
        return list(node)
    raise ValueError(f"node={node!r} must be a node's name, a non-empty list of names, or ANY_NODE")


class _ModuleTask:
    """A module child: runs the module's ``main()`` in a worker (pickled by name)."""

    def __init__(self, module: str):
        self.module = module

    def __call__(self) -> Any:
        mod = importlib.import_module(self.module)
        entry = getattr(mod, "main", None)
        if not callable(entry):
            raise TypeError(f"module {self.module} given as a child has no main() to run")
        return entry()


def _shutdown_ms(value: Any) -> int | None:
    if value is None:
        return None
    seconds = float(value)
    if seconds < 0:
        raise ValueError("shutdown must be ≥ 0 seconds (0 kills at once; None waits forever)")
    return int(seconds * 1000)


def child_spec(obj: Any) -> dict:
    """The wire form of one child."""
    opts = Child(obj)
    if isinstance(obj, Child):
        opts, obj = obj, obj.spec
    from .groups import Group  # here: groups builds on this module

    if isinstance(obj, (Supervisor, Group)):
        spec = obj._as_child()
    elif isinstance(obj, GenPy):
        data, buffers = _runtime.dumps_code(obj, f"actor {type(obj).__name__}")
        spec = {
            "kind": "actor",
            "class_name": type(obj).__qualname__,
            "data": data,
            "buffers": buffers,
            "name": obj.name,
            "label": type(obj).__name__,
            "restart": obj.restart,
            "shutdown_ms": _shutdown_ms(obj.shutdown),
        }
    elif isinstance(obj, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(obj))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"script child {os.fspath(obj)!r} does not exist")
        spec = {"kind": "script", "path": path, "name": None, "label": os.path.basename(path)}
    elif isinstance(obj, types.ModuleType):
        data, buffers = _runtime.dumps_code(_ModuleTask(obj.__name__), f"module {obj.__name__}")
        spec = {"kind": "task", "data": data, "buffers": buffers, "name": None, "label": obj.__name__}
    elif isinstance(obj, type) and issubclass(obj, GenPy):
        raise TypeError(f"{obj.__name__} is a class: give an instance, {obj.__name__}(...)")
    elif callable(obj):
        label = getattr(obj, "__qualname__", type(obj).__name__)
        data, buffers = _runtime.dumps_code(obj, f"function {label}")
        spec = {"kind": "task", "data": data, "buffers": buffers, "name": None, "label": label}
    else:
        raise TypeError(
            f"cannot supervise {type(obj).__name__}: a child is a GenPy instance, a function, "
            "a module, a script path or a Supervisor"
        )
    spec.setdefault("restart", PERMANENT)
    spec.setdefault("shutdown_ms", _shutdown_ms(DEFAULT_SHUTDOWN))
    if opts.name is not None:
        spec["name"] = opts.name
    if opts.restart is not None:
        spec["restart"] = opts.restart
    if opts.shutdown is not _UNSET:
        spec["shutdown_ms"] = _shutdown_ms(opts.shutdown)
    if opts.node is not None:
        if spec["kind"] in ("tree", "adopt"):
            raise TypeError("a Supervisor runs on its parent's node: give node= to its children instead")
        spec["node"] = opts.node
    return spec


def _intensity(who: str, max_restarts: Any, max_seconds: Any) -> tuple[int, float]:
    """A restart intensity checked against the governor's own bounds (ValueError if outside)."""
    from ._rebeam import MAX_RESTART_WINDOW, MAX_RESTARTS

    whole = isinstance(max_restarts, int) and not isinstance(max_restarts, bool)
    if not whole or not 0 <= max_restarts <= MAX_RESTARTS:
        raise ValueError(f"{who}: max_restarts={max_restarts!r} must be a whole number from 0 to {MAX_RESTARTS}")
    # A window under a millisecond would reach the governor as 0 ms; `not <=` also refuses nan.
    if not isinstance(max_seconds, (int, float)) or not 0.001 <= max_seconds <= MAX_RESTART_WINDOW:
        raise ValueError(
            f"{who}: max_seconds={max_seconds!r} must be a number of seconds from 0.001 to {MAX_RESTART_WINDOW:g}"
        )
    return int(max_restarts), max_seconds


class Supervisor:
    """A supervision tree; see the module documentation."""

    def __init__(
        self,
        modules: list,
        strategy: str = ONE_FOR_ONE,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        name: str | None = None,
    ):
        _rebeam.check_strategy(strategy)
        max_restarts, max_seconds = _intensity("Supervisor", max_restarts, max_seconds)
        self.modules = list(modules)
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self.name = name
        self.tree_id: int | None = None
        # Built in the main process: start now, so the rest of the script can call the actors.
        # Built elsewhere (a worker importing the script): only a description.
        if _runtime.starts_trees():
            self.tree_id = _runtime.connection().start_tree(self._spec())

    def _spec(self) -> dict:
        return {
            "name": self.name,
            "strategy": self.strategy,
            "max_restarts": self.max_restarts,
            "max_seconds_ms": int(self.max_seconds * 1000),
            "children": [child_spec(c) for c in self.modules],
        }

    def _as_child(self) -> dict:
        base = {"name": None, "label": self.name or "Supervisor", "restart": PERMANENT, "shutdown_ms": None}
        if self.tree_id is not None:
            return {**base, "kind": "adopt", "tree_id": self.tree_id}
        return {**base, "kind": "tree", "tree": self._spec()}

    def __repr__(self) -> str:
        state = f"running as tree {self.tree_id}" if self.tree_id is not None else "not started"
        return f"Supervisor({self.name or ''!s}{self.strategy}, {len(self.modules)} children, {state})"


def spawn(actor: Any, name: str | None = None, node: str | None = None) -> Any:
    """Starts an actor (or a task) outside any tree and returns its ProcessID once it runs.

    ``node``: the node to start it on, when the run is one node of several (``rebeam
    --node``); its governor starts it there, and the ProcessID names that node. A node that is
    not up, or that cannot start it, raises StartFailed naming the node.

    A :class:`~rebeam.Group` gets a supervisor of its own (started in the main process; from a
    worker, its members start unsupervised and are not restarted); ``spawn`` then returns the
    members' ProcessIDs, in member order."""
    from .groups import Group

    if node is not None and not isinstance(node, str):
        raise TypeError(f"spawn(node={node!r}): give one node's name (a list is for a child spec)")
    if isinstance(actor, Group):
        if node is not None:
            raise TypeError("a Group is supervised on this node: give its members node= instead")
        return actor._spawn()[1]
    if name is not None or node is not None:
        actor = child(actor, name=name, node=node)
    spec = child_spec(actor)
    if spec["kind"] in ("tree", "adopt"):
        raise TypeError("spawn starts actors and tasks; build a Supervisor to start a tree")
    id, actor_name = _runtime.connection().spawn(spec)
    return _runtime.ProcessID(id, actor_name, None if node == _runtime.NODE else node)


__all__ = [
    "Supervisor",
    "child",
    "spawn",
    "ANY_NODE",
    "ONE_FOR_ONE",
    "ONE_FOR_ALL",
    "REST_FOR_ONE",
    "PERMANENT",
    "TRANSIENT",
    "TEMPORARY",
]
