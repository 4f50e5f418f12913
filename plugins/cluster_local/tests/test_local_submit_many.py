"""The local backend's ``submit_many`` hook against a real runner: one transaction and one poke per batch."""

from __future__ import annotations

import pytest

import cluster_core as cc
from cluster_core import registry
from cluster_core.errors import SubmitError
from cluster_core.options import check_arguments
from cluster_core.records import State


def _square(x):
    return x * x


def test_ids_come_back_in_order_and_each_runs_its_own_script(local):
    batch = [(local.script(f"echo {i}\n"), check_arguments({"outfile": str(local.path(f"b{i}.out"))}))
             for i in range(5)]
    ids = local.backend.submit_many(batch)
    assert [int(i) for i in ids] == list(range(int(ids[0]), int(ids[0]) + 5))
    jobs = local.wait(ids)
    assert all(j.state is State.COMPLETED for j in jobs.values())
    assert [local.path(f"b{i}.out").read_text() for i in range(5)] == [f"{i}\n" for i in range(5)]


def test_a_batch_of_a_thousand_is_one_transaction(local):
    script = local.script("exit 0\n")
    ids = local.backend.submit_many([(script, check_arguments({"hold": True, "name": f"h{i}"})) for i in range(1000)])
    assert [int(i) for i in ids] == list(range(int(ids[0]), int(ids[0]) + 1000))
    held = local.jobs(ids)
    assert len(held) == 1000 and {j.state for j in held.values()} == {State.HELD}
    assert [held[i].name for i in ids[:3]] == ["h0", "h1", "h2"]
    local.backend.cancel(ids)


def test_a_failing_batch_submits_none(local):
    good = (local.script("exit 0\n"), check_arguments({}))
    bad = (local.script("exit 0\n"), check_arguments({"cores": 64}))
    with pytest.raises(SubmitError) as info:
        local.backend.submit_many([good, good, bad, good])
    assert info.value.keyword == "cores"
    assert local.backend.parse_queue(None, None, None) == []


def test_map_submits_in_batches_and_records_every_task(local):
    tasks = cc.map(_square, range(40), backend="local")
    assert cc.get(tasks) == [i * i for i in range(40)]
    record = registry.load("local", tasks[0].job.id)
    assert record.kind == "tasks" and list(record.indices) == list(range(40))
    assert list(record.task_ids) == [t.id for t in tasks]
    assert [int(t.id) for t in tasks] == list(range(int(tasks[0].id), int(tasks[0].id) + 40))
    assert cc.Job.from_id(tasks[25].id).index == 25


def test_map_refused_by_the_runner_records_nothing(local):
    before = [r.id for r in registry.records("local")]  # the job records are shared by the test session
    with pytest.raises(SubmitError) as info:
        cc.map(_square, range(20), backend="local", cores=64)
    assert info.value.keyword == "cores"
    assert local.backend.parse_queue(None, None, None) == []
    assert [r.id for r in registry.records("local")] == before


def test_submitting_and_waiting_load_no_psutil(local, tmp_path):
    """psutil (15 ms of a submitter's first call) is the runner's and a direct cancel's, not a submitter's."""
    import subprocess
    import sys
    code = ("import sys, cluster_core as cc; j = cc.submit('true', backend='local'); assert j.wait(timeout=60); "
            "print('psutil' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split() == ["False"]
