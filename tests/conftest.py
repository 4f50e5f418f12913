import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy_backend import ToyBackend  # noqa: E402


@pytest.fixture
def toy(cluster_config, tmp_path, monkeypatch):
    """A registered toy backend chosen for the test, job files in tmp_path; unregistered afterwards."""
    from cluster_core import plugins, queue
    backend = ToyBackend()
    plugins.register(backend, name="toy")
    monkeypatch.setenv("CLUSTER_BACKEND", "toy")
    monkeypatch.chdir(tmp_path)
    yield backend
    for proc in backend.procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    plugins.unregister("toy")
    queue.reset_trackers("toy")


@pytest.fixture
def toy_arrays(cluster_config, tmp_path, monkeypatch):
    """A toy backend with native arrays (at most 4 tasks per submission)."""
    from cluster_core import plugins, queue
    backend = ToyBackend("toyarr", arrays=True, max_array=4)
    plugins.register(backend, name="toyarr")
    monkeypatch.setenv("CLUSTER_BACKEND", "toyarr")
    monkeypatch.chdir(tmp_path)
    yield backend
    for proc in backend.procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    plugins.unregister("toyarr")
    queue.reset_trackers("toyarr")
