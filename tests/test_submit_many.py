"""Submitting several jobs at once: the ``submit_many`` hook, and the fallback for backends without it."""

from __future__ import annotations

import contextlib

import pytest

import cluster_core as cc
from cluster_core import hookimpl, plugins, registry, session
from cluster_core.errors import BackendError, SubmitError
from cluster_core.hookspecs import Submission
from cluster_core.options import check_arguments
from cluster_core.errors import PartialSubmitError
from toy_backend import ToyBackend


def _scripts(tmp_path, n):
    jobs = []
    for i in range(n):
        script = tmp_path / f"s{i}.sh"
        script.write_text(f"#!/bin/bash\necho {i}\n")
        jobs.append((script, check_arguments({"outfile": str(tmp_path / f"s{i}.out"),
                                              "errfile": str(tmp_path / f"s{i}.err")})))
    return jobs


def test_without_the_hook_each_job_is_submitted_in_turn(toy, tmp_path):
    ids = plugins.backend("toy").submit_many(_scripts(tmp_path, 3))
    assert ids == ["1.toy", "2.toy", "3.toy"] and toy.calls == ["submit"] * 3
    assert cc.wait(ids)
    assert [(tmp_path / f"s{i}.out").read_text() for i in range(3)] == ["0\n", "1\n", "2\n"]
    assert plugins.backend("toy").submit_many([]) == []


def test_a_map_on_the_fallback_records_every_task(toy):
    tasks = cc.map(abs, [-i for i in range(20)])
    assert toy.calls.count("submit") == 20
    assert cc.get(tasks) == list(range(20))
    record = registry.load("toy", tasks[0].job.id)
    assert record.kind == "tasks" and list(record.indices) == list(range(20))
    assert list(record.task_ids) == [t.id for t in tasks]
    assert cc.Job.from_id(tasks[13].id).index == 13  # each task found by its own id (its alias)


class _FailsAt(ToyBackend):
    """A toy backend whose scheduler refuses the n-th submission."""

    def __init__(self, n: int):
        super().__init__(name="toyfail")
        self.n = n

    @hookimpl
    def submit(self, script, options, directives_in_script):
        if self.calls.count("submit") + 1 == self.n:
            self.calls.append("refused")
            raise SubmitError("the queue is full", keyword="partition")
        return ToyBackend.submit(self, script, options, directives_in_script)


@contextlib.contextmanager
def _registered(backend, monkeypatch, tmp_path):
    """``backend`` registered in a fresh session and chosen, in tmp_path; its processes ended afterwards."""
    with session.fresh():
        plugins.register(backend, name=backend.name)
        monkeypatch.setenv("CLUSTER_BACKEND", backend.name)
        monkeypatch.chdir(tmp_path)
        try:
            yield backend
        finally:
            for proc in backend.procs.values():
                if proc.poll() is None:
                    proc.kill()
                proc.wait()


@pytest.fixture
def failing(cluster_config, tmp_path, monkeypatch):
    with _registered(_FailsAt(12), monkeypatch, tmp_path) as backend:
        yield backend


def test_a_failure_part_way_keeps_the_jobs_that_went_through(failing, tmp_path):
    with pytest.raises(PartialSubmitError) as info:
        plugins.backend("toyfail").submit_many(_scripts(tmp_path, 14))
    assert info.value.submitted == [f"{i}.toy" for i in range(1, 12)] and info.value.keyword == "partition"
    assert "11 of 14 jobs were submitted" in str(info.value) and "the queue is full" in str(info.value)


def test_a_map_failing_part_way_records_the_tasks_submitted(failing):
    # batches of 8 then 16: the first batch is recorded, and the 3 tasks of the second that went through
    with pytest.raises(SubmitError) as info:
        cc.map(abs, [-i for i in range(30)])
    assert isinstance(info.value, PartialSubmitError) and len(info.value.submitted) == 11
    assert "11 of 30 tasks were submitted" in str(info.value) and "the queue is full" in str(info.value)
    assert info.value.keyword == "partition"
    record = registry.load("toyfail", "@1.toy")
    assert list(record.indices) == list(range(11)) and len(record.task_ids) == 11
    tasks = [cc.Job.from_id(task_id) for task_id in record.task_ids]
    assert [t.index for t in tasks] == list(range(11))
    assert cc.get(tasks) == list(range(11))


def test_a_map_failing_at_the_start_of_a_batch_says_what_went_through(cluster_config, tmp_path, monkeypatch):
    # the first batch (8) went through whole, the second fails at its first job
    with _registered(_FailsAt(9), monkeypatch, tmp_path):
        with pytest.raises(PartialSubmitError) as info:
            cc.map(abs, [-i for i in range(30)])
        assert info.value.submitted == [f"{i}.toy" for i in range(1, 9)]
        assert "8 of 30 tasks were submitted" in str(info.value) and info.value.keyword == "partition"
        assert cc.get([cc.Job.from_id(t) for t in info.value.submitted]) == list(range(8))


def test_a_failure_of_the_first_job_raises_it_as_it_is(cluster_config, tmp_path, monkeypatch):
    with _registered(_FailsAt(1), monkeypatch, tmp_path):
        with pytest.raises(SubmitError) as info:
            cc.map(abs, [1, 2, 3])
        assert not isinstance(info.value, PartialSubmitError) and info.value.keyword == "partition"
        assert registry.load("toyfail", "@1.toy") is None


class _Batches(ToyBackend):
    """A toy backend with the hook: records each batch it is given."""

    def __init__(self, wrong: bool = False):
        super().__init__(name="toybatch")
        self.batches: list[list[Submission]] = []
        self.wrong = wrong

    @hookimpl
    def submit_many(self, submissions):
        self.batches.append(list(submissions))
        ids = [self.submit(s.script, s.options, s.directives_in_script) for s in submissions]
        return ids[:-1] if self.wrong else ids


def test_the_hook_gets_growing_batches_with_submit_arguments(cluster_config, tmp_path, monkeypatch):
    with _registered(_Batches(), monkeypatch, tmp_path) as backend:
        tasks = cc.map(abs, range(30))
        assert [len(b) for b in backend.batches] == [8, 16, 6]
        first = backend.batches[0][0]
        assert isinstance(first, tuple) and first.directives_in_script is True and first.arguments == []
        assert "jobdir" not in first.options and first.options["outfile"].endswith(".0.out")
        assert first.call is not None and first.call.task == 0
        assert cc.get(tasks) == list(range(30))


def test_a_hook_answering_the_wrong_number_of_ids_is_an_error(cluster_config, tmp_path, monkeypatch):
    with _registered(_Batches(wrong=True), monkeypatch, tmp_path):
        with pytest.raises(BackendError, match="returned 2 ids for 3 jobs"):
            plugins.backend("toybatch").submit_many(_scripts(tmp_path, 3))
