"""When a tracker's outcomes go into the job records: a job's at once, an array's in growing batches (O(N)
written in all, not O(N) per poll), all of them once its tasks are done, and what is left at exit."""

import subprocess
import sys
import textwrap
import time

import pytest

from cluster_core import outcomes, registry
from cluster_core.registry import JobRecord, Outcome


@pytest.fixture
def records(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.ENV_REGISTRY, str(tmp_path / "records"))
    written = []
    real = registry.record_outcomes_many

    def counting(backend, by_record):
        written.append({rid: len(o) for rid, o in by_record.items()})
        return real(backend, by_record)
    monkeypatch.setattr(registry, "record_outcomes_many", counting)
    return written


def save(job_id, kind="job", n=0):
    registry.save(JobRecord(backend="toy", id=job_id, kind=kind, name="x", jobdir="/j", stem="x.0a1b2c3d",
                            script="/j/x.sh", outfile="/j/o", errfile="/j/e", indices=tuple(range(n)),
                            submit_time=time.time()))


def test_a_jobs_outcome_is_written_at_once(records):
    save("1")
    saver = outcomes.OutcomeSaver("toy")
    saver.add("1", None, Outcome("completed", 0))
    saver.save({})
    assert registry.load("toy", "1").outcome == Outcome("completed", 0) and records == [{"1": 1}]
    assert not saver._held and not saver._written  # nothing kept per job in a long-lived process


def test_an_arrays_outcomes_are_written_in_growing_batches_and_whole_at_the_end(records):
    n = 1000
    save("7", kind="array", n=n)
    saver = outcomes.OutcomeSaver("toy")
    for i in range(n):  # one task ends before each poll: the worst case for a rewrite per poll
        saver.add("7", i, Outcome("completed", 0))
        saver.save({"7": n - 1 - i})
    assert len(records) <= 20  # about log1.5(N) writes, not N
    assert sum(w["7"] for w in records) == n  # each outcome written once
    assert len(registry.load("toy", "7").task_outcomes) == n  # the last task's end wrote the rest
    assert not saver._held and not saver._written


def test_a_record_that_stays_open_is_written_at_least_every_fresh_for(records, monkeypatch):
    save("8", kind="array", n=100)
    clock = [1000.0]
    monkeypatch.setattr(outcomes.time, "monotonic", lambda: clock[0])
    saver = outcomes.OutcomeSaver("toy")
    for i in range(10):
        saver.add("8", i, Outcome("completed", 0))
        saver.save({"8": 90})
    before = len(records)
    saver.add("8", 10, Outcome("completed", 0))
    saver.save({"8": 89})
    assert len(records) == before  # one more of eleven: not due yet
    clock[0] += outcomes.FRESH_FOR
    saver.add("8", 11, Outcome("completed", 0))
    saver.save({"8": 88})
    assert len(records) == before + 1 and len(registry.load("toy", "8").task_outcomes) == 12


def test_what_is_left_is_written_when_the_process_exits(tmp_path, monkeypatch):
    code = textwrap.dedent("""
        import time
        from cluster_core import outcomes, registry
        from cluster_core.registry import JobRecord, Outcome
        registry.save(JobRecord(backend="toy", id="9", kind="array", name="x", jobdir="/j", stem="x.0a1b2c3d",
                                script="/j/x.sh", outfile="/j/o", errfile="/j/e", indices=tuple(range(50)),
                                submit_time=time.time()))
        saver = outcomes.OutcomeSaver("toy")
        for i in range(20):
            saver.add("9", i, Outcome("completed", 0))
            saver.save({"9": 30})
        print(len(registry.load("toy", "9").task_outcomes))
    """)
    env = {"CLUSTER_CORE_REGISTRY": str(tmp_path / "records"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) < 20  # not all written while it ran...
    monkeypatch.setenv(registry.ENV_REGISTRY, str(tmp_path / "records"))
    assert len(registry.load("toy", "9").task_outcomes) == 20  # ...and all of them at its exit
