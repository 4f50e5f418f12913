"""The core's conformance kit on a real Torque 6.1.3 and a real OpenPBS (brought up by ci/, as a normal
user: Torque's qsub refuses root and OpenPBS mishandles root jobs). Skipped with a reason elsewhere.

Both servers live on one machine with clashing command names, so each class points the backend at its
own commands (/opt/torque/bin, /opt/pbs/bin) through $CLUSTER_QSUB, $CLUSTER_QSTAT and $CLUSTER_QDEL.
"""

from __future__ import annotations

import os

import pytest

from cluster_core.testing.conformance import BackendConformance
from cluster_torque import dialect

COMMANDS = ("qsub", "qstat", "qdel")


def _use(monkeypatch, bindir: str, name: str) -> None:
    if os.geteuid() == 0:
        pytest.skip(f"{name} jobs must be submitted by a normal user (this test runs as root)")
    missing = [c for c in COMMANDS if not os.access(os.path.join(bindir, c), os.X_OK)]
    if missing:
        pytest.skip(f"{name} is not installed in {bindir} (missing {', '.join(missing)})")
    for c in COMMANDS:
        monkeypatch.setenv(f"CLUSTER_{c.upper()}", os.path.join(bindir, c))
    monkeypatch.setenv("CLUSTER_TORQUE_DIALECT", "torque" if name == "Torque" else "pbspro")
    dialect.reset()
    from cluster_core import plugins
    det = plugins.backend("torque").detect()
    if not det.available:
        pytest.skip(f"{name} is not running: {det.reason}")


@pytest.mark.torque
class TestTorqueConformance(BackendConformance):
    backend = "torque"
    timeout = 90.0
    time_limit_test = False  # walltime kills come every mom poll; measured in the real-server issue

    @pytest.fixture
    def backend_ready(self, cluster_config, monkeypatch):
        _use(monkeypatch, "/opt/torque/bin", "Torque")
        return True


@pytest.mark.openpbs
class TestOpenPBSConformance(BackendConformance):
    backend = "torque"
    timeout = 90.0
    time_limit_test = False

    @pytest.fixture
    def backend_ready(self, cluster_config, monkeypatch):
        _use(monkeypatch, "/opt/pbs/bin", "OpenPBS")
        return True
