"""A worker process: hosts actors and tasks for the governor.

Each actor has a mailbox. When a message arrives and the actor is idle, the actor is handed to a
thread of the pool, which runs its messages one at a time, in arrival order. The pool grows
when every thread is busy, so a handler blocked in ``call()`` (waiting, without the GIL, for
another actor, maybe in this same worker) never starves its neighbours. Tasks (function,
module and script children) run on threads of their own.

Commands are taken by one thread at a time, the holder of the connection's command role. A
message for an idle actor with only synchronous handlers is not handed to the pool: the
holder runs the mailbox itself (one wake-up and one GIL hand-off fewer on a call's way), after
stepping out of the role, so that whatever arrives meanwhile is taken by a standby thread and
nothing waits behind a long handler. It takes the role back after, or becomes the standby.
A run of casts for such an actor (one ``_rebeam.Casts``) is run so too, straight from the batch
that brought it: one loop on the thread that took it, with no lock per cast and no hand-over of
the mailbox to another thread; what arrives for the actor meanwhile waits in its mailbox, behind.

Run as ``python -m rebeam._worker`` by the governor; not meant to be started by hand.
"""

from __future__ import annotations

import collections
import gc
import os
import queue
import sys
import threading
import traceback
from typing import Any

from . import _aio, _casts, _env, _rebeam, _runtime
from ._dispatch import Handler
from ._exits import error_info, exit_now
from ._output import PrefixedStream
from ._runs import AsyncRuns
from ._runtime import ProcessID
from ._script import script_child
from ._threads import end_interruptible, raise_in_thread
from .actor import _PLAIN, DOWN, Down, GenPy, Response, _pickle_dumps, check_concurrency
from .errors import SafetyInterrupt, SerializationError


#: Under `rebeam --safety require-armed`, every message the governor delivers is gated work.
REQUIRE_ARMED = os.environ.get(_env.SAFETY) == _env.REQUIRE_ARMED

RunBehaviour = _rebeam.RunBehaviour

#: A mailbox being drained reports the messages it let go of to the process's delivery bound
#: at most this many at a time, and at once when it looked empty (so an idle actor owes none):
#: one report per message cost a call into the extension each, made under the mailbox lock.
HANDLED_BATCH = 64


class Pool:
    """Threads that run actors' mailboxes; a new thread starts whenever none is idle."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, fn) -> None:
        with self._lock:
            grow = self._idle == 0
            if not grow:
                self._idle -= 1
        self._q.put(fn)
        if grow:
            threading.Thread(target=self._run, name="rebeam-actor", daemon=True).start()

    def _run(self) -> None:
        while True:
            fn = self._q.get()
            try:
                fn()
            except BaseException:
                traceback.print_exc()
            with self._lock:
                self._idle += 1


class Host:
    """One actor or task living in this worker."""

    def __init__(self, actor: int, name: str | None, label: str) -> None:
        self.pid = ProcessID(actor, name)
        self.label = label
        self.mailbox: collections.deque = collections.deque()
        self.lock = threading.Lock()
        self.scheduled = False
        self.instance: Any = None
        self.task_thread: threading.Thread | None = None
        # The task thread is inside `run_task`'s try (on `lock`): only then may a stop raise in
        # it; before, it would land in the threading module's own start-up code.
        self.task_running = False
        self.stopping = False
        self.dead = False
        # The worker's `taken` when this actor died (see Worker.enqueue): what its Exited says.
        self.taken_at_death: int | None = None
        # The delivery a pool thread runs for it now, that thread, whether it is gated work,
        # and whether a disarm cancelled it (see Worker.cancel and rebeam.cancelled).
        self.current: int | None = None
        self.thread: int | None = None
        self.gated = False
        self.cancelled = False
        # Gated deliveries a disarm cancelled after a pool thread took them from the mailbox
        # but before they started (see Worker.cancel and run_tracked).
        self.revoked: set[int] = set()
        # Its async def handlers' runs in flight (see _aio), at most `limit` of them; `idle`
        # (on `lock`) is notified whenever one ends, for the pool thread waiting for room.
        self.async_methods: frozenset[str] = frozenset()
        # Its class's handlers (see GenPy._rebeam_handlers), looked up once, at its start.
        self.handlers: tuple = ({}, None, None)
        self.limit = 1
        self.runs: set[_aio.Run] = set()
        self.idle = threading.Condition(self.lock)
        # The sender of the last message it handled, and its ProcessID (immutable: shared).
        self.last_sender: tuple | None = None
        self.last_source: ProcessID | None = None

    def source(self, sender: tuple | None) -> ProcessID | None:
        """The ProcessID of a message's sender: a burst from one sender builds it once."""
        if not sender:
            return None
        if sender != self.last_sender:
            self.last_source, self.last_sender = ProcessID(*sender), sender
        return self.last_source


