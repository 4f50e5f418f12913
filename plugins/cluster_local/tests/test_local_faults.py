"""The local backend under faults (issue 12): processes that escape their job, a full disk, a damaged
state database, a runner restart. Real runner, real processes, real (small tmpfs) file systems."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

import cluster_core as cc
import cluster_local
from cluster_core.errors import SchedulerError, SubmitError
from cluster_core.records import State
from local_helpers import gone, until


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture
def tmpfs(tmp_path):
    """Mount small tmpfs file systems; each is unmounted after the test. Ask for it before ``local``,
    so that the runner has been shut down when they go."""
    if os.geteuid() != 0:
        _unavailable("mounting a small tmpfs needs root")
    mounted: list[Path] = []

    def mount(path: Path, size: str = "2m") -> Path:
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode:
            _unavailable(f"cannot mount a tmpfs: {done.stderr.strip()}")
        mounted.append(path)
        return path
    yield mount
    for path in reversed(mounted):
        for proc in psutil.process_iter(["cmdline"]):  # a runner a failed test left serving it
            if str(path) in (proc.info["cmdline"] or []):
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(path)], check=True)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to its last byte with one file; returns the file."""
    path = directory / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            while True:
                try:
                    if os.write(fd, b"\0" * size) < size:
                        break
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return path


def pid_file(local, name: str) -> int:
    return int(until(lambda: local.path(name).exists() and local.path(name).read_text().strip(), 20,
                     f"{name} to be written"))


# --- 1. a job's processes, however far they went --------------------------------------------------

DOUBLE_FORK = "(setsid bash -c 'echo $$ > {f}; exec sleep 311' &)\n"  # leaves the job's session and tree
NO_MARKER = ("(env -u CLUSTER_LOCAL_JOB {py} -c 'import os, sys, time; os.setpgid(0, 0); "
             "open(sys.argv[1], \"w\").write(str(os.getpid())); time.sleep(312)' {f} &)\n")


def _escaped(local, job: str, name: str) -> int:
    """The pid a job wrote to ``name``, checked to be outside the job's process group and tree."""
    pid = pid_file(local, name)
    job_pid = until(lambda: _job_pid(local, job), 10, "the job's pid")
    assert os.getpgid(pid) != job_pid
    assert pid not in [p.pid for p in psutil.Process(job_pid).children(recursive=True)]
    return pid


def _job_pid(local, job: str):
    from cluster_local.store import connect
    row = connect(local.state_dir).execute("SELECT pid FROM jobs WHERE id=?", (int(job),)).fetchone()
    return row[0] if row else None


def test_cancel_kills_a_double_forked_child(local):
    job = local.submit(DOUBLE_FORK.format(f=local.q("stray")) + "sleep 300\n")
    stray = _escaped(local, job, "stray")
    assert os.getsid(stray) == stray  # a session of its own
    local.backend.cancel([job])
    assert local.wait([job])[job].state is State.CANCELLED
    until(lambda: gone(stray), 10, "the double-forked child to be killed")


def test_cancel_kills_a_session_member_that_dropped_the_marker(local):
    job = local.submit(NO_MARKER.format(py=sys.executable, f=local.q("stray")) + "sleep 300\n")
    stray = _escaped(local, job, "stray")
    local.backend.cancel([job])
    assert local.wait([job])[job].state is State.CANCELLED
    until(lambda: gone(stray), 10, "the session member to be killed")


def test_cancel_without_a_runner_kills_a_double_forked_child(local, runner_pid):
    job = local.submit(DOUBLE_FORK.format(f=local.q("stray")) + "sleep 300\n")
    stray = _escaped(local, job, "stray")
    old = runner_pid()
    os.kill(old, signal.SIGKILL)
    until(lambda: gone(old), 10, "the runner to die")
    local.backend.cancel([job])
    assert local.wait([job])[job].state is State.CANCELLED
    until(lambda: gone(stray), 10, "the double-forked child to be killed")


def test_time_limit_kills_a_double_forked_child(local):
    job = local.submit(DOUBLE_FORK.format(f=local.q("stray")) + "sleep 300\n", time="2s")
    stray = _escaped(local, job, "stray")
    assert local.wait([job])[job].state is State.TIMEOUT
    until(lambda: gone(stray), 10, "the double-forked child to be killed")


def test_a_runner_stopped_by_sigterm_kills_a_double_forked_child(local, runner_pid):
    job = local.submit(DOUBLE_FORK.format(f=local.q("stray")) + "sleep 300\n")
    stray = _escaped(local, job, "stray")
    pid = runner_pid()
    os.kill(pid, signal.SIGTERM)
    until(lambda: gone(pid), 15, "the runner to stop")
    assert gone(stray)


def test_a_double_forked_child_ends_with_its_job(local):
    """As under Slurm's cgroups: what a job started does not outlive it, even when it left its session."""
    job = local.submit(DOUBLE_FORK.format(f=local.q("stray")) + local.gate("end") + "exit 0\n")
    stray = _escaped(local, job, "stray")
    local.open_gate("end")
    assert local.wait([job])[job].state is State.COMPLETED
    until(lambda: gone(stray), 10, "the double-forked child to be killed")


