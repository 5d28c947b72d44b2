"""The exceptions rebeam raises or returns. Every one derives from :class:`RebeamError`.

``call`` returns failures as ``("error", exception)`` rather than raising them, so a caller can
tell a handler's own ``response_error(...)`` (any value) from a failure of the call itself
(an instance of one of these classes). Errors in what the *caller* passed (an unpicklable
message, one over the size limit, a bad target) are raised at once and nothing is sent.
"""

from __future__ import annotations

import pickle


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


class RemoteError(RebeamError):
    """The handler raised. ``remote_type`` and ``remote_traceback`` say what and where."""

    def __str__(self) -> str:
        return super().__str__() if not self.remote_type else f"{self.remote_type}: {super().__str__()}"

    def __repr__(self) -> str:
        # A tuple like ("error", err) prints its repr: it must name the remote type too.
        return f"{type(self).__name__}({str(self)!r})"


class CallTimeout(RebeamError, TimeoutError):
    """No answer within the call's timeout."""


class MessageTooLarge(RebeamError, ValueError):
    """The message is bigger than the run's limit (``rebeam --max-message-bytes``)."""


class SerializationError(RebeamError, TypeError, pickle.PicklingError):
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