class Worker(Handler, AsyncRuns):
    """The commands of a worker process: it hosts actors and tasks."""

    def __init__(self, conn) -> None:
        super().__init__(conn)
        self.hosts: dict[int, Host] = {}
        self.pool = Pool()
        # The highest governor delivery id taken in so far (checked against its actor's
        # liveness, under that actor's lock). An actor's Exited reports it as it was when the
        # actor died, so the governor knows which of its calls died with it (ActorDown) and
        # which this worker answers itself, having found the actor dead (NoProcess).
        self.taken = 0
        # The command role (see serve): whether the thread holding it may run the mailbox it
        # schedules now itself, the host it will run so (and the run of casts it took for it,
        # kept out of the mailbox), and how many threads wait as standbys.
        self.may_inline = False
        self.inline: Host | None = None
        self.inline_casts: list = []
        self.spares = 0
        self.spares_lock = threading.Lock()
        self.behaviours: Any = None  # rebeam.boc._local.Runner, once a behaviour came
        self.arrived: list = []  # the behaviours of the batch being taken

    # -- the command loop (one thread) ---------------------------------------------------

    def run(self) -> None:
        # Deliveries count against the process's bound until their mailbox lets them go (not
        # when the command thread moves them into it), so a slow actor's backlog stays in its
        # senders' rings: each one that leaves a mailbox, whatever became of it, is reported.
        self.conn.count_handled()
        # The command thread, idle, sleeps on the rings itself: a call for an idle actor wakes
        # only the thread that runs it (serve, run_inline).
        self.conn.read_rings_when_idle()
        # What start-up made (modules, code objects, the runtime's tables) lives as long as the
        # worker: the collector need not walk it again at every full collection, which the
        # short-lived objects of each message and behaviour set off.
        gc.freeze()
        self.conn.ready()
        self.serve()

    def serve(self) -> None:
        """Takes commands while this thread holds the command role (one thread at a time, so
        they are handled in arrival order). A message for an idle synchronous actor is run
        right here, with no hand-off to a pool thread (see run_inline)."""
        while True:
            self.may_inline, self.inline = True, None
            # A burst of casts comes as one list: one wake-up and one hold of the GIL, and
            # each run of casts for one actor as one Casts, its items ready for the mailbox.
            batch = self.conn.next_commands()
            for cmd in batch:
                # A behaviour only joins the batch's (run_behaviours): no dispatch through
                # the table for the command a busy BoC worker gets most.
                if type(cmd) is RunBehaviour and self.behaviours is not None:
                    self.arrived.append(cmd)
                    continue
                try:
                    self.command(cmd)
                except Exception:
                    # One bad command must not take the worker and all its actors down.
                    traceback.print_exc()
            # Nothing here may keep a message (a lent buffer's view) alive past its handling.
            batch = cmd = None
            self.may_inline, host = False, self.inline
            casts, self.inline_casts = self.inline_casts, []
            if self.arrived and not self.run_behaviours():
                # The watchdog gave the role away during them: the actor goes to the pool.
                if host is not None:
                    self.pool.submit(lambda host=host, casts=casts: self.drain(host, casts))
                if not self.conn.resume():
                    self.stand_by()
            elif host is not None and not self.run_inline(host, casts):
                self.stand_by()

    def run_behaviours(self) -> bool:
        """Runs the behaviours of the batch that may run now here, keeping the command role
        (see boc._handover); False if it was handed to another thread meanwhile."""
        cmds, self.arrived = self.arrived, []
        try:
            ready = self.behaviours.take(cmds)
        except Exception:
            traceback.print_exc()  # as for any command: the worker goes on
            return True
        return self.behaviours.run_here(ready)

    def run_inline(self, host: Host, casts: list) -> bool:
        """Runs an actor's mailbox on this thread, the run of casts it took for it (if any)
        first, having stepped out of the command role first: a command that arrives meanwhile
        (the next message, a cancel, a stop) is taken by a standby thread, started here if
        none waits. Returns whether this thread holds the role again after (else a standby
        claimed it)."""
        self.step_aside()
        try:
            self.drain(host, casts)
        except BaseException:
            traceback.print_exc()  # as a pool thread does: the commands go on
        return self.conn.resume()

    def step_aside(self) -> None:
        """Gives up the command role (this thread's, or the command thread's, for the behaviours
        watchdog), with a standby thread on its way to take the next command."""
        with self.spares_lock:
            start = self.spares == 0
            if start:
                self.spares += 1  # counted before it starts: it is on its way to standby()
        if start:
            threading.Thread(target=self.spare, name="rebeam-commands", daemon=True).start()
        self.conn.step_aside()

    def spare(self) -> None:
        self.stand_by(counted=True)
        self.serve()

    def stand_by(self, counted: bool = False) -> None:
        """Waits, without the GIL, until a command arrives while no thread takes them, and
        claims the command role for it."""
        if not counted:
            with self.spares_lock:
                self.spares += 1
        self.conn.standby()
        with self.spares_lock:
            self.spares -= 1

    # -- the commands (see _dispatch.TABLE) ------------------------------------------------

    def on_deliver(self, cmd: _rebeam.Deliver) -> None:
        self.enqueue(cmd.actor, mailbox_item(cmd))

    def on_casts(self, cmd: _rebeam.Casts) -> None:
        self.enqueue_casts(cmd.actor, cmd.items)

    def on_start(self, cmd: _rebeam.Start) -> None:
        self.hosts[cmd.actor] = Host(cmd.actor, cmd.name, cmd.label)
        self.enqueue(cmd.actor, ("start", cmd.kind, cmd.data, cmd.buffers))

    def on_stop(self, cmd: _rebeam.Stop) -> None:
        self.stop(cmd.actor)

    def on_preload(self, cmd: _rebeam.Preload) -> None:
        self.pool.submit(self.preload)

    def on_down(self, cmd: _rebeam.Down) -> None:
        if cmd.watcher is not None:
            notice = Down(cmd.monitor, ProcessID(*cmd.actor), cmd.reason)
            self.enqueue(cmd.watcher, ("local", DOWN, notice.pid, notice))

    def on_cancel(self, cmd: _rebeam.Cancel) -> None:
        self.cancel(cmd.actor, cmd.delivery)

    def on_publication(self, cmd: _rebeam.Publication) -> None:
        _runtime.bus_dropped[cmd.subscription] = cmd.dropped
        fn = _runtime.bus_handlers.get(cmd.subscription)
        if fn is not None and cmd.actor is not None:
            self.enqueue(cmd.actor, ("bus", fn, cmd.topic, cmd.data, cmd.buffers))

    def on_run_behaviour(self, cmd: _rebeam.RunBehaviour) -> None:
        if self.behaviours is None:  # made on first use: a worker without behaviours never imports them
            from .boc import _local

            self.behaviours = _local.Runner(self.conn, self.pool.submit, self.conn.flush_held, self.step_aside)
        self.arrived.append(cmd)  # the batch's behaviours go in together (serve)

    def on_sys_path(self, cmd: _rebeam.SysPath) -> None:
        use_main_sys_path(cmd.paths)

    def on_shutdown(self, cmd: _rebeam.Shutdown) -> None:
        exit_now(0)

    def preload(self) -> None:
        # Warm what every start needs. The user's script itself is imported only when a
        # message names a type it defines (see _runtime.loads).
        from . import _codepickle  # noqa: F401  (and cloudpickle)

    def enqueue(self, actor: int, item: tuple) -> None:
        host = self.hosts.get(actor)
        delivery = item[1] if item[0] == "msg" else None
        if host is not None:
            with host.lock:
                if delivery is not None and delivery < _rebeam.LOCAL_DELIVERY:
                    self.taken = max(self.taken, delivery)
                alive = not host.dead
                if alive:
                    if delivery is not None and delivery >= _rebeam.LOCAL_DELIVERY:
                        self.conn.took(delivery)  # a direct call: it now ends with the actor
                    host.mailbox.append(item)
                    schedule, host.scheduled = not host.scheduled, True
            if alive:
                if schedule:
                    self.schedule(host, item)
                return
        if item[0] == "msg":
            self.conn.handled()
        if delivery is not None:
            info = _rebeam.ErrorInfo("no_process", f"actor <{actor}> is not running in this worker")
            self.conn.reply_failure(delivery, info)

    def enqueue_casts(self, actor: int, items: list) -> None:
        """As enqueue, for casts to one actor (no delivery ids), under one hold of its lock.
        For an idle actor this thread may run (see schedule), the run stays out of the
        mailbox: run_inline runs it from the list, before anything that comes after it."""
        host = self.hosts.get(actor)
        if host is not None:
            with host.lock:
                alive = not host.dead
                if alive:
                    schedule, host.scheduled = not host.scheduled, True
                    if schedule and self.may_inline and self.inline is None and runs_inline(host, items[0]):
                        self.inline, self.inline_casts = host, items
                        return
                    host.mailbox.extend(items)
            if alive:
                if schedule:
                    self.schedule(host, items[0])
                return
        self.conn.handled(len(items))  # lost, as a cast to an actor that ended is

    def schedule(self, host: Host, item: tuple) -> None:
        """Has an idle actor's mailbox, whose first item is `item`, run: by the command thread
        once its batch is in, when it may (see serve), else on a pool thread."""
        if self.may_inline and self.inline is None and runs_inline(host, item):
            self.inline = host
        else:
            self.pool.submit(lambda: self.drain(host))

    def stop(self, actor: int) -> None:
        host = self.hosts.get(actor)
        if host is None:
            return
        if host.task_thread is not None:
            self.stop_task(host)
        else:
            self.enqueue(actor, ("stop",))

    def stop_task(self, host: Host) -> None:
        # The governor learns a task started just before its thread starts, so a stop can
        # come before the thread runs, or while it is still in the threading module's start-up
        # (raising there would end the thread without `run_task` reporting the exit): until the
        # thread is inside `run_task`, the flag alone stops it, checked there under the lock.
        with host.lock:
            host.stopping = True
            if host.task_running:
                raise_in_thread(host.task_thread.ident, SystemExit)

    # -- on pool threads ------------------------------------------------------------------

    def cancel(self, actor: int, delivery: int) -> None:
        """A disarm cancelled this gated delivery: flag it and interrupt its thread, but only
        if that thread still runs this very delivery (never the next, unrelated message); an
        ``async def`` handler's run is flagged and its coroutine cancelled instead.

        A delivery still waiting in the mailbox never starts: it is taken out and answered
        (the governor has already failed its caller; the answer tells it the work is over).
        One taken from the mailbox but not started yet is revoked: run_tracked refuses it.
        Deliveries reach the mailbox before their cancel does (one socket, one command
        thread), so this covers every gated delivery that has not finished.
        """
        host = self.hosts.get(actor)
        if host is None:
            return
        with host.lock:
            run = next((r for r in host.runs if r.delivery == delivery), None)
            if run is not None:
                run.cancelled = True
                _aio.cancel(run)
                return
            if host.current == delivery and host.thread is not None:
                host.cancelled = True
                raise_in_thread(host.thread, SafetyInterrupt)
                return
            queued = next((m for m in host.mailbox if m[0] == "msg" and m[1] == delivery), None)
            if queued is None:
                host.revoked.add(delivery)  # or it has finished: run_tracked forgets it
                return
            host.mailbox.remove(queued)
        self.conn.handled()
        why = f"actor {host.label} {queued[2]!r} was cancelled before it started: the system was disarmed"
        self.conn.reply_failure(delivery, _rebeam.ErrorInfo("safety", why, "SafetyInterrupt"))

    def run_casts(self, host: Host, items: list) -> None:
        """Runs casts taken for a synchronous actor by the thread running its mailbox, in
        order, straight from their list: no lock per cast (nobody else takes from this list;
        what arrives for the actor meanwhile waits in its mailbox, run after). Stops if the
        actor ends: the rest are lost, as those in its mailbox are. All count as handled once,
        at the end (none can be cancelled: a cancel names a delivery id, which casts have not)."""
        taken = len(items)
        items.reverse()  # taken from the end, so that each (a lent buffer with it) goes once run
        try:
            _casts.run(self, host, items)  # plain ones without deliver's layers (see _casts)
        finally:
            items.clear()
            self.conn.handled(taken)

    def drain(self, host: Host, casts: list | None = None) -> None:
        """Runs an actor's mailbox until it is empty, `casts` (a run taken for it, kept out of
        the mailbox) first. A run of casts at the head of the mailbox of a synchronous actor is
        taken out whole, under one hold of its lock, and run as one."""
        _runtime.set_current(host.pid)
        _runtime._local.host = host
        let_go = 0  # messages taken out of the mailbox and not yet reported (HANDLED_BATCH)
        try:
            if casts:
                self.run_casts(host, casts)
            while True:
                with host.lock:
                    if not host.mailbox or host.dead:
                        host.scheduled = False
                        return
                    item = host.mailbox.popleft()
                    if item[0] == "msg" and item[1] is None and not host.async_methods:
                        casts = take_casts(host.mailbox, item)
                    elif item[0] == "msg":
                        let_go += 1
                    if host.async_methods and not self.wait_turn(host, item):
                        host.scheduled = False
                        return
                    empty = not host.mailbox
                if casts:
                    if let_go:  # reported first, so the counts go in the order handled
                        self.conn.handled(let_go)
                        let_go = 0
                    self.run_casts(host, casts)
                    casts = None
                    continue
                if let_go >= HANDLED_BATCH or (let_go and empty):
                    self.conn.handled(let_go)
                    let_go = 0
                self.handle(host, item)
        finally:
            if let_go:
                self.conn.handled(let_go)
            _runtime.set_current(None)
            _runtime._local.host = None

    def handle(self, host: Host, item: tuple) -> None:
        kind = item[0]
        if kind == "start":
            self.start(host, *item[1:])
        elif kind == "msg":
            self.deliver(host, *item[1:])
        elif kind == "local":
            _, subject, source, message = item
            self.dispatch(host, None, subject, source, message)
        elif kind == "bus":
            _, fn, topic, data, buffers = item
            try:
                fn(topic, _runtime.loads(data, buffers))
            except BaseException as e:
                self.finish(host, _rebeam.Exit.crashed(error_info(e)))
        elif kind == "stop":
            if host.task_thread is not None:  # a task whose start was still queued
                self.stop_task(host)
            else:
                self.finish(host, _rebeam.Exit.shutdown())

    def deliver(self, host: Host, delivery: int | None, subject: str, sender, data, buffers) -> None:
        """Runs one message (a mailbox's "msg" item) in its actor."""
        from_host = _runtime.is_host_value(data)
        try:
            message = _runtime.loads(data, buffers, from_host)
        except BaseException as e:
            if delivery is not None:
                why = f"actor {host.label} cannot unpickle a {subject!r} message: {e}"
                info = _rebeam.ErrorInfo("bad_request", why, type(e).__qualname__)
                self.conn.reply_failure(delivery, info)
            return
        if from_host and subject == _rebeam.HANDLE_RELEASE:
            # The host dropped a handle this actor holds: not a message for its handlers.
            from . import handles

            handles.release(host.pid.id, message)
            return
        # A Rust host's message is answered in its own codec: it cannot read a pickle.
        self.dispatch(host, delivery, subject, host.source(sender), message, from_host)

    def start(self, host: Host, code_kind: str, data: Any, buffers: list) -> None:
        try:
            if code_kind == "script":
                obj = script_child(data)
                if obj is None:
                    import runpy  # here, not at import: only a script child that is a task needs it

                    path = data
                    obj = lambda: runpy.run_path(path, run_name="__main__")  # noqa: E731
                    code_kind = "task"
                else:
                    code_kind = "actor"
                    if obj.name is None:
                        obj.name = host.pid.name
            elif code_kind == "actor" and _runtime.is_host_value(data):
                obj = _runtime.host_actor(_runtime.loads(data, buffers))
            else:
                obj = _runtime.loads(data, buffers)
            if code_kind == "actor":
                if not isinstance(obj, GenPy):
                    raise TypeError(f"{type(obj).__name__} is not a GenPy actor")
                obj.__dict__["_rebeam_pid"] = host.pid
                host.instance = obj
                host.limit = check_concurrency(obj.max_concurrency, f"actor {host.label}")
                host.async_methods = type(obj)._rebeam_async_methods()
                host.handlers = type(obj)._rebeam_handlers()
                _, _, start_name = host.handlers
                if start_name:
                    _aio.resolve(getattr(obj, start_name)())
            else:
                host.task_thread = threading.Thread(
                    target=self.run_task, args=(host, obj), name=f"rebeam-task-{host.label}", daemon=True
                )
        except BaseException as e:
            host.dead = True
            self.hosts.pop(host.pid.id, None)
            self.conn.started(host.pid.id, error_info(e, "start_failed"))
            return
        gating = type(host.instance)._rebeam_gating() if host.instance is not None else None
        self.conn.started(host.pid.id, None, gating)
        if host.task_thread is not None:
            host.task_thread.start()

    def dispatch(
        self, host: Host, delivery: int | None, subject: str, source: ProcessID | None, message: Any, to_host=False
    ) -> None:
        obj = host.instance
        if obj is None:  # a task
            if delivery is not None:
                why = f"{host.label} is a task (a function, module or script child); tasks take no messages"
                info = _rebeam.ErrorInfo("no_mailbox", why)
                self.conn.reply_failure(delivery, info)
            return
        subjects, catch_all, _ = host.handlers
        method = subjects.get(subject, catch_all)
        if method is None:
            if delivery is not None:
                info = _rebeam.ErrorInfo(
                    "bad_request",
                    f"actor {host.label} has no handler for subject {subject!r}; "
                    f"add @receive({subject!r}) or a catch-all @receive()",
                )
                self.conn.reply_failure(delivery, info)
            return
        handler = getattr(obj, method)
        # Asked of the function, not of the bound method, which would make (and format) an
        # AttributeError for every message to an ungated handler.
        gated = getattr(getattr(handler, "__func__", handler), "_rebeam_requires_armed", False)
        gated = gated or (REQUIRE_ARMED and delivery is not None)
        if gated and self.conn.safety_state() != "armed":
            # The governor refuses gated work before dispatch; this covers a disarm that
            # overtook the message on its way here.
            if delivery is not None:
                why = f"actor {host.label} {subject!r} requires the system to be armed"
                self.conn.reply_failure(delivery, _rebeam.ErrorInfo("safety", why))
            return
        if method in host.async_methods:
            self.start_run(host, delivery, subject, handler, source, message, gated, to_host)
            return
        try:
            if delivery is None and not gated:
                # An ungated cast: no cancel can name it (it has no delivery id), so there is
                # nothing to track (and no interrupt aimed at it to clear after).
                result = _aio.resolve(handler(source, message))
            else:
                result = self.run_tracked(host, delivery, handler, source, message, gated)
        except SafetyInterrupt:
            self.interrupted(host, delivery, subject)
            return
        except BaseException as e:
            self.crashed(host, delivery, e)
            return
        self.answer(host, delivery, subject, result, to_host)

    def interrupted(self, host: Host, delivery: int | None, subject: str) -> None:
        if delivery is not None:
            why = f"actor {host.label} {subject!r} was interrupted: the system was disarmed"
            self.conn.reply_failure(delivery, _rebeam.ErrorInfo("safety", why, "SafetyInterrupt"))

    def crashed(self, host: Host, delivery: int | None, e: BaseException) -> None:
        """A handler raised: the actor crashes. Its other runs in flight are cancelled and
        what they would answer is dropped: their callers get ActorDown when it exits."""
        info = error_info(e)
        # Dead before its caller hears of the crash: a message sent on the heels of that
        # answer (straight here, over a direct channel) gets NoProcess, as the governor's
        # path gives while the supervisor restarts it, not a place in a mailbox about to
        # be cleared.
        with host.lock:
            if host.dead:
                return  # another run crashed it first
            self.mark_dead(host)
            others, host.runs = host.runs, set()
            for run in others:
                run.discarded = True
            host.idle.notify_all()
        for run in others:
            _aio.cancel(run)
        if delivery is not None:
            self.conn.reply_failure(delivery, info)
        self.finish(host, _rebeam.Exit.crashed(info))

    def answer(self, host: Host, delivery: int | None, subject: str, result: Any, to_host: bool) -> None:
        if delivery is None:
            return
        status, value = result if isinstance(result, Response) else ("ok", result)
        if type(value) in _PLAIN and not to_host:
            # A small plain answer: pickled as it is, with no words made for a failure.
            self.conn.reply(delivery, status == "ok", _pickle_dumps(value, 5), ())
            return
        try:
            dumps = _runtime.dumps_host_value if to_host else _runtime.dumps
            data, buffers = dumps(value, f"the reply of actor {host.label} to {subject!r}")
        except SerializationError as e:
            self.conn.reply_failure(delivery, _rebeam.ErrorInfo("crashed", str(e), "SerializationError"))
            return
        self.conn.reply(delivery, status == "ok", data, buffers)

    def run_tracked(self, host: Host, delivery: int | None, handler, source, message, gated: bool = False):
        """Runs a handler while recording which delivery this thread runs, so a cancel can
        interrupt exactly it; afterwards clears any interrupt that arrived too late to land."""
        with host.lock:
            host.current, host.thread, host.gated = delivery, threading.get_ident(), gated
            host.cancelled = revoked = delivery in host.revoked
            if host.revoked and delivery is not None:
                # Deliveries reach an actor in id order: older ids can no longer start.
                host.revoked = {d for d in host.revoked if d > delivery}
        try:
            if revoked:
                raise SafetyInterrupt
            return _aio.resolve(handler(source, message))  # an async def handler: awaited
        finally:
            self.end_tracked(host)

    @staticmethod
    def end_tracked(host: Host) -> None:
        # Neither its cancellation nor a late interrupt may reach what this actor runs next
        # (a bus handler, the next message).
        def forget() -> None:
            host.current, host.gated, host.cancelled = None, False, False

        end_interruptible(host.lock, forget)

    def finish(self, host: Host, exit: _rebeam.Exit) -> None:
        terminate = getattr(host.instance, "terminate", None)
        if callable(terminate):
            try:
                terminate(exit.kind)
            except BaseException:
                traceback.print_exc()
        with host.lock:
            self.mark_dead(host)
            self.conn.handled(sum(1 for m in host.mailbox if m[0] == "msg"))
            host.mailbox.clear()
        self.hosts.pop(host.pid.id, None)
        end_handles(host.pid.id)
        self.conn.exited(host.pid.id, exit, host.taken_at_death)

    def mark_dead(self, host: Host) -> None:
        """The actor is dead from now on (call with its lock held): later deliveries to it are
        answered NoProcess by enqueue, and its Exited says which came before."""
        if not host.dead:
            host.dead, host.taken_at_death = True, self.taken

    def run_task(self, host: Host, fn) -> None:
        _runtime.set_current(host.pid)
        try:
            with host.lock:
                host.task_running = True
                stopping = host.stopping
            if stopping:
                raise SystemExit
            fn()
            exit = _rebeam.Exit.shutdown() if host.stopping else _rebeam.Exit.normal()
        except SystemExit as e:
            clean = host.stopping or e.code in (None, 0)
            ended = _rebeam.Exit.shutdown() if host.stopping else _rebeam.Exit.normal()
            exit = ended if clean else _rebeam.Exit.crashed(error_info(e))
        except BaseException as e:
            exit = _rebeam.Exit.shutdown() if host.stopping else _rebeam.Exit.crashed(error_info(e))
        finally:
            _runtime.set_current(None)
        end_interruptible(host.lock, lambda: setattr(host, "task_running", False), SystemExit)
        self.hosts.pop(host.pid.id, None)
        host.dead = True
        end_handles(host.pid.id)
        self.conn.exited(host.pid.id, exit)


