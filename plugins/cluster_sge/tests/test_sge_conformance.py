"""The core's conformance kit against the real Grid Engine cell that ci/sge/up.sh starts."""

from __future__ import annotations

import pytest

from cluster_core.testing.conformance import BackendConformance

pytestmark = pytest.mark.sge


class TestSGEConformance(BackendConformance):
    backend = "sge"
    timeout = 60.0
    # execd enforces h_rt within a second or two of the limit: a short one keeps the test short
    time_limit = "5s"
    time_limit_sleep = 60
