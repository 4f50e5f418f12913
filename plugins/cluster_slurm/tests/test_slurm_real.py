"""Against the real Slurm that ci/slurm/up.sh starts, through the core's entry-point dispatch.

Waits poll parse_queue with a deadline (never a fixed sleep). ci/slurm/up.sh sets MinJobAge=5,
DependencyParameters=kill_invalid_depend, a partition "second" limited to 1 hour, and accounting.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from cluster_core.errors import SubmitError
from cluster_core.options import check_arguments, directive_lines
from cluster_core.records import State
from cluster_core.testing.conformance import BackendConformance
from cluster_core.testing.shims import ShimDir

pytestmark = pytest.mark.slurm

TIMEOUT = 60.0


def write_script(path: Path, body: str, **keywords) -> tuple[Path, dict]:
    """A job script the way the core writes one: #SBATCH lines from render_options, quoted by the core."""
    from cluster_core import plugins
    be = plugins.backend("slurm")
    options = check_arguments({"outfile": str(path.with_suffix(".out")),
                               "errfile": str(path.with_suffix(".err")), **keywords})
    lines = ["#!/bin/bash", *directive_lines(be.render_options(options), be.info.directive_prefix,
                                               be.info.directive_escapes_backslash), body]
    path.write_text("\n".join(lines) + "\n")
    return path, options


def submit(be, tmp_path: Path, body: str, stem: str = "job", in_script: bool = True, **keywords) -> str:
    script, options = write_script(tmp_path / f"{stem}.sh", body, **keywords)
    if not in_script:  # a user's own script: no directives inside, words on the command line
        script.write_text(f"#!/bin/bash\n{body}\n")
    return be.submit(script, options, directives_in_script=in_script)


def wait_for(be, job_id: str, done=lambda job: job.state.finished, timeout: float = TIMEOUT,
             what: str = "the job to finish"):
    deadline = time.monotonic() + timeout
    while True:
        jobs = {j.id: j for j in be.parse_queue([job_id])}
        job = jobs.get(job_id)
        if job is not None and done(job):
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id}: timed out after {timeout:g} s waiting for {what}; last seen {job}")
        time.sleep(0.3)


def in_squeue(job_id: str) -> bool:
    proc = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%i"], capture_output=True,
                          text=True)
    return bool(proc.stdout.strip())


def test_detect(slurm):
    det = slurm.detect()
    assert det.available, det.reason
    assert "is UP" in det.reason


@pytest.mark.parametrize("code, state", [(0, State.COMPLETED), (3, State.FAILED)])
def test_exit_code_and_state(slurm, tmp_path, code, state):
    job_id = submit(slurm, tmp_path, f"echo out; echo err >&2; exit {code}", stem=f"exit{code}")
    job = wait_for(slurm, job_id)
    assert (job.state, job.exitcode) == (state, code)
    assert job.user and job.partition == "debug" and job.start_time and job.end_time
    assert (tmp_path / f"exit{code}.out").read_text() == "out\n"
    assert (tmp_path / f"exit{code}.err").read_text() == "err\n"


def test_cancel_running_and_pending(slurm, tmp_path):
    started = tmp_path / "started"
    running = submit(slurm, tmp_path, f"touch '{started}'; sleep 300", stem="running")
    pending = submit(slurm, tmp_path, "sleep 300", stem="pending", hold=True)
    wait_for(slurm, running, lambda j: j.state is State.RUNNING, what="it to run")
    assert wait_for(slurm, pending, lambda j: j.state is State.HELD, what="it to be held").reason == "JobHeldUser"
    assert slurm.cancel([running, pending]) is True
    assert wait_for(slurm, running).state is State.CANCELLED
    assert wait_for(slurm, pending).state is State.CANCELLED
    assert slurm.cancel([running, pending]) is True  # already ended: not an error


def test_dependency_on_failing_parent_is_cancelled(slurm, tmp_path):
    marker = tmp_path / "child-ran"
    parent = submit(slurm, tmp_path, "exit 1", stem="parent")
    child = submit(slurm, tmp_path, f"touch '{marker}'", stem="child", depends=[parent])
    assert wait_for(slurm, parent).state is State.FAILED
    job = wait_for(slurm, child)
    assert job.state is State.CANCELLED and job.reason == "DependencyNeverSatisfied"
    assert not marker.exists()


def test_dependency_chain(slurm, tmp_path):
    log = tmp_path / "order.log"
    first = submit(slurm, tmp_path, f"sleep 1; echo first >> '{log}'", stem="first")
    second = submit(slurm, tmp_path, f"echo second >> '{log}'", stem="second", depends=first)
    assert wait_for(slurm, second).state is State.COMPLETED
    assert log.read_text().split() == ["first", "second"]


@pytest.mark.parametrize("keywords, keyword", [
    ({"partition": "no-such-partition"}, "partition"),
    ({"mem": "100T"}, "mem"),
    ({"account": "no-such-account"}, "account"),
    ({"qos": "no-such-qos"}, "qos"),
    ({"partition": "second", "time": "2h"}, "time"),
    ({"cores": 64}, "cores"),
])
def test_refused_submission_names_the_keyword(slurm, tmp_path, keywords, keyword):
    with pytest.raises(SubmitError) as err:
        submit(slurm, tmp_path, "true", **keywords)
    assert err.value.keyword == keyword, str(err.value)
    assert "Slurm refused" in str(err.value)


