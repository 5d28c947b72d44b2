"""Strategies and restart kinds: the native module parses them into rebeam-core's enums, and
a bad spelling is a ValueError that names it and the valid ones, raised where it was written."""

from __future__ import annotations

import pytest

import rebeam
from rebeam import _rebeam


def test_a_bad_strategy_names_itself_and_the_valid_ones():
    with pytest.raises(ValueError) as e:
        rebeam.Supervisor(modules=[], strategy="one_for_some")
    assert "one_for_some" in str(e.value)
    for valid in _rebeam.STRATEGIES:
        assert valid in str(e.value)


def test_a_bad_restart_kind_names_itself_and_the_valid_ones():
    with pytest.raises(ValueError) as e:
        rebeam.child(print, restart="sometimes")
    assert "sometimes" in str(e.value)
    for valid in _rebeam.RESTARTS:
        assert valid in str(e.value)


@pytest.mark.parametrize("value", _rebeam.STRATEGIES)
def test_every_strategy_spelling_parses(value):
    assert _rebeam.check_strategy(value) == value


@pytest.mark.parametrize("value", _rebeam.RESTARTS)
def test_every_restart_spelling_parses(value):
    assert _rebeam.check_restart(value) == value


def test_spellings_are_exact():
    # The wire carries the enum; Python's spelling is the one and only way to name it.
    with pytest.raises(ValueError):
        _rebeam.check_strategy("ONE_FOR_ONE")
    with pytest.raises(ValueError):
        _rebeam.check_restart(" permanent")
