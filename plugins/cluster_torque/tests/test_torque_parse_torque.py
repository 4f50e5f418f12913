"""Torque ``qstat -x`` XML and ``qstat -f`` text, on real captures.

Expected outcomes come from what torque.md and the public projects record for each job (see
fixtures/README.md), not from running the parser.
"""

from __future__ import annotations

import calendar

import pytest

from cluster_core.records import State
from cluster_torque import parse
from torque_testlib import fixture

P, H, R, C, F, X, T, U = (State.PENDING, State.HELD, State.RUNNING, State.COMPLETED, State.FAILED,
                          State.CANCELLED, State.TIMEOUT, State.UNKNOWN)

# Torque 6.1.3 on this machine: (state, exit code) of every job once it ended (torque.md 13:26).
ENDED = {
    "0.vm": (C, 0), "1[0].vm": (C, 0), "1[1].vm": (C, 0), "1[2].vm": (C, 0), "1[3].vm": (C, 0),
    "2.vm": (F, 3), "3.vm": (X, 271), "4.vm": (C, 0), "5.vm": (C, 0), "6.vm": (T, -11), "7.vm": (C, 0),
    "8.vm": (C, 0), "9.vm": (X, None), "10.vm": (C, 0),
}
# ... and while the first jobs ran (qstat_x_t_all_1: 2 slots busy with 0.vm and 1[0].vm).
EARLY = {
    "0.vm": R, "1[0].vm": R, "1[1].vm": P, "1[2].vm": P, "1[3].vm": P, "2.vm": P, "3.vm": H, "4.vm": P,
    "5.vm": H, "6.vm": P, "7.vm": P, "8.vm": P, "9.vm": P, "10.vm": P,
}
NAMES = {"0.vm": "hello", "2.vm": "fail", "3.vm": "depfail", "4.vm": "okparent", "5.vm": "depok",
         "6.vm": "wall", "7.vm": "ppn", "8.vm": "mem", "9.vm": "todel", "10.vm": "proxy"}


def by_id(records):
    out = {r.id: r for r in records}
    assert len(out) == len(records), "duplicate ids"
    return out


def xml(name):
    return by_id(parse.parse_torque_xml(fixture(f"torque/{name}")))


# --- single-job captures ------------------------------------------------------------------------------

@pytest.mark.parametrize("job_id", sorted(set(ENDED) - {"1[0].vm", "1[1].vm", "1[2].vm", "1[3].vm"}))
def test_each_job_at_the_end(job_id):
    jobs = xml(f"qstat_x_{job_id}_state.xml")
    assert list(jobs) == [job_id]
    job = jobs[job_id]
    assert (job.state, job.exitcode) == ENDED[job_id]
    assert job.raw_state == "C"
    assert job.name == NAMES[job_id]
    assert job.user == "pbstest"            # Job_Owner pbstest@localhost
    assert job.partition == "batch"
    assert job.array_id is None and job.task_id is None


def test_queued_job():
    job = xml("qstat_x_queued.xml")["9.vm"]
    assert (job.state, job.exitcode, job.raw_state) == (P, None, "Q")
    assert job.nodes == () and job.cores == 1
    assert job.reason == "Not Running: Not enough of the right type of nodes are available"
    assert job.submit_time == 1795613069 and job.start_time is None and job.end_time is None


def test_running_job():
    job = xml("qstat_x_running.xml")["0.vm"]
    assert (job.state, job.exitcode, job.raw_state) == (R, None, "R")
    assert job.nodes == ("vm",)
    assert (job.submit_time, job.start_time, job.end_time) == (1795613069, 1795613069, None)


def test_held_by_dependency():
    job = xml("qstat_x_held_dependency.xml")["3.vm"]
    assert (job.state, job.raw_state) == (H, "H")
    assert job.reason == "system hold; depends on afterok:2.vm"


def test_deleted_while_queued_has_no_exit_status():
    job = xml("qstat_x_after_qdel_queued.xml")["9.vm"]
    assert (job.state, job.exitcode) == (X, None)


def test_deleted_while_running():
    assert xml("qstat_x_running_before_qdel.xml")["11.vm"].state is R
    assert xml("qstat_x_right_after_qdel_running.xml")["11.vm"].state is R  # still R for a moment
    job = xml("qstat_x_after_qdel_running.xml")["11.vm"]
    assert (job.state, job.exitcode) == (X, 271)  # 256 + SIGTERM
    assert job.start_time == 1795613117 and job.end_time == 1795613124


def test_exit_3():
    job = xml("qstat_x_completed_exit3.xml")["66.vm"]
    assert (job.state, job.exitcode, job.name) == (F, 3, "fsample")


def test_walltime_and_dependency_deletion_reasons():
    assert "walltime" in xml("qstat_x_6.vm_state.xml")["6.vm"].reason
    assert "Job deleted as result of dependency on job 2.vm" in xml("qstat_x_3.vm_state.xml")["3.vm"].reason