def test_refused_on_the_command_line_too(slurm, tmp_path):
    with pytest.raises(SubmitError, match="Invalid partition") as err:
        submit(slurm, tmp_path, "true", in_script=False, partition="no-such-partition")
    assert err.value.keyword == "partition"


def test_job_that_left_squeue_is_found_by_sacct(slurm, tmp_path):
    job_id = submit(slurm, tmp_path, "exit 4", stem="gone")
    assert wait_for(slurm, job_id).exitcode == 4
    deadline = time.monotonic() + 30
    while in_squeue(job_id):  # MinJobAge=5: squeue forgets it a few seconds after it ended
        assert time.monotonic() < deadline, "squeue still lists the job after 30 s"
        time.sleep(0.5)
    (job,) = slurm.parse_queue([job_id])
    assert (job.id, job.state, job.exitcode, job.raw_state) == (job_id, State.FAILED, 4, "FAILED")


ODD_NAME = "odd name; $(touch pwned) `id` 'q' \"dq\" & | * 100%"


@pytest.mark.parametrize("in_script", [True, False], ids=["directives", "command-line"])
def test_name_and_paths_with_metacharacters_are_literal(slurm, tmp_path, in_script):
    odd = tmp_path / "dir with space; $(touch pwned) 'q' \"dq\" & 100%"
    odd.mkdir()
    out, err = odd / "out file %j.txt", odd / "err; file.txt"
    job_id = submit(slurm, tmp_path, "pwd; echo to-err >&2", stem="odd", in_script=in_script,
                    **{"name": ODD_NAME, "outfile": str(out), "errfile": str(err), "workdir": str(odd)})
    job = wait_for(slurm, job_id)
    assert job.state is State.COMPLETED, job
    assert job.name == ODD_NAME
    assert out.read_text() == f"{odd}\n"
    assert err.read_text() == "to-err\n"
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()


def test_array_tasks(slurm, tmp_path):
    job_id = submit(slurm, tmp_path, 'exit "$SLURM_ARRAY_TASK_ID"', stem="arr", array="0-2")

    def all_ended(_job):
        tasks = [j for j in slurm.parse_queue([job_id]) if j.array_id == job_id]
        return len(tasks) == 3 and all(j.task_id is not None and j.state.finished for j in tasks)
    deadline = time.monotonic() + TIMEOUT
    while not all_ended(None):
        assert time.monotonic() < deadline, "the array's tasks did not all end"
        time.sleep(0.3)
    tasks = {j.task_id: j for j in slurm.parse_queue([job_id])}
    assert {i: (t.id, t.state, t.exitcode) for i, t in tasks.items()} == {
        0: (f"{job_id}_0", State.COMPLETED, 0), 1: (f"{job_id}_1", State.FAILED, 1),
        2: (f"{job_id}_2", State.FAILED, 2)}
    assert slurm.max_array_size() == 1001


def test_listing_by_user(slurm, tmp_path):
    job_id = submit(slurm, tmp_path, "sleep 300", stem="listed", hold=True)
    try:
        import getpass
        listing = {j.id: j for j in slurm.parse_queue(None, getpass.getuser(), "debug")}
        assert listing[job_id].state is State.HELD
        assert all(j.partition == "debug" for j in listing.values())
    finally:
        slurm.cancel([job_id])


def test_sacct_disabled_degrades_to_squeue(slurm, tmp_path):
    done = submit(slurm, tmp_path, "true", stem="done")
    wait_for(slurm, done)
    with ShimDir(tmp_path / "shims").fail("sacct", stderr="Slurm accounting storage is disabled") as shims:
        live = submit(slurm, tmp_path, "sleep 300", stem="live", hold=True)
        try:
            jobs = {j.id: j for j in slurm.parse_queue([live, "99999999"])}
            assert jobs[live].state is State.HELD and "99999999" not in jobs
            assert shims.calls()["sacct"] == 1
        finally:
            slurm.cancel([live])


class TestSlurmConformance(BackendConformance):
    """The core's conformance kit on the real Slurm; its wall-time test is off here because
    test_slurm_jobs.test_time_limit_exceeded_is_timeout covers it (90 s: the minimum limit is a minute)."""

    backend = "slurm"
    timeout = 60.0
    time_limit_test = False

    @pytest.fixture
    def backend_ready(self, cluster_config):
        return True


def test_backslash_in_name_survives_directives(slurm, tmp_path):
    job_id = submit(slurm, tmp_path, "true", stem="bs", name="back\\slash")
    assert wait_for(slurm, job_id).name == "back\\slash"


def test_backslash_in_name_survives_the_command_line(slurm, tmp_path):
    job_id = submit(slurm, tmp_path, "true", stem="bs", in_script=False, name="back\\slash")
    assert wait_for(slurm, job_id).name == "back\\slash"
