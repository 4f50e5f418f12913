"""slurmrestd's JSON read into QueueJob records, on answers captured from the real slurmrestd 22.05.8
(tests/capture_rest_fixtures.py; rest-manifest.json maps each scenario to its job id)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_core.backend import State
from cluster_slurm import parse, rest_parse

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="module")
def ids() -> dict:
    return load("rest-manifest.json")


@pytest.fixture(scope="module")
def finished() -> dict:
    return {r.id: r for r in rest_parse.parse_jobs(load("rest-jobs-finished.json"))}


@pytest.fixture(scope="module")
def live() -> dict:
    return {r.id: r for r in rest_parse.parse_jobs(load("rest-jobs-live.json"))}


@pytest.fixture(scope="module")
def db() -> dict:
    return {r.id: r for r in rest_parse.parse_db_jobs(load("rest-db-jobs.json"))}


@pytest.mark.parametrize("scenario, state, exitcode, reason", [
    ("completed", State.COMPLETED, 0, None),
    ("exit3", State.FAILED, 3, "NonZeroExitCode"),          # exit_code 768: the raw wait status
    ("segv", State.FAILED, 128 + 11, "JobLaunchFailure"),   # killed by SIGSEGV
    ("oom", State.FAILED, 128 + 9, "JobLaunchFailure"),     # OverMemoryKill: SIGKILL, FAILED
])
def test_finished_jobs_from_the_jobs_endpoint(finished, ids, scenario, state, exitcode, reason):
    job = finished[ids[scenario]]
    assert (job.state, job.exitcode, job.reason, job.name) == (state, exitcode, reason, scenario)
    assert job.user == "root" and job.partition == "debug" and job.nodes == ("vm",) and job.cores == 1
    assert job.submit_time and job.start_time and job.end_time and job.end_time >= job.start_time


def test_array_tasks_have_ids_like_squeue(finished, ids):
    array = ids["array_mixed"]
    tasks = {r.task_id: r for r in finished.values() if r.array_id == array}
    assert sorted(tasks) == [0, 1, 2]
    assert [tasks[i].id for i in range(3)] == [f"{array}_{i}" for i in range(3)]
    assert [tasks[i].exitcode for i in range(3)] == [0, 1, 2]
    assert [tasks[i].state for i in range(3)] == [State.COMPLETED, State.FAILED, State.FAILED]


@pytest.mark.parametrize("scenario, state, reason", [
    ("running", State.RUNNING, None),
    ("pending_resources", State.PENDING, None),
    ("held", State.HELD, "JobHeldUser"),
    ("dependent", State.PENDING, "Dependency"),
    ("begin", State.PENDING, "BeginTime"),
    ("cancelled", State.CANCELLED, "Priority"),  # cancelled while pending: the last reason stays
])
def test_live_states_and_reasons(live, ids, scenario, state, reason):
    job = live[ids[scenario]]
    assert (job.state, job.reason, job.exitcode) == (state, reason, None)
    assert job.end_time is None or state.finished
    assert (job.start_time is not None) == (state is State.RUNNING or state.finished)


def test_pending_array_is_one_collapsed_record(live, ids):
    array = ids["array_pending"]
    rows = [r for r in live.values() if r.array_id == array]
    assert [(r.id, r.task_id, r.state) for r in rows] == [(array, None, State.PENDING)]


def test_cancelled_running_job_was_killed_by_sigterm(live, ids):
    """squeue's exit_code for a cancelled running job is 15 (SIGTERM); both transports say 143."""
    jobs = {r.name: r for r in live.values() if r.state is State.CANCELLED and r.exitcode}
    assert {r.exitcode for r in jobs.values()} == {128 + 15}


def test_same_records_as_the_squeue_parser_for_the_same_fields(finished):
    """The state table and exit-code reading are parse.py's: a raw status reads alike on both transports."""
    for job in finished.values():
        assert job.state is parse.map_state(job.raw_state, job.reason)


