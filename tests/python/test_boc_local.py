"""A worker's own queue of behaviours per cown (rebeam.boc._local): arrival order on shared
cowns, and each behaviour handed on exactly once."""

from __future__ import annotations

import threading

import pytest

from rebeam.boc import _local


def job(b: int, cowns: list[int], result: int, gated: bool = False) -> tuple:
    # The shape of RunBehaviour.job: behaviour, cowns (its result among them), result, ...
    return (b, [*cowns, result], result, [], [], b"", [], None, gated)


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(_local, "_held", {})


def test_behaviours_sharing_a_cown_run_in_arrival_order_and_others_at_once():
    a, b, c, d = job(1, [10], 101), job(2, [10, 11], 102), job(3, [12], 103), job(4, [101], 104)
    assert _local.arrive(a)
    assert not _local.arrive(b)
    assert _local.arrive(c)
    assert not _local.arrive(d), "chained on a's result cown"
    assert sorted(_local.release(a)) == sorted([b, d])
    assert _local.release(b) == [] and _local.release(c) == [] and _local.release(d) == []
    assert _local._held == {}


class InterleavingLock:
    """A lock that runs `after` once, right after it is let go: another thread's turn."""

    def __init__(self) -> None:
        self.real, self.after = threading.Lock(), None

    def __enter__(self) -> None:
        self.real.acquire()

    def __exit__(self, *exc: object) -> None:
        self.real.release()
        after, self.after = self.after, None
        if after is not None:
            after()


def test_a_behaviour_handed_on_while_it_arrives_is_handed_on_once(monkeypatch):
    lock = InterleavingLock()
    monkeypatch.setattr(_local, "_lock", lock)
    a, b = job(1, [10], 101), job(2, [10], 102)
    assert _local.arrive(a)
    handed: list = []
    lock.after = lambda: handed.extend(_local.release(a))  # a ends just as b arrives
    assert not _local.arrive(b), "the release hands it on; arrive must not too"
    assert handed == [b]


class Sent:
    """A RunBehaviour command as the runner reads it."""

    def __init__(self, job: tuple) -> None:
        self.behaviour, self.job = job[0], job


def test_a_runner_runs_a_chain_on_the_thread_that_let_it_go_and_hands_the_rest_to_the_pool():
    submitted: list = []
    runner = _local.Runner(conn=None, submit=submitted.append)
    ran: list = []
    runner._admit = lambda b: None
    runner._run = lambda conn, b, *rest: ran.append((b, threading.get_ident()))
    a, b, c = job(1, [10], 101), job(2, [10], 102), job(3, [10, 11], 103)
    d, e = job(4, [11], 104), job(5, [101], 105)  # d behind c on 11; e on a's result cown
    for j in (a, b, c, d, e):
        runner.arrive(Sent(j))
    assert len(submitted) == 1, "only a may run when it arrives"
    submitted.pop()()
    # a's release lets b and e go: one runs next on this thread, the other goes to the pool.
    assert len(submitted) == 1
    submitted.pop()()
    assert sorted(b for b, _ in ran) == [1, 2, 3, 4, 5]
    order = [b for b, _ in ran]
    assert order.index(1) < order.index(2) < order.index(3) < order.index(4), "out of order on shared cowns"
    assert order.index(1) < order.index(5)
    assert len({t for _, t in ran}) == 1 and not submitted and _local._held == {}
