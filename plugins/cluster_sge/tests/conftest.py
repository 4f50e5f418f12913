"""Shared fixtures, and the gate for tests that need the real Grid Engine cell.

Tests marked ``@pytest.mark.sge`` need ci/sge/up.sh to have run. Without a qmaster they skip with one
line of reason, except under CI=true, where they fail: CI must have started Grid Engine.
"""

from __future__ import annotations

import pytest

from cluster_core.testing.gate import SchedulerGate

GATE = SchedulerGate("sge")  # up when the backend detects itself: Grid Engine's qstat, a qmaster answering


def pytest_collection_modifyitems(config, items):
    GATE.modify_items(items)


def pytest_runtest_setup(item):
    GATE.setup(item)


@pytest.fixture
def sge(tmp_path, monkeypatch, cluster_config):
    """The sge backend through the core's entry-point dispatch, for a test running in tmp_path."""
    import cluster_core
    monkeypatch.chdir(tmp_path)
    return cluster_core.get_backend("sge")
