"""Job records: one file per record, atomic, found by id from any process, safe with many writers."""

import json
import logging
import os
import subprocess
import sys
import time

import attrs
import pytest

from cluster_core import registry
from cluster_core.registry import JobRecord, Outcome


@pytest.fixture
def records(tmp_path, monkeypatch):
    root = tmp_path / "records"
    monkeypatch.setenv(registry.ENV_REGISTRY, str(root))
    return root


def record(job_id="12", kind="job", backend="slurm", **kw):
    base = dict(backend=backend, id=job_id, kind=kind, name="fit", jobdir="/j", stem="fit.0a1b2c3d",
                script="/j/fit.0a1b2c3d.cluster.sh", outfile="/j/o", errfile="/j/e", submit_time=time.time())
    base.update(kw)
    return JobRecord(**base)


def test_saved_record_loads_back_equal_and_is_private(records):
    rec = record(options={"cores": 2, "depends": ["1", "2"]})
    path = registry.save(rec)
    assert registry.load("slurm", "12") == rec
    registry.record_outcomes("slurm", "12", {None: Outcome("completed", 0, nodes=["n1"])})
    assert registry.load("slurm", "12") == attrs.evolve(rec, outcome=Outcome("completed", 0, nodes=("n1",)))
    assert json.loads(path.read_text()).get("outcome") is None  # the outcome lives beside the record
    assert path.parent.parent.parent == records and path.name == "12.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert registry.load("slurm", "13") is None and registry.load("torque", "12") is None
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("job_id", ["12[].server.example.org", "../../etc/passwd", ".hidden", "a/b", "1 2", "é"])
def test_any_id_is_one_file_inside_the_records(records, job_id):
    registry.save(record(job_id))
    assert registry.load("slurm", job_id).id == job_id
    files = [p for p in records.rglob("*") if p.is_file()]
    assert len(files) == 1 and records in files[0].parents and files[0].parent.parent.name == "slurm"


def test_tasks_found_by_their_own_ids_through_aliases(records):
    rec = record("@7", kind="tasks", backend="local", indices=(0, 1, 2), task_ids=("7", "9", "10"))
    registry.save(rec)
    for index, task_id in zip(rec.indices, rec.task_ids):
        registry.add_alias("local", task_id, rec.id, index)
    assert registry.resolve("local", "9") == (rec, 1)
    assert registry.resolve("local", "@7") == (rec, None)
    assert registry.resolve("local", "8") is None
    # an id a restarted scheduler hands out again: the newest alias wins
    again = record("@10", kind="tasks", backend="local", indices=(0,), task_ids=("10",))
    registry.save(again)
    registry.add_alias("local", "10", "@10", 0)
    assert registry.resolve("local", "10") == (again, 0)


def test_task_outcomes_merge_as_they_become_known(records):
    registry.save(record("5", kind="array", indices=(0, 1)))
    assert registry.load("slurm", "5").task_outcomes == {}
    registry.record_outcomes("slurm", "5", {0: Outcome("completed", 0)})
    assert set(registry.load("slurm", "5").task_outcomes) == {"0"}
    registry.record_outcomes("slurm", "5", {1: Outcome("failed", 3, reason="exit code 3")})
    rec = registry.load("slurm", "5")
    assert rec.task_outcomes == {"0": Outcome("completed", 0), "1": Outcome("failed", 3, "exit code 3")}
    registry.mark_cancel_requested("slurm", ["5", "404"])
    assert registry.load("slurm", "5").cancel_requested


def test_an_outcome_is_one_link_and_a_long_one_a_file(records):
    """A job's outcome is written with one system call (a link whose target is its JSON); an array's
    outcomes, merged as its tasks end, move to a file once too long for a link, and back is fine too."""
    registry.save(record("8"))
    side = registry.path_of("slurm", "8").with_name("8.end")
    registry.record_outcomes("slurm", "8", {None: Outcome("failed", 3, reason="exit code 3")})
    assert side.is_symlink() and json.loads(os.readlink(side))[""]["exitcode"] == 3
    assert registry.load("slurm", "8").outcome == Outcome("failed", 3, reason="exit code 3")
    registry.save(record("9", kind="array", indices=tuple(range(40))))
    side = registry.path_of("slurm", "9").with_name("9.end")
    for i in range(40):  # merged one task at a time: a link at first, a file once past the link's limit
        registry.record_outcomes("slurm", "9", {i: Outcome("completed", 0, reason=f"task {i}", nodes=["n1"])})
        if i == 0:
            assert side.is_symlink()
    assert not side.is_symlink() and side.is_file() and oct(side.stat().st_mode & 0o777) == "0o600"
    assert registry.load("slurm", "9").task_outcomes == {
        str(i): Outcome("completed", 0, reason=f"task {i}", nodes=("n1",)) for i in range(40)}
    assert not [p for p in side.parent.iterdir() if p.name.endswith(".tmp")]


