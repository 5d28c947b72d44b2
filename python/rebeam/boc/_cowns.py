"""Cowns and behaviours: what a program holds, what it schedules, and how a behaviour runs here.

A cown's value lives in this process's ``cown_store`` while this process holds it; the
governor moves it (``surrender``) when a behaviour elsewhere needs it. Inside a behaviour,
the cowns it requested are *acquired* on its thread. The main process may also acquire a
cown outside any behaviour (``acquire``/``release``, ``with cown as value``): that is a
behaviour the governor places here, which holds the cown until ``release``.

Releasing: a cown made in any process (``Cown(value)``, or a ``@when``'s result) is *owned*
there by the one handle that made it. When that handle is garbage and the cown never left
this process as a handle (no handle was pickled; none was made here from its id), its id is
sent, quietly: from the main process in batches of ``RELEASE_BATCH`` (with a ``@when``, and
all at ``wait()``/``quiesce()``); from a worker just before the "done" of the behaviour that
let it go, in the same write:
- *dropped*, if no ``@when`` requested it: nothing outside the pending behaviours can name it,
  and the governor frees it once no pending behaviour names it, telling the holder to let the
  value go;
- *released*, if a ``@when`` here requested it: the behaviours got handles to it and may
  schedule on it again (bocpy's dining philosophers do), so the governor frees it once no
  behaviour is queued on it, unless a process *keeps* a handle.
A behaviour's handles are its own: when it ends, a handle still referenced from elsewhere (a
global, another cown's value) is kept, and so is one pickled (into a capture, a message or a
value), which may come back from anywhere. A kept cown is never freed: the process says so
before it says the behaviour is done, and a maker that pickled its own never releases it.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import pickle
import sys
import threading
import types
from typing import Any, Generic, TypeVar
from collections.abc import Callable

from .. import _logsync, _rebeam, _runtime
from .._threads import clear_async_exc, raise_in_thread
from ..errors import SafetyInterrupt
from . import _code
from ._code import decode, pack, unpack

T = TypeVar("T")

_ids = itertools.count(1)
#: The connection the id prefix was read from, and that prefix (one per connection: a library
#: mode runtime started again gets a new connection).
_prefix: list = [None, 0]


#: Released ids are sent to the governor this many at a time while the program schedules: one
#: event per batch, and a bound on what the governor and workers keep for nothing.
RELEASE_BATCH = 256

#: Cowns this process owns: id -> ``id()`` of the handle that made it (see the module doc);
#: and those of them a ``@when`` here requested.
_owned: dict[int, int] = {}
_shared: set[int] = set()
#: Owned cowns whose handle is garbage, not yet sent (appended from ``__del__``, any thread):
#: dropped, and released (shared).
_released: list[int] = []
_released_shared: list[int] = []
#: Cowns this process keeps a handle to (told once), and those not told yet.
_kept: set[int] = set()
_to_keep: list[int] = []


def _take(ids: list) -> list:
    batch = []
    with contextlib.suppress(IndexError):  # another thread flushed the rest meanwhile
        while ids:
            batch.append(ids.pop())
    return batch


def flush_kept(conn=None, held: bool = False) -> None:
    """Tells the governor which cowns this process keeps handles to: before the behaviour
    that gave them is said to be done, so none is freed under them."""
    batch = _take(_to_keep)
    if batch:
        (conn or _runtime.connection()).keep_cowns(batch, held)


def flush_released(conn=None, held: bool = False) -> None:
    """Sends the released cown ids, if any (never from ``__del__``: a finaliser may run inside
    any call, the connection's own included). ``held``: with the frames held to go together
    (a worker's, before its behaviour's "done")."""
    if not (_released or _released_shared or _to_keep):
        return
    conn = conn or _runtime.connection()
    flush_kept(conn, held)
    dropped, released = _take(_released), _take(_released_shared)
    if dropped:
        conn.drop_cowns(dropped, held)
    if released:
        conn.release_cowns(released, held)


def _keep(cown: int) -> None:
    if cown not in _kept:
        _kept.add(cown)
        _to_keep.append(cown)


def new_id() -> int:
    # Unique across processes: this process's index in the high bits. next() on a count is
    # atomic under the GIL, so threads need no lock here.
    conn = _runtime._conn
    if conn is None or conn is not _prefix[0]:
        conn = _runtime.connection()
        _prefix[:] = [conn, conn.index << 40]
    return _prefix[1] | next(_ids)


class Failure:
    """What a result cown holds when its behaviour raised."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class Undecoded:
    """A cown's value that arrived here but does not unpickle here (a module this process
    cannot import, a ``__reduce__`` that raises). It is kept as the bytes that came, so the
    value moves on intact: behaviours here fail with ``error`` on their result cown and do
    not run, and a process that can unpickle it still gets the user's value."""

    __slots__ = ("data", "buffers", "error")

    def __init__(self, data: bytes, buffers: list, error: BaseException):
        self.data, self.buffers, self.error = data, buffers, error


#: Cowns the main process holds outside a behaviour (``acquire``), with the behaviour
#: that holds them; and which of them lost their value with a worker.
_main_held: dict[int, int] = {}
_main_lost: set[int] = set()
#: Acquires waiting for the governor to hand their cown over, by behaviour id.
_acquiring: dict[int, list] = {}
_acquired_cv = threading.Condition()


def _on_behaviour_thread(cown: int) -> bool:
    held = getattr(_runtime._local, "acquired", None)
    return bool(held) and cown in held


class Cown(Generic[T]):
    """A concurrently owned value. Read and write ``value`` inside a behaviour that requested
    the cown (see :func:`when`), or in the main process between ``acquire()`` and ``release()``
    (``with cown as value: ...``)."""

    __slots__ = ("_id",)

    def __init__(self, value: T = None):
        self._id = new_id()
        _runtime.cown_store[self._id] = value
        _runtime.connection().cown_created(self._id, False)
        _owned[self._id] = id(self)

    @classmethod
    def _handle(cls, cown_id: int) -> Cown:
        c = cls.__new__(cls)
        c._id = cown_id
        if _owned and cown_id in _owned:
            del _owned[cown_id]  # a second handle here: it escaped (see the module doc)
        return c

    def __reduce__(self):
        # It leaves as a handle: kept. Its maker just never releases it; another process says so.
        if _owned.pop(self._id, None) is None:
            _keep(self._id)
        return (Cown._handle, (self._id,))

    def __del__(self) -> None:
        # Only the owning handle releases; a list append is safe in any thread, at any point.
        if _owned and _owned.get(self._id) == id(self) and _owned.pop(self._id, None) is not None:
            if self._id in _shared:
                _shared.discard(self._id)
                _released_shared.append(self._id)
            else:
                _released.append(self._id)

    def __repr__(self) -> str:
        return f"Cown<{self._id}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cown):
            return NotImplemented
        return other._id == self._id

    def __lt__(self, other: Cown) -> bool:
        if not isinstance(other, Cown):
            return NotImplemented
        return self._id < other._id

    def __hash__(self) -> int:
        return hash(self._id)

    # -- access --------------------------------------------------------------------------

    @property
    def acquired(self) -> bool:
        """Whether this thread's behaviour, or the main process, holds the cown now."""
        return _on_behaviour_thread(self._id) or (_runtime.ROLE != "worker" and self._id in _main_held)

    def _check(self) -> None:
        local = _runtime._local
        held = getattr(local, "acquired", None)
        if held and self._id in held:  # inside a behaviour that holds it: the common case
            if self._id in local.lost:  # run_behaviour sets both
                raise RuntimeError(f"the value of {self!r} was lost: the worker process holding it died")
            return
        if not self.acquired:
            raise RuntimeError(
                f"{self!r} is not acquired: read or write its value inside a behaviour (@when({self!r})), "
                "or in the main process inside `with cown as value:`"
            )
        lost = getattr(_runtime._local, "lost", ()) if _on_behaviour_thread(self._id) else _main_lost
        if self._id in lost:
            raise RuntimeError(f"the value of {self!r} was lost: the worker process holding it died")

    @property
    def value(self) -> T:
        self._check()
        v = _runtime.cown_store.get(self._id)
        if isinstance(v, Undecoded):
            raise v.error
        return v.exc if isinstance(v, Failure) else v

    @value.setter
    def value(self, v: T) -> None:
        self._check()
        _runtime.cown_store[self._id] = v

    @property
    def exception(self) -> bool:
        """True when this (result) cown holds the exception its behaviour raised."""
        with self._held():
            return isinstance(_runtime.cown_store.get(self._id), Failure)

    @exception.setter
    def exception(self, flag: bool) -> None:
        with self._held():
            v = _runtime.cown_store.get(self._id)
            if flag and not isinstance(v, Failure):
                _runtime.cown_store[self._id] = Failure(v)
            elif not flag and isinstance(v, Failure):
                _runtime.cown_store[self._id] = v.exc

    def unwrap(self) -> T:
        """Takes the value out (the cown is left holding None); re-raises the exception if
        its behaviour raised. In the main process, call it after ``wait()``/``quiesce()``:
        while any behaviour is still in flight it raises ``RuntimeError``, as bocpy does,
        rather than wait for the one that produces this result."""
        if not self.acquired and _runtime.ROLE != "worker" and not _runtime.connection().quiesce(0):
            raise RuntimeError(
                f"{self!r}.unwrap() called while behaviours are still in flight: call quiesce() "
                "(or wait()) first, so the behaviour producing it has completed"
            )
        with self._held():
            v = _runtime.cown_store.get(self._id)
            if isinstance(v, Undecoded):
                raise v.error  # not consumed: a process that can unpickle it still may
            _runtime.cown_store[self._id] = None
        if isinstance(v, Failure):
            raise v.exc
        return v

    def _held(self):
        """Holds the cown for one read: already held, or acquired here for the moment."""
        if self.acquired:
            self._check()
            return contextlib.nullcontext()
        return self._holding()

    @contextlib.contextmanager
    def _holding(self):
        self.acquire()
        try:
            self._check()  # a lost value raises, and the cown is released all the same
            yield
        finally:
            self.release()

    # -- acquire / release in the main process --------------------------------------------

    def acquire(self) -> None:
        """Waits until every behaviour scheduled on this cown before now has run, then holds
        it in this (the main) process until :meth:`release`. Main-side behaviours keep being
        pumped while it waits."""
        if _runtime.ROLE == "worker" or _on_behaviour_thread(self._id):
            raise RuntimeError(
                f"{self!r}.acquire() is for the main process outside behaviours; "
                "a behaviour gets its cowns by requesting them with @when"
            )
        if self._id in _main_held:
            raise RuntimeError(f"{self!r} is already acquired by the main process: release() it first")
        conn = _runtime.connection()
        b = new_id()
        slot: list = []
        _acquiring[b] = slot
        try:
            conn.schedule(b, [self._id], new_id(), b"", [], at_main=True)
            from ._pump import pump_while

            pump_while(lambda: not slot, _acquired_cv)
        finally:
            _acquiring.pop(b, None)
        _b, _cowns, _result, moved, lost, *_ = slot[0]
        for cown, data, buffers in moved:
            _runtime.cown_store[cown] = _load_value(cown, data, buffers)
        _main_lost.update(lost)
        _main_held[self._id] = b

    def release(self) -> None:
        """Lets behaviours waiting on this cown run (the value may move to a worker)."""
        b = _main_held.pop(self._id, None)
        if b is None:
            raise RuntimeError(f"{self!r} is not acquired by the main process")
        _main_lost.discard(self._id)
        _runtime.connection().behaviour_done(b)

    def __enter__(self) -> T:
        self.acquire()
        try:
            return self.value
        except BaseException:
            self.release()  # `with` calls __exit__ only once __enter__ has returned
            raise

    def __exit__(self, *exc: object) -> None:
        self.release()


class PinnedCown(Cown[T]):
    """A cown whose value never leaves the main process: a GUI toolkit, a GL context, an
    asyncio loop. A behaviour that requests any pinned cown runs on the main thread of the
    main process, when the program calls :func:`pump` (``wait()`` pumps by itself); its other
    cowns are brought to it there."""

    __slots__ = ()

    def __init__(self, value: T = None):
        if _runtime.ROLE == "worker":
            raise RuntimeError("a PinnedCown is created in the main process; this is a worker")
        self._id = new_id()
        _runtime.cown_store[self._id] = value
        _runtime.connection().cown_created(self._id, True)
        _owned[self._id] = id(self)

    def __reduce__(self):
        raise TypeError(
            f"PinnedCown<{self._id}> cannot be serialised: its value never leaves the main process. "
            "Pass it to when() instead of capturing it in a closure or a message."
        )

    def __repr__(self) -> str:
        return f"PinnedCown<{self._id}>"


# -- scheduling ------------------------------------------------------------------------------

_NOT_COWNS = "can only schedule over cowns or sequences of cowns"


def _ids_of(arg: Any) -> Any:
    if isinstance(arg, Cown):
        return arg._id
    if isinstance(arg, (list, tuple)):
        ids = []
        for c in arg:
            if not isinstance(c, Cown):
                raise TypeError(f"{_NOT_COWNS}, not a sequence holding {type(c).__name__} ({c!r:.60})")
            ids.append(c._id)
        return ids
    raise TypeError(f"{_NOT_COWNS}, not {type(arg).__name__} ({arg!r:.60})")


_ASYNC = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE


#: Code objects that passed `check_shape`, by id (the code kept alive here, so no other code
#: ever has that id; hashing a code object hashes its constants): with the cown count and the
#: defaults count they passed with. A `@when` site is checked once, not at every call.
_shaped: dict[int, tuple] = {}


def check_shape(func: Callable, n_cowns: int) -> None:
    """bocpy's checks at decoration time, minus the closure ban (closures travel by value)."""
    code = getattr(func, "__code__", None)
    if code is not None:
        seen = _shaped.get(id(code))
        if seen is not None and seen[0] is code and seen[1] == n_cowns and seen[2] == len(func.__defaults__ or ()):
            return
    _check_shape(func, n_cowns)
    if code is not None and len(_shaped) < _rebeam.MAX_BEHAVIOUR_CODES:
        _shaped[id(code)] = (code, n_cowns, len(func.__defaults__ or ()))


def _check_shape(func: Callable, n_cowns: int) -> None:
    if not callable(func):
        raise TypeError(f"@when decorates a function, not {type(func).__name__}")
    code = getattr(func, "__code__", None)
    if code is None:
        return  # a builtin or a callable object: called with the cowns as they are
    name = code.co_name
    if code.co_flags & _ASYNC:
        raise SyntaxError(f"@when behavior {name!r} is an async function; @when does not support async functions.")
    if code.co_flags & inspect.CO_GENERATOR:
        raise SyntaxError(
            f"@when behavior {name!r} is a generator function; @when does not support generator functions."
        )
    if code.co_flags & inspect.CO_VARARGS:
        return
    n_params, n_defaults = code.co_argcount, len(func.__defaults__ or ())
    if n_params < n_cowns:
        raise TypeError(
            f"@when behavior {name!r} takes {n_params} parameter(s) but @when lists {n_cowns} cown(s): add "
            "the missing cown parameter(s) so each cown has a corresponding positional parameter."
        )
    if n_params - n_cowns > n_defaults:
        raise TypeError(
            f"@when behavior {name!r} takes {n_params} parameter(s) for {n_cowns} cown(s): the "
            f"{n_params - n_cowns} parameter(s) beyond the cown count must each be a capture with a default "
            f"value (e.g. ``x=x``); got {n_defaults} default(s)."
        )


def whencall(func: Callable, args: list, captures: list) -> Cown:
    """Schedules ``func(*args, *captures)`` as a behaviour over ``args`` (cowns, or lists of
    cowns); returns its result cown. ``captures`` are snapshotted now."""
    if isinstance(func, str):
        raise TypeError("whencall() takes a behavior function, not a thunk name")
    # The common shape, one plain cown per argument, takes the short way at every step.
    groups, plain = [], True
    for a in args:
        if type(a) is Cown:
            groups.append(a._id)
        else:
            groups.append(_ids_of(a))
            plain = False
    packed = pack(func, groups, list(captures))
    if packed is None:
        name = getattr(func, "__qualname__", repr(func))
        packed = _runtime.dumps_code((func, groups, list(captures)), f"behaviour {name!r}")
    data, buffers = packed
    # A new id: never owned here yet, so not the checks of `Cown._handle`.
    result = Cown.__new__(Cown)
    result._id = new_id()
    if plain:
        requested = sorted(set(groups)) if len(groups) > 1 else groups
        pinned = False
    elif all(type(g) is int for g in groups):  # one cown per argument
        requested = sorted(set(groups))
        pinned = any(type(a) is not Cown and isinstance(a, PinnedCown) for a in args)
    else:
        requested = sorted({i for g in groups for i in ([g] if isinstance(g, int) else g)})
        pinned = any(isinstance(c, PinnedCown) for a in args for c in (a if isinstance(a, (list, tuple)) else [a]))
    if _owned:
        # A behaviour gets handles to its cowns, and may schedule on them again: such a cown
        # is released, not dropped, when its handle here is garbage (see the module doc).
        for c in requested:
            if c in _owned:
                _shared.add(c)
    # A plain function's flag is in its __dict__ (an empty one, usually): no AttributeError made.
    if type(func) is types.FunctionType:
        gated = bool(func.__dict__) and bool(func.__dict__.get("_rebeam_requires_armed", False))
    else:
        gated = bool(getattr(func, "_rebeam_requires_armed", False))
    conn = _runtime._conn
    if conn is None or _runtime.ROLE == "worker":  # only a worker can be importing the script
        conn = _runtime.connection()
    conn.raise_refused()
    # Not waiting for the governor's answer halves the cost of a @when, and the governor
    # answers such a schedule only if it refuses it. A refusal (a cown unknown to this
    # runtime) is raised by the next @when, quiesce() or wait(); a gated
    # behaviour waits, so a SafetyError is raised right here. So does a main-side one: once
    # answered, the governor has sent it here if it could run, and the next pump() sees it.
    conn.schedule(new_id(), requested, result._id, data, buffers, False, gated, gated or pinned)  # at_main, gated, wait
    _owned[result._id] = id(result)
    if len(_released) + len(_released_shared) >= RELEASE_BATCH:
        flush_released(conn)
    if pinned:
        from .._handled import expect_commands

        expect_commands(conn.commands_received)
    return result


def _schedule(func: Callable, cowns: tuple) -> Cown:
    check_shape(func, len(cowns))
    return whencall(func, list(cowns), [])


def when(*cowns: Any) -> Callable[[Callable], Cown]:
    """``@when(a, b)``: runs the function as a behaviour holding ``a`` and ``b`` (each a cown
    or a list of cowns), after every behaviour scheduled on them before; the decorated name
    becomes its result cown. Parameters beyond the cowns take their defaults, snapshotted now."""

    if len(cowns) != 1 or type(cowns[0]) is not Cown:

        def schedule(func: Callable) -> Cown:
            return _schedule(func, cowns)

        return schedule
    cown = cowns[0]._id

    def schedule_one(func: Callable) -> Cown:
        # The common `@when`, one plain cown and a plain function whose site has run before
        # (shape checked, template defined, packed for this cown), in one call to the
        # connection; anything new, changed or unusual takes `_schedule`. Each test is the one
        # `check_shape`, `_code._template_id` and `_code.pack` would pass on their fast paths.
        if type(func) is not types.FunctionType or func.__dict__ or func.__defaults__ is not None:
            return _schedule(func, cowns)
        if func.__closure__ is not None or func.__kwdefaults__ is not None:
            return _schedule(func, cowns)
        conn = _runtime._conn
        if conn is None or conn is not _prefix[0] or _runtime.ROLE == "worker":
            return _schedule(func, cowns)
        code, g = func.__code__, func.__globals__
        shaped, site = _shaped.get(id(code)), _code._sites.get(id(code))
        if shaped is None or shaped[0] is not code or shaped[1] != 1 or shaped[2] != 0:
            return _schedule(func, cowns)
        if site is None or site[0] is not code or site[2] is not g:
            return _schedule(func, cowns)
        root = logging.root
        if root.handlers or root.level != logging.WARNING:
            config = _logsync.snapshot()  # configured: compared as `_template_id` does
            if (config and config[0]) != site[1]:
                return _schedule(func, cowns)
        elif site[1] is not None:
            return _schedule(func, cowns)
        if site[3] and not _code._still_bound(g, site[3], site[4]):
            return _schedule(func, cowns)
        data = _code._packed.get((site[5], cown))
        if data is None:
            return _schedule(func, cowns)
        if sys.path != _runtime._sent_path:
            _runtime.share_sys_path()
        result = Cown.__new__(Cown)
        prefix = _prefix[1]
        result._id = rid = prefix | next(_ids)
        if _owned and cown in _owned:
            _shared.add(cown)  # as in `whencall`
        conn.schedule_one(prefix | next(_ids), cown, rid, data)
        _owned[rid] = id(result)
        if len(_released) + len(_released_shared) >= RELEASE_BATCH:
            flush_released(conn)
        return result

    return schedule_one


# -- running here ------------------------------------------------------------------------------


def hand_to_acquirer(job: tuple) -> bool:
    """The governor placed behaviour ``job[0]`` here: if it is an ``acquire()``, wake it."""
    slot = _acquiring.get(job[0])
    if slot is None:
        return False
    with _acquired_cv:
        slot.append(job)
        _acquired_cv.notify_all()
    return True


#: Whether a cown's value here ever failed to unpickle: until then no behaviour looks for one
#: (the only place an `Undecoded` is made is `_load_value`).
_any_undecoded = False


def _load_value(cown: int, data: bytes, buffers: list) -> Any:
    global _any_undecoded
    try:
        return _runtime.loads(data, buffers)
    except BaseException as e:
        _any_undecoded = True
        where = "the main process" if _runtime.ROLE != "worker" else f"worker {_runtime.connection().index}"
        e.add_note(
            f"rebeam: the value of Cown<{cown}> cannot be unpickled in {where}; behaviours here fail with "
            "this error and do not run, and the cown keeps its value. Make its type importable here "
            "(the same sys.path and packages as the main process)."
        )
        return Undecoded(data, buffers, e)


class _Tracked:
    """A behaviour this worker was sent, for ``cancelled()`` and a disarm's interrupt."""

    __slots__ = ("thread", "cancelled", "gated")

    def __init__(self) -> None:
        self.thread: int | None = None
        self.cancelled = False
        # Only gated behaviours are ever cancelled, and a cancel sets `cancelled` itself.
        self.gated = False


_tracked: dict[int, _Tracked] = {}
_tracked_lock = threading.Lock()
#: The host of every behaviour a disarm cannot cancel (not gated): never in `_tracked`, so no
#: cancel finds it, and it stays as it is.
_UNTRACKED = _Tracked()


def admit(b: int) -> None:
    """The governor sent gated behaviour ``b``: a cancel for it may come before a thread runs
    it. No lock: a cancel comes after it on the same connection, so on the same thread."""
    _tracked[b] = _Tracked()


def _end_tracked(b: int, tracked: _Tracked) -> None:
    """Forgets behaviour ``b`` under the lock a cancel takes, so no new interrupt targets its
    thread; and drops an interrupt that came too late to land in it. Only a cancel raises in
    a behaviour's thread, and it sets ``cancelled`` first under this lock: a behaviour never
    cancelled has no interrupt to drop (the call that drops one is not free)."""
    while True:
        try:
            with _tracked_lock:
                _tracked.pop(b, None)
                if tracked.cancelled:
                    clear_async_exc()
            return
        except SafetyInterrupt:
            continue  # one landing right here is swallowed, as end_interruptible does


def cancel_behaviour(b: int) -> None:
    """A disarm cancelled gated behaviour ``b``: interrupt its thread, or refuse it to start."""
    with _tracked_lock:
        t = _tracked.get(b)
        if t is None:
            return  # already over
        t.cancelled = True
        if t.thread is not None:
            raise_in_thread(t.thread, SafetyInterrupt)


def _arg(cown_id: int) -> Cown:
    """A behaviour's handle: its own while it runs (one it keeps is noted when it ends). Not
    through ``Cown.__init__`` or ``Cown._handle``: it makes no cown and claims no ownership."""
    c = _new_cown(Cown)
    c._id = cown_id
    return c


_new_cown = object.__new__


def _handles(g: Any) -> Any:
    return _arg(g) if type(g) is int else [_arg(x) for x in g]


def run_behaviour(
    conn,
    b: int,
    cowns: list,
    result: int,
    moved: list,
    lost: list,
    code: bytes,
    code_buffers,
    refused=None,
    gated: bool = False,
    *,
    wake: bool = True,
) -> BaseException | None:
    """Runs a behaviour in this process; returns the exception it raised, if any. A worker's
    "done" is held; ``wake=False``: one of a run on this thread (``Runner.run_here``), which
    flushes the "done"s itself (the flusher is not woken), runs nothing else in between, and
    calls ``end_run`` when it ends: the thread's behaviour state is left for it to reset once
    (each behaviour sets all of it anew)."""
    store = _runtime.cown_store
    for cown, data, buffers in moved:
        store[cown] = _load_value(cown, data, buffers)
    undecoded = None
    if _any_undecoded:
        for c in cowns:
            v = store.get(c)
            if type(v) is Undecoded and c not in lost:
                undecoded = v
                break
    local = _runtime._local
    handles = None
    local.acquired, local.lost, local.notices = {*cowns, result}, set(lost) if lost else (), None
    if gated:
        with _tracked_lock:
            tracked = _tracked.get(b)
            if tracked is None:
                tracked = _tracked[b] = _Tracked()
            tracked.thread = threading.get_ident()
    else:
        tracked = _UNTRACKED  # no cancel ever comes for it: no lock, no entry
    previous_host, local.host = local.host, tracked
    try:
        if refused is not None:
            raise refused
        if tracked.cancelled:
            raise SafetyInterrupt("cancelled before it started: the system was disarmed")
        if undecoded is not None:
            raise undecoded.error
        # Behaviour code is always a pickle (never a Rust host's value): only one that names the
        # script's module needs the worker's own unpickler (see _runtime.loads). The common
        # shape was decoded before, by these very bytes: looked up first.
        plain = type(code) is bytes
        unpacked = _code._decoded.get(code) if plain and not code_buffers else None
        if unpacked is None:
            plain = plain and b"main__" not in code
            if plain and not code_buffers:
                unpacked = decode(code)  # the common shape, decoded once per site and cowns
            else:
                sent = pickle.loads(code, buffers=code_buffers) if plain else _runtime.loads(code, code_buffers)
                unpacked = unpack(sent)
        fn, groups, captures = unpacked
        handles = [_arg(g) if type(g) is int else _handles(g) for g in groups]
        store[result] = fn(*handles, *captures)
        failure = None
    except BaseException as e:
        store[result] = Failure(e)
        failure = e
    finally:
        if gated:
            _end_tracked(b, tracked)
        if wake:
            local.acquired, local.lost, local.notices, local.host = None, (), None, previous_host
    if handles:
        _note_kept(handles)
        handles = None
    if _runtime.ROLE == "worker":
        # What this behaviour let go (and kept) goes just before its "done", in the same
        # write: after the program's wait() the tables hold only what it still can reach.
        if _released or _released_shared or _to_keep:
            flush_released(conn, True)
    elif _to_keep:
        flush_kept(conn)
    # A worker's "done" is held to go with the next ones: its Runner flushes when the run ends.
    conn.behaviour_done(b, _runtime.ROLE == "worker", wake)
    return failure


def end_run(host: Any) -> None:
    """A run of behaviours (``run_behaviour(wake=False)``) on this thread ended: the thread is in
    none any more, and runs for ``host`` again (what it ran for before the run)."""
    local = _runtime._local
    local.acquired, local.lost, local.notices, local.host = None, (), None, host


def _refs_of_unreferenced() -> int:
    # What `sys.getrefcount` says of an object only a list and a loop over it hold, measured
    # as _note_kept loops (the count varies between interpreters).
    for h in [object()]:
        return sys.getrefcount(h)
    return 0


#: References to a behaviour's handle once it returned, when nothing else holds it.
_UNREFERENCED = _refs_of_unreferenced()


def _note_kept(handles: list) -> None:
    """The handles a behaviour got that are still referenced from elsewhere once it returned
    (a global, another cown's value, an exception's frame) are kept (see the module doc)."""
    for h in handles:
        if type(h) is list:
            whole = sys.getrefcount(h) > _UNREFERENCED
            for x in h:
                if whole or sys.getrefcount(x) > _UNREFERENCED:
                    _keep(x._id)
        elif sys.getrefcount(h) > _UNREFERENCED:
            _keep(h._id)


def forget(cowns: list) -> None:
    """The governor freed these cowns: nothing can reach their values here any more."""
    store = _runtime.cown_store
    for c in cowns:
        store.pop(c, None)


def surrender(conn, cown: int) -> None:
    """Sends a cown's value to the governor (a behaviour needs it elsewhere) and forgets it."""
    value = _runtime.cown_store.pop(cown, None)
    if isinstance(value, Undecoded):
        conn.cown_value(cown, value.data, value.buffers)
        return
    try:
        data, buffers = _runtime.dumps(value, f"the value of Cown<{cown}>")
    except Exception as e:
        logging.getLogger("rebeam.boc").warning("rebeam: %s; the behaviour that needs it gets a RuntimeError", e)
        data, buffers = _runtime.dumps(Failure(RuntimeError(str(e))), "a failure")
    conn.cown_value(cown, data, buffers)
