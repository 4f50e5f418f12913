"""The core's Job, map and Queue on the real Slurm: what a user sees, and how many scheduler calls it costs."""

from __future__ import annotations

import subprocess
import time

import pytest

import cluster_core as cc
from cluster_core import State
from cluster_core.queue import tracker
from cluster_core.testing.conformance import wait_for
from cluster_core.testing.shims import ShimDir

pytestmark = pytest.mark.slurm

ACCOUNTING_OFF = "Slurm accounting storage is disabled"


@pytest.fixture
def on_slurm(slurm, monkeypatch):
    monkeypatch.setenv("CLUSTER_BACKEND", "slurm")
    return slurm


def test_map_of_50_is_one_sbatch_and_polling_does_not_grow_with_n(on_slurm, tmp_path):
    with ShimDir(tmp_path / "shims").count("sbatch", "squeue", "sacct") as shims:
        tasks = cc.map(lambda x: x * x, range(50), mem="100M")
        assert shims.calls()["sbatch"] == 1
        track = tracker("slurm")
        before = track.queries
        assert cc.get(tasks, timeout=240) == [x * x for x in range(50)]
        polls = track.queries - before
        calls = shims.calls()
    assert {t.id for t in tasks} == {f"{tasks[0].id.split('_')[0]}_{i}" for i in range(50)}
    # each poll is one squeue and at most one sacct, for all 50 tasks together
    assert calls["squeue"] <= polls and calls["sacct"] <= polls
    assert polls < 50


def test_waiting_on_50_jobs_costs_calls_per_poll_not_per_job(on_slurm, tmp_path):
    jobs = [cc.submit(f"exit {i % 2}", mem="100M") for i in range(50)]
    with ShimDir(tmp_path / "shims").count("squeue", "sacct") as shims:
        track = tracker("slurm")
        before = track.queries
        assert cc.wait(jobs, timeout=240) is False
        polls = track.queries - before
        calls = shims.calls()
    assert [j.exitcode for j in jobs] == [i % 2 for i in range(50)]
    assert calls["squeue"] <= polls and calls["sacct"] <= polls and polls < 50


def test_job_gone_from_squeue_without_accounting_is_settled_by_its_exit_file(on_slurm, tmp_path):
    job = cc.submit("echo done; exit 3")
    job_id = job.id

    def gone_from_squeue():
        out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%i"], capture_output=True,
                             text=True).stdout
        return not out.strip()
    wait_for(gone_from_squeue, 60, "the job to leave squeue (MinJobAge)", interval=0.5)
    # first poll only now, and sacct answers as a Slurm without accounting does
    with ShimDir(tmp_path / "shims").fail("sacct", stderr=ACCOUNTING_OFF, returncode=1) as shims:
        assert job.wait(timeout=60) is False
        assert shims.calls()["sacct"] >= 1
    assert job.state is State.FAILED and job.exitcode == 3
    assert job.stdout == "done\n" and job.record.reason == "from the job's exit file"


def test_function_job_with_closure_and_sacct_path(on_slurm):
    base = {"k": 10}
    assert cc.submit(lambda d: d["k"] + base["k"], ({"k": 5},)).get(timeout=60) == 15


def test_transient_socket_timeout_on_submit_is_retried(on_slurm, tmp_path):
    real = subprocess.run(["which", "sbatch"], capture_output=True, text=True).stdout.strip()
    shims = ShimDir(tmp_path / "shims")
    flag = tmp_path / "failed-once"
    (shims.dir / "sbatch").write_text(
        "#!/bin/sh\n"
        f"echo sbatch >> '{shims.log}'\n"
        f"if [ ! -e '{flag}' ]; then touch '{flag}'\n"
        "  echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv operation' >&2\n"
        "  exit 1\nfi\n"
        f"exec '{real}' \"$@\"\n")
    (shims.dir / "sbatch").chmod(0o755)
    with shims:
        job = cc.submit("echo survived")
    assert shims.calls()["sbatch"] == 2
    assert job.get(timeout=60) == "survived\n"


def test_permanent_refusal_is_not_retried(on_slurm, tmp_path):
    with ShimDir(tmp_path / "shims").count("sbatch") as shims:
        with pytest.raises(cc.SubmitError) as err:
            cc.submit("true", partition="nosuch")
        assert shims.calls()["sbatch"] == 1
    assert err.value.keyword == "partition" and "Invalid partition" in str(err.value)
    assert not list((tmp_path / "cluster_jobs").glob("*.exit"))


def test_memory_kill_is_reported_out_of_memory(on_slurm):
    job = cc.submit("python3 -c 'import time; b = bytearray(400 * 2**20); b[::4096] = b\"x\" * len(b[::4096]); "
                    "time.sleep(20)'", mem="50M")
    job.wait(timeout=120)
    assert job.state is State.OUT_OF_MEMORY
    assert "exceeded memory limit" in job.stderr
    with pytest.raises(cc.JobFailedError, match="out_of_memory"):
        job.get()


def test_queue_lists_the_users_other_jobs(on_slurm, tmp_path):
    foreign = subprocess.run(["sbatch", "--parsable", "--mem=100M", f"--output={tmp_path}/f.out",
                              "--wrap", "sleep 60"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        mine = cc.submit("sleep 60", mem="100M")
        q = cc.Queue(user="root", backend="slurm").update(force=True)
        assert foreign in q and mine.id in q
        assert q[foreign].user == "root"
    finally:
        subprocess.run(["scancel", foreign, mine.id])


@pytest.mark.slow
def test_time_limit_exceeded_is_timeout(on_slurm):
    start = time.monotonic()
    job = cc.submit("sleep 300", time="1m", mem="100M")
    job.wait(timeout=240)
    assert job.state is State.TIMEOUT
    assert 55 < time.monotonic() - start < 240
    # sacct keeps "0:0" for a timed-out job: the exit code is the job's own record of the SIGTERM
    assert job.exitcode == 143


def test_submission_that_reached_the_controller_is_not_duplicated(on_slurm, tmp_path):
    """sbatch creates the job but its answer is lost (a timeout on the reply): the retry finds the job by
    its comment instead of submitting a second copy."""
    real = subprocess.run(["which", "sbatch"], capture_output=True, text=True).stdout.strip()
    shims = ShimDir(tmp_path / "shims")
    (shims.dir / "sbatch").write_text(
        "#!/bin/sh\n"
        f"echo sbatch >> '{shims.log}'\n"
        f"'{real}' \"$@\" > /dev/null\n"
        "echo 'sbatch: error: Batch job submission failed: Socket timed out on send/recv operation' >&2\n"
        "exit 1\n")
    (shims.dir / "sbatch").chmod(0o755)
    with shims:
        job = cc.submit("echo once")
    assert shims.calls()["sbatch"] == 1
    assert job.get(timeout=60) == "once\n"
    comment = subprocess.run(["squeue", "-h", "-t", "all", "-j", job.id, "-o", "%k"], capture_output=True,
                             text=True).stdout.strip()
    twins = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%k"], capture_output=True, text=True).stdout
    assert comment.startswith("cluster-core:") and twins.split().count(comment) == 1
