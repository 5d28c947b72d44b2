"""rebeam.groups and rebeam.executor without a governor: what they check before anything is
sent, and how they fit the concurrent.futures contract."""

from __future__ import annotations

import concurrent.futures as cf
import inspect

import pytest

import rebeam
from rebeam import GenPy, Group, _rebeam
from rebeam.executor import _chunks, _picklable, _run_chunk


class Member(GenPy):
    pass


def test_a_group_checks_its_template_size_name_and_balance():
    with pytest.raises(TypeError, match="GenPy instance"):
        Group(Member, 2, "pool")
    for size in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="size"):
            Group(Member(), size, "pool")
    with pytest.raises(ValueError, match="name"):
        Group(Member(), 2, "")
    with pytest.raises(ValueError, match="balance must be one of round_robin, least_busy, not 'fastest'"):
        Group(Member(), 2, "pool", balance="fastest")
    with pytest.raises(ValueError, match="Group: max_restarts"):
        Group(Member(), 2, "pool", max_restarts=-1)
    assert (rebeam.ROUND_ROBIN, rebeam.LEAST_BUSY) == _rebeam.BALANCES


def test_a_groups_members_are_positions_of_one_tree_without_names_of_their_own():
    named = Member()
    named.name = "solo"
    spec = Group(named, 3, "pool", balance=rebeam.LEAST_BUSY)._as_child()
    assert spec["kind"] == "tree" and spec["tree"]["strategy"] == rebeam.ONE_FOR_ONE
    children = spec["tree"]["children"]
    assert [c["group"]["position"] for c in children] == [0, 1, 2]
    assert {(c["name"], c["group"]["name"], c["group"]["size"], c["group"]["balance"]) for c in children} == {
        (None, "pool", 3, "least_busy")
    }


def test_executor_is_a_concurrent_futures_executor_with_process_pools_signatures():
    assert issubclass(rebeam.Executor, cf.Executor)
    assert issubclass(rebeam.WorkerCrashed, rebeam.RebeamError)
    for method in ("submit", "map", "shutdown"):
        ours = inspect.signature(getattr(rebeam.Executor, method)).parameters
        theirs = inspect.signature(getattr(cf.ProcessPoolExecutor, method)).parameters
        assert list(theirs)[: len(ours)] == list(ours), method


def test_executor_needs_the_runtime():
    with pytest.raises(rebeam.NotRunning):
        rebeam.Executor()


def test_map_chunks_keep_order_and_the_last_chunk_is_short():
    chunks = list(_chunks(3, zip(range(7), range(10, 17), strict=True)))
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [x for c in chunks for x in _run_chunk(lambda a, b: a + b, c)] == [a + a + 10 for a in range(7)]


def test_an_exception_that_cannot_travel_is_replaced_by_one_that_names_it():
    class Local(Exception):
        def __reduce__(self):
            raise TypeError("no")

    out = _picklable(Local("boom"))
    assert isinstance(out, rebeam.RebeamError) and "Local: boom" in str(out)
    err = KeyError("k")
    assert _picklable(err) is err
