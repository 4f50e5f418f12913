"""Against the real Grid Engine cell that ci/sge/up.sh starts, through the core's entry-point dispatch.

Waits poll with a deadline, never a fixed sleep. The cell has queues all.q and second.q (2 slots on the
host together), the parallel environment smp, and accounting flushed every second.
"""

from __future__ import annotations

import subprocess

import pytest

from cluster_core.testing.conformance import wait_for as kit_wait_for

import cluster_core as cc
from cluster_core import State
from cluster_core.errors import SubmitError
from cluster_core.testing.shims import ShimDir

pytestmark = pytest.mark.sge

TIMEOUT = 60.0


def wait_for(condition, what: str, timeout: float = TIMEOUT, interval: float = 0.2):
    return kit_wait_for(condition, timeout, what, interval=interval)


def job(command, *args, **options) -> cc.Job:
    return cc.Job(command, *args, backend="sge", **options)


def qstat_state(number: str) -> str:
    for line in subprocess.run(["qstat", "-u", "*"], capture_output=True, text=True).stdout.splitlines()[2:]:
        words = line.split()
        if words and words[0] == number:
            return words[4]
    return ""


def test_detect_names_grid_engine(sge):
    det = sge.detect()
    assert det.available and det.reason.startswith("SGE 8.1.9: the qmaster answers")


def test_running_then_finished_from_accounting(sge, tmp_path):
    started = tmp_path / "started"
    j = job(f"touch '{started}'; sleep 2; echo done; exit 3").submit()
    wait_for(started.exists, "the job to start")
    assert j.state is State.RUNNING and j.record.partition in ("all.q", "second.q")
    assert j.wait(timeout=TIMEOUT) is False
    assert (j.state, j.exitcode, j.stdout) == (State.FAILED, 3, "done\n")
    # the record that settled it came from qstat or qacct (or the exit file, if accounting lagged)
    assert j.record.nodes in ((), ("vm",)) or j.record.reason == "from the job's exit file"
    rec = wait_for(lambda: [r for r in sge.parse_queue([j.id]) if r.id == j.id], "qacct to know the job")[0]
    assert (rec.state, rec.exitcode, rec.nodes, rec.raw_state) == (State.FAILED, 3, ("vm",), "failed=0")


def test_held_job_then_released(sge):
    j = job("echo released", hold=True).submit()
    assert wait_for(lambda: j.state is State.HELD, "the job to show as held")
    assert j.record.raw_state == "hqw" and j.record.reason == "held"
    subprocess.run(["qrls", j.id], check=True, capture_output=True)
    assert j.wait(timeout=TIMEOUT) is True and j.stdout == "released\n"


def test_cancel_before_it_starts(sge):
    j = job("echo never", hold=True).submit()
    wait_for(lambda: j.state is State.HELD, "the job to be queued")
    j.cancel()
    j.wait(timeout=TIMEOUT)
    assert j.state is State.CANCELLED and j.stdout is None


_READ_STATES = """
import sys, time
from cluster_sge import calls
ids, deadline = sys.argv[1:], time.monotonic() + 60
while True:
    states = {r.id: r for r in calls.parse_queue(ids, None, None)}
    if all(i in states and states[i].state.finished for i in ids) or time.monotonic() > deadline:
        break
    time.sleep(0.5)  # a poll interval, not a wait for an outcome: the loop ends on the states
for i in ids:
    print(i, states[i].state.value, states[i].raw_state, sep="|") if i in states else print(i, "missing", sep="|")
"""


def test_a_job_deleted_by_another_process_reads_cancelled_in_a_third(sge, tmp_path):
    """Accounting records a qdel'd job as failed (failed 100, exit 137), and keeps nothing of a job deleted
    before it started: the cancel hook's note, not any process's memory, says it was cancelled."""
    import sys
    started = tmp_path / "started"
    running = job(f"touch '{started}'; sleep 300").submit()
    queued = job("echo never", hold=True).submit()
    wait_for(started.exists, "the job to start")
    subprocess.run([sys.executable, "-c", "import sys; from cluster_sge import calls; calls.cancel(sys.argv[1:])",
                    running.id, queued.id], check=True, capture_output=True, text=True, timeout=60)
    out = subprocess.run([sys.executable, "-c", _READ_STATES, running.id, queued.id], check=True,
                         capture_output=True, text=True, timeout=120).stdout.splitlines()
    # the running job from accounting (failed 100, exit 137) once flushed, the queued one from the note alone
    assert [line.split("|")[:2] for line in out] == [[running.id, "cancelled"], [queued.id, "cancelled"]], out
    assert out[1].split("|")[2] == "deleted", out
    assert running.wait(timeout=TIMEOUT) is False and running.state is State.CANCELLED


