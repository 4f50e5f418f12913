"""Shared fixtures: captured output, and whether a real Slurm controller answers.

Tests marked ``@pytest.mark.slurm`` need ci/slurm/up.sh to have run. Without a controller they skip with
one line of reason, except under CI=true, where they fail: CI must have started Slurm.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_core.testing.gate import SchedulerGate

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixture_text():
    """Read a file under tests/fixtures/."""
    return lambda name: (FIXTURES / name).read_text()


@pytest.fixture(scope="session")
def manifest() -> dict:
    """Scenario name -> job id of the captured fixtures (written by capture_fixtures.py)."""
    return json.loads((FIXTURES / "manifest.json").read_text())


GATE = SchedulerGate("slurm")  # up when the backend detects itself (scontrol ping answers)


def pytest_collection_modifyitems(config, items):
    GATE.modify_items(items)


def pytest_runtest_setup(item):
    GATE.setup(item)


@pytest.fixture
def slurm(tmp_path, monkeypatch, cluster_config):
    """The slurm backend through the core's entry-point dispatch, for a test running in tmp_path."""
    from cluster_core import plugins
    monkeypatch.chdir(tmp_path)
    return plugins.backend("slurm")
