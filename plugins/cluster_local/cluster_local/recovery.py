"""What a new runner does first: take over what a dead runner left behind.

It adopts the jobs still running (found by pid and create time, else by the marker in their environment),
settles the ones that ended meanwhile by their exit files (a queued one too: it ran, but its runner died
before writing the start), kills strays of finished jobs, writes back the live jobs whose rows a damaged
database lost, and loads the queue. It reads everything first, so a database failure on the way leaves
nothing half done.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from . import proctools
from .control import ended_by_exit_file, ended_while_unwatched
from .scheduler import BAD, Job
from .store import CANCELLED, PENDING, RUNNING, chunks, placeholders
from .submit import user_name
from .supervisor import INFO

if TYPE_CHECKING:
    import psutil

    from .runner import Runner
    from .store import JobRow

log = logging.getLogger("cluster_core.local.runner")

KEEP_FINISHED = 7 * 86400  # seconds a finished job stays in the database


def recover(runner: Runner) -> None:
    """Run once by a new runner (``runner``: runner.Runner) before it schedules anything."""
    db, sup, sched, journal = runner.journal.db, runner.sup, runner.sched, runner.journal
    runner.last_id = db.execute("SELECT COALESCE(MAX(id), 0) FROM jobs").fetchone()[0]
    rows = list(db.execute(
        f"SELECT id, pid, pid_ctime, cores, mem_mb, time_limit, start_time, state, cancel_requested, "
        f"depends, {', '.join(INFO)} FROM jobs WHERE state IN (?, ?) AND id <= ?",
        (RUNNING, PENDING, runner.last_id)))
    running = [r for r in rows if r["state"] == RUNNING]
    marks = proctools.marked(sup.key) if (running or _has_marked_candidates(runner)) else {}
    rowless = set(marks)
    for part in chunks(list(marks)):
        rowless -= {r[0] for r in db.execute(f"SELECT id FROM jobs WHERE id IN ({placeholders(part)})", part)}
    runner.recovered = True
    journal.write("DELETE FROM jobs WHERE end_time < ? AND state NOT IN ('PENDING', 'HELD', 'RUNNING')",
                  (time.time() - KEEP_FINISHED,))
    now = time.time()
    settled: set[int] = set()  # pending rows of jobs that ran to the end unrecorded
    for row in rows:
        procs = marks.pop(row["id"], [])
        proc = proctools.find(row["pid"], row["pid_ctime"], sup.marker(row["id"])) \
            if row["state"] == RUNNING else None
        if proc is None:
            # started by a runner that died before it recorded the pid: the session leader is the job
            proc = next((p for p in procs if proctools.is_session_leader(p)), None)
        if proc is not None:
            _adopt(runner, row, proc, now)
        elif row["state"] == RUNNING:
            proctools.send(procs, signal.SIGKILL)
            state, code, reason, end = ended_while_unwatched(row, now)
            journal.write("UPDATE jobs SET state=?, exitcode=?, reason=?, end_time=?, env='{}' WHERE id=? AND state=?",
                          (state, code, reason, end, row["id"], RUNNING))
            sched.remember(row["id"], state)
            log.warning("job %d ended while no runner ran: %s", row["id"], reason or state.lower())
        elif not runner.was_clean and _ran_unrecorded(runner, row):
            settled.add(row["id"])
    for job_id, procs in marks.items():
        leader = next((p for p in procs if proctools.is_session_leader(p)), None) if job_id in rowless else None
        if leader is not None and (proctools.create_time(leader.pid) or 0) > now - KEEP_FINISHED:
            # a live job whose row a damaged database took with it: write back what can be told
            _adopt(runner, _rowless(job_id, leader), leader, now)
            journal.updates.append(journal.row_again(sup.running[job_id]))
            continue
        log.warning("killing %d stray processes of finished job %d", len(procs), job_id)  # strays
        proctools.send(procs, signal.SIGKILL)
    sched.requeue(Job.from_row(row) for row in rows if row["state"] == PENDING and row["id"] not in settled)
    for job_id, state in list(sched.known.items()):
        if state in BAD:
            runner.dropped(sched.final(job_id, state))
    runner.load_new = True


def _ran_unrecorded(runner: Runner, row: JobRow) -> bool:
    """Whether a pending job with no process left ran to the end under a runner that died before it
    wrote the start (its exit file says so): then it is settled by that file, not run a second time."""
    ended = ended_by_exit_file(row["script"], row["call"])
    if ended is None:
        return False
    state, code, reason, end = ended
    runner.journal.write("UPDATE jobs SET state=?, exitcode=?, reason=?, end_time=?, env='{}' "
                         "WHERE id=? AND state=?", (state, code, reason, end, row["id"], PENDING))
    runner.sched.remember(row["id"], state)
    log.warning("job %d ran while its start went unrecorded (the runner died): %s", row["id"],
                reason or state.lower())
    return True


def _rowless(job_id: int, proc: psutil.Process) -> dict[str, Any]:
    """What can be told of a live job from its process alone."""
    try:
        cmd, cwd = proc.cmdline(), proc.cwd()
    except Exception:  # gone meanwhile (psutil.Error), or not ours to read
        cmd, cwd = [], "/"
    script = cmd[1] if len(cmd) == 2 and os.path.basename(cmd[0]) == "bash" else ""
    return {"id": job_id, "name": f"job {job_id} (recovered)", "script": script, "workdir": cwd,
            "outfile": None, "errfile": None, "call": None, "user": user_name(), "cores": 1, "mem_mb": None,
            "time_limit": None, "start_time": None, "cancel_requested": 0}


def _has_marked_candidates(runner: Runner) -> bool:
    """Whether the last runner may have left processes behind (it did not exit cleanly)."""
    row = runner.journal.db.execute("SELECT 1 FROM jobs WHERE state=? LIMIT 1", (RUNNING,)).fetchone()
    return row is not None or not runner.was_clean


def _adopt(runner: Runner, row: JobRow, proc: psutil.Process, now: float) -> None:
    start = row["start_time"] or proc.create_time()
    run = runner.sup.adopt(row, proc, start, now)
    runner.sched.run(Job(run.id, run.cores, run.mem, name=row["name"], user=row["user"]))
    runner.journal.write("UPDATE jobs SET state=?, pid=?, pid_ctime=?, start_time=? WHERE id=?",
                         (RUNNING, proc.pid, run.ctime, start, row["id"]))
    log.info("adopted job %d (pid %d) from a previous runner", row["id"], proc.pid)
    if row["cancel_requested"]:
        runner.sup.kill(run, CANCELLED, "cancelled by user")
