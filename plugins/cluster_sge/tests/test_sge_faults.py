"""Faults injected into the real Grid Engine cell (ci/sge/up.sh): a qsub that the qmaster accepted but whose
answer was lost, qstat failing while it is asked whether the job exists, and qsub/qstat/qacct that fail,
lose their answer or hang at random. Nothing may be lost or run twice.

The shims (cluster_core.testing.shims) wrap the cell's own commands on PATH and print Grid Engine's own
commlib messages.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import uuid

import pytest

import cluster_core as cc
from cluster_core.testing.conformance import wait_for
from cluster_core.testing.faults import submit_under_faults
from cluster_core.testing.shims import ShimDir
from cluster_sge import calls as sge_calls
from cluster_sge import parse

pytestmark = pytest.mark.sge

TIMEOUT = 120.0
# an answer lost after the qmaster got the request, and a qmaster that cannot be reached
LOST = ('error: commlib error: got read error (closing "vm/qmaster/1")\n'
        'Unable to run job: failed receiving gdi request response for mid=1 (got syncron message receive '
        'timeout error).\nExiting.')
DOWN = ('error: commlib error: got select error (Connection refused)\n'
        'error: unable to send message to qmaster using port 6444 on host "vm": got send error')


@pytest.fixture
def on_sge(sge, monkeypatch):
    monkeypatch.delenv("CLUSTER_SGE_BIN", raising=False)  # the cell's commands come from PATH, as the shims'
    sge_calls.forget()
    yield sge
    sge_calls.forget()


def jobs_named(name: str) -> list[str]:
    """Numbers of every job of this name: live in qstat, and finished in the accounting file."""
    live = parse.parse_qstat_xml(subprocess.run(["qstat", "-xml", "-u", "*"], capture_output=True, text=True,
                                                check=True).stdout)
    numbers = {e.number for e in live if e.name == name}
    acct = subprocess.run(["qacct", "-j", name], capture_output=True, text=True)
    numbers |= {b["jobnumber"] for b in parse.parse_qacct_blocks(acct.stdout) if "jobnumber" in b}
    return sorted(numbers)


def test_lost_answer_while_qstat_fails_is_not_submitted_twice(on_sge, tmp_path):
    """qsub's job is accepted and its answer lost, and the qstat that should tell whether the job exists
    fails too: its failure is no "no", so the job is asked about again, found, and not duplicated."""
    ran = tmp_path / "ran"
    name = f"once{uuid.uuid4().hex[:8]}"
    with ShimDir(tmp_path / "shims").lose_answer("qsub", LOST).fail_first("qstat", 1, DOWN) as shims:
        job = cc.submit(f"echo once >> '{ran}'", backend="sge", name=name)
        calls = shims.calls()
    assert calls["qsub"] == 1 and calls["qstat"] >= 2
    assert job.wait(timeout=TIMEOUT) is True
    assert ran.read_text() == "once\n"
    assert wait_for(lambda: jobs_named(name), TIMEOUT, "accounting to know the job") == [job.id]


def test_lost_answer_of_a_job_still_queued_is_found_by_its_context(on_sge, tmp_path):
    name = f"held{uuid.uuid4().hex[:8]}"
    with ShimDir(tmp_path / "shims").lose_answer("qsub", LOST) as shims:
        job = cc.submit("true", backend="sge", name=name, hold=True)
        assert shims.calls()["qsub"] == 1
    try:
        assert jobs_named(name) == [job.id]
        context = subprocess.run(["qstat", "-j", job.id], capture_output=True, text=True, check=True).stdout
        assert "CLUSTER_CORE_TOKEN=" in context
    finally:
        cc.cancel([job])


def test_lost_answer_of_a_job_that_already_ended_is_found_by_its_outputs(on_sge, tmp_path, caplog):
    """qstat answers only once the job has run and ended, when its context can no longer be read: the
    job's output file, which did not exist before qsub, says it ran, and the one ended job of its name
    received while qsub ran is taken for it."""
    ran = tmp_path / "ran"
    name = f"ended{uuid.uuid4().hex[:8]}"
    shims = ShimDir(tmp_path / "shims").lose_answer("qsub", LOST)
    real = shutil.which("qstat")
    ended = f"{shlex.quote(real)} -xml -s z -u '*' 2>/dev/null | grep -q {shlex.quote(f'<JB_name>{name}</JB_name>')}"
    qstat = shims.dir / "qstat"  # fails until the job is among the finished ones
    qstat.write_text(f"#!/bin/sh\nif ! {ended}; then printf '%s\\n' {shlex.quote(DOWN)} >&2; exit 1; fi\n"
                     f'exec {shlex.quote(real)} "$@"\n')
    qstat.chmod(0o755)
    with shims, caplog.at_level(logging.INFO, logger="cluster_core.sge"):
        job = cc.submit(f"echo once >> '{ran}'", backend="sge", name=name)
        assert shims.calls()["qsub"] == 1
    assert "taken for it" in caplog.text
    assert job.wait(timeout=TIMEOUT) is True
    assert ran.read_text() == "once\n"
    assert wait_for(lambda: jobs_named(name), TIMEOUT, "accounting to know the job") == [job.id]


def test_an_attempt_that_made_no_job_is_made_again_though_a_job_of_its_name_ended(on_sge, tmp_path):
    """A job of the same name that another process submitted has just ended; this qsub's answer is lost
    before the qmaster got the job: its output files never appeared, so it is submitted again."""
    name = f"twice{uuid.uuid4().hex[:8]}"
    other = cc.submit("true", backend="sge", name=name)
    assert other.wait(timeout=TIMEOUT) is True
    sge_calls.forget()  # as if another process had submitted it
    with ShimDir(tmp_path / "shims").fail_first("qsub", 1, LOST) as shims:
        job = cc.submit("echo again", backend="sge", name=name)
        assert shims.calls()["qsub"] == 2
    assert job.id != other.id and job.wait(timeout=TIMEOUT) is True and job.stdout == "again\n"


def test_qstat_that_never_answers_gives_up_without_a_second_copy(on_sge, tmp_path, monkeypatch):
    monkeypatch.setattr(sge_calls, "CHECK_PATIENCE", 3.0, raising=False)
    name = f"never{uuid.uuid4().hex[:8]}"
    with ShimDir(tmp_path / "shims").lose_answer("qsub", LOST).fail("qstat", stderr=DOWN) as shims:
        with pytest.raises(cc.SubmitError, match="not submitted again") as err:
            cc.submit("true", backend="sge", name=name, hold=True)
        assert shims.calls()["qsub"] == 1
    assert err.value.transient and "CLUSTER_CORE_TOKEN=" in str(err.value)
    created = jobs_named(name)
    assert len(created) == 1  # the one job that was created
    subprocess.run(["qdel", *created], capture_output=True)


@pytest.mark.slow
def test_flaky_and_hanging_commands_lose_nothing_and_run_nothing_twice(on_sge, tmp_path, monkeypatch):
    """30% of qsub/qstat/qacct calls fail with Grid Engine's own commlib messages (a third of qsub's after
    the qmaster accepted the job), 10% hang past the command timeout: every job runs exactly once and ends
    completed, no refused one runs, and the wait neither gives up nor hangs."""
    monkeypatch.setattr(sge_calls, "QUERY_TIMEOUT", 3.0)
    monkeypatch.setattr(sge_calls, "SUBMIT_TIMEOUT", 3.0)
    monkeypatch.setattr(sge_calls, "SUBMIT_BACKOFF", 0.2, raising=False)
    log = tmp_path / "ran.log"
    run = uuid.uuid4().hex[:6]
    shims = ShimDir(tmp_path / "shims")
    shims.flaky("qsub", 20, LOST, lose_percent=10, hang_percent=10, hang_seconds=5, seed=1)
    for command in ("qstat", "qacct"):
        shims.flaky(command, 30, DOWN, hang_percent=10, hang_seconds=5, seed=2)
    with shims:
        outcome = submit_under_faults(20, log, shims, backend="sge", name=f"flakyx{run}-")
    outcome.assert_each_ran_once(submit_command="qsub")
    assert all(jobs_named(f"flakyx{run}-{i}") == [] for i in outcome.refused)