def mailbox_item(cmd: _rebeam.Deliver) -> tuple:
    """A delivery as its actor's mailbox holds it."""
    return ("msg", cmd.delivery, cmd.subject, cmd.sender, cmd.data, cmd.buffers)


def take_casts(mailbox: collections.deque, first: tuple) -> list:
    """`first` (a cast taken from the head of a mailbox) and the casts right behind it, taken
    out too: a run ends at anything that is not a cast (a call, a stop, a bus message)."""
    casts = [first]
    while mailbox:
        item = mailbox[0]
        if item[0] != "msg" or item[1] is not None:
            break
        casts.append(mailbox.popleft())
    return casts


def runs_inline(host: Host, item: tuple) -> bool:
    """Whether the command thread may run this actor's mailbox itself: a message for an actor
    (not a task) with no async def handlers (those run on the pool thread's event loop)."""
    return item[0] == "msg" and host.instance is not None and not host.async_methods


def end_handles(actor: int) -> None:
    """An actor ended: the objects it held for a host's handles go (if it ever made one)."""
    handles = sys.modules.get("rebeam.handles")
    if handles is not None:
        handles.end_holder(actor)


#: This worker's own import path, before the main process's was put in front of it.
_OWN_SYS_PATH = list(sys.path)


def use_main_sys_path(paths: list[str]) -> None:
    """Imports resolve as in the main process (whose path comes first); entries of this
    worker's own path stay behind them, so rebeam itself is always found."""
    sys.path[:] = paths + [p for p in _OWN_SYS_PATH if p not in paths]
    import importlib

    importlib.invalidate_caches()  # directories created since the last import are seen


