"""Behaviours run on a worker's command thread (rebeam.boc._local.Runner.run_here) and the
watchdog that hands the command role over when they last (rebeam.boc._handover)."""

from __future__ import annotations

import collections
import threading
import time

import pytest

from rebeam.boc import _cowns, _handover, _local

#: How long a test waits for what must happen before it fails (never a timing assert).
PATIENCE_S = 30


def job(b: int, cowns: list[int], result: int, gated: bool = False) -> tuple:
    # The shape of RunBehaviour.job: behaviour, cowns (its result among them), result, ...
    return (b, [*cowns, result], result, [], [], b"", [], None, gated)


class Sent:
    """A RunBehaviour command as the runner reads it."""

    def __init__(self, job: tuple) -> None:
        self.behaviour, self.job = job[0], job


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(_local, "_held", {})


def runner(hand_over=lambda: None) -> tuple[_local.Runner, list, list, dict]:
    submitted: list = []
    flushes: list = []
    r = _local.Runner(conn=None, submit=submitted.append, flush=lambda: flushes.append(1), hand_over=hand_over)
    # What a cancel looks behaviours up in (_cowns._tracked), this runner's own.
    admitted: dict = {}
    r._admit = lambda b: admitted.__setitem__(b, _cowns._Tracked())
    return r, submitted, flushes, admitted


def test_arrive_all_queues_as_arrive_does_one_by_one():
    jobs = [job(1, [10], 101), job(2, [10, 11], 102), job(3, [12], 103), job(4, [101], 104)]
    assert _local.arrive_all(jobs) == [jobs[0], jobs[2]]
    assert sorted(_local.release(jobs[0])) == sorted([jobs[1], jobs[3]])


def test_a_batch_and_what_it_lets_go_run_on_this_thread_in_order_with_one_flush():
    r, submitted, flushes, admitted = runner()
    ran: list = []
    r._run = lambda conn, b, *rest, **kw: ran.append((b, threading.get_ident(), kw))
    a, b, c = job(1, [10], 101), job(2, [10], 102, gated=True), job(3, [10, 11], 103)
    d, e = job(4, [11], 104, gated=True), job(5, [101], 105)
    ready = r.take([Sent(j) for j in (a, b, c, d, e)])
    assert list(admitted) == [2, 4], "a gated behaviour is admitted for its cancel, in order; no other"
    assert not any(t.cancelled or t.thread is not None for t in admitted.values())
    assert ready == [a]
    assert r.run_here(ready), "a short run keeps the command role"
    order = [b for b, _, _ in ran]
    assert sorted(order) == [1, 2, 3, 4, 5]
    assert order.index(1) < order.index(2) < order.index(3) < order.index(4), "out of order on shared cowns"
    assert order.index(1) < order.index(5)
    assert {t for _, t, _ in ran} == {threading.get_ident()} and not submitted
    assert all(kw == {"wake": False} for _, _, kw in ran), "the run flushes its own done's"
    assert flushes == [1], "the run's done's go in one write"
    assert _local._held == {}


def test_a_run_that_lasts_hands_the_role_over_and_its_rest_to_the_pool():
    # The first behaviour waits for the second, which comes after it in the same run: only a
    # hand-over of what the run has left lets it go on.
    handed = threading.Event()
    flushes: list = []
    threads: list = []

    def submit(fn):
        threads.append(threading.Thread(target=fn))
        threads[-1].start()

    r = _local.Runner(conn=None, submit=submit, flush=lambda: flushes.append(1), hand_over=handed.set)
    r._admit = lambda b: None
    ran: list = []
    second = threading.Event()

    def run(conn, b, *rest, **kw):
        if b == 1:
            assert second.wait(PATIENCE_S), "the behaviour after it never ran"
        ran.append((b, threading.get_ident()))
        if b == 2:
            second.set()

    r._run = run
    a, b, c = job(1, [10], 101), job(2, [11], 102), job(3, [10], 103)  # c waits for a
    ready = r.take([Sent(j) for j in (a, b, c)])
    assert ready == [a, b]
    assert not r.run_here(ready), "the role went to another thread"
    assert handed.is_set()
    for t in list(threads):
        t.join(PATIENCE_S)
    assert sorted(b for b, _ in ran) == [1, 2, 3], "each ran once"
    here = threading.get_ident()
    assert [b for b, t in ran if t == here] == [1], "only the one that lasted ran on the thread that lost the role"
    assert _local._held == {}
    assert len(flushes) >= 2, "the hand-over flushed what was held, and so did the run's end"


