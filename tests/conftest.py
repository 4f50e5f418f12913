import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy_backend import ToyBackend  # noqa: E402

from cluster_core.testing.gate import SchedulerGate  # noqa: E402

SLURM = SchedulerGate("slurm")  # core tests that also run against the real Slurm (marked slurm)


def pytest_collection_modifyitems(config, items):
    SLURM.modify_items(items)


def pytest_runtest_setup(item):
    SLURM.setup(item)


def _registered(backend, monkeypatch, tmp_path):
    """Register a toy backend, choose it for the test, run in tmp_path; undo everything afterwards."""
    from cluster_core import plugins, queue
    plugins.register(backend, name=backend.name)
    monkeypatch.setenv("CLUSTER_BACKEND", backend.name)
    monkeypatch.chdir(tmp_path)
    yield backend
    for proc in backend.procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    plugins.unregister(backend.name)
    queue.reset_trackers(backend.name)


@pytest.fixture
def toy(cluster_config, tmp_path, monkeypatch):
    """A registered toy backend without arrays, chosen for the test, job files in tmp_path."""
    yield from _registered(ToyBackend(), monkeypatch, tmp_path)


@pytest.fixture
def toy_arrays(cluster_config, tmp_path, monkeypatch):
    """A toy backend with native arrays (at most 4 tasks per submission)."""
    yield from _registered(ToyBackend("toyarr", arrays=True, max_array=4), monkeypatch, tmp_path)


@pytest.fixture
def local(tmp_path, monkeypatch, cluster_config):
    """The real local backend with its own state dir (2 cores), chosen for the test, run in tmp_path;
    its runner is shut down afterwards. Yields the state dir."""
    state = tmp_path / "state"
    monkeypatch.setenv("CLUSTER_LOCAL_DIR", str(state))
    monkeypatch.setenv("CLUSTER_LOCAL_THREADS", "2")
    monkeypatch.setenv("CLUSTER_BACKEND", "local")
    monkeypatch.chdir(tmp_path)
    yield state
    import cluster_local
    from cluster_core.queue import reset_trackers
    cluster_local.shutdown_runner(state)
    reset_trackers("local")