def test_error_state_is_failed_with_the_reason(sge, tmp_path):
    cc.set_option("core.check_workdir", "false")  # the core would refuse the missing workdir at submit
    j = job("echo never", workdir=str(tmp_path / "missing")).submit()
    try:
        j.wait(timeout=TIMEOUT)
        assert j.state is State.FAILED and j.record.raw_state == "Eqw"
        assert "can't chdir to" in j.record.reason and str(tmp_path / "missing") in j.record.reason
        with pytest.raises(cc.JobFailedError, match="error state: can't chdir"):
            j.get()
    finally:
        j.cancel()  # an error state waits for `qmod -cj` or qdel: leave no job behind


def test_partition_cores_and_slots(sge):
    j = job("echo $NSLOTS $QUEUE", partition="second.q", cores=2).submit()
    assert j.wait(timeout=TIMEOUT) is True
    assert j.stdout == "2 second.q\n"
    rec = wait_for(lambda: [r for r in sge.parse_queue([j.id]) if r.nodes], "qacct to know the job")[0]
    assert rec.cores == 2 and rec.partition == "second.q"


def test_memory_limit_reads_as_out_of_memory(sge):
    j = job("python3 -c 'x = bytearray(600 * 1024 * 1024)'", mem="200M").submit()
    assert j.wait(timeout=TIMEOUT) is False
    assert j.state is State.OUT_OF_MEMORY and j.exitcode == 1
    assert "MemoryError" in j.stderr


@pytest.mark.parametrize("keywords, keyword", [
    ({"partition": "nosuch.q"}, "partition"), ({"account": "nosuch"}, "account"),
    ({"time": "1h", "extra": "-l h_rt=abc"}, "time"),
])
def test_refusals_name_the_keyword(sge, keywords, keyword):
    with pytest.raises(SubmitError) as err:
        job("true", **keywords).submit()
    assert err.value.keyword == keyword and "Grid Engine refused job" in str(err.value)


def test_a_job_no_queue_can_run_is_refused_at_submission(sge):
    """qsub -w e: cores=99 on a 2-slot cell would otherwise wait in qw forever."""
    with pytest.raises(SubmitError) as err:
        job("true", cores=99).submit()
    assert err.value.keyword == "cores"
    assert "no queue of this cluster can ever run it" in str(err.value) and "cores=99" in str(err.value)


def test_values_with_quotes_and_dollars_arrive_exactly(sge, tmp_path):
    # the #$ parser would drop the quotes; the plugin submits argv words (-C '')
    value = "a 'b' \"c\" $(d) `e` \\f"
    out = tmp_path / "out 'q' \"dq\".txt"
    j = job('printf "%s" "$X"', export={"X": value}, outfile=str(out), name="n 'x' \"y\"").submit()
    assert j.wait(timeout=TIMEOUT) is True
    assert out.read_text() == value
    assert j.record.name in ("n_'x'_\"y\"", None)


def test_users_own_script_with_its_directives(sge, tmp_path):
    script = tmp_path / "mine.py"
    script.write_text("#!/usr/bin/env python3\n#$ -N from_script\nimport os\nprint('py', os.environ['JOB_NAME'])\n")
    j = cc.submit_file(script, backend="sge")
    assert j.name == "from_script"  # the script's own directives stand, and the core reads them
    assert j.wait(timeout=TIMEOUT) is True
    assert j.stdout == "py from_script\n"
    named = cc.submit_file(script, backend="sge", name="given")  # a keyword the caller gives wins
    assert named.get(timeout=TIMEOUT) == "py given\n"


def _square(x):
    return x * x


def test_map_and_shell_array(sge):
    tasks = cc.map(_square, range(4), backend="sge")
    assert cc.get(tasks, timeout=TIMEOUT) == [0, 1, 4, 9]
    arr = job("echo task $CLUSTER_TASK_ID", array="0-2").submit()
    assert arr.wait(timeout=TIMEOUT) is True
    assert [t.stdout for t in arr.tasks] == [f"task {i}\n" for i in range(3)]


def test_commands_per_poll(sge, tmp_path, monkeypatch):
    """However many jobs: one qstat per poll, and one qacct only while some job has left qstat."""
    monkeypatch.delenv("CLUSTER_SGE_BIN", raising=False)
    polls = []
    real = sge.parse_queue

    def counting(job_ids=None, user=None, partition=None):
        polls.append(list(job_ids or []))
        return real(job_ids, user, partition)
    monkeypatch.setattr(sge, "parse_queue", counting)
    with ShimDir(tmp_path / "shims").count("qstat", "qacct", "qsub") as shims:
        jobs = [job(f"sleep 1; exit {i % 2}") for i in range(8)]
        for j in jobs:
            j.submit()
        cc.wait(jobs, timeout=TIMEOUT * 2)
        counts = shims.calls()
    assert [j.exitcode for j in jobs] == [0, 1] * 4
    assert counts["qsub"] == 8
    assert 1 <= counts["qstat"] == len(polls) and counts["qacct"] <= len(polls)
