"""The watchdog of the behaviours a worker's command thread runs itself.

A worker's command thread runs the behaviours of a batch that may run at once (and those they
let go) itself, without stepping out of the command role: no pool thread is woken, no other
thread takes the role, for behaviours that take microseconds. While it runs them, nobody takes
the process's commands: a cancel (a disarm), the next behaviours, a call for an actor here wait.
The watchdog bounds that wait. The rules:

- **One run at a time is watched**: the one the holder of the command role runs (``begin`` to
  ``end``); a holder that gave the role away runs on as a pool thread would, unwatched.
- **A behaviour still running a whole tick (``HANDOVER_S``) after the watchdog first saw it**,
  so one that has lasted between one and two ticks, costs its run the role, if it is *busy* (its
  thread used half a tick of CPU since) or *blocked* (the watchdog got the GIL at once, so the
  thread let it go, and the kernel has it asleep: a wait, a sleep, I/O). One that is neither is
  *waiting for a core* (the machine is loaded), and keeps the role until it is one of the two:
  handing the role over would not get the commands taken any sooner.
- **Handing over**: the watchdog marks the run ``handed`` and calls ``hand_over``: another
  thread takes the commands from then on, and a pool thread what the run has left (a behaviour
  that waits for one after it in its batch is not left waiting). A run of many short behaviours
  keeps the role (it ends with its batch's behaviours). The run's thread stops taking from the
  run at its behaviour's end (what that one lets go still goes in the run, for the pool); it
  then takes the role back if nobody claimed it, or waits as a standby.
- **``end`` says, under the lock the watchdog marks under, whether the run was handed**, so a
  thread never goes on taking commands once another may have claimed the role.
- **The watchdog sleeps for good while the worker runs no behaviours**: it parks once a tick
  passed with no run begun, and the next ``begin`` wakes it (one wake-up per busy spell, not one
  per run).
"""

from __future__ import annotations

import collections
import threading
import time
import traceback
from collections.abc import Callable

#: How long one behaviour on the command thread may run before the watchdog may hand the
#: command role to another thread (it does so between one and two of these): long enough that
#: short behaviours never pay for a hand-over, short enough that a cancel, a call or the next
#: behaviours wait at most a few ms (plus the interpreter's switch interval for the GIL, when
#: the behaviour holds it).
HANDOVER_S = 0.005


class Run:
    """One run of behaviours on the command thread."""

    __slots__ = ("todo", "handed", "started", "thread", "native")

    def __init__(self, todo: collections.deque) -> None:
        # What the run has left to do: its thread and, once it lost the role, the pool take
        # from it (each job taken once: a deque's popleft is atomic).
        self.todo = todo
        self.handed = False  # the watchdog gave the command role away: stop at the next end
        self.started = 0  # behaviours begun in the run: the watchdog sees one that lasts
        self.thread = threading.get_ident()  # whose CPU time the watchdog reads
        self.native = threading.get_native_id()  # and whose state


class Watchdog:
    """Hands the command role over when a run on the command thread lasts (see the module doc)."""

    def __init__(self, hand_over: Callable[[Run], None]) -> None:
        self.hand_over = hand_over
        self._lock = threading.Lock()
        self._current: Run | None = None
        self._begun = 0  # runs begun so far: the watchdog parks once a tick saw none begin
        self._parked = True
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, todo: collections.deque) -> Run:
        """The holder of the command role starts a run of ``todo``."""
        run = Run(todo)
        with self._lock:
            self._current = run
            self._begun += 1
            if self._parked:
                self._parked = False
                self._wake.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="rebeam-boc-watchdog", daemon=True)
            self._thread.start()
        return run

    def end(self, run: Run) -> bool:
        """The run is over; False if the command role was handed to another thread during it."""
        with self._lock:
            if self._current is run:
                self._current = None
            return not run.handed

    def _watch(self) -> None:
        seen, started, cpu, begun = None, -1, 0.0, -1
        while True:
            self._wake.wait()
            slept = time.monotonic()
            time.sleep(HANDOVER_S)
            late = time.monotonic() - slept - HANDOVER_S  # how long the GIL took to come
            with self._lock:
                run = self._current
                if run is None:
                    seen = None
                    if self._begun == begun:  # a whole tick with no run: sleep until the next
                        self._parked = True
                        self._wake.clear()
                    begun = self._begun
                    continue
                now = run.started
            if run is not seen or now != started:
                seen, started, cpu = run, now, _cpu_time(run.thread)
                continue
            # Not `>=`: an unknown CPU time (infinite, so inf - inf is NaN) counts as busy.
            busy = not (_cpu_time(run.thread) - cpu < HANDOVER_S / 2)
            if not busy and (late >= HANDOVER_S / 2 or _runnable(run.native)):
                continue  # waiting for a core: watched on, from the same sighting
            with self._lock:
                if self._current is not run or run.started != started:
                    continue  # it ended meanwhile
                run.handed, self._current = True, None
            seen = None
            try:
                self.hand_over(run)
            except Exception:
                traceback.print_exc()  # the watchdog must go on watching


def _cpu_time(thread: int) -> float:
    """The CPU seconds a thread has used; infinite if unknown (then it counts as busy)."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread))
    except (OSError, AttributeError, OverflowError):
        return float("inf")


def _runnable(native: int) -> bool:
    """Whether the kernel has the thread running or ready to run (not asleep in a wait)."""
    try:
        with open(f"/proc/self/task/{native}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False  # unknown: counts as blocked
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] == b"R"