# --- 2. a full disk ---------------------------------------------------------------------------------

def test_a_full_state_dir_refuses_a_submission_with_our_error(tmpfs, local):
    filler = fill(tmpfs(local.state_dir))
    with pytest.raises(SubmitError) as info:  # before any database exists
        local.submit("exit 0\n")
    assert str(local.state_dir) in str(info.value) and "full" in str(info.value)
    filler.unlink()
    job = local.submit("exit 0\n")
    assert local.wait([job])[job].state is State.COMPLETED


def test_a_state_dir_that_fills_up_refuses_submissions_and_works_again_once_space_is_back(tmpfs, local):
    tmpfs(local.state_dir)
    first = local.submit("exit 0\n")
    local.wait([first])
    filler = fill(local.state_dir)
    with pytest.raises(SubmitError) as info:
        local.submit("exit 0\n")
    assert str(local.state_dir) in str(info.value) and "full" in str(info.value)
    assert local.state(first) == "completed"  # reading still works
    filler.unlink()
    again = local.submit("exit 0\n")
    assert int(again) > int(first)
    assert local.wait([again])[again].state is State.COMPLETED


def test_the_runner_pauses_while_it_cannot_write_and_loses_nothing(tmpfs, local):
    from cluster_local.journal import MAX_PAUSE
    tmpfs(local.state_dir)
    job = local.submit(local.gate("end") + "exit 0\n")
    local.wait_state(job, "running")
    filler = fill(local.state_dir)
    local.open_gate("end")  # the job ends; the runner cannot record it
    status = until(lambda: (s := cluster_local.runner_status()) and s["db_failures"] >= 3 and s, 30,
                   "the runner to fail to write three times")
    later = until(lambda: (s := cluster_local.runner_status()) and s["db_failures"] >= 5 and s, 30,
                  "the runner to fail to write five times")
    assert status["db_pause"] < later["db_pause"] <= MAX_PAUSE  # a growing, bounded pause
    assert local.state(job) == "running"  # not written yet
    filler.unlink()
    assert local.wait([job])[job].state is State.COMPLETED  # written once space is back
    assert cluster_local.runner_status()["db_failures"] == 0


@pytest.mark.parametrize("how", ["sigterm", "shutdown"])
def test_the_runner_stops_whatever_its_disk(tmpfs, local, runner_pid, how):
    tmpfs(local.state_dir)
    job = local.submit("echo $$ > " + local.q("pid") + "\n" + local.gate("never") + "exit 0\n")
    local.wait_state(job, "running")
    shell = pid_file(local, "pid")
    pid = runner_pid()
    filler = fill(local.state_dir)
    if how == "sigterm":
        os.kill(pid, signal.SIGTERM)
        until(lambda: gone(pid), 20, "the runner to stop")
    else:
        assert cluster_local.shutdown_runner(timeout=20) is True
        assert gone(pid)
    assert gone(shell)
    filler.unlink()


def test_a_job_that_fails_on_a_full_disk_says_so(tmpfs, local):
    jobs = tmpfs(local.tmp / "jobs", "1m")
    fill(jobs)
    job = local.submit("echo a result that does not fit > " + local.q("jobs/result") + " || exit 1\n",
                       outfile=str(jobs / "job.out"), errfile=str(jobs / "job.err"))
    record = local.wait([job])[job]
    assert record.state is State.FAILED and record.exitcode == 1
    assert str(jobs) in record.reason and "free" in record.reason


# --- 3. a damaged state database --------------------------------------------------------------------

PREPARE = """
import sys, time
from pathlib import Path
import cluster_local
from cluster_core import plugins
from cluster_core.options import check_arguments
be = plugins.backend("local")
ids = []
for i in range(3):
    script = Path(sys.argv[1]) / f"before{i}.sh"
    script.write_text("exit 0\\n")
    ids.append(be.submit(script, check_arguments({"outfile": f"{script}.out", "errfile": f"{script}.err"}), True))
while any(not j.state.finished for j in be.parse_queue(ids, None, None)):
    time.sleep(0.01)
cluster_local.shutdown_runner()
print(max(map(int, ids)))
"""


