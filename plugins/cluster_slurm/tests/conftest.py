"""Shared fixtures: captured output, and whether a real Slurm controller answers.

Tests marked ``@pytest.mark.slurm`` need ci/slurm/up.sh to have run. Without a controller they skip with
one line of reason, except under CI=true, where they fail: CI must have started Slurm.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixture_text():
    """Read a file under tests/fixtures/."""
    return lambda name: (FIXTURES / name).read_text()


@pytest.fixture(scope="session")
def manifest() -> dict:
    """Scenario name -> job id of the captured fixtures (written by capture_fixtures.py)."""
    return json.loads((FIXTURES / "manifest.json").read_text())


@functools.lru_cache(maxsize=1)
def slurm_status() -> tuple[bool, str]:
    """(up, reason): up when sbatch exists and the controller answers `scontrol ping` within 5 s."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return False, "Slurm commands are not installed (run ci/slurm/up.sh as root)"
    try:
        proc = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return False, "scontrol ping did not answer within 5 s"
    if proc.returncode != 0 or "UP" not in proc.stdout:
        return False, f"no Slurm controller answers: {(proc.stdout + proc.stderr).strip()[:200]}"
    return True, "slurmctld is up"


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config, items):
    wanted = [item for item in items if item.get_closest_marker("slurm")]
    if not wanted or _ci():
        return
    up, reason = slurm_status()
    if not up:
        for item in wanted:
            item.add_marker(pytest.mark.skip(reason=f"Slurm not running: {reason}"))


def pytest_runtest_setup(item):
    if item.get_closest_marker("slurm") and _ci():
        up, reason = slurm_status()
        if not up:
            pytest.fail(f"CI=true but Slurm is not up: {reason}", pytrace=False)


@pytest.fixture
def slurm(tmp_path, monkeypatch, cluster_config):
    """The slurm backend through the core's entry-point dispatch, for a test running in tmp_path."""
    from cluster_core import plugins
    monkeypatch.chdir(tmp_path)
    return plugins.backend("slurm")
