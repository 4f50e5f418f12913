"""Fixtures for the local backend's tests: an isolated state dir and runner per test, real processes."""

from __future__ import annotations

import pytest

from local_helpers import Local, gone, marked_processes, until


@pytest.fixture
def local(tmp_path, monkeypatch, cluster_config):
    """A fresh state dir and limits (2 cores) for the test; the runner is shut down afterwards and no
    process of any job may be left."""
    state = tmp_path / "state"
    monkeypatch.setenv("CLUSTER_LOCAL_DIR", str(state))
    monkeypatch.setenv("CLUSTER_LOCAL_THREADS", "2")
    monkeypatch.setenv("CLUSTER_LOCAL_KILL_GRACE", "2")
    for name in ("CLUSTER_LOCAL_MEMORY", "CLUSTER_LOCAL_IDLE", "CLUSTER_LOCAL_JOB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    helper = Local(tmp_path)
    helper.state_dir = state
    yield helper
    import cluster_local
    cluster_local.shutdown_runner(state)
    assert cluster_local.runner_status(state) is None
    left = [p for p in marked_processes(state) if not gone(p.pid)]
    assert not left, f"job processes left behind: {left}"


@pytest.fixture
def runner_pid(local):
    def get() -> int:
        import cluster_local
        status = until(lambda: cluster_local.runner_status(local.state_dir), 10, "the runner to answer")
        return status["pid"]
    return get

