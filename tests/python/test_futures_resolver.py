"""acall/acast/call_async over a stand-in connection: where an answer goes, what cancelling
forgets, and how little a call in flight holds for the garbage collector."""

import asyncio
import gc
import pickle
import queue

import pytest

from rebeam import _runtime, futures
from rebeam.errors import ShuttingDown


class Conn:
    """The native connection's started-call surface: answers are queued by the test."""

    def __init__(self):
        self.answers: queue.Queue = queue.Queue()
        self.started: list = []
        self.forgotten: list = []
        self._tags = iter(range(1, 1 << 30))

    def call_start(self, target, subject, data, buffers, sender, timeout):
        tag = next(self._tags)
        self.started.append((tag, target, subject, pickle.loads(data), timeout))
        return tag

    def cast_start(self, target, subject, data, buffers, sender):
        tag = next(self._tags)
        self.started.append((tag, target, subject, pickle.loads(data), None))
        return tag

    def next_completion(self, timeout):
        while True:
            got = self.answers.get()
            if got is None:
                raise ShuttingDown("closed")
            if got[0] not in self.forgotten:  # as the native one: none for a forgotten tag
                return got

    def forget(self, tag):
        self.forgotten.append(tag)
        return True

    def reply(self, tag, value):
        self.answers.put((tag, ("ok", pickle.dumps(value), [])))


@pytest.fixture
def conn(monkeypatch):
    c = Conn()
    monkeypatch.setattr(_runtime, "connection", lambda: c)
    yield c
    c.answers.put(None)  # ends its resolver's thread


def test_an_acall_returns_its_answer_and_an_acast_its_delivery(conn):
    async def main():
        call = asyncio.ensure_future(futures.acall("echo", "echo", 7, timeout=3))
        cast = asyncio.ensure_future(futures.acast("echo", "note", "x"))
        await asyncio.sleep(0.01)
        (call_tag, *sent), (cast_tag, *_) = conn.started
        assert sent == ["echo", "echo", 7, 3.0]
        conn.reply(call_tag, 8)
        conn.answers.put((cast_tag, True))
        return await call, await cast

    assert asyncio.run(main()) == (("ok", 8), True)


def test_an_answer_before_the_call_is_tracked_is_kept_for_it(conn):
    # The drain thread can take an answer before `track` ran: it waits in `_early`.
    conn.answers.put((99, ("ok", pickle.dumps("early"), [])))
    resolver = futures._resolver_for(conn)
    while 99 not in resolver._early:
        pass
    assert futures._future(99, resolver, futures.call_result).result(timeout=3) == ("ok", "early")


def test_cancelling_the_awaiting_task_forgets_the_call_and_drops_a_late_answer(conn):
    async def main():
        task = asyncio.ensure_future(futures.acall("echo", "echo", 1))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        tag = conn.started[0][0]
        conn.reply(tag, "late")
        return tag

    tag = asyncio.run(main())
    assert conn.forgotten == [tag]
    resolver = futures._resolver_for(conn)
    conn.answers.put((12345, "after"))  # once this one is in, the late one was handled
    while 12345 not in resolver._early:
        pass
    assert tag not in resolver._waiting and tag not in resolver._early


def test_a_call_in_flight_holds_few_objects_for_the_collector(conn):
    # Each call in flight used to hold two closures with their cells, a done callback and an
    # inner coroutine: with thousands in flight, the collector's passes over them cost a third
    # of the caller's time. Counted against the same tasks awaiting a bare future.
    n = 2000

    async def bare(fut):
        return await fut

    async def tracked_objects_per_task(start):
        gc.collect()
        before = len(gc.get_objects())
        tasks = [asyncio.ensure_future(start()) for _ in range(n)]
        await asyncio.sleep(0.01)  # every task is at its await
        per_task = (len(gc.get_objects()) - before) / n
        assert not any(t.done() for t in tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        del tasks
        await asyncio.sleep(0.01)  # the cancelled tasks' last callbacks have run: all is garbage
        return per_task

    async def main():
        loop = asyncio.get_running_loop()
        floor = await tracked_objects_per_task(lambda: bare(loop.create_future()))
        ours = await tracked_objects_per_task(lambda: futures.acall("echo", "echo", 1))
        return ours - floor

    gc.disable()  # a collection mid-count would move objects, not free them: count them all
    try:
        extra = asyncio.run(main())
    finally:
        gc.enable()
    assert extra < 4, f"{extra} more tracked objects per call than a bare future's"


def test_call_then_hands_its_outcome_to_its_function_on_the_answering_thread(conn):
    import threading

    got, done = [], threading.Event()

    def then(ok, value):
        got.append((ok, value, threading.current_thread().name))
        done.set()

    futures.call_then("echo", "echo", [1, 2], 5, then)
    futures.call_then("echo", "echo", None, 5, then)
    (first, *sent), (second, *_) = conn.started
    assert sent == ["echo", "echo", [1, 2], 5.0]
    conn.reply(first, [3])
    assert done.wait(3)
    done.clear()
    down = ConnectionError("gone")  # an answer that is an exception is what `call` would raise
    conn.answers.put((second, down))
    assert done.wait(3)
    assert got == [(True, ("ok", [3]), "rebeam-futures"), (False, down, "rebeam-futures")]
