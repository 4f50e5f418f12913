"""The runner's side of the store: its connection, the changes waiting to be written, the pause after a failure.

What a pass of the runner's loop decides (starts, ends, cancellations) is queued here and written in one
transaction at the end of the pass; while jobs run and others wait, the changes of the passes within
``GROUP_COMMIT`` seconds share one (a thousand tiny jobs ending one by one would otherwise cost a thousand
commits). A start written late is what a start always was between the spawn and the commit: a new runner
adopts the job by its marker (recovery), a cancel finds it the same way when no runner is alive, and one
made meanwhile by another process undoes the start (``on_zero``). A write that fails is kept for the next
try, after a pause that doubles up to ``MAX_PAUSE`` (a full disk: the runner neither spins nor gives up
what it has to write); a damaged database is set aside and the runner goes on in a new one.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Optional

from .store import (DB_NAME, PENDING, RUNNING, chunks, damaged, file_id, open_db, placeholders, problem, set_aside,
                    transaction)

if TYPE_CHECKING:
    from .supervisor import Run

log = logging.getLogger("cluster_core.local.runner")

FIRST_PAUSE, MAX_PAUSE = 0.05, 5.0  # seconds between tries while the database cannot be used: doubling
GROUP_COMMIT = 0.02  # seconds the oldest queued change may wait for others while jobs run and wait
MAX_GROUP = 512  # changes queued that are written at once all the same

# (sql, params, called when it changed no row, or None)
Update = tuple[str, tuple[Any, ...], Optional[Callable[[], None]]]


class Journal:
    def __init__(self, sdir: Path):
        self.sdir = sdir
        # open() comes before any use of the database
        self.db: sqlite3.Connection = None  # type: ignore[assignment]
        self.db_id: Optional[tuple[int, int]] = None
        self.updates: list[Update] = []
        self.held_since = 0.0  # when the oldest queued change was queued (monotonic)
        self.retry_at: Optional[float] = None  # the database failed: no use of it before then
        self.failures = 0  # passes in a row that could not use the database
        self.pause = 0.0

    def write(self, sql: str, params: tuple[Any, ...], on_zero: Optional[Callable[[], None]] = None) -> None:
        """Queue a change for the end of the pass; ``on_zero`` is called when it changed no row."""
        if not self.updates:
            self.held_since = time.monotonic()
        self.updates.append((sql, params, on_zero))

    def due(self, backlog: bool) -> Optional[float]:
        """When (monotonic) the database is to be written next: after the pause that follows a failure (then
        at once); ``GROUP_COMMIT`` after the oldest queued change while there is a ``backlog`` (jobs run,
        more wait); else at once (0), as when many are queued; None when there is nothing to write."""
        if self.retry_at:
            return self.retry_at
        if not self.updates:
            return None
        if not backlog or len(self.updates) >= MAX_GROUP:
            return 0.0
        return self.held_since + GROUP_COMMIT  # 0 + GROUP_COMMIT for changes queued by hand: at once

    def paused(self, now: float) -> bool:
        return self.retry_at is not None and now < self.retry_at

    def replaced(self) -> bool:
        """Whether the database file is another than the one open (a damaged one was set aside)."""
        return file_id(self.sdir / DB_NAME) != self.db_id

    def flush(self) -> None:
        """Write what happened in one transaction (kept for the next try when it fails)."""
        if not self.updates:
            return
        zero: list[Callable[[], None]] = []
        with transaction(self.db):
            for sql, params, on_zero in self.updates:
                if self.db.execute(sql, params).rowcount == 0 and on_zero is not None:
                    zero.append(on_zero)
        self.updates.clear()
        self.held_since = 0.0
        for callback in zero:
            callback()

    def worked(self) -> None:
        if self.failures:
            log.info("the state database works again after %d failed attempts", self.failures)
        self.failures, self.pause, self.retry_at = 0, 0.0, None

    def pause_after(self, exc: BaseException) -> None:
        """The database failed: no use of it for a pause that doubles with each failure in a row."""
        self.failures += 1
        self.pause = min(MAX_PAUSE, FIRST_PAUSE * 2 ** min(self.failures - 1, 16))
        self.retry_at = time.monotonic() + self.pause
        if self.failures == 1:
            log.warning("%s; trying again in growing pauses up to %g s (%d changes to write)",
                        problem(self.sdir, exc), MAX_PAUSE, len(self.updates))

    def open(self) -> None:
        self.close()
        try:
            self.db = open_db(self.sdir)
        except sqlite3.Error as exc:
            if not damaged(exc):
                raise
            set_aside(self.sdir)
            self.db = open_db(self.sdir)
        self.db_id = file_id(self.sdir / DB_NAME)

    def close(self) -> None:
        # SQLite does not survive fork: a worker inheriting the open database (its lock table and the map of
        # its -shm file) fails every job that submits another one ("locking protocol"); the runner closes
        # it around a fork and opens it again after
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                self.db.close()

    def reopen(self, running: Collection[Run]) -> None:
        """Go on in a new database file (the old one was set aside): write the rows of the jobs running
        (supervisor.Run) that it lacks; a start it does not know is no cancellation (see runner._discard)."""
        self.open()
        present = self.present([run.id for run in running])
        self.updates = [(sql, params, None) for sql, params, _ in self.updates]
        lost = [run for run in running if run.id not in present and not run.discard]
        self.updates += [self.row_again(run) for run in lost]
        log.warning("the state database %s was replaced; %d running jobs written into it again",
                    self.sdir / DB_NAME, len(lost))

    def reopen_after_fork(self) -> None:
        try:
            self.open()
        except (sqlite3.Error, OSError) as exc:
            log.warning("the state database cannot be opened again after a fork: %s", exc)
            self.db_id = None  # this pass fails on the closed one; the next opens it again

    # --- reads ----------------------------------------------------------------------------------

    def queue_rows(self, where: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        return list(self.db.execute(f"SELECT id, cores, mem_mb, depends, state, name, user FROM jobs WHERE {where} "
                                    f"ORDER BY id", params))

    def start_rows(self, ids: list[int]) -> dict[int, sqlite3.Row]:
        """What starting these jobs takes, by id."""
        rows: dict[int, sqlite3.Row] = {}
        for part in chunks(ids):
            for row in self.db.execute("SELECT id, name, script, env, workdir, outfile, errfile, time_limit, "
                                       f"call, user, options, reason FROM jobs WHERE id IN ({placeholders(part)})", part):
                rows[row["id"]] = row
        return rows

    def present(self, ids: list[int]) -> set[int]:
        found: set[int] = set()
        for part in chunks(ids):
            found.update(r[0] for r in self.db.execute(f"SELECT id FROM jobs WHERE id IN ({placeholders(part)})", part))
        return found

    def state(self, job_id: int) -> Optional[str]:
        row = self.db.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
        return row[0] if row else None

    def cancel_requested(self) -> list[int]:
        return [job_id for (job_id,) in
                self.db.execute("SELECT id FROM jobs WHERE state=? AND cancel_requested=1", (RUNNING,))]

    def queue_changed(self, queued: int, last_id: int) -> bool:
        """Whether the store holds other queued jobs than the ``queued`` (up to ``last_id``) the runner has."""
        count: int
        top: int
        try:
            count, top = self.db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM jobs WHERE state=?",
                                         (PENDING,)).fetchone()
        except sqlite3.Error:
            return True  # cannot tell: stay
        return count != queued or top > last_id

    @staticmethod
    def row_again(run: Run) -> Update:
        """The update that writes a running job's row (supervisor.Run) into a database that lost it (what
        only its submitter knew, its options and environment, stays empty)."""
        i = run.info
        return ("INSERT OR IGNORE INTO jobs (id, name, script, options, env, cores, mem_mb, time_limit, "
                "depends, workdir, outfile, errfile, state, pid, pid_ctime, submit_time, start_time, user, call) "
                "VALUES (?, ?, ?, '{}', '{}', ?, ?, ?, '[]', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.id, i.get("name") or f"job {run.id}", i.get("script") or "", run.cores, run.mem or None,
                 run.limit, i.get("workdir") or "/", i.get("outfile"), i.get("errfile"), RUNNING, run.pid,
                 run.ctime, i.get("start_time") or time.time(), i.get("start_time"), i.get("user"),
                 i.get("call")), None)
