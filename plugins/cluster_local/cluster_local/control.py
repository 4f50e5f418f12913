"""Watching and controlling the local scheduler's jobs: ``cluster queue``, ``cancel``, release, shutdown.

Each is one short transaction on the state database (see store.py), followed by a poke of the runner
(client.py) when it has something to do: look at cancelled or released jobs again. Without a runner, a
cancel kills the job's processes itself (holding runner.lock, so none starts meanwhile).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Mapping, Optional, Sequence, cast

from cluster_core.backend import SchedulerError, is_job_file, read_exit_file, requeued

from .client import (LOST_REASON, ensure_runner, request, runner_alive, runner_lock_if_free, runner_or_locked,
                     runner_status)
from .settings import kill_grace, state_dir, state_key
from .store import (CANCELLED, COMPLETED, FAILED, HELD, PENDING, RUNNING, UNKNOWN, chunks, placeholders, transaction,
                    using)

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger("cluster_core.local")


def _ints(job_ids: Sequence[Any]) -> list[int]:
    out = []
    for j in job_ids:
        text = str(getattr(j, "id", j)).strip()
        if text.isdigit():
            out.append(int(text))
    return sorted(set(out))


# --- watching ---------------------------------------------------------------------------------------

_COLUMNS = "id, name, state, exitcode, reason, cores, submit_time, start_time, end_time, user"
RECENT = 300.0  # finished jobs stay in an unfiltered listing this long, like Slurm's MinJobAge


def job_rows(job_ids: Optional[Sequence[Any]] = None, user: Optional[str] = None,
             sdir: Optional[Path] = None) -> list[sqlite3.Row]:
    """Rows of the given jobs (those known), or of every active or recently finished job."""
    sdir = state_dir(sdir)

    def read(conn: sqlite3.Connection) -> list[sqlite3.Row]:
        if job_ids is None:
            return list(conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state IN ('PENDING', 'HELD', 'RUNNING') OR end_time > ? "
                f"ORDER BY id", (time.time() - RECENT,)))
        rows: list[sqlite3.Row] = []
        for part in chunks(_ints(job_ids)):
            rows += conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id IN ({placeholders(part)})", part)
        return rows
    rows = using(sdir, read)
    if user:
        rows = [r for r in rows if r["user"] == user]
    if any(r["state"] in (PENDING, RUNNING) for r in rows) and not runner_alive(sdir):
        # the runner left or died: start one, which adopts or settles what it finds
        try:
            ensure_runner(sdir)
        except SchedulerError as exc:
            log.warning("%s", exc)
    return rows


# --- cancelling and releasing -----------------------------------------------------------------------

def cancel(job_ids: Sequence[Any], sdir: Optional[Path] = None, reason: str = "cancelled by user") -> None:
    """Cancel jobs: queued ones at once, running ones by the runner (or here, when none is alive)."""
    sdir = state_dir(sdir)
    ids = _ints(job_ids)
    if not ids:
        return

    def ask(conn: sqlite3.Connection) -> int:
        changed = 0
        with transaction(conn):
            for part in chunks(ids):
                qs = placeholders(part)
                changed += conn.execute(
                    f"UPDATE jobs SET state=?, reason=?, end_time=?, env='{{}}' WHERE id IN ({qs}) AND state IN (?, ?)",
                    (CANCELLED, reason, time.time(), *part, PENDING, HELD)).rowcount
                changed += conn.execute(
                    f"UPDATE jobs SET cancel_requested=1 WHERE id IN ({qs}) AND state=?",
                    (*part, RUNNING)).rowcount
        return changed
    if using(sdir, ask):
        runner_or_locked(sdir, "sync", lambda: settle_without_runner(sdir, reason, cancelled=ids))


def settle_without_runner(sdir: Path, reason: str = "cancelled by user", everything: bool = False,
                          cancelled: Collection[int] = ()) -> None:
    """With runner.lock held and no runner: kill running jobs asked to be cancelled (all of them with
    ``everything``: their process trees, sessions and whatever carries their marker), settle those of
    their kind already gone by their exit files, and kill stray processes of finished jobs. Of the
    ``cancelled`` jobs, one a dead runner started and never recorded (its row still says queued) is found
    by its marker and killed too."""
    from . import proctools  # psutil: only here, not on a submitter's way (15 ms of its first call)
    key = state_key(sdir)
    where = "state='RUNNING'" if everything else "state='RUNNING' AND cancel_requested=1"
    rows = using(sdir, lambda conn: list(conn.execute(
        f"SELECT id, pid, pid_ctime, script, call, cancel_requested FROM jobs WHERE {where}")))
    roots = {row["id"]: proctools.find(row["pid"], row["pid_ctime"], f"{key}:{row['id']}") for row in rows}
    marks = proctools.marked(key, {row["pid"]: row["id"] for row in rows if roots[row["id"]]}) \
        if (rows or everything or cancelled) else {}
    grace = kill_grace()
    for job_id in set(cancelled) - set(roots):
        procs = marks.pop(job_id, [])
        leader = next((proc for proc in procs if proctools.is_session_leader(proc)), None)
        if procs:
            proctools.terminate(procs, leader.pid if leader else None, grace)
    outcome: list[tuple[str, Optional[int], Optional[str], float, int]] = []
    for row in rows:
        root = roots[row["id"]]
        procs = proctools.tree(root) + marks.pop(row["id"], [])
        if root is not None:
            proctools.terminate(procs, row["pid"], grace)
            outcome.append((CANCELLED, None, reason, time.time(), row["id"]))
        else:
            proctools.terminate(procs, None, 0)
            outcome.append((*ended_while_unwatched(row, time.time()), row["id"]))
    if everything:
        for procs in marks.values():
            proctools.terminate(procs, None, 0)

    def record(conn: sqlite3.Connection) -> None:
        with transaction(conn):
            if everything:
                conn.execute("UPDATE jobs SET state=?, reason=?, end_time=? WHERE state IN (?, ?)",
                             (CANCELLED, reason, time.time(), PENDING, HELD))
            for state, code, why, end, job_id in outcome:
                conn.execute("UPDATE jobs SET state=?, exitcode=?, reason=?, end_time=?, env='{}' "
                             "WHERE id=? AND state=?", (state, code, why, end, job_id, RUNNING))
    if everything or outcome:
        using(sdir, record)


def exit_file_of(script: Optional[str], call: Optional[str]) -> Optional[Path]:
    """The exit file a cluster-core job script (or its warm worker) writes; None for another script."""
    path = json.loads(call).get("exit") if call else None
    if path is None and script and script.endswith(".sh") and is_job_file(Path(script)):
        path = script[:-len("sh")] + "exit"
    return Path(path) if path else None


def ended_while_unwatched(row: Mapping[str, Any], now: float) -> tuple[str, Optional[int], Optional[str], float]:
    """How a job recorded as running, whose processes are all gone, ended: by its exit file; one asked to
    be cancelled ended cancelled unless it completed first (killed, its script records only the signal);
    with neither, the job is lost."""
    ended = ended_by_exit_file(row["script"], row["call"])
    if row["cancel_requested"] and (ended is None or ended[0] != COMPLETED):
        return CANCELLED, None, "cancelled by user", ended[3] if ended else now
    return ended or (UNKNOWN, None, LOST_REASON, now)


def asks_requeue(script: Optional[str], call: Optional[str]) -> bool:
    """True when the job's exit file says it saved a checkpoint and must run again (it did not end)."""
    path = exit_file_of(script, call)
    return path is not None and requeued(path)