def test_an_outcome_file_of_an_earlier_version_is_read_and_merged(records):
    registry.save(record("6", kind="array", indices=(0, 1)))
    side = registry.path_of("slurm", "6").with_name("6.end")
    side.write_text(json.dumps({"0": attrs.asdict(Outcome("completed", 0))}))
    assert registry.load("slurm", "6").task_outcomes == {"0": Outcome("completed", 0)}
    registry.record_outcomes("slurm", "6", {1: Outcome("failed", 2)})
    assert registry.load("slurm", "6").task_outcomes == {"0": Outcome("completed", 0), "1": Outcome("failed", 2)}


def test_no_outcome_for_a_job_without_a_record(records):
    registry.save(record("4"))
    registry.record_outcomes("slurm", "44", {None: Outcome("completed", 0)})
    registry.record_outcomes_many("slurm", {"45": {None: Outcome("completed", 0)}})
    assert sorted(p.name for p in records.rglob("*") if not p.is_dir()) == ["4.json"]


def test_history_newest_first_since_and_prune(records):
    now = time.time()
    registry.save(record("1", submit_time=now - 40 * 86400))
    registry.record_outcomes("slurm", "1", {None: Outcome("completed", 0)})
    registry.mark_cancel_requested("slurm", ["1"])
    registry.save(record("2", submit_time=now - 3600))
    registry.record_outcomes("slurm", "2", {None: Outcome("completed", 0)})  # kept, as its record
    registry.save(record("3", backend="local", submit_time=now - 60))
    old = registry.path_of("slurm", "1")
    os.utime(old, (now - 40 * 86400, now - 40 * 86400))
    assert [r.id for r in registry.records()] == ["3", "2", "1"]
    assert [r.id for r in registry.records("slurm")] == ["2", "1"]
    assert [r.id for r in registry.records(since=now - 7200)] == ["3", "2"]
    assert registry.prune(30 * 86400) == 1
    assert registry.load("slurm", "1") is None and registry.load("slurm", "2") is not None
    assert [p.name for p in registry.path_of("slurm", "1").parent.iterdir()] == []  # its side files too
    assert registry.load("slurm", "2").outcome == Outcome("completed", 0)


def test_prune_removes_aliases_of_pruned_records(records):
    rec = record("@7", kind="tasks", backend="local", indices=(0,), task_ids=("7",), submit_time=0.0)
    registry.save(rec)
    registry.add_alias("local", "7", "@7", 0)
    assert registry.prune(86400) == 1
    assert not os.path.lexists(registry.path_of("local", "7"))


def test_a_corrupt_record_is_ignored_with_a_warning(records, caplog):
    path = registry.save(record("12"))
    path.write_text('{"backend": "slurm", "id": "12", "kind"')
    with caplog.at_level(logging.WARNING, logger="cluster_core"):
        assert registry.load("slurm", "12") is None
    assert str(path) in caplog.text
    path.write_text(json.dumps({"backend": "slurm", "id": "12", "kind": "nonsense"}))
    assert registry.load("slurm", "12") is None


def test_unwritable_root_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(registry.ENV_REGISTRY, str(blocker / "records"))
    with pytest.raises(registry.RegistryError, match="core.registry"):
        registry.save(record())


def test_concurrent_writers_from_many_processes(records):
    """Eight processes save 200 records each, and rewrite one shared record's outcome: every record
    is complete, none is half-written, and no temporary file is left."""
    code = """
import sys, time
from cluster_core import registry
from cluster_core.registry import JobRecord, Outcome
w = int(sys.argv[1])
for i in range(200):
    registry.save(JobRecord(backend="slurm", id=f"{w}-{i}", kind="job", name="n", jobdir="/j", stem="s",
                            script="x", outfile="o", errfile="e", submit_time=time.time()))
    registry.save(JobRecord(backend="slurm", id="shared", kind="job", name=f"w{w}", jobdir="/j", stem="s",
                            script="x", outfile="o", errfile="e"))
    registry.record_outcomes("slurm", "shared", {None: Outcome("completed", w)})
"""
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)], env=dict(os.environ)) for w in range(8)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    found = list(registry.records("slurm"))
    assert len(found) == 8 * 200 + 1
    shared = registry.load("slurm", "shared")  # whole, from one writer or another, never half of one
    assert shared.name in {f"w{w}" for w in range(8)} and shared.outcome.exitcode in range(8)
    assert not [p for p in records.rglob("*.tmp")]


def test_a_record_of_a_newer_format_keeps_what_this_version_knows(records):
    rec = record("12")
    data = attrs.asdict(rec)
    data["a_field_from_the_future"] = 1
    registry.path_of("slurm", "12").parent.mkdir(parents=True)
    registry.path_of("slurm", "12").write_text(json.dumps(data))
    assert registry.load("slurm", "12") == rec


def test_a_new_submission_under_an_old_id_drops_the_old_end_and_cancel(records):
    registry.save(record("12"))
    registry.record_outcomes("slurm", "12", {None: Outcome("completed", 0)})
    registry.mark_cancel_requested("slurm", ["12"])
    registry.save(record("12", name="again"), new=False)  # the same submission written again: kept
    assert registry.load("slurm", "12").outcome == Outcome("completed", 0)
    registry.save(record("12", name="other"))  # a new job the scheduler gave the same id
    rec = registry.load("slurm", "12")
    assert rec.name == "other" and rec.outcome is None and not rec.cancel_requested