def test_ppn_job_cores_and_hosts():
    job = xml("qstat_x_7.vm_state.xml")["7.vm"]
    assert job.cores == 2 and job.nodes == ("vm",)  # nodes=1:ppn=2, exec_host vm/0-1


def test_array_subjob():
    job = xml("qstat_x_array_subjob.xml")["1[0].vm"]
    assert (job.state, job.name, job.array_id, job.task_id) == (R, "arr-0", "1[].vm", 0)


# --- whole-queue captures -----------------------------------------------------------------------------

def test_t_listing_while_running():
    jobs = xml("qstat_x_t_all_1.xml")
    assert {k: v.state for k, v in jobs.items()} == EARLY
    assert "1[].vm" not in jobs  # -t lists the tasks, not the array


def test_t_listing_at_the_end():
    jobs = xml("qstat_x_t_all_2_mostly_completed.xml")
    assert {k: (v.state, v.exitcode) for k, v in jobs.items()} == ENDED
    assert [(jobs[f"1[{i}].vm"].array_id, jobs[f"1[{i}].vm"].task_id) for i in range(4)] == \
        [("1[].vm", i) for i in range(4)]


def test_t_listing_of_one_array():
    jobs = xml("qstat_x_t_array.xml")
    assert {k: v.state for k, v in jobs.items()} == {"1[0].vm": R, "1[1].vm": P, "1[2].vm": P, "1[3].vm": P}


@pytest.mark.parametrize("name", ["qstat_x_all_1.xml", "qstat_x_array_parent.xml"])
def test_listing_without_t_shows_the_array_summary(name):
    jobs = xml(name)
    parent = jobs["1[].vm"]
    assert (parent.state, parent.exitcode, parent.name, parent.array_id) == (R, None, "arr", None)
    assert set(jobs) == {"0.vm", "1[].vm"} | {f"{i}.vm" for i in range(2, 11)}


@pytest.mark.parametrize("name", ["qstat_x_all_2.xml", "qstat_x_array_parent_completed.xml"])
def test_finished_array_summary_does_not_claim_an_outcome(name):
    jobs = xml(name)
    parent = jobs["1[].vm"]
    assert (parent.state, parent.exitcode, parent.raw_state) == (U, None, "C")
    for job_id, expected in ENDED.items():
        if "[" not in job_id:
            assert (jobs[job_id].state, jobs[job_id].exitcode) == expected


def test_after_tarball_restore():
    jobs = xml("qstat_x_t_after_tarball_restore.xml")
    assert {k: (v.state, v.exitcode) for k, v in jobs.items()} == {
        "0[0].vm": (C, 0), "0[1].vm": (C, 0), "0[2].vm": (C, 0), "0[3].vm": (C, 0),
        "1.vm": (F, 3), "2.vm": (X, 271), "3.vm": (C, 0), "4.vm": (C, 0)}


def test_stress_run_after_restart():
    jobs = parse.parse_torque_xml(fixture("torque/qstat_x_t_after_stress_restart.xml"))
    assert len(jobs) == 29
    expected = {"sa": (C, 0), "sf": (F, 3), "sd": (X, 271), "so": (C, 0)}
    for job in jobs:
        assert (job.state, job.exitcode) == expected[job.name[:2]], job.id


def test_one_document_per_operand_and_noise():
    """Torque prints one <?xml?><Data> document per id operand; qstat may warn on stdout first."""
    text = ("Warning: Network Proble.\n" + fixture("torque/qstat_x_2.vm_state.xml")
            + fixture("torque/qstat_x_6.vm_state.xml") + "<?xml version=\"1.0\"?>\n<Data></Data>\n")
    jobs = by_id(parse.parse_torque_xml(text))
    assert {k: (v.state, v.exitcode) for k, v in jobs.items()} == {"2.vm": (F, 3), "6.vm": (T, -11)}
    assert parse.parse_torque_xml("") == []


def test_control_characters_in_variable_list_are_dropped():
    text = fixture("torque/qstat_x_queued.xml").replace("PBS_O_LANG=C.UTF-8", "PBS_O_LANG=C\x1b[0m\x01")
    assert parse.parse_torque_xml(text)[0].state is P


def test_broken_xml_is_a_parse_error():
    with pytest.raises(parse.ParseError):
        parse.parse_torque_xml("<Data><Job><Job_Id>1.vm</Job_Id><job_state>R</job_stat></Job></Data>")


# --- public Torque XML --------------------------------------------------------------------------------

