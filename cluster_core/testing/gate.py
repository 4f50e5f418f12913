"""Tests that need a running scheduler: skip with one line of reason outside CI, fail under CI=true.

In a backend's conftest.py::

    from cluster_core.testing.gate import SchedulerGate

    GATE = SchedulerGate("slurm")          # tests marked @pytest.mark.slurm; probe: the backend's detect

    def pytest_collection_modifyitems(config, items):
        GATE.modify_items(items)

    def pytest_runtest_setup(item):
        GATE.setup(item)
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import pytest

Probe = Callable[[], "tuple[bool, str]"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


class SchedulerGate:
    """Runs the tests carrying ``marker`` only when ``probe`` says the scheduler is up (probed once)."""

    def __init__(self, marker: str, probe: Optional[Probe] = None, backend: Optional[str] = None) -> None:
        self.marker = marker
        self.backend = backend or marker
        self._probe = probe
        self._status: Optional[tuple[bool, str]] = None

    def status(self) -> tuple[bool, str]:
        if self._status is None:
            if self._probe is not None:
                self._status = self._probe()
            else:
                from cluster_core import plugins
                try:
                    det = plugins.backend(self.backend).detect()
                    self._status = (det.available, det.reason)
                except Exception as exc:  # not installed, or broken: the reason says which
                    self._status = (False, f"{type(exc).__name__}: {exc}")
        return self._status

    def _wanted(self, item: pytest.Item) -> bool:
        return item.get_closest_marker(self.marker) is not None

    def modify_items(self, items: Sequence[pytest.Item]) -> None:
        """Outside CI, mark the gated tests skipped when the scheduler is not up."""
        if in_ci() or not any(self._wanted(i) for i in items):
            return
        up, reason = self.status()
        if not up:
            skip = pytest.mark.skip(reason=f"{self.marker} not running: {reason}")
            for item in items:
                if self._wanted(item):
                    item.add_marker(skip)

    def setup(self, item: pytest.Item) -> None:
        """Under CI=true a gated test fails when the scheduler is not up: CI must have started it."""
        if in_ci() and self._wanted(item):
            up, reason = self.status()
            if not up:
                pytest.fail(f"CI=true but {self.marker} is not up: {reason}", pytrace=False)
