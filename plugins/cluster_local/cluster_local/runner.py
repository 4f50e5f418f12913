"""The local runner: one daemon per state directory that starts, watches and ends jobs.

It sleeps in one ``select`` on its socket (server.py), a self-pipe that signals write to (SIGCHLD,
SIGTERM), its warm workers (pool.py), pidfds of jobs it adopted from a dead runner (recovery.py), and a
timeout for the next wall-time, kill-grace or idle deadline: never a polling loop. Each pass of the loop
reads what changed in the store, asks the scheduler (scheduler.py) what starts, has the supervisor
(supervisor.py) start it, and commits what happened in one SQLite transaction; a pass that cannot (a full
disk) keeps it for the next try, after a growing pause. It exits after ``$CLUSTER_LOCAL_IDLE`` seconds
with nothing running; the next submitter starts a new one.

Run as ``python -m cluster_local.runner [--foreground] [--ready-fd N] STATE_DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import logging
import os
import selectors
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, TypeVar, Union, cast

from cluster_core.backend import ConfigError

from . import proctools, recovery
from .checkpoints import Requeues, warning_time
from .client import request, socket_path
from .control import asks_requeue
from .pool import WarmPool
from .scheduler import Dropped, Job, Scheduler
from .server import Server
from .settings import idle_timeout, kill_grace, memory_limit, state_key, threads_limit, worker_jobs
from .journal import Journal
from .store import CANCELLED, FAILED, FINISHED, PENDING, RUNNING, damaged, set_aside
from .supervisor import INFO, Run, Supervisor

if TYPE_CHECKING:
    from types import FrameType

    from .supervisor import Outcome

log = logging.getLogger("cluster_core.local.runner")
T = TypeVar("T")

PR_SET_CHILD_SUBREAPER = 36


class Runner:
    """One state directory's runner: the loop, and the glue between its parts (scheduler, supervisor, warm
    pool, server, journal) that keeps the store, the queue and the processes in step."""

    def __init__(self, sdir: Path, ready_fd: Optional[int] = None):
        self.sdir = sdir
        self.key = state_key(sdir)
        self.ready_fd = ready_fd
        self.threads = _setting(threads_limit, os.cpu_count() or 1)
        self.memory = _setting(memory_limit, 1 << 40)
        self.idle = _setting(idle_timeout, 60.0)
        self.last_id = 0
        self.journal = Journal(sdir)  # the store, and what to write to it at the end of a pass
        self.load_new = False
        self.resync = False
        self.requeues = Requeues()  # checkpointing jobs put back in the queue (checkpoints.py)
        self.stopping: Optional[str] = None
        self.stop_waiters: list[socket.socket] = []
        self.idle_since: Optional[float] = time.monotonic()
        self.recovered = False
        self.started = time.time()
        self.was_clean = False
        self.sel = selectors.DefaultSelector()
        self.sched = Scheduler(self.threads, self.memory, lambda job_id: self.journal.state(job_id))
        self.sup = Supervisor(self.key, _setting(kill_grace, 3.0), self.sel, self._ended)
        self.pool = WarmPool(self.sup, self.sel, _setting(worker_jobs, 200), self.journal.close,
                             self.journal.reopen_after_fork)
        self.server = Server(sdir, socket_path(sdir), self.sel, self)

    # --- life -----------------------------------------------------------------------------------

    def serve(self) -> None:
        self._lock()
        clean = self.sdir / "clean-exit"
        self.was_clean = clean.exists()
        with contextlib.suppress(FileNotFoundError):
            clean.unlink()
        self.journal.open()
        self.server.listen()
        self._signals()
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self._ready()
        proctools.close_on_exec()
        log.info("runner %d serving %s: %d cores, %d MB, idle exit after %g s", os.getpid(), self.sdir,
                 self.threads, self.memory, self.idle)
        try:
            self._loop()
        finally:
            self.server.close()
            self.pool.stop()
            if not self.sup.running:
                self.sup.kill_orphans()
            for conn in self.stop_waiters:
                with contextlib.suppress(OSError):
                    conn.send(b"bye\n")
                    conn.close()
        log.info("runner %d exits (%s)", os.getpid(), self.stopping or "idle")

    def _ready(self) -> None:
        """Tell the process that started us that a runner now serves the state dir."""
        if self.ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.ready_fd, b"ready\n")
                os.close(self.ready_fd)
            self.ready_fd = None

    def _lock(self) -> None:
        self.lock_fd = os.open(self.sdir / "runner.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + 60.0
        while True:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            # Another runner holds the lock: one on its way out (we take over when it has gone) or one
            # that found work as it closed its socket and stayed (it answers: then we are not needed).
            # A client acting without a runner holds it for moments too. This wait is rare and short.
            if request(self.sdir, "ping", timeout=5.0) == "ok":
                self._ready()
                raise _NotNeeded()
            if time.monotonic() > deadline:
                raise SystemExit("another process held runner.lock for 60 s without serving; giving up")
            time.sleep(0.02)
        with contextlib.suppress(OSError):  # for people to read; a full disk may refuse it
            os.ftruncate(self.lock_fd, 0)
            os.write(self.lock_fd, f"{os.getpid()}\n".encode())

    def _signals(self) -> None:
        self.sig_r, sig_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _noop)  # the C handler writes the number to the pipe; we read it there
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.sel.register(self.sig_r, selectors.EVENT_READ, self._read_signals)

    def _read_signals(self) -> None:
        try:
            data = os.read(self.sig_r, 4096)
        except BlockingIOError:
            return
        for signum in set(data):
            if signum in (signal.SIGTERM, signal.SIGINT):
                self._stop(f"runner stopped by {signal.Signals(signum).name}", cancel_queued=False)

    # --- the loop -------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            # with something to read, look (and come back) at once instead of sleeping
            work = self.load_new or self.resync or not self.recovered
            busy = work and not self.journal.paused(time.monotonic())
            registered = self.sel.get_map()
            for key, _ in self.sel.select(0 if busy else self._timeout()):
                if registered.get(key.fd) is not key:
                    # let go earlier in this batch (a client dropped by an accept, a worker closed):
                    # its descriptor is closed, or already reused by what the next select reports
                    continue
                key.data()  # the handler its owner registered (server, supervisor, pool, signals)
            self.sup.reap()
            self.sup.timers()
            if not self.journal.paused(time.monotonic()):
                self._use_db()
            now = time.monotonic()
            if self.sup.running:
                self.idle_since = None
            elif self.idle_since is None:
                self.idle_since = now
            updates = self.journal.updates
            if self.stopping and not self.sup.running and (not updates or self.journal.failures):
                if updates:
                    log.error("leaving with %d changes not written to the state database; the next runner "
                              "settles the jobs concerned from their exit files", len(updates))
                return
            if updates:
                continue  # a failed write is tried again after its pause, never given up by an idle exit
            if not self.sup.running and now - cast(float, self.idle_since) >= self.idle:  # set above: nothing runs
                self.server.close()  # from now on submitters start a new runner
                if not self._work_arrived():
                    return
                # a job came in as we closed: its poke may be lost with the socket, so stay
                self.server.listen()
                self.load_new = self.resync = True
                self.idle_since = now

    def _timeout(self) -> Optional[float]:
        now = time.monotonic()
        due = self.sup.due(now)
        write = self.journal.due(self._backlog())
        if write is not None:
            due.append(write)
        if not self.sup.running and self.idle_since is not None and not self.journal.updates:
            due.append(self.idle_since + self.idle)
        return max(0.0, min(due) - now) if due else None

    def _use_db(self) -> None:
        """One pass over the database: read what changed, start what can start, write what happened. A
        pass that fails pauses the database (jobs are still watched and killed meanwhile)."""
        try:
            if self.journal.replaced():
                self._reopen()
            if not self.recovered:
                recovery.recover(self)
            if self.resync:
                self._resync()
            if self.load_new:
                self._load_new()
            if not self.stopping:
                plan = self.sched.schedule()
                self.dropped(plan.dropped)
                self._start(plan.starts)
            write = self.journal.due(self._backlog())
            if self.stopping or (write is not None and write <= time.monotonic()):
                self.journal.flush()
        except sqlite3.Error as exc:
            self._db_failed(exc)
            return
        self.journal.worked()

    def _backlog(self) -> bool:
        """Jobs run and more wait: ends and starts come in quick turns, their writes may share a commit."""
        return bool(self.sup.running) and bool(self.sched.pending)

    # --- the host of the server -------------------------------------------------------------------

    def poked(self, cmd: str) -> None:
        # pokes get no answer (see client.poke)
        if not self.stopping:
            self.load_new = True
            self.resync = self.resync or cmd == "sync"
            self.idle_since = time.monotonic()

    def clients_dropped(self) -> None:
        if not self.stopping:
            self.load_new = self.resync = True

    def status(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "pid_ctime": proctools.create_time(os.getpid()),
                "state_dir": str(self.sdir), "socket": str(self.server.path), "threads": self.threads,
                "memory": self.memory, "idle_timeout": self.idle, "started": self.started,
                "running": sorted(self.sup.running), "pending": sorted(self.sched.pending),
                "stopping": self.stopping, "workers": sorted(self.pool.workers),
                "db_failures": self.journal.failures, "db_pause": self.journal.pause}

    def shutdown(self, conn: socket.socket) -> None:
        self._stop("runner shut down", cancel_queued=True)
        self.stop_waiters.append(conn)

    def _stop(self, reason: str, cancel_queued: bool) -> None:
        if self.stopping:
            return
        self.stopping = reason
        self.pool.closed = True
        self.server.close()
        if cancel_queued:
            self.journal.write("UPDATE jobs SET state=?, reason=?, end_time=? WHERE state IN ('PENDING', 'HELD')",
                               (CANCELLED, reason, time.time()))
            self.sched.clear()
        self.journal.retry_at = None  # one more try to write before leaving, even while paused
        self.sup.kill_all(list(self.sup.running.values()), CANCELLED, reason)

    # --- the store --------------------------------------------------------------------------------

    def _ended(self, run: Run, outcome: Optional[Outcome]) -> None:
        """The supervisor saw a job end (``outcome`` None: a discarded start, recorded nowhere)."""
        if outcome is None:
            self.sched.ended(run.id, None)
            return
        state, code, reason, end = outcome
        # a job run warm never asks (a checkpointing job runs its script, for the signals): no exit file read
        if not run.kill_state and run.worker is None and asks_requeue(run.info.get("script"), run.info.get("call")):
            self.requeues.requeue(run.id, self.journal, self.sched)
            return
        # the environment (a few KB) has served its purpose: drop it so the database stays small
        self.journal.write("UPDATE jobs SET state=?, exitcode=?, reason=?, end_time=?, env='{}' WHERE id=?",
                           (state, code, reason, end, run.id))
        self.dropped(self.sched.ended(run.id, state))

    def dropped(self, dropped: Iterable[Dropped]) -> None:
        """Queued jobs the scheduler cancelled (a dependency that can never hold, a request too big)."""
        for d in dropped:
            self.journal.write("UPDATE jobs SET state=?, reason=?, end_time=?, env='{}' WHERE id=? AND state=?",
                               (CANCELLED, d.reason, time.time(), d.id, PENDING))

    def _start(self, starts: list[Job]) -> None:
        rows = self.journal.start_rows([job.id for job in starts]) if starts else {}
        for job in starts:
            row = rows.get(job.id)
            if row is None:
                self.sched.ended(job.id, None)
                continue
            limit = row["time_limit"]
            deadline = time.monotonic() + limit if limit else None
            try:
                again = self.requeues.starts_again(job.id, row)
                run = self.pool.start(row, job.cores, job.mem, deadline) or \
                    self.sup.spawn(row, job.cores, job.mem, deadline, append=again)
            except Exception as exc:  # the job cannot start (bad cwd, unwritable output): it fails
                log.warning("job %d could not start: %s", job.id, exc)
                self.journal.write("UPDATE jobs SET state=?, reason=?, start_time=?, end_time=? WHERE id=? AND state=?",
                                   (FAILED, f"could not start: {exc}", time.time(), time.time(), job.id, PENDING))
                self.dropped(self.sched.ended(job.id, FAILED))
                continue
            self.sup.running[job.id] = run
            run.info = dict({k: row[k] for k in INFO}, start_time=time.time())
            if deadline is not None:
                run.warn_at = warning_time(row, deadline)
            self.journal.write("UPDATE jobs SET state=?, pid=?, pid_ctime=?, start_time=? WHERE id=? AND state=?",
                               (RUNNING, run.pid, run.ctime, run.info["start_time"], job.id, PENDING),
                               # cast: mypy cannot match a lambda's defaulted argument to a call of none
                               cast("Callable[[], None]", lambda run=run: self._discard(run)))

    def _discard(self, run: Run) -> None:
        """Another process cancelled a job just as it was started: kill it, record nothing."""
        self.sup.discard(run)
        self.sched.discard(run.id)
        self.resync = True

    def _load_new(self) -> None:
        self.load_new = False
        for row in self.journal.queue_rows("id > ?", (self.last_id,)):
            self.last_id = row["id"]
            if row["state"] == PENDING:
                self.sched.queue(Job.from_row(row))
            elif row["state"] in FINISHED:
                self.sched.remember(row["id"], row["state"])

    def _resync(self) -> None:
        """Re-read the queue after another process changed it (cancel, release)."""
        self.resync = False
        rows = self.journal.queue_rows("state = ? AND id <= ?", (PENDING, self.last_id))
        for job_id in self.sched.requeue(Job.from_row(row) for row in rows):
            state = self.journal.state(job_id)
            if state in FINISHED:
                self.dropped(self.sched.final(job_id, state))
        running = self.sup.running
        self.sup.kill_all([running[i] for i in self.journal.cancel_requested() if i in running], CANCELLED,
                          "cancelled by user")

    def _work_arrived(self) -> bool:
        return self.journal.queue_changed(len(self.sched.pending), self.last_id)

    def _db_failed(self, exc: Union[sqlite3.Error, OSError]) -> None:
        """Set a damaged database aside and go on in a new one; else pause before the next try."""
        self.load_new = self.resync = True  # read again what this pass may have missed
        if damaged(exc):
            try:
                set_aside(self.sdir)
                self._reopen()
                return
            except (sqlite3.Error, OSError) as again:
                exc = again
        self.journal.pause_after(exc)

    def _reopen(self) -> None:
        """The database file was replaced (a damaged one set aside): go on in the new one, writing the
        jobs running here into it again, and read its queue afresh."""
        self.journal.reopen(self.sup.running.values())
        self.load_new = self.resync = True


def _setting(getter: Callable[[], T], default: T) -> T:
    try:
        return getter()
    except ConfigError as exc:
        log.error("%s; using %s", exc, default)
        return default


def _noop(signum: int, frame: Optional[FrameType]) -> None:
    pass


class _NotNeeded(Exception):
    """Another runner serves the state dir."""


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cluster_local.runner", description=__doc__.splitlines()[0])
    parser.add_argument("state_dir")
    parser.add_argument("--ready-fd", type=int, help="write 'ready' to this fd once listening")
    parser.add_argument("--foreground", action="store_true", help="do not fork into the background")
    args = parser.parse_args(argv)
    if not args.foreground and os.fork() > 0:
        os._exit(0)  # the spawner waits for this process; the runner is the grandchild
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"%(asctime)s runner[{os.getpid()}] %(levelname)s %(message)s")
    sdir = Path(args.state_dir)
    try:
        Runner(sdir, args.ready_fd).serve()
    except _NotNeeded:
        return
    except BaseException:
        log.exception("runner failed")
        raise
    with contextlib.suppress(OSError):  # a full disk may refuse even that
        (sdir / "clean-exit").touch()


if __name__ == "__main__":
    main()
