"""The core's conformance kit on the real Slurm once more, with slurm.transport=rest: every submission,
poll and cancel goes to slurmrestd. sbatch, squeue, sacct and scancel are counted through shims on PATH
(inherited by the CLI and second processes the kit starts), and no test may have called them."""

from __future__ import annotations

import pytest

from cluster_core.testing.conformance import BackendConformance
from cluster_core.testing.shims import ShimDir
from cluster_slurm import rest

pytestmark = pytest.mark.slurm

COMMANDS = ("sbatch", "squeue", "sacct", "scancel")


class TestSlurmRestConformance(BackendConformance):
    """As TestSlurmConformance (test_slurm_real.py), its wall-time test off for the same reason."""

    backend = "slurm"
    timeout = 180.0  # the node is shared with the other Slurm tests
    time_limit_test = False

    @pytest.fixture
    def backend_ready(self, cluster_config, tmp_path_factory, monkeypatch, request):
        monkeypatch.delenv("SLURM_JWT", raising=False)
        cluster_config.write_text("[slurm]\ntransport = rest\n")
        rest._found.clear()
        assert rest.use_rest(), "slurm.transport=rest did not take"
        with ShimDir(tmp_path_factory.mktemp("shims")).count(*COMMANDS) as shims:
            yield True
            used = {c: n for c, n in shims.calls().items() if c in COMMANDS}
        # slurmrestd 22.05 refuses --signal=B:..., which a checkpointing job needs: it goes through sbatch
        allowed = {"sbatch": 2} if "checkpointing" in request.node.name else {}
        assert used == allowed, f"the REST transport ran Slurm's commands: {used}"
