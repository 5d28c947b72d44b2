"""API tests run without a governor: calls must not start one (library mode is off)."""

import pytest


@pytest.fixture(autouse=True)
def no_library_mode(monkeypatch):
    monkeypatch.setenv("REBEAM_LIBRARY", "0")
