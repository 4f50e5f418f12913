"""The opt-in pytest plugin of cluster-core (`-p cluster_core.testing`): fixtures that isolate the config."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def cluster_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty config file (and job-record directory) for the test; returns the config's path."""
    from cluster_core import config, registry
    path = tmp_path / "cluster-config.ini"
    monkeypatch.setenv(config.ENV_CONFIG, str(path))
    monkeypatch.setenv(registry.ENV_REGISTRY, str(tmp_path / "job-records"))
    monkeypatch.delenv("CLUSTER_BACKEND", raising=False)
    return path
