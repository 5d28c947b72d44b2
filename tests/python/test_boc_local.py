"""A worker's own queue of behaviours per cown (rebeam.boc._local): arrival order on shared
cowns, and each behaviour handed on exactly once."""

from __future__ import annotations

import threading

import pytest

from rebeam.boc import _local


def job(b: int, cowns: list[int], result: int) -> tuple:
    # The shape of RunBehaviour.job: behaviour, cowns (its result among them), result, ...
    return (b, [*cowns, result], result, [], [], b"", [], None)


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
