"""Fault injection through the public API on the local backend (real runner, real processes): the runner
killed again and again, many submitters at once, a submitter killed in the middle of a map. Each test
counts what a user would call lost (a job that never ends or whose result is gone), wrong (a result or
state that differs from what the job did), duplicated (a job that ran twice) and hung (a wait that does
not end); every count must be zero. The figures are in docs/reliability.md.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import cluster_core as cc
from cluster_core import State

pytestmark = pytest.mark.slow


def cube(x):
    return x ** 3


def runner_pid(state) -> int | None:
    import cluster_local
    status = cluster_local.runner_status(state)
    return status["pid"] if status else None


def ran_counts(log) -> collections.Counter:
    return collections.Counter(log.read_text().split()) if log.exists() else collections.Counter()


def test_runner_killed_again_and_again(local, tmp_path):
    """SIGKILL the runner after every few jobs that end (six times in all) while 60 shell and 30 function
    jobs run: each job runs exactly once and ends with its own result."""
    log = tmp_path / "ran.log"
    shell = [cc.submit(f"echo s{i} >> {log}; sleep 0.1; exit {i % 3}") for i in range(60)]
    funcs = [cc.submit(cube, (i,)) for i in range(30)]
    kills = []
    done = threading.Event()

    def killer():
        seen = 0
        while not done.is_set() and len(kills) < 6:
            finished = len(ran_counts(log))
            pid = runner_pid(local)
            if pid and finished >= seen + 8:
                os.kill(pid, signal.SIGKILL)
                kills.append(pid)
                seen = finished
            time.sleep(0.05)
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        cc.wait(shell + funcs, timeout=600)
    finally:
        done.set()
        thread.join(10)
    counts = ran_counts(log)
    lost = [j.id for j in shell + funcs if not j.done]
    duplicated = [k for k, n in counts.items() if n > 1]
    wrong = [j.id for i, j in enumerate(shell) if (j.state, j.exitcode) != (
        State.COMPLETED if i % 3 == 0 else State.FAILED, i % 3)]
    wrong += [j.id for i, j in enumerate(funcs) if j.get() != i ** 3]
    assert len(kills) >= 4, "the runner was not killed often enough for the test to mean anything"
    assert (lost, wrong, duplicated) == ([], [], [])
    assert set(counts) == {f"s{i}" for i in range(60)}


def test_many_submitters_at_once(local, tmp_path):
    """Four processes submit 60 jobs each at the same moment: 240 distinct ids, each job run once."""
    log = tmp_path / "ran.log"
    code = f"""
import json, sys, cluster_core as cc
w = sys.argv[1]
sys.stdin.readline()  # all start together
jobs = [cc.submit(f"echo {{w}}-{{i}} >> {log}", backend="local") for i in range(60)]
print(json.dumps([j.id for j in jobs]))
"""
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=dict(os.environ)) for w in range(4)]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    ids = []
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        ids += json.loads(out)
    assert len(set(ids)) == 240
    assert cc.wait(ids, timeout=600) is True
    counts = ran_counts(log)
    assert len(counts) == 240 and set(counts.values()) == {1}


def test_submitter_killed_in_the_middle_of_a_map(local, tmp_path):
    """A process mapping 300 elements is SIGKILLed part-way: every task it submitted runs once and is
    found by its own id from another process; the map's record names its first task.

    The kill comes at the worst point, each time the same: just after the backend took the fourth batch
    (8 + 16 + 32 + 64 tasks), before the core recorded it. (Killing when 20 tasks had run raced with the
    submission, which could be over by then.)"""
    log = tmp_path / "ran.log"
    code = f"""
import os, signal
import cluster_core as cc
from cluster_core import plugins
real, batches = plugins.Backend.submit_many, []
def submit_then_die(self, jobs):
    ids = real(self, jobs)
    batches.append(len(ids))
    if len(batches) == 4:
        os.kill(os.getpid(), signal.SIGKILL)
    return ids
plugins.Backend.submit_many = submit_then_die
def note(i):
    with open({str(log)!r}, "a") as fh:
        fh.write(f"t{{i}}\\n")
    return i
cc.map(note, range(300), backend="local", name="killed-map")
"""
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    assert proc.wait(timeout=120) == -signal.SIGKILL
    submitted = [r for r in cc.get_backend("local").parse_queue(None, None, None) if r.name == "killed-map"]
    assert len(submitted) == 8 + 16 + 32 + 64, "the submitter was not killed after its fourth batch"
    assert cc.wait([r.id for r in submitted], timeout=300) is True
    counts = ran_counts(log)
    assert len(counts) == len(submitted) and set(counts.values()) == {1}
    found = [cc.Job.from_id(r.id) for r in submitted]
    # each task by its alias, as a task of the map; the tasks of the one batch submitted together just
    # before the kill, whose aliases were not all written yet, are found by their ids alone, as any job
    # the scheduler knows (the map had not returned them to its caller)
    from cluster_core.job import _OneJobPerTask
    tasks = [t for t in found if isinstance(t, cc.Task)]
    bare = [int(f.id) for f in found if not isinstance(f, cc.Task)]
    assert len(bare) == 64 <= _OneJobPerTask.LARGEST_BATCH  # the fourth batch: submitted, not recorded
    assert all(t.state is State.COMPLETED for t in found)
    assert not bare or not tasks or min(bare) > max(int(t.id) for t in tasks)  # the last ones submitted
    assert {t.get() for t in tasks} <= {int(k[1:]) for k in counts}
