"""Runs of `async def` handlers on the worker's loop (`rebeam._aio`) and an actor's
`max_concurrency`, without a governor: how a run ends, how a cancel reaches it before and
after it started, and what the coroutine sees as its own (actor, delivery, cancelled())."""

from __future__ import annotations

import asyncio
import queue

import pytest

import rebeam
from rebeam import GenPy, _aio, _runtime, receive
from rebeam.actor import check_concurrency


def run_to_end(coro_fn, run=None, pid=None, before=None):
    """Submits ``coro_fn()`` as ``run``; returns what ``done`` was called with."""
    ended: queue.SimpleQueue = queue.SimpleQueue()
    run = run or _aio.Run(7, gated=False)
    if before:
        before(run)
    _aio.submit(pid or _runtime.ProcessID(1, "a"), run, coro_fn(), lambda r, e, v: ended.put((r, e, v)))
    return ended.get(timeout=10)


def test_a_run_ends_with_what_its_coroutine_returns_or_raises():
    async def ok():
        await asyncio.sleep(0)
        return 42

    async def fails():
        await asyncio.sleep(0)
        raise KeyError("k")

    run, e, value = run_to_end(ok)
    assert (e, value) == (None, 42) and run.delivery == 7
    _, e, value = run_to_end(fails)
    assert isinstance(e, KeyError) and value is None


def test_a_coroutine_runs_as_its_actor_and_its_own_run():
    pid = _runtime.ProcessID(3, "me")
    run = _aio.Run(9, gated=False)

    async def who():
        await asyncio.sleep(0)
        return rebeam.self_pid(), _runtime.current_run.get(), rebeam.cancelled()

    _, e, value = run_to_end(who, run, pid)
    assert e is None and value == (pid, run, False)
    assert _runtime.current_run.get() is None  # nothing leaks to the submitting thread


def test_a_cancel_before_the_first_step_means_the_coroutine_never_runs():
    ran = []

    async def body():
        ran.append(True)

    def cancel_first(run):
        run.cancelled = True
        _aio.cancel(run)

    _, e, _ = run_to_end(body, before=cancel_first)
    assert isinstance(e, asyncio.CancelledError) and ran == []


def test_a_cancel_lands_at_the_next_await_and_cancelled_turns_true_in_that_run_only():
    started: queue.SimpleQueue = queue.SimpleQueue()
    ended: queue.SimpleQueue = queue.SimpleQueue()
    begun: list = []

    async def waits(label):
        started.put(label)
        begun.append(label)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            ended.put((label, "cancelled", rebeam.cancelled()))
            raise
        return label

    async def quick():
        while not begun:
            await asyncio.sleep(0.001)
        return "quick", rebeam.cancelled()

    target, other = _aio.Run(1, gated=True), _aio.Run(2, gated=False)
    results: queue.SimpleQueue = queue.SimpleQueue()
    pid = _runtime.ProcessID(1)
    _aio.submit(pid, target, waits("target"), lambda r, e, v: results.put((r.delivery, type(e).__name__, v)))
    _aio.submit(pid, other, quick(), lambda r, e, v: results.put((r.delivery, type(e).__name__, v)))
    assert started.get(timeout=10) == "target"
    target.cancelled = True
    _aio.cancel(target)
    got = sorted([results.get(timeout=10), results.get(timeout=10)])
    assert got == [(1, "CancelledError", None), (2, "NoneType", ("quick", False))]
    assert ended.get(timeout=10) == ("target", "cancelled", True)


def test_a_cancel_after_the_run_ended_does_nothing():
    async def ok():
        return 1

    run, e, value = run_to_end(ok)
    run.cancelled = True
    _aio.cancel(run)  # must not raise on the loop (a finished task)
    _, e, value = run_to_end(ok)
    assert (e, value) == (None, 1)


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "2", None])
def test_max_concurrency_must_be_a_whole_number_of_at_least_one(bad):
    with pytest.raises(ValueError, match=r"max_concurrency=.* must be a whole number ≥ 1"):
        type("Bad", (GenPy,), {"max_concurrency": bad})
    with pytest.raises(ValueError, match="actor x: max_concurrency"):
        check_concurrency(bad, "actor x")


def test_async_methods_are_the_async_def_handlers():
    class Mixed(GenPy):
        max_concurrency = 8

        @receive("a")
        async def a(self, source, m): ...

        @receive("b")
        def b(self, source, m): ...

        @receive()
        async def rest(self, source, m): ...

    class Sub(Mixed):
        @receive("b")
        async def b2(self, source, m): ...

    assert GenPy.max_concurrency == 1 and Mixed.max_concurrency == 8 and Sub.max_concurrency == 8
    assert Mixed._rebeam_async_methods() == {"a", "rest"}
    assert Sub._rebeam_async_methods() == {"a", "b2", "rest"}