def test_fyrd_stanford_queue():
    jobs = by_id(parse.parse_torque_xml(fixture("public/fyrd_torque_qstat_x.xml")))
    running = jobs["665199.superserver.stanford.edu"]
    # exit_status -3 (JOB_EXEC_RETRY) stays on a job that runs again after a requeue: still running
    assert (running.state, running.exitcode, running.user, running.nodes) == (R, -3, "johnfox", ("node01",))
    assert running.cores == 1
    queued = jobs["667999.superserver.stanford.edu"]
    assert (queued.state, queued.user, queued.cores, queued.partition) == (P, "robby", 1, "batch")
    done = jobs["673174.superserver.stanford.edu"]
    assert (done.state, done.exitcode, done.name) == (C, 0, "STDIN")
    parent = jobs["673175[].superserver.stanford.edu"]
    assert (parent.state, parent.exitcode, parent.name) == (U, None, "t.sh")  # summary: no exit_status
    for index in (19, 20):
        task = jobs[f"673175[{index}].fruster.stanford.edu"]
        assert (task.state, task.exitcode, task.name) == (C, 0, f"t.sh-{index}")
        assert (task.array_id, task.task_id) == ("673175[].fruster.stanford.edu", index)
        assert (task.start_time, task.end_time) == (1480547754, 1480547755)


def test_batcheuphoria_finished_and_queued():
    done = by_id(parse.parse_torque_xml(fixture("public/batcheuphoria_finished_job.xml")))["22005.pbsserver"]
    assert (done.state, done.exitcode, done.user, done.partition) == (C, 0, "testuser", "debug")
    assert done.cores == 4            # nodes=1:ppn=4 (its ncpus=1 is not what Torque allocates)
    assert done.nodes == ("exec-host",)
    assert (done.submit_time, done.start_time, done.end_time) == (1522255162, 1522939183, 1522939194)
    queued = by_id(parse.parse_torque_xml(fixture("public/batcheuphoria_queued_job.xml")))["22005.pbsserver"]
    assert (queued.state, queued.exitcode) == (P, None)


# --- qstat -f text (the fallback format) --------------------------------------------------------------

def test_text_of_the_same_jobs_agrees_with_xml(utc):
    text = by_id(parse.parse_qstat_f(fixture("torque/qstat_f_t_all_2.txt")))
    assert {k: (v.state, v.exitcode) for k, v in text.items()} == ENDED
    xml_jobs = xml("qstat_x_t_all_2_mostly_completed.xml")
    for job_id, job in text.items():
        other = xml_jobs[job_id]
        assert (job.name, job.user, job.partition, job.cores, job.nodes, job.array_id, job.task_id) == \
            (other.name, other.user, other.partition, other.cores, other.nodes, other.array_id, other.task_id)
        assert (job.submit_time, job.start_time, job.end_time) == \
            (other.submit_time, other.start_time, other.end_time)


def test_text_running_and_exit3(utc):
    running = parse.parse_qstat_f(fixture("torque/qstat_f_running.txt"))[0]
    assert (running.id, running.state, running.name, running.nodes) == ("0.vm", R, "hello", ("vm",))
    assert running.start_time == calendar.timegm((2026, 11, 25, 13, 24, 29))
    failed = parse.parse_qstat_f(fixture("torque/qstat_f_completed_exit3.txt"))[0]
    assert (failed.id, failed.state, failed.exitcode) == ("66.vm", F, 3)


def test_text_continuation_lines_are_joined():
    attrs = dict(parse.qstat_f_attrs(fixture("torque/qstat_f_running.txt")))["0.vm"]
    assert "PBS_O_PATH=/opt/torque/bin:/opt/torque/sbin:/root/.cargo/bin:/root/.cargo/bin:" in attrs["Variable_List"]
    assert attrs["Variable_List"].endswith("PBS_O_HOST=vm,PBS_O_SERVER=vm")
    todel = dict(parse.qstat_f_attrs(fixture("torque/qstat_f_t_all_2.txt")))["9.vm"]
    assert todel["comment"] == "Not Running: Not enough of the right type of nodes are available"


def test_aiida_torque_text_with_unexpected_newlines(utc):
    jobs = by_id(parse.parse_qstat_f(fixture("public/aiida_torque_qstat_f.txt")))
    assert {k: v.state for k, v in jobs.items()} == {
        "549159": H, "555716": R, "556491": R, "546437": X, "547637": P, "547683": P, "549004": P,
        "549005": P, "549008": P, "543984": X}
    assert jobs["546437"].exitcode == 271 and jobs["543984"].exitcode == 271
    assert {jobs["555716"].user, jobs["556491"].user} == {"somebody", "user_556491"}
    assert jobs["549159"].user == "user_549159" and jobs["549159"].cores == 96   # nodes=4:ppn=24
    assert jobs["543984"].cores == 768                                          # nodes=32:ppn=24
    assert jobs["555716"].nodes == ("r2i4n13", "r1i2n12", "r1i2n11", "r1i1n15")
    assert jobs["555716"].start_time == calendar.timegm((2015, 6, 28, 23, 20, 51))
    attrs = dict(parse.qstat_f_attrs(fixture("public/aiida_torque_qstat_f.txt")))["543984"]
    assert attrs["sched_hint"].startswith("Post job file processing error; job 543984 on host r2i7n17\nU")
    assert attrs["submit_args"].endswith("-d /some/path/ /some/other/path/NIx/que/runN.sth")
