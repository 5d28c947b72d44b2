"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from test_nodes import Nodes


@pytest.fixture
def nodes(tmp_path):
    """Nodes of one system on loopback, each a real `rebeam --node` run, all stopped at the end."""
    n = Nodes(tmp_path)
    yield n
    n.stop()
