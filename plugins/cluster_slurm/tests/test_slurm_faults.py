"""Faults injected into the real Slurm: commands that fail, lose their answer or hang, a controller that is
stopped mid-wait, accounting that is down. Nothing may be lost, run twice, reported wrong, or hang.

The shims (cluster_core.testing.shims) reproduce the failures Slurm users see ("Socket timed out on
send/recv operation", an sbatch whose reply is lost after the job was created); the outage tests stop
the real slurmctld or slurmdbd and start it again.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import cluster_core as cc
from cluster_core import State
from cluster_core.queue import tracker
from cluster_core.testing.conformance import wait_for
from cluster_core.testing.faults import submit_under_faults
from cluster_core.testing.shims import ShimDir

pytestmark = pytest.mark.slurm

TIMED_OUT = "slurm_load_jobs error: Socket timed out on send/recv operation"
SBATCH_TIMED_OUT = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"


@pytest.fixture
def on_slurm(slurm, monkeypatch):
    monkeypatch.setenv("CLUSTER_BACKEND", "slurm")
    return slurm


def comments_in_squeue() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%k"], capture_output=True, text=True, check=True)
    return [c for c in out.stdout.split() if c.startswith("cluster-core:")]


def test_lost_answer_while_squeue_fails_is_not_submitted_twice(on_slurm, tmp_path):
    """sbatch creates the job and loses its answer, and the squeue that should tell whether the job exists
    fails too: its empty answer is no "no", so the job is asked about again, found, and not duplicated."""
    ran = tmp_path / "ran"
    with ShimDir(tmp_path / "shims").lose_answer("sbatch", SBATCH_TIMED_OUT) \
            .fail_first("squeue", 1, TIMED_OUT) as shims:
        job = cc.submit(f"echo once >> {ran}", mem="100M")
        calls = shims.calls()
    assert calls["sbatch"] == 1 and calls["squeue"] >= 2
    assert job.wait(timeout=120) is True
    assert ran.read_text() == "once\n"
    mine = [c for c in comments_in_squeue() if c == _comment(job.id)]
    assert len(mine) == 1


def test_squeue_that_never_answers_gives_up_without_a_second_copy(on_slurm, tmp_path, monkeypatch):
    from cluster_slurm import calls as slurm_calls
    monkeypatch.setattr(slurm_calls, "CHECK_PATIENCE", 3.0)
    with ShimDir(tmp_path / "shims").lose_answer("sbatch", SBATCH_TIMED_OUT) \
            .fail("squeue", stderr=TIMED_OUT) as shims:
        with pytest.raises(cc.SubmitError, match="not submitted again") as err:
            cc.submit("true", mem="100M")
        assert shims.calls()["sbatch"] == 1
    token = str(err.value).split("grep ")[-1]
    assert comments_in_squeue().count(token) == 1  # the one job that was created, findable by the message


#: What sbatch prints, and then retries by itself for two minutes, when a job would take slurmctld past its
#: MaxJobCount (captured on 22.05 with 49 held arrays of 1001 tasks under MaxJobCount=50000).
QUEUE_FULL = "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying"


def test_map_past_the_queue_limit_keeps_what_went_through_and_says_why(on_slurm, tmp_path, monkeypatch):
    """A map of two arrays (MaxArraySize chunks) whose second sbatch meets a full queue: the first array
    stays submitted and comes back as Tasks; the error names MaxJobCount at once instead of sbatch being
    run again for minutes."""
    from cluster_slurm import calls as slurm_calls
    monkeypatch.setattr(slurm_calls, "SUBMIT_TIMEOUT", 2.0)
    limit = on_slurm.max_array_size()
    with ShimDir(tmp_path / "shims").real_first("sbatch", 1, QUEUE_FULL, hang_seconds=30) as shims:
        with pytest.raises(cc.PartialSubmitError, match="MaxJobCount") as err:
            cc.map(abs, range(limit + 5), mem="100M", hold=True)
        assert shims.calls()["sbatch"] == 2  # not run again: another try would wait as long
    try:
        exc = err.value
        assert len(exc.tasks) == limit and [t.index for t in exc.tasks] == list(range(limit))
        assert f"{limit} of {limit + 5} tasks were submitted" in str(exc)
        first = exc.tasks[0].job
        assert exc.submitted == [first.id]
        assert cc.Job.from_id(first.id).id == first.id  # recorded: another shell finds it
        assert first.state is State.HELD  # really in the queue
    finally:
        cc.cancel(err.value.tasks)


@pytest.fixture
def full_queue(on_slurm, tmp_path):
    """The real controller filled with held arrays until one more array of MaxArraySize tasks would pass
    its MaxJobCount (a single job still fits); they are cancelled afterwards."""
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    max_jobs = int(re.search(r"MaxJobCount\s*=\s*(\d+)", config).group(1))
    size = on_slurm.max_array_size()
    script = tmp_path / "held.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    ids = []
    try:
        queued = _queued()
        while queued + size < max_jobs - 1:
            out = subprocess.run(["sbatch", "--parsable", "-H", f"--array=0-{size - 1}", "--mem=10M",
                                  "-o", "/dev/null", str(script)], capture_output=True, text=True, check=True)
            ids.append(out.stdout.strip())
            queued += size
        yield size
    finally:
        if ids:
            subprocess.run(["scancel", *ids], check=False)
            # cancelled jobs count against MaxJobCount until slurmctld purges them (MinJobAge): the next
            # test must find the room it had
            wait_for(lambda: _queued() + size < max_jobs - 1, 300, "the cancelled arrays to be purged")


def _queued() -> int:
    return len(subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i"], capture_output=True,
                              text=True).stdout.split())


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["commands", "rest"])
def test_a_full_queue_is_an_error_naming_max_job_count(full_queue, transport, cluster_config, monkeypatch, tmp_path):
    """Submitting past MaxJobCount on the real controller: an error that says so, soon, with no job
    created; on the commands transport sbatch is not run again (it retries by itself for 2 minutes)."""
    from cluster_slurm import calls as slurm_calls
    from cluster_slurm import rest
    monkeypatch.setattr(slurm_calls, "SUBMIT_TIMEOUT", 3.0)
    monkeypatch.setattr(rest, "BACKOFF", 0.1)
    if transport == "rest":
        cluster_config.write_text("[slurm]\ntransport = rest\n")
        found = rest.detect(rest.client())
        if not found.available:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"slurmrestd must run in CI (ci/slurm/up.sh): {found.reason}")
            pytest.skip(found.reason)
    with ShimDir(tmp_path / "shims").count("sbatch") as shims:
        with pytest.raises(cc.SubmitError, match="MaxJobCount") as err:
            cc.map(abs, range(full_queue), mem="10M", hold=True)
        assert shims.calls()["sbatch"] == (1 if transport == "commands" else 0)  # tried once, not again
    assert not isinstance(err.value, cc.PartialSubmitError)  # nothing went through
    small = cc.submit("true", mem="10M", hold=True)  # a job that fits still does
    assert small.state is State.HELD
    small.cancel()


@pytest.mark.slow
def test_flaky_and_hanging_commands_lose_nothing_and_run_nothing_twice(on_slurm, tmp_path, monkeypatch):
    """30% of sbatch/squeue/sacct calls fail with Slurm's own timeout message (a third of those after
    sbatch created the job), 10% hang past the command timeout: every job runs exactly once and ends
    completed, and the wait neither gives up nor hangs."""
    from cluster_slurm import calls as slurm_calls
    monkeypatch.setattr(slurm_calls, "QUERY_TIMEOUT", 3.0)
    monkeypatch.setattr(slurm_calls, "SUBMIT_TIMEOUT", 3.0)
    monkeypatch.setattr(slurm_calls, "SUBMIT_BACKOFF", 0.2)
    log = tmp_path / "ran.log"
    shims = ShimDir(tmp_path / "shims")
    shims.flaky("sbatch", 20, SBATCH_TIMED_OUT, lose_percent=10, hang_percent=10, hang_seconds=5, seed=1)
    for command in ("squeue", "sacct"):
        shims.flaky(command, 30, TIMED_OUT, hang_percent=10, hang_seconds=5, seed=2)
    with shims:
        run = submit_under_faults(20, log, shims, mem="100M", name="flaky")
    run.assert_each_ran_once(submit_command="sbatch")


def _comment(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%k"], capture_output=True, text=True)
    return out.stdout.strip()


# --- daemons stopped and started again --------------------------------------------------------------

def _stop(pidfile: str) -> None:
    pid = int(Path(pidfile).read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"{pidfile}: the daemon ignored SIGTERM"
        time.sleep(0.1)


def _start(daemon: str, pidfile: str) -> None:
    subprocess.run([daemon], check=True, timeout=60)
    deadline = time.monotonic() + 60
    while True:
        ok = subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout
        if daemon.endswith("slurmdbd") or " is UP" in ok:
            break
        assert time.monotonic() < deadline, f"{daemon} did not come back"
        time.sleep(0.2)


@pytest.fixture
def controller(on_slurm):
    """Stops and restarts the real slurmctld; whatever happens, it runs again after the test."""
    stopped = []

    def stop():
        _stop("/run/slurmctld.pid")
        stopped.append(True)

    def start():
        if stopped:
            _start("/usr/sbin/slurmctld", "/run/slurmctld.pid")
            stopped.clear()
    yield stop, start
    start()


@pytest.mark.slow
def test_wait_rides_out_a_controller_outage(controller, caplog, tmp_path):
    stop, start = controller
    started = tmp_path / "started"
    job = cc.submit(f"touch {started}; sleep 20; echo survived", mem="100M")
    wait_for(started.exists, 120, "the job to start")
    stop()
    restart = threading.Timer(60, start)  # the outage: a minute, as a controller restart on a busy site
    restart.start()
    try:
        with caplog.at_level(logging.WARNING, logger="cluster_core"):
            assert job.get(timeout=400) == "survived\n"
    finally:
        restart.cancel()
        start()
    assert "cannot be asked about the jobs" in caplog.text and "answers again" in caplog.text


@pytest.mark.slow
def test_wait_gives_up_after_the_outage_limit(controller):
    stop, start = controller
    cc.set_option("core.outage_limit", "5")
    job = cc.submit("sleep 30", mem="100M")
    stop()
    with pytest.raises(cc.SchedulerError, match="core.outage_limit=5"):
        job.wait(timeout=300)
    start()
    cc.cancel([job])


@pytest.fixture
def accounting_down(on_slurm):
    _stop("/run/slurmdbd.pid")
    yield
    _start("/usr/sbin/slurmdbd", "/run/slurmdbd.pid")


@pytest.mark.slow
def test_accounting_down_cancelled_pending_jobs_are_cancelled_and_asked_once(accounting_down, caplog):
    """With slurmdbd down, jobs cancelled while pending leave squeue (MinJobAge) without a trace in
    accounting or an exit file: they are reported cancelled (the core knows it asked), leave the poll set,
    and sacct's failure is warned about once, not at every poll."""
    jobs = [cc.submit("sleep 300", mem="100M", hold=True) for _ in range(4)]
    cc.cancel(jobs)
    ids = {j.id for j in jobs}
    wait_for(lambda: not ids & set(subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True,
                                                  text=True).stdout.split()), 60, "squeue to forget the jobs")
    track = tracker("slurm")
    with caplog.at_level(logging.WARNING, logger="cluster_core"):
        cc.wait(jobs, timeout=300)
        assert {j.state for j in jobs} == {State.CANCELLED}
        before = track.queries
        for job in jobs:
            assert job.state is State.CANCELLED
            with pytest.raises(cc.JobFailedError, match="cancelled"):
                job.get()
        assert track.queries == before  # nothing left to ask about
    assert caplog.text.count("sacct cannot tell") <= 1
