"""The core's conformance kit, run against the local backend (a real runner per test)."""

from __future__ import annotations

import pytest

import cluster_local
from cluster_core.testing.conformance import BackendConformance
from local_helpers import gone, marked_processes


class TestLocalConformance(BackendConformance):
    backend = "local"
    timeout = 30.0
    time_limit = "2s"
    time_limit_sleep = 60

    @pytest.fixture
    def backend_ready(self, tmp_path, monkeypatch, cluster_config):
        state = tmp_path / "state"
        monkeypatch.setenv("CLUSTER_LOCAL_DIR", str(state))
        monkeypatch.setenv("CLUSTER_LOCAL_THREADS", "2")
        monkeypatch.setenv("CLUSTER_LOCAL_KILL_GRACE", "2")
        yield True  # the kit forgets tracked ids after each test (ids restart at 1 in a fresh state dir)
        cluster_local.shutdown_runner(state)
        assert not [p for p in marked_processes(state) if not gone(p.pid)]