def ended_by_exit_file(script: Optional[str], call: Optional[str]
                       ) -> Optional[tuple[str, int, Optional[str], float]]:
    """How a job ended by the exit record its cluster-core script (or warm worker) wrote: state, exit
    code, reason and end time; None without one (not a cluster-core job, or killed before it wrote)."""
    path = exit_file_of(script, call)
    ended = read_exit_file(path) if path else None
    if ended is None:
        return None
    end = ended.end or time.time()
    # cast: only a not-run record lacks a return code
    code = 0 if ended.not_run else cast(int, ended.returncode)  # "not run": the script left at once, with 0
    return (COMPLETED, 0, None, end) if code == 0 else (FAILED, code, f"exit code {code}", end)


def release(job_ids: Sequence[Any], sdir: Optional[Path] = None) -> int:
    """Let held jobs run; returns how many were released."""
    sdir = state_dir(sdir)
    ids = _ints(job_ids)

    def free(conn: sqlite3.Connection) -> int:
        changed = 0
        with transaction(conn):
            for part in chunks(ids):
                changed += conn.execute(f"UPDATE jobs SET state=? WHERE id IN ({placeholders(part)}) AND state=?",
                                        (PENDING, *part, HELD)).rowcount
        return changed
    changed = using(sdir, free)
    if changed:
        ensure_runner(sdir, "sync")
    return changed


# --- the runner as a whole --------------------------------------------------------------------------


def shutdown_runner(sdir: Optional[Path] = None, timeout: float = 30.0) -> bool:
    """Stop the runner of a state dir, cancelling every queued and running job (their processes are
    killed), and kill stray processes of earlier jobs. True when a runner was running."""
    sdir = state_dir(sdir)
    status = runner_status(sdir)
    if status is not None:
        request(sdir, "shutdown", timeout=timeout)  # answered as the runner leaves
    deadline = time.monotonic() + timeout
    while True:
        # the lock goes with the runner's process (even while it is a zombie nobody has reaped)
        with runner_lock_if_free(sdir) as free:
            if free:
                try:
                    settle_without_runner(sdir, "runner shut down", everything=True)
                except SchedulerError as exc:  # the jobs' processes are gone; their states wait for a runner
                    log.warning("the local runner for %s stopped, but its jobs could not be marked "
                                "cancelled: %s", sdir, exc)
                return status is not None
        if time.monotonic() > deadline:
            raise SchedulerError(f"the local runner for {sdir} did not stop within {timeout:g} s")
        request(sdir, "shutdown", timeout=timeout)
        time.sleep(0.01)


def purge(older_than: float = 7 * 86400, sdir: Optional[Path] = None) -> int:
    """Forget jobs that finished more than ``older_than`` seconds ago; returns how many."""
    def forget(conn: sqlite3.Connection) -> int:
        with transaction(conn):
            return conn.execute(
                "DELETE FROM jobs WHERE end_time < ? AND state NOT IN ('PENDING', 'HELD', 'RUNNING')",
                (time.time() - older_than,)).rowcount
    return using(state_dir(sdir), forget)


