"""Groups: one name for several supervised copies of an actor (Erlang's ``pg``, Ray's
``ActorPool``).

The rules:

- ``Group(template, size, name)`` is ``size`` copies of the ``GenPy`` instance ``template``,
  members ``0 .. size-1``, supervised ``ONE_FOR_ONE`` by a supervisor of their own. Put it in a
  ``Supervisor``'s children (that supervisor then supervises the group's), or start it with
  :func:`~rebeam.spawn`. A member that ends is restarted into its own position, so member order
  never changes.
- ``call(name, ...)`` and ``cast(name, ...)`` go to one member. ``balance="round_robin"`` (the
  default) takes the next member in member order; ``balance="least_busy"`` takes the member
  with the fewest calls in flight, meaning calls the governor delivered to it and has not yet
  seen answered (casts are not counted), ties taken in round-robin order. A member that is
  restarting is skipped.
- :func:`members` and :func:`broadcast` list members in member order; :func:`broadcast` gives
  one ``(status, value)`` per member position, a member's failure (it crashed, or is restarting
  and so absent: ``NoProcess``) being its own entry.
- The group lives in the governor's name registry, so every process of the run sees the same
  members in the same order. A group's name is an actor name like any other: it cannot be both.
"""

from __future__ import annotations

from . import _rebeam, _runtime
from ._runtime import ProcessID
from .actor import DEFAULT_CALL_TIMEOUT, GenPy
from .errors import NoProcess

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: ``Group(balance=...)``: the next member in member order, or the one with fewest calls in flight.
ROUND_ROBIN = "round_robin"
LEAST_BUSY = "least_busy"


class Group:
    """``size`` supervised copies of ``template`` under the name ``name``; see the module doc.

    ``max_restarts`` within ``max_seconds`` is the restart intensity of the group's own
    supervisor (as for :class:`~rebeam.Supervisor`).
    """

    def __init__(
        self,
        template: GenPy,
        size: int,
        name: str,
        balance: str = ROUND_ROBIN,
        max_restarts: int | None = None,
        max_seconds: float | None = None,
    ):
        if not isinstance(template, GenPy):
            raise TypeError(f"a Group's template is a GenPy instance, not {type(template).__name__}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"Group: size={size!r} must be a whole number of members, at least 1")
        if not isinstance(name, str) or not name:
            raise ValueError("Group: a group needs a name (its members are called through it)")
        _rebeam.check_balance(balance)
        from .supervisor import DEFAULT_MAX_RESTARTS, DEFAULT_MAX_SECONDS, _intensity

        self.template, self.size, self.name, self.balance = template, size, name, balance
        self.max_restarts, self.max_seconds = _intensity(
            "Group",
            DEFAULT_MAX_RESTARTS if max_restarts is None else max_restarts,
            DEFAULT_MAX_SECONDS if max_seconds is None else max_seconds,
        )

    def _member_spec(self, position: int) -> dict:
        from .supervisor import child_spec

        spec = child_spec(self.template)
        spec["name"] = None
        spec["group"] = {"name": self.name, "position": position, "size": self.size, "balance": self.balance}
        return spec

    def _tree_spec(self) -> dict:
        return {
            "name": self.name,
            "strategy": "one_for_one",
            "max_restarts": self.max_restarts,
            "max_seconds_ms": int(self.max_seconds * 1000),
            "children": [self._member_spec(i) for i in range(self.size)],
        }

    def _as_child(self) -> dict:
        label = f"Group {self.name!r}"
        return {"kind": "tree", "tree": self._tree_spec(), "name": None, "label": label,
                "restart": "permanent", "shutdown_ms": None}

    def _spawn(self) -> tuple[int | None, list[ProcessID]]:
        """Starts the members: under a top-level supervisor of their own where this process
        may start trees (returns its id), else each on its own, not restarted."""
        conn = _runtime.connection()
        if _runtime.starts_trees():
            tree = conn.start_tree(self._tree_spec())
            return tree, members(self.name)
        return None, [ProcessID(*conn.spawn(self._member_spec(i))) for i in range(self.size)]

    def __repr__(self) -> str:
        return f"Group({type(self.template).__name__}, size={self.size}, name={self.name!r}, balance={self.balance!r})"


def _positions(name: str) -> list[int | None]:
    found = _runtime.connection().members(name)
    if found is None:
        raise NoProcess(f"no group named {name!r} is running (rebeam.members takes a Group's name)")
    return found


def members(name: str) -> list[ProcessID]:
    """The ProcessIDs of group ``name``'s members, in member order (a member restarting at this
    moment is left out). Raises ``NoProcess`` if no group of that name runs."""
    return [ProcessID(i) for i in _positions(name) if i is not None]


def broadcast(
    name: str, subject: str, message: Any = None, timeout: float = DEFAULT_CALL_TIMEOUT
) -> list[tuple[str, Any]]:
    """Calls every member of group ``name`` at once with ``subject`` and ``message``; returns
    one ``(status, value)`` per member position, in member order, each as :func:`~rebeam.call`
    returns it: a member that crashes gives ``("error", RemoteError)``, one restarting
    ``("error", NoProcess)``, and neither spoils the others' answers. Waits at most ``timeout``
    seconds. Raises ``NoProcess`` if no group of that name runs."""
    from .futures import call_async

    futures = [
        call_async(ProcessID(i), subject, message, timeout) if i is not None else None for i in _positions(name)
    ]
    absent = ("error", NoProcess(f"member of group {name!r} is restarting"))
    return [f.result() if f is not None else absent for f in futures]


__all__ = ["Group", "members", "broadcast", "ROUND_ROBIN", "LEAST_BUSY"]
