"""The exceptions rebeam raises or returns. Every one derives from :class:`RebeamError`.

``call`` returns failures as ``("error", exception)`` rather than raising them, so a caller can
tell a handler's own ``response_error(...)`` (any value) from a failure of the call itself
(an instance of one of these classes). Errors in what the *caller* passed (an unpicklable
message, one over the size limit, a bad target) are raised at once and nothing is sent.
"""

from __future__ import annotations

import sys

# The C pickler's class is pickle.PicklingError itself; importing it from there spares every
# process of the run pickle.py's own imports (re, struct...) before the script's first line.
from _pickle import PicklingError as _PicklingError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


class RebeamError(Exception):
    """Root of rebeam's exceptions."""

    #: For errors raised by Python code in another process: the exception's type name.
    remote_type: str | None = None
    #: For errors raised by Python code in another process: its formatted traceback.
    remote_traceback: str | None = None

    @classmethod
    def _from_remote(cls, message: str, remote_type: str | None, remote_traceback: str | None):
        """How rebeam builds an error that happened elsewhere (see rebeam-py's errors.rs).

        The remote traceback becomes a note too, so an uncaught ``StartError`` (or a
        ``RemoteError`` the caller re-raises) prints where it happened, in the user's file.
        """
        e = cls(message)
        e.remote_type, e.remote_traceback = remote_type, remote_traceback
        if remote_traceback:
            e.add_note(f"where it was raised, in another process:\n{remote_traceback.rstrip()}")
        return e


class NoProcess(RebeamError):
    """No live actor has that name or id (never started, ended, or restarting)."""


class ActorDown(RebeamError):
    """The actor ended (crashed elsewhere, was stopped, or its worker died) before answering."""


class WorkerCrashed(RebeamError):
    """The worker process running a :class:`~rebeam.Executor` task died (a segfault,
    ``os._exit``, the kernel's OOM killer); the worker was replaced and other tasks go on."""


class RemoteError(RebeamError):
    """The handler raised. ``remote_type`` and ``remote_traceback`` say what and where;
    :meth:`reraise` raises it here as its own type."""

    def __str__(self) -> str:
        return super().__str__() if not self.remote_type else f"{self.remote_type}: {super().__str__()}"

    def __repr__(self) -> str:
        # A tuple like ("error", err) prints its repr: it must name the remote type too.
        return f"{type(self).__name__}({str(self)!r})"

    def reraise(self) -> NoReturn:
        """Raises the remote exception as its own type, ``from`` this error (so the traceback
        shows where it was raised, in the other process): ``except KeyError`` then works as if
        the handler had run here.

        The type must be importable here and rebuild from the message: an exception class of
        a module or of the script (at its top level), whose ``cls(message)`` has the same text.
        Otherwise (a class defined in a function, one whose constructor takes other arguments)
        this raises the RemoteError itself.
        """
        local = _local_exception(self)
        if local is None:
            raise self
        raise local from self


def _local_exception(err: RemoteError) -> BaseException | None:
    """The remote exception rebuilt here, or None when its type cannot be found or rebuilt."""
    name = err.remote_type
    message = Exception.__str__(err)
    if not name or "<" in name:  # "<locals>": defined in a function, not importable
        return None
    cls = _find_class(_remote_module(name, err.remote_traceback or ""), name)
    if cls is None:
        return None
    for arg in _arguments(cls, message):
        try:
            local = cls(arg)
        except Exception:
            continue
        if str(local) == message:
            return local
    return None


def _arguments(cls: type, message: str):
    """What ``cls`` may have been built from, to give ``message``: the message itself, or for a
    KeyError (whose text is its key's repr) the key."""
    yield message
    if issubclass(cls, KeyError):
        import ast  # here, not at import: only a remote KeyError needs it

        try:
            yield ast.literal_eval(message)
        except (ValueError, SyntaxError):
            pass


def _remote_module(qualname: str, traceback: str) -> str:
    """The module of the remote exception's type. Its traceback's last line names it as
    ``module.Qualname: message`` (a builtin as ``Qualname: message``); the last such line is
    the exception itself (causes and contexts print before it)."""
    import re  # here, not at import: only a remote error being re-raised needs it

    line = re.compile(rf"^(?:([\w.]+)\.)?{re.escape(qualname)}(?::|$)")
    module = "builtins"
    for text in traceback.splitlines():
        m = line.match(text)
        if m:
            module = m.group(1) or "builtins"
    return module


def _find_class(module_name: str, qualname: str) -> type[BaseException] | None:
    # A worker imports the script as `__rebeam_main__`; the main process runs it as `__main__`.
    if module_name == "__rebeam_main__" and "__rebeam_main__" not in sys.modules:
        module_name = "__main__"
    import importlib

    try:
        found: object = sys.modules.get(module_name) or importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:
        return None
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    return None


class CallTimeout(RebeamError, TimeoutError):
    """No answer within the call's timeout."""


class MessageTooLarge(RebeamError, ValueError):
    """The message is bigger than the run's limit (``rebeam --max-message-bytes``)."""


class SerializationError(RebeamError, TypeError, _PicklingError):
    """The message cannot be pickled; nothing was sent. (A ``PicklingError`` too, which is
    what bocpy raises.)"""


class StartError(RebeamError):
    """An actor, task or supervision tree could not be started."""


class InvalidRequest(RebeamError, ValueError):
    """The request is malformed or not allowed here."""


class ShuttingDown(RebeamError):
    """The system is shutting down (or the governor is gone)."""


class NoMailbox(RebeamError):
    """The target is a task (a function or module child); tasks take no messages."""


class NotRunning(RebeamError):
    """This process is not part of a rebeam run."""


class SafetyError(RebeamError):
    """Gated work (``@requires_armed``) was refused because the system is not armed, or was
    interrupted because the host disarmed it."""


class CapacityError(RebeamError, RuntimeError):
    """A bounded store is full: a tag's message queue (``send``), the noticeboard's 64 keys
    (``notice_seed``), or the outbox of a worker that is not reading (``call``; see the
    README's backpressure rule). A ``RuntimeError``, as in bocpy."""


class NoQueue(RebeamError, KeyError):
    """A tag got no message queue: each of the 16 is taken by another tag (see
    ``rebeam.boc.set_tags``). A ``KeyError``, as in bocpy."""

    def __str__(self) -> str:
        return Exception.__str__(self)  # the message, not KeyError's quoted repr of it


class ReservedTopic(RebeamError, PermissionError):
    """A publication on a topic reserved for the host (``safety.``, ``actuator.``, ``param.``,
    ``rebeam.``) that the host did not open (``rebeam --allow-publish``)."""


class SafetyInterrupt(KeyboardInterrupt):
    """Raised asynchronously in the thread running gated work when the host disarms.

    A ``KeyboardInterrupt``, so ``except Exception`` does not swallow it. It lands between
    bytecodes, not inside a C call; if the work has not stopped within the grace period, its
    worker is killed.
    """


__all__ = [
    "RebeamError",
    "NoProcess",
    "ActorDown",
    "WorkerCrashed",
    "RemoteError",
    "CallTimeout",
    "MessageTooLarge",
    "SerializationError",
    "CapacityError",
    "NoQueue",
    "StartError",
    "InvalidRequest",
    "ShuttingDown",
    "NoMailbox",
    "NotRunning",
    "SafetyError",
    "ReservedTopic",
]
