"""Every test run keeps its job records away from the user's own (~/.local/state/cluster-core/jobs)."""

import pytest

# the kit's fixtures (cluster_config); opt-in, as any backend's own test suite does it
pytest_plugins = ["cluster_core.testing"]


@pytest.fixture(autouse=True, scope="session")
def _private_job_records(tmp_path_factory):
    import os

    from cluster_core.registry import ENV_REGISTRY
    old = os.environ.get(ENV_REGISTRY)
    os.environ[ENV_REGISTRY] = str(tmp_path_factory.mktemp("job-records"))
    yield
    if old is None:
        os.environ.pop(ENV_REGISTRY, None)
    else:
        os.environ[ENV_REGISTRY] = old
