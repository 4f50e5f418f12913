import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy_backend import ToyBackend  # noqa: E402

from cluster_core.testing.gate import SchedulerGate  # noqa: E402

SLURM = SchedulerGate("slurm")  # core tests that also run against the real Slurm (marked slurm)


def pytest_configure(config):
    config.addinivalue_line("markers", "plugins: needs an installed backend plugin (cluster-local and the like); "
                                       "the rest of the core's tests run with only the toy backend "
                                       "(pytest -m 'not plugins')")


def pytest_collection_modifyitems(config, items):
    SLURM.modify_items(items)
    for item in items:  # the real local backend's fixtures need cluster-local
        if PLUGIN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.plugins)


# The fixtures that run the real local backend: ``local`` here, and test_cli's ``env`` (the `cluster` command
# in a subprocess on the local backend, also used by test_cli_habits).
PLUGIN_FIXTURES = {"local", "env"}


def pytest_runtest_setup(item):
    SLURM.setup(item)


@pytest.fixture
def fresh_session():
    """A new empty core session for the test (plugins, trackers, warnings, caches), as a new process has."""
    from cluster_core import session
    with session.fresh() as state:
        yield state


def _registered(backend, monkeypatch, tmp_path):
    """Register a toy backend in a fresh session, choose it for the test, run in tmp_path; undo everything
    afterwards (the session with its trackers and registration goes with the test)."""
    from cluster_core import plugins, session
    with session.fresh():
        plugins.register(backend, name=backend.name)
        monkeypatch.setenv("CLUSTER_BACKEND", backend.name)
        monkeypatch.chdir(tmp_path)
        yield backend
        for proc in backend.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


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
    cluster_local = pytest.importorskip("cluster_local", reason="the local backend (cluster-local) is not installed")
    from cluster_core import session
    state = tmp_path / "state"
    monkeypatch.setenv("CLUSTER_LOCAL_DIR", str(state))
    monkeypatch.setenv("CLUSTER_LOCAL_THREADS", "2")
    monkeypatch.setenv("CLUSTER_BACKEND", "local")
    monkeypatch.chdir(tmp_path)
    with session.fresh():
        yield state
        cluster_local.shutdown_runner(state)
