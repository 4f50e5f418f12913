"""Fault scenarios a backend's tests run against its real scheduler, with the shims of
:mod:`cluster_core.testing.shims` in place: the same checks for every backend.

    with shims:                                   # flaky, hanging and answer-losing commands
        run = submit_under_faults(20, log, backend="mysched", name="flaky")
    run.assert_each_ran_once(submit_command="qsub")
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import attrs

# cluster_core's exports, from their modules (where they keep their types)
from cluster_core.errors import SubmitError
from cluster_core.job import submit, wait
from cluster_core.records import State

if TYPE_CHECKING:
    from cluster_core.job import Job
    from cluster_core.testing.shims import ShimDir


@attrs.define
class FaultRun:
    """What a run of submissions under faults gave: each Job (None where the submission was refused), the
    lines the jobs wrote, and the scheduler commands the shims counted."""

    jobs: list[Optional[Job]]
    lines: list[str]
    calls: collections.Counter[str]

    @property
    def submitted(self) -> list[Job]:
        return [j for j in self.jobs if j is not None]

    @property
    def refused(self) -> list[int]:
        return [i for i, j in enumerate(self.jobs) if j is None]

    def assert_each_ran_once(self, submit_command: str, min_submitted: Optional[int] = None) -> None:
        """Every accepted job ran exactly once and ended completed, no refused one ran, and the faults
        really happened (more submit calls than jobs)."""
        expected = [f"job{i}" for i, j in enumerate(self.jobs) if j is not None]
        assert sorted(self.lines) == sorted(expected), "a job ran twice, never, or after it was refused"
        least = len(self.jobs) * 3 // 4 if min_submitted is None else min_submitted
        assert len(self.submitted) >= least, f"only {len(self.submitted)} of {len(self.jobs)} submissions accepted"
        assert self.calls[submit_command] > len(self.submitted), "no submission failed: the shims did nothing"
        assert all(j.state is State.COMPLETED and j.exitcode == 0 for j in self.submitted)


def submit_under_faults(count: int, log: Path, shims: ShimDir, timeout: float = 600, **options: Any) -> FaultRun:
    """Submit ``count`` jobs that each append one line ``job<i>`` to ``log`` and wait for every accepted
    one (the shims must be active). A submission may be refused (a transient ``SubmitError`` after every
    retry), never duplicated; ``options`` go to every ``cc.submit`` (a ``name`` gets ``<i>`` appended)."""
    name = options.pop("name", None)
    jobs: list[Optional[Job]] = []
    for i in range(count):
        extra: dict[str, Any] = {"name": f"{name}{i}"} if name else {}
        try:
            jobs.append(submit(f"echo job{i} >> '{log}'", **options, **extra))
        except SubmitError as exc:
            assert exc.transient, f"submission {i} refused for a reason that is not transient: {exc}"
            jobs.append(None)
    submitted = [j for j in jobs if j is not None]
    assert wait(submitted, timeout=timeout) is True
    lines = log.read_text().split() if log.exists() else []
    return FaultRun(jobs, lines, shims.calls())
