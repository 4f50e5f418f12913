"""Checkpointing on the real Slurm: a job saves itself before its time limit, or when preempted, and Slurm
requeues it under the same id until it is done; ``get()`` returns the final result.

ci/slurm/up.sh sets what this needs: AuthInfo=cred_expire=10 (a requeued job starts again 10 s later, not
120), PreemptType=preempt/partition_prio with PreemptMode=REQUEUE and a partition "urgent" that preempts
the others (a preempted job gets SIGTERM, and KillWait=2 s to save itself). The work is counted in steps
of real time: no test sleeps in place of a wait (the waits are the library's, and ``wait_for`` on a real
file).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

import cluster_core as cc
from cluster_core import State
from cluster_core.testing.conformance import wait_for

pytestmark = pytest.mark.slurm


@pytest.fixture
def on_slurm(slurm, monkeypatch):
    monkeypatch.setenv("CLUSTER_BACKEND", "slurm")
    return slurm


def steps(total: int, progress: str = "") -> dict:
    """``total`` seconds of work, one step a second, saved as it goes: each run notes where it started."""
    state = cc.checkpoint_state({"done": 0, "runs": []})
    state["runs"].append({"requeues": cc.requeues(), "from": state["done"],
                          "restarts": int(os.environ.get("SLURM_RESTART_COUNT", "0"))})
    while state["done"] < total:
        time.sleep(1)
        state["done"] += 1
        if progress:
            with open(progress, "w") as fh:
                fh.write(str(state["done"]))
    return state


def runs_in_accounting(job_id: str) -> list[str]:
    """The states of every run of a job that sacct keeps (-D: a requeued job's earlier runs too)."""
    out = subprocess.run(["sacct", "-D", "-X", "-n", "-P", "-o", "State", "-j", job_id], capture_output=True,
                         text=True, check=True).stdout
    return [line for line in out.split() if line]


def test_a_job_with_a_one_minute_limit_finishes_three_minutes_of_work_through_requeues(on_slurm, tmp_path):
    # Slurm sends the warning at its first time-limit check (every 30 s) with at most checkpoint_before + 30 s
    # left, so with a 1-minute limit a run works 29 to 59 s; asked 1 s ahead, each run works the longest
    job = cc.submit(steps, (180,), time=1, checkpoint_before=1, max_requeue=10, name="ckpt-limit")
    state = job.get(timeout=900)
    # every step done once: each run went on from the last one's saved state
    assert state["done"] == 180
    froms = [run["from"] for run in state["runs"]]
    assert froms == sorted(froms) and len(set(froms)) == len(froms) and froms[0] == 0
    # no run can do more than its minute: three minutes took three runs at least, two requeues
    requeues = len(state["runs"]) - 1
    assert 2 <= requeues <= 10
    assert [run["requeues"] for run in state["runs"]] == list(range(len(state["runs"])))
    # requeued in place: one id, Slurm's own restart count matches, and accounting kept every run
    assert [run["restarts"] for run in state["runs"]] == list(range(len(state["runs"])))
    assert job.state is State.COMPLETED and job.exitcode == 0
    assert runs_in_accounting(job.id)[-1] == "COMPLETED"
    assert runs_in_accounting(job.id).count("REQUEUED") == requeues
    err = job.stderr or ""
    assert err.count("checkpoint saved") == requeues  # each run's output kept (--open-mode=append)
    assert not job._job_files.checkpoint.exists()  # spent once the function returned


def test_a_preempted_job_saves_itself_resumes_and_finishes(on_slurm, tmp_path):
    progress = tmp_path / "progress"
    cores = int(subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True,
                               check=True).stdout.split()[0])
    low = cc.submit(steps, (60, str(progress)), cores=cores, max_requeue=2, name="ckpt-low")
    wait_for(lambda: progress.exists() and int(progress.read_text() or 0) >= 5, 120, "the low job to work 5 s")
    # the node is full: a job of the urgent partition preempts the low one (at Slurm's next check, within
    # about 30 s), which Slurm requeues
    urgent = cc.submit("echo urgent", cores=cores, partition="urgent", name="ckpt-urgent")
    assert urgent.wait(timeout=300)
    state = low.get(timeout=600)
    assert state["done"] == 60
    assert len(state["runs"]) == 2, state["runs"]
    first, second = state["runs"]
    assert first["from"] == 0 and second["from"] >= 5  # resumed, not started over
    assert second["requeues"] == 1 and second["restarts"] == 1
    assert runs_in_accounting(low.id) == ["PREEMPTED", "COMPLETED"]
    assert low.state is State.COMPLETED
    assert "SIGTERM: checkpoint saved (1 of at most 2)" in (low.stderr or "")