def _damage(local, how: str) -> int:
    """Run three jobs from another process (this one never opens the database), stop the runner, then
    damage the database as ``how`` says; returns the last job id."""
    done = subprocess.run([sys.executable, "-c", PREPARE, str(local.tmp)], capture_output=True, text=True,
                          timeout=60, cwd=local.tmp)
    assert done.returncode == 0, done.stderr
    db = local.state_dir / "jobs.db"
    assert not (local.state_dir / "jobs.db-wal").exists()  # whole in jobs.db: the last connection closed
    size = db.stat().st_size
    if how == "half":
        os.truncate(db, size // 2)
    elif how == "garbage":
        db.write_bytes(os.urandom(size))
    else:
        os.truncate(db, 0)
    return int(done.stdout)


def _aside(local) -> list:
    """Damaged databases set aside (without their -wal and -shm files)."""
    return [p for p in local.state_dir.glob("jobs.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]


@pytest.mark.parametrize("how", ["half", "garbage", "empty"])
def test_a_damaged_database_is_set_aside_and_job_ids_never_repeat(local, caplog, how):
    last = _damage(local, how)
    caplog.set_level("WARNING", logger="cluster_core.local")
    job = local.submit("exit 0\n")
    assert int(job) > last
    assert local.wait([job])[job].state is State.COMPLETED
    aside = _aside(local)
    if how == "empty":  # a valid, empty database: nothing to set aside, but the ids go on
        assert not aside
    else:
        assert len(aside) == 1 and str(aside[0]) in caplog.text
    assert local.jobs([str(last)]).get(str(last)) is None or local.state(str(last)) == "completed"


@pytest.mark.parametrize("entry", ["queue", "cancel", "release", "runner", "cli"])
def test_every_entry_point_gets_past_a_damaged_database(local, entry):
    last = _damage(local, "garbage")
    if entry == "queue":
        local.backend.parse_queue(None, None, None)
    elif entry == "cancel":
        local.backend.cancel([str(last)])
    elif entry == "release":
        cluster_local.release([str(last)])
    elif entry == "runner":
        cluster_local.ensure_runner()
    else:
        done = subprocess.run([sys.executable, "-m", "cluster_core", "queue", "--backend", "local"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert len(_aside(local)) == 1
    job = local.submit("exit 0\n")
    assert int(job) > last and local.wait([job])[job].state is State.COMPLETED


def test_a_database_replaced_under_a_running_runner(local):
    """Another process sets the damaged database aside while the runner runs a job: the runner writes
    that job into the new database and records its end there."""
    running = local.submit(local.gate("end") + "exit 0\n")
    local.wait_state(running, "running")
    db = local.state_dir / "jobs.db"
    garbage = local.state_dir / "garbage"
    garbage.write_bytes(os.urandom(db.stat().st_size))
    os.replace(garbage, db)  # a broken copy put in its place, without the old one's -wal and -shm
    for name in ("jobs.db-wal", "jobs.db-shm"):
        (local.state_dir / name).unlink()
    later = local.submit("exit 0\n")  # sets the damaged file aside
    assert int(later) > int(running)
    assert len(_aside(local)) == 1
    until(lambda: local.jobs([running]).get(running), 10, "the runner to record its job again")
    assert local.state(running) == "running"
    local.open_gate("end")
    jobs = local.wait([running, later])
    assert all(j.state is State.COMPLETED for j in jobs.values())


def test_an_unusable_database_gives_our_error(local):
    """A state database that is a directory cannot be opened, let alone set aside as damaged."""
    (local.state_dir / "jobs.db").mkdir(parents=True)
    with pytest.raises(SubmitError) as info:
        local.submit("exit 0\n")
    assert str(local.state_dir) in str(info.value)
    with pytest.raises(SchedulerError):
        local.backend.parse_queue(None, None, None)
    (local.state_dir / "jobs.db").rmdir()


# --- 4. a job adopted by a new runner ---------------------------------------------------------------

@pytest.fixture
def fresh_tracker(local):
    from cluster_core.queue import reset_trackers
    reset_trackers("local")
    yield local
    reset_trackers("local")


@pytest.mark.parametrize("code", [0, 3])
def test_a_job_adopted_after_a_runner_restart_ends_as_it_did(fresh_tracker, runner_pid, tmp_path, code):
    gate = tmp_path / "gate"
    j = cc.submit(f"while [ ! -e {gate} ]; do sleep 0.01; done; exit {code}", backend="local")
    until(lambda: j.state is State.RUNNING, 20, "the job to run")
    old = runner_pid()
    os.kill(old, signal.SIGKILL)
    until(lambda: gone(old), 10, "the runner to die")
    cluster_local.ensure_runner()
    until(lambda: int(j.id) in cluster_local.runner_status()["running"], 10, "the job to be adopted")
    gate.touch()
    j.wait(timeout=30)
    expected = State.COMPLETED if code == 0 else State.FAILED
    assert j.state is expected and j.exitcode == code
    assert "lost" not in (j.record.reason or "")
    row = fresh_tracker.job(j.id)  # what the backend itself reports
    assert row.state is expected and row.exitcode == code and "lost" not in (row.reason or "")


def test_a_job_that_ended_while_no_runner_ran_ends_as_it_did(fresh_tracker, runner_pid, tmp_path):
    gate = tmp_path / "gate"
    j = cc.submit(f"echo $$ > {tmp_path / 'pid'}; while [ ! -e {gate} ]; do sleep 0.01; done; exit 0",
                  backend="local")
    shell = int(until(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip(), 20,
                      "the job to run"))
    old = runner_pid()
    os.kill(old, signal.SIGKILL)
    until(lambda: gone(old), 10, "the runner to die")
    gate.touch()
    until(lambda: gone(shell), 10, "the job to end")
    row = fresh_tracker.wait([j.id])[j.id]  # asking starts a runner, which settles the job
    assert row.state is State.COMPLETED and row.exitcode == 0 and "lost" not in (row.reason or "")