def test_filtering_by_ids(ids):
    doc = load("rest-jobs-finished.json")
    array = ids["array_mixed"]
    got = {r.id for r in rest_parse.parse_jobs(doc, [ids["exit3"], array, "not-an-id", "99999999"])}
    assert got == {ids["exit3"], f"{array}_0", f"{array}_1", f"{array}_2"}
    # a task by its own id, and by the raw id Slurm gave it
    task_raw = next(str(j["job_id"]) for j in doc["jobs"]
                    if str(j["array_job_id"]) == array and j["array_task_id"] == 1)
    assert {r.id for r in rest_parse.parse_jobs(doc, [f"{array}_2"])} == {f"{array}_2"}
    assert {r.id for r in rest_parse.parse_jobs(doc, [task_raw])} == {f"{array}_1"}
    assert rest_parse.parse_jobs(doc, []) == []


def test_filtering_by_user_and_partition(ids):
    doc = load("rest-jobs-live.json")
    assert rest_parse.parse_jobs(doc, user="nobody-here") == []
    everything = rest_parse.parse_jobs(doc)
    assert {r.user for r in everything} == {"root"}  # the capture ran as root, in the default partition
    assert rest_parse.parse_jobs(doc, user="root", partition="debug") == everything
    assert rest_parse.parse_jobs(doc, partition="second") == []


@pytest.mark.parametrize("scenario, state, exitcode", [
    ("completed", State.COMPLETED, 0),
    ("exit3", State.FAILED, None),          # dbv0.0.38 says SUCCESS/0 for exit 3: not known, the exit file tells
    ("segv", State.FAILED, 128 + 11),       # signals survive in the JSON
    ("oom", State.FAILED, 128 + 9),
    ("running", State.CANCELLED, None),     # cancelled running job: 0:0 in the allocation row
    ("held", State.CANCELLED, None),
])
def test_accounting_records(db, ids, scenario, state, exitcode):
    job = db[ids[scenario]]
    assert (job.state, job.exitcode) == (state, exitcode)
    assert job.user == "root" and job.partition == "debug" and job.end_time


def test_accounting_array_rows(db, ids):
    mixed = ids["array_mixed"]
    assert {r.id: r.state for r in db.values() if r.array_id == mixed} == {
        f"{mixed}_0": State.COMPLETED, f"{mixed}_1": State.FAILED, f"{mixed}_2": State.FAILED}
    pending = ids["array_pending"]  # cancelled before any task started: one row for the array
    assert [(r.id, r.task_id, r.state) for r in db.values() if r.array_id == pending] == [
        (pending, None, State.CANCELLED)]


def test_error_messages_and_numbers():
    errors = load("rest-errors.json")
    assert rest_parse.errors(errors["submit_bad_partition"]["body"]) == ["Invalid partition name specified"]
    cancel = errors["cancel_unknown"]["body"]
    assert rest_parse.error_numbers(cancel) == {2017}
    assert "Invalid job id specified" in rest_parse.errors(cancel)[0]
    assert rest_parse.error_numbers(errors["db_unknown"]["body"]) == {9003}
    assert errors["db_unknown"]["status"] == 200 and rest_parse.parse_db_jobs(errors["db_unknown"]["body"]) == []
    # a forged token: HTTP 500 and only "Unspecified error" to tell it by
    assert errors["bad_token"]["status"] == 500
    assert rest_parse.errors(errors["bad_token"]["body"]) == ["Failed while looking for jobs: Unspecified error"]


@pytest.mark.parametrize("status, state, code", [
    ({"status": "SUCCESS", "return_code": 0}, State.COMPLETED, 0),
    ({"status": "SUCCESS", "return_code": 0}, State.FAILED, None),
    ({"status": "FAILED", "return_code": 3}, State.FAILED, 3),
    ({"status": "SIGNALED", "signal": {"signal_id": 9, "name": "Killed"}}, State.FAILED, 137),
    ({"status": "SUCCESS", "return_code": 0}, State.TIMEOUT, None),
    ({"status": "SUCCESS", "return_code": 0}, State.RUNNING, None),
    (None, State.COMPLETED, None),
])
def test_db_exit_code(status, state, code):
    assert rest_parse.db_exit_code(state, status) == code