#: The GIL switch interval in workers, in seconds (CPython's default is 0.005): see main(). Measured
#: with 2 CPU-bound actors beside an idle one in a worker: its call p50 10.6 ms at the default,
#: 4.3 ms at 0.0005, 1.5 ms at 0.0001; two CPU-bound actors sharing a worker ran no slower.
WORKER_SWITCH_INTERVAL = 0.0001


def main() -> None:
    governor = os.environ.get(_env.GOVERNOR_PID)
    if governor and os.getppid() != int(governor):
        os._exit(_rebeam.INTERNAL_ERROR_EXIT_STATUS)  # the governor died before we started: nothing to serve
    index = os.environ.get(_env.INDEX, "?")
    if len(sys.argv) > 1:
        sys.argv = sys.argv[1:]  # the script's own argv, for its module level (see _script.py)
    sys.stdout = PrefixedStream(sys.__stdout__, f"worker {index}")
    sys.stderr = PrefixedStream(sys.__stderr__, f"worker {index}")
    # Workers never react to Ctrl-C themselves: the governor decides how the system stops.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Actors share a worker's GIL: with CPython's 5 ms switch interval, a message to an idle
    # actor beside a CPU-bound one waits up to 5 ms at each of its two GIL hand-offs (command
    # thread, then the actor's thread). A shorter interval bounds that wait; a CPU-bound actor
    # alone in its worker is unaffected (no thread asks for the GIL).
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL)
    try:
        conn = _runtime.connect()
    except Exception as e:  # noqa: BLE001 - any failure at the handshake ends this worker alike
        # Refused at the handshake (the governor's log says why; a worker forked as the run
        # shuts down is refused, then killed): one true line, not a traceback cut off by the kill.
        print(f"not started: {e}", file=sys.stderr, flush=True)
        os._exit(_rebeam.INTERNAL_ERROR_EXIT_STATUS)
    Worker(conn).run()


if __name__ == "__main__":
    if _env.ZYGOTE_FD in os.environ:
        # Started as the zygote: it forks the workers, and each runs main (see _zygote.py).
        from . import _zygote

        _zygote.main(main)
    else:
        main()
