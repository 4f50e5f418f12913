"""The local scheduler's decisions on their own: records in, start decisions out; no database, no process."""

from __future__ import annotations

import json

import pytest

from cluster_local.scheduler import NEVER_REASON, Dropped, Job, Plan, Scheduler, verdict
from cluster_local.store import (CANCELLED, COMPLETED, FAILED, HELD, OUT_OF_MEMORY, PENDING, RUNNING, TIMEOUT,
                                 UNKNOWN)


def ids(jobs) -> list[int]:
    return [job.id for job in jobs]


def make(cores: int = 2, memory: int = 1000, store: dict | None = None, jobs=()) -> Scheduler:
    """A scheduler of ``cores`` and ``memory`` MB; ``store``: the states the store would tell."""
    sched = Scheduler(cores, memory, (store or {}).get)
    for job in jobs:
        sched.queue(job)
    return sched


def starts(sched: Scheduler) -> list[int]:
    plan = sched.schedule()
    assert plan.dropped == []
    return ids(plan.starts)


# --- the record -------------------------------------------------------------------------------------

def test_a_row_of_the_jobs_table_becomes_a_job():
    row = {"id": 7, "cores": 2, "mem_mb": None, "name": "n", "user": "u",
           "depends": json.dumps([3, ["afternotok", 4], ["after", 5], "singleton", ["afterany", 6]])}
    job = Job.from_row(row)
    assert job == Job(7, 2, 0, (("afterok", 3), ("afternotok", 4), ("after", 5), ("afterany", 6)), True, "n", "u")
    assert Job.from_row(dict(row, depends="[]", mem_mb=512)).deps == ()
    assert Job.from_row(dict(row, depends="", mem_mb=512)).mem == 512


@pytest.mark.parametrize("kind, state, expected", [
    ("afterok", COMPLETED, "ok"), ("afterok", FAILED, "never"), ("afterok", RUNNING, "wait"),
    ("afterok", None, "never"), ("afterok", CANCELLED, "never"),
    ("afternotok", FAILED, "ok"), ("afternotok", TIMEOUT, "ok"), ("afternotok", OUT_OF_MEMORY, "ok"),
    ("afternotok", UNKNOWN, "ok"), ("afternotok", COMPLETED, "never"), ("afternotok", PENDING, "wait"),
    ("afterany", COMPLETED, "ok"), ("afterany", FAILED, "ok"), ("afterany", None, "ok"),
    ("afterany", RUNNING, "wait"), ("afterany", HELD, "wait"),
    ("after", RUNNING, "ok"), ("after", COMPLETED, "ok"), ("after", None, "ok"), ("after", PENDING, "wait"),
    ("after", HELD, "wait"),
])
def test_one_dependency(kind, state, expected):
    assert verdict(kind, state) == expected


# --- limits and order -------------------------------------------------------------------------------

def test_first_in_first_out_within_the_cores():
    sched = make(cores=2, jobs=[Job(i) for i in (1, 2, 3, 4)])
    assert starts(sched) == [1, 2]
    assert starts(sched) == []  # nothing ended: nothing more starts
    assert sched.ended(1, COMPLETED) == []
    assert starts(sched) == [3]
    sched.ended(2, FAILED)
    sched.ended(3, COMPLETED)
    assert starts(sched) == [4]
    assert list(sched.running) == [4] and sched.pending == {}


def test_a_job_of_several_cores_holds_them_all_and_smaller_ones_backfill():
    sched = make(cores=4, jobs=[Job(1, cores=3), Job(2, cores=2), Job(3, cores=1), Job(4, cores=1)])
    assert starts(sched) == [1, 3]  # 2 does not fit beside 1; 3 takes the last core
    sched.ended(1, COMPLETED)
    assert starts(sched) == [2, 4]


def test_memory_is_a_limit_as_cores_are():
    sched = make(cores=8, memory=1000, jobs=[Job(1, mem=600), Job(2, mem=600), Job(3, mem=300), Job(4)])
    assert starts(sched) == [1, 3, 4]  # 2 waits for memory; 3 and 4 fit
    sched.ended(3, COMPLETED)
    assert starts(sched) == []
    sched.ended(1, COMPLETED)
    assert starts(sched) == [2]


def test_a_job_larger_than_the_runner_is_cancelled_at_once():
    sched = make(cores=2, memory=1000, jobs=[Job(1, cores=3), Job(2, mem=2000), Job(3),
                                             Job(4, deps=(("afterok", 1),))])
    plan = sched.schedule()
    assert ids(plan.starts) == [3]
    assert plan.dropped == [Dropped(1, "asks 3 cores / 0 MB; this runner has 2 cores / 1000 MB"),
                            Dropped(4, NEVER_REASON),  # its afterok on 1 can never hold
                            Dropped(2, "asks 1 cores / 2000 MB; this runner has 2 cores / 1000 MB")]
    assert sched.known == {1: CANCELLED, 2: CANCELLED, 4: CANCELLED}


