"""Checkpointing on the local backend: the runner warns a job (SIGUSR1) ``checkpoint_before`` seconds
ahead of its time limit, the job saves itself, and the runner puts it back in the queue under the same id.

Real runner, real processes, real signals: what the Slurm tests check on a real cluster, in seconds.
"""

from __future__ import annotations

import time

import pytest

import cluster_core as cc
from cluster_core import State, plugins
from local_helpers import until


def steps(total: int) -> dict:
    """``total`` steps of 50 ms, saved as they go; each run notes where it started."""
    state = cc.checkpoint_state({"done": 0, "starts": []})
    state["starts"].append((cc.requeues(), state["done"]))
    while state["done"] < total:
        time.sleep(0.05)
        state["done"] += 1
    return state


class Counter(cc.Checkpointable):
    def __init__(self) -> None:
        self.done = 0
        self.runs = 0

    def __call__(self, total: int) -> tuple[int, int]:
        self.runs += 1
        while self.done < total:
            time.sleep(0.05)
            self.done += 1
        return self.done, self.runs


def forever() -> None:
    while True:
        time.sleep(0.05)


def test_a_job_longer_than_its_limit_finishes_through_requeues_under_one_id(local):
    # 6 s of work, 3 s allowed, warned 1 s ahead: each run works about 2 s
    job = cc.submit(steps, (120,), backend="local", time="3s", checkpoint_before=1, max_requeue=6)
    job_id = job.id
    state = job.get(timeout=120)
    assert state["done"] == 120
    starts = state["starts"]
    assert len(starts) >= 3, starts  # no run can do more than 3 s of the 6
    assert [r for r, _ in starts] == list(range(len(starts)))
    froms = [f for _, f in starts]
    assert froms[0] == 0 and froms == sorted(set(froms))  # each went on from the last save
    assert job.id == job_id and job.state is State.COMPLETED and job.exitcode == 0
    # every run's output kept, in order
    err = job.stderr or ""
    assert err.count("SIGUSR1: checkpoint saved") == len(starts) - 1
    assert err.index("requeue 1 of") < err.index("resumed from the checkpoint of run 1")
    assert not job._job_files.checkpoint.exists()


def test_a_checkpointable_object_is_checkpointed_by_default(local):
    # 1.5 s of work, about 1 s a run
    job = cc.submit(Counter(), (30,), backend="local", time="2s", checkpoint_before=1)
    assert job.options["max_requeue"] == 3
    done, runs = job.get(timeout=60)
    assert done == 30 and 2 <= runs <= 4


def test_past_max_requeue_the_job_times_out(local):
    job = cc.submit(steps, (10_000,), backend="local", time="2s", checkpoint_before=1, max_requeue=1)
    assert job.wait(timeout=60) is False
    assert job.state is State.TIMEOUT
    err = job.stderr or ""
    assert "requeue 1 of at most 1" in err and "requeued 1 times already (max_requeue=1)" in err


def test_a_cancelled_checkpointing_job_is_cancelled_not_requeued(local):
    job = cc.submit(steps, (10_000,), backend="local", time="1h", max_requeue=3)
    until(lambda: job.state is State.RUNNING, 30, "the job to run")
    job.cancel()
    assert job.wait(timeout=60) is False
    assert job.state is State.CANCELLED
    # it saved itself on the SIGTERM, but a cancel is final: the queue holds nothing of it
    assert [q.state for q in plugins.backend("local").parse_queue([job.id])] == [State.CANCELLED]


def test_map_tasks_checkpoint_one_by_one(local):
    tasks = cc.map(steps, [40, 60], backend="local", time="2s", checkpoint_before=1, max_requeue=4)
    results = cc.get(tasks, timeout=120)
    assert [r["done"] for r in results] == [40, 60]
    assert all(len(r["starts"]) >= 2 for r in results)


@pytest.mark.parametrize("keywords", [{"max_requeue": 2}, {}])
def test_a_function_without_a_state_runs_to_its_limit(local, keywords):
    job = cc.submit(forever, backend="local", time="2s", checkpoint_before=1, **keywords)
    assert job.wait(timeout=60) is False
    assert job.state is State.TIMEOUT
    if keywords:
        assert "SIGUSR1: not saving a checkpoint: nothing to save" in (job.stderr or "")
