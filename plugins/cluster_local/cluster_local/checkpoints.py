"""Checkpointing jobs on the local runner: the warning ahead of a time limit, and the requeue in place.

A job submitted with ``max_requeue`` carries ``checkpoint_before`` in its options: the supervisor sends it
SIGUSR1 that many seconds before its deadline (as Slurm's ``--signal=B:USR1``), the job's script passes it
on to the function, which saves itself and leaves ``requeue`` in its exit file. The runner then puts the
job back in the queue under the same id (as ``scontrol requeue``), and its next run appends to its output.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, Optional

from .scheduler import Job
from .store import PENDING, RUNNING

if TYPE_CHECKING:
    from .journal import Journal
    from .scheduler import Scheduler

log = logging.getLogger("cluster_core.local.runner")

#: The reason a job waits again after it saved a checkpoint.
REQUEUED = "requeued after saving a checkpoint"


def warning_time(row: Any, deadline: float) -> Optional[float]:
    """When to warn a checkpointing job of its time limit (monotonic), None for any other job."""
    try:
        before = json.loads(row["options"] or "{}").get("checkpoint_before")
    except ValueError:
        return None
    return None if before is None else max(time.monotonic(), deadline - float(before))


class Requeues:
    """The jobs put back in the queue after saving a checkpoint, until they start again."""

    def __init__(self) -> None:
        self.waiting: set[int] = set()

    def requeue(self, job_id: int, journal: Journal, sched: Scheduler) -> None:
        log.info("job %d saved a checkpoint: requeued", job_id)
        journal.write("UPDATE jobs SET state=?, reason=?, pid=NULL, pid_ctime=NULL, start_time=NULL "
                      "WHERE id=? AND state=?", (PENDING, REQUEUED, job_id, RUNNING))
        sched.ended(job_id, None)
        self.waiting.add(job_id)
        for row in journal.queue_rows("id = ?", (job_id,)):
            sched.queue(Job.from_row(row))

    def starts_again(self, job_id: int, row: Any) -> bool:
        """True when this start is a requeued job's next run (requeued in this runner's pass, whose write
        is not in the store yet, or by an earlier runner): its output goes on after the earlier runs'."""
        again = job_id in self.waiting or row["reason"] == REQUEUED
        self.waiting.discard(job_id)
        return again