def test_a_full_runner_looks_no_further_than_it_must():
    # with no core free, the queue behind is not even checked (a too-big job there waits its turn)
    sched = make(cores=1, jobs=[Job(1), Job(2, cores=5)])
    assert starts(sched) == [1]
    assert sched.schedule().dropped == []
    sched.ended(1, COMPLETED)
    assert sched.schedule().dropped == [Dropped(2, "asks 5 cores / 0 MB; this runner has 1 cores / 1000 MB")]


def test_many_tasks_of_one_submission_start_in_order_as_cores_free():
    # the local backend runs no native arrays: a map or array is one job per task, submitted in order
    sched = make(cores=2, jobs=[Job(i, name="map", user="u") for i in range(1, 1001)])
    started = []
    while True:
        batch = starts(sched)
        if not batch:
            break
        assert len(batch) <= 2 and len(sched.running) <= 2
        started += batch
        for job_id in batch:
            sched.ended(job_id, COMPLETED)
    assert started == list(range(1, 1001))


def test_a_long_queue_is_not_copied_by_every_pass():
    # each pass looks at the queue from its first job still waiting: what left it is not kept for ever
    sched = make(cores=2, jobs=[Job(i) for i in range(1, 10_001)])
    for _ in range(4000):
        for job in sched.schedule().starts:
            sched.ended(job.id, COMPLETED)
    assert len(sched.pending) == 2000
    assert len(sched._order) <= 2 * len(sched.pending) + 1024


def test_requeue_replaces_the_queue_but_keeps_what_it_runs_or_knows():
    sched = make(cores=1, jobs=[Job(1), Job(2), Job(3)])
    assert starts(sched) == [1]
    sched.remember(3, CANCELLED)
    # the store, read again: 1 still says PENDING (its start not written yet), 2 was cancelled by
    # another process, 3 is known ended, 4 and 5 are new
    gone = sched.requeue([Job(1), Job(3), Job(4), Job(5)])
    assert gone == [2, 3]  # the runner asks the store how they ended
    assert list(sched.pending) == [4, 5]
    sched.clear()
    assert sched.pending == {} and starts(sched) == []


def test_a_discarded_start_frees_its_cores_but_still_counts_as_started():
    sched = make(cores=2, jobs=[Job(1, cores=2), Job(2), Job(3, deps=(("afterok", 1),)),
                                Job(4, deps=(("after", 1),))])
    assert starts(sched) == [1]
    sched.discard(1)  # another process cancelled it as it started; it is being killed
    assert starts(sched) == [2, 4]  # its cores are free again; it has started, as 4 needs; 3 waits
    assert list(sched.pending) == [3]
    sched.ended(1, None)  # gone, its end recorded by nobody: its row says CANCELLED
    sched.lookup = {1: CANCELLED}.get
    assert sched.schedule() == Plan([], [])  # no core free
    assert sched.ended(2, COMPLETED) == []
    assert sched.schedule() == Plan([], [Dropped(3, NEVER_REASON)])


def test_an_adopted_job_holds_its_cores():
    sched = make(cores=2, jobs=[Job(5), Job(6)])
    sched.run(Job(1, cores=1, name="x", user="u"))
    assert starts(sched) == [5]
    sched.ended(1, COMPLETED)
    assert starts(sched) == [6]


# --- dependencies -----------------------------------------------------------------------------------

def test_afterok_waits_for_success_and_a_failure_cancels_the_chain():
    sched = make(cores=4, jobs=[Job(1), Job(2, deps=(("afterok", 1),)), Job(3, deps=(("afterok", 2),)),
                                Job(4, deps=(("afterany", 2),)), Job(5)])
    assert starts(sched) == [1, 5]
    dropped = sched.ended(1, FAILED)
    assert dropped == [Dropped(2, NEVER_REASON), Dropped(3, NEVER_REASON)]  # transitively
    assert sched.known[2] == sched.known[3] == CANCELLED
    assert starts(sched) == [4]  # afterany holds on a cancelled job


def test_afterok_starts_after_success():
    sched = make(cores=4, jobs=[Job(1), Job(2, deps=(("afterok", 1),))])
    assert starts(sched) == [1]
    assert starts(sched) == []
    sched.ended(1, COMPLETED)
    assert starts(sched) == [2]