def test_a_run_that_raises_keeps_the_role_and_the_rest_still_runs(capsys):
    r, submitted, _, _ = runner()
    ran: list = []

    def run(conn, b, *rest, **kw):
        ran.append(b)
        if b == 1:
            raise RuntimeError("boom")

    r._run = run
    ready = r.take([Sent(job(1, [10], 101)), Sent(job(2, [11], 102))])
    assert r.run_here(ready)
    assert "boom" in capsys.readouterr().err
    assert len(submitted) == 1
    submitted.pop()()
    assert ran == [1, 2]
    assert _local._held == {10: collections.deque(), 101: collections.deque()}, "only the one that raised holds on"


def test_an_empty_batch_begins_no_run():
    r, _, flushes, _ = runner()
    assert r.run_here([]) and flushes == [] and r.watchdog._thread is None


def test_the_watchdog_marks_only_the_run_it_saw_twice_and_parks_when_idle():
    calls: list = []
    w = _handover.Watchdog(calls.append)
    run = w.begin(collections.deque())
    deadline = time.monotonic() + PATIENCE_S
    while not run.handed:
        assert time.monotonic() < deadline, "a run that never ends was never handed over"
        time.sleep(_handover.HANDOVER_S)
    while not calls:
        assert time.monotonic() < deadline
        time.sleep(_handover.HANDOVER_S)
    assert calls == [run] and not w.end(run), "end says the role was handed"
    while not w._parked:
        assert time.monotonic() < deadline, "an idle watchdog never parked"
        time.sleep(_handover.HANDOVER_S)
    again = w.begin(collections.deque())
    assert not w._parked, "a run wakes the parked watchdog"
    w.end(again)


def test_a_run_whose_thread_cpu_time_is_unknown_counts_as_busy_and_is_handed(monkeypatch):
    # Unknown CPU time reads as infinite; were it "not busy", a thread the kernel shows
    # runnable would be taken for one waiting for a core and keep the role for ever.
    monkeypatch.setattr(_handover, "_cpu_time", lambda thread: float("inf"))
    monkeypatch.setattr(_handover, "_runnable", lambda native: True)
    calls: list = []
    w = _handover.Watchdog(calls.append)
    run = w.begin(collections.deque())
    deadline = time.monotonic() + PATIENCE_S
    while not calls:
        assert time.monotonic() < deadline, "a run of unknown CPU time was never handed over"
        time.sleep(_handover.HANDOVER_S)
    assert calls == [run] and not w.end(run)


def test_a_run_that_ended_is_never_handed_afterwards():
    calls: list = []
    w = _handover.Watchdog(calls.append)
    run = w.begin(collections.deque())
    kept = w.end(run)
    deadline = time.monotonic() + PATIENCE_S
    while not w._parked:
        assert time.monotonic() < deadline
        time.sleep(_handover.HANDOVER_S)
    assert len(calls) == (0 if kept else 1), "a run that ended was handed over after it"


SEEN: list = []


def record(c) -> None:
    from rebeam import _runtime

    SEEN.append((c._id, set(_runtime._local.acquired), _runtime._local.host is not None))


class DoneConnection:
    def __init__(self) -> None:
        self.done: list = []

    def behaviour_done(self, b, held, wake) -> None:
        self.done.append((b, wake))


def test_a_run_sets_each_behaviours_state_and_resets_the_thread_once_at_its_end(monkeypatch):
    import pickle

    from rebeam import _runtime

    monkeypatch.setattr(_runtime, "cown_store", {10: 1, 11: 2})
    monkeypatch.setattr(_runtime._local, "host", "before")
    SEEN.clear()
    r, _, flushes, _ = runner()
    r.conn = conn = DoneConnection()
    a = (1, [10, 101], 101, [], [], pickle.dumps((record, [10], []), 5), [], None, False)
    b = (2, [11, 102], 102, [], [], pickle.dumps((record, [11], []), 5), [], None, False)
    assert r.run_here(r.take([Sent(a), Sent(b)]))
    assert SEEN == [(10, {10, 101}, True), (11, {11, 102}, True)], "each behaviour holds only its own cowns"
    assert conn.done == [(1, False), (2, False)] and flushes == [1]
    assert _runtime._local.acquired is None and _runtime._local.lost == () and _runtime._local.notices is None
    assert _runtime._local.host == "before", "the thread runs for what it ran for before the run"