@pytest.mark.parametrize("end, starts_it", [(FAILED, True), (TIMEOUT, True), (CANCELLED, True),
                                            (COMPLETED, False)])
def test_afternotok(end, starts_it):
    sched = make(cores=4, jobs=[Job(1), Job(2, deps=(("afternotok", 1),))])
    assert starts(sched) == [1]
    dropped = sched.ended(1, end)
    if starts_it:
        assert dropped == [] and starts(sched) == [2]
    else:
        assert dropped == [Dropped(2, NEVER_REASON)] and starts(sched) == []


def test_afterany_waits_for_any_end():
    sched = make(cores=4, jobs=[Job(1), Job(2, deps=(("afterany", 1),)), Job(3, deps=(("afterany", 99),))])
    assert starts(sched) == [1, 3]  # 99 is no job (any more): its end is long past
    sched.ended(1, FAILED)
    assert starts(sched) == [2]


def test_after_starts_once_the_other_started_in_the_same_plan_after_it():
    sched = make(cores=4, jobs=[Job(1), Job(2, deps=(("after", 1),)), Job(3, deps=(("after", 2),))])
    assert starts(sched) == [1, 2, 3]


def test_after_does_not_jump_the_queue():
    # 2 waits on a job chosen in the same pass: 3, queued later, takes the last core first
    sched = make(cores=2, jobs=[Job(1), Job(2, deps=(("after", 1),)), Job(3)])
    assert starts(sched) == [1, 3]
    sched.ended(3, COMPLETED)
    assert starts(sched) == [2]


def test_dependencies_on_jobs_it_does_not_know_are_asked_of_the_store_once_final():
    store = {10: COMPLETED, 11: FAILED, 12: RUNNING, 13: PENDING}
    sched = make(cores=8, store=store, jobs=[
        Job(20, deps=(("afterok", 10),)), Job(21, deps=(("afterok", 11),)), Job(22, deps=(("afterok", 12),)),
        Job(23, deps=(("after", 12),)), Job(24, deps=(("after", 13),)), Job(25, deps=(("afterok", 404),))])
    plan = sched.schedule()
    assert ids(plan.starts) == [20, 23]
    assert plan.dropped == [Dropped(21, NEVER_REASON), Dropped(25, NEVER_REASON)]
    assert sched.known[10] == COMPLETED and sched.known[11] == FAILED
    assert 12 not in sched.known and 13 not in sched.known  # states that change are asked again
    store[12] = COMPLETED
    store[13] = RUNNING
    assert starts(sched) == [22, 24]


def test_several_dependencies_all_hold():
    sched = make(cores=8, jobs=[Job(1), Job(2), Job(3, deps=(("afterok", 1), ("afternotok", 2)))])
    assert starts(sched) == [1, 2]
    sched.ended(1, COMPLETED)
    assert starts(sched) == []
    assert sched.ended(2, COMPLETED) == [Dropped(3, NEVER_REASON)]


def test_held_jobs_hold_back_their_dependents():
    # a held job is not in the queue (the runner reads PENDING rows only); its dependents wait on it
    store = {1: HELD}
    sched = make(cores=4, store=store, jobs=[Job(2, deps=(("afterok", 1),)), Job(3, deps=(("after", 1),)),
                                             Job(4, deps=(("afterany", 1),))])
    assert starts(sched) == []
    store[1] = PENDING  # released: the runner queues it
    sched.queue(Job(1))
    assert starts(sched) == [1, 3]  # 3 needs it started only
    sched.ended(1, COMPLETED)
    assert starts(sched) == [2, 4]


def test_singleton_waits_for_the_earlier_jobs_of_its_name_and_user():
    sched = make(cores=8, jobs=[Job(1, name="a", user="u", singleton=True), Job(2, name="a", user="u", singleton=True),
                                Job(3, name="a", user="v", singleton=True), Job(4, name="b", user="u", singleton=True),
                                Job(5, name="a", user="u")])
    assert starts(sched) == [1, 3, 4, 5]  # 5 is no singleton: it does not wait
    sched.ended(1, COMPLETED)
    assert starts(sched) == []  # 5, of the same name and user, runs (as under Slurm)
    sched.ended(5, COMPLETED)
    assert starts(sched) == [2]


def test_singleton_waits_for_a_running_job_of_its_name_not_a_discarded_one():
    sched = make(cores=8, jobs=[Job(2, name="a", user="u", singleton=True)])
    sched.run(Job(1, name="a", user="u"))
    assert starts(sched) == []
    sched.discard(1)
    assert starts(sched) == [2]
