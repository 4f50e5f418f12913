"""The local runner: one daemon per state directory that starts, watches and ends jobs.

It sleeps in one ``select`` on its socket, a self-pipe that signals write to (SIGCHLD, SIGTERM), pidfds of
jobs it adopted from a dead runner, and a timeout for the next wall-time, kill-grace or idle deadline:
never a polling loop. Each pass of the loop commits what happened in one SQLite transaction; a pass that
cannot (a full disk) keeps it for the next try, after a growing pause. It exits after
``$CLUSTER_LOCAL_IDLE`` seconds with nothing running; the next submitter starts a new one.

Run as ``python -m cluster_local.runner [--foreground] [--ready-fd N] STATE_DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import logging
import os
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from cluster_core.errors import ConfigError
from cluster_core.options import format_time

from . import proctools
from .control import LOST_REASON, _user, ended_by_exit_file, private_dir, request, socket_path
from .store import (CANCELLED, COMPLETED, DB_NAME, FAILED, FINISHED, HELD, LOW_SPACE, MARKER, OUT_OF_MEMORY, PENDING,
                    RUNNING, TIMEOUT, UNKNOWN, chunks, damaged, file_id, free_space, idle_timeout, kill_grace,
                    memory_limit, open_db, placeholders, problem, set_aside, state_key, threads_limit,
                    transaction, worker_jobs)

log = logging.getLogger("cluster_core.local.runner")

PR_SET_CHILD_SUBREAPER = 36
MAX_CLIENTS = 256  # client connections kept open at once (each submitting process keeps one)
KEEP_FINISHED = 7 * 86400  # seconds a finished job stays in the database
# How often the memory of jobs with a mem limit is read: the resident memory of every process of the job
# (its tree and session) added up, as Slurm's OverMemoryKill samples it; no cgroups are needed.
MEMORY_POLL = 0.5
FIRST_PAUSE, MAX_PAUSE = 0.05, 5.0  # seconds between tries while the database cannot be used: doubling
_BAD = frozenset(FINISHED) - {COMPLETED}


def _verdict(kind: str, state: Optional[str]) -> str:
    """Whether one dependency of ``kind`` holds ('ok'), may yet ('wait') or never will ('never'), given the
    state of the job it names (None: no such job any more, long finished)."""
    if kind == "after":  # started, or ended without starting
        return "wait" if state in (PENDING, HELD) else "ok"
    if kind == "afterany":
        return "ok" if state is None or state in FINISHED else "wait"
    if state is None:
        return "never"  # its outcome is forgotten
    if state not in FINISHED:
        return "wait"
    if kind == "afternotok":
        return "ok" if state in _BAD else "never"
    return "ok" if state == COMPLETED else "never"  # afterok


# what the runner keeps of a job it runs: enough to write its row again into a new database, and to find
# its exit file and output directories
_INFO = ("name", "script", "workdir", "outfile", "errfile", "call", "user")


class _Run:
    """A job this runner started (``spawned``: its script; ``worker``: its call, in a warm worker) or
    adopted from a dead runner (``pidfd``)."""

    __slots__ = ("id", "pid", "ctime", "marker", "spawned", "pidfd", "cores", "mem", "limit", "deadline",
                 "kill_state", "kill_reason", "kill_at", "victims", "discard", "worker", "exit_file",
                 "started", "info")

    def __init__(self, job_id, pid, ctime, marker, cores, mem, limit, deadline, spawned=False):
        self.id, self.pid, self.ctime, self.marker, self.spawned = job_id, pid, ctime, marker, spawned
        self.cores, self.mem, self.limit, self.deadline = cores, mem or 0, limit, deadline
        self.pidfd: Optional[int] = None
        self.kill_state: Optional[str] = None
        self.kill_reason: Optional[str] = None
        self.kill_at: Optional[float] = None
        self.victims: list = []
        self.discard = False
        self.worker: Optional[_WorkerProc] = None
        self.exit_file: Optional[str] = None
        self.started = 0.0
        self.info: dict = {}

    @property
    def own(self) -> bool:
        """Our child (until reaped), as opposed to a job adopted from a dead runner."""
        return self.spawned or self.worker is not None


class _WorkerProc:
    """A warm worker (see worker.py): a forked child of the runner that runs function jobs."""

    __slots__ = ("pid", "ctime", "sock", "run", "buf", "alive")

    def __init__(self, pid: int, ctime: Optional[float], sock: socket.socket):
        self.pid, self.ctime, self.sock = pid, ctime, sock
        self.run: Optional[_Run] = None
        self.buf = b""
        self.alive = True


# posix_spawn with a new session (glibc 2.26); the signals Popen(restore_signals=True) resets in a job (the
# runner ignores SIGPIPE; its handled signals are reset by exec anyway)
_posix_spawn_ok = hasattr(os, "posix_spawn") and hasattr(os, "POSIX_SPAWN_DUP2")
_RESET_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGPIPE", "SIGXFZ", "SIGXFSZ")) if s)


# Environment variables that change how an interpreter starts: a warm worker runs a job only when the job
# has the runner's values of them (else the job's own interpreter would behave differently).
_STARTUP_ENV = ("LANG", "LC_ALL", "LC_CTYPE")


def _startup_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith("PYTHON") or k in _STARTUP_ENV}


def _interpreter(path: str) -> Optional[tuple]:
    """What identifies an interpreter: its real binary and the virtual environment it starts in (a venv's
    python is a symlink to the base one; its pyvenv.cfg makes it another environment)."""
    if not path or not os.path.isabs(path):
        return None
    real = os.path.realpath(path)
    if not os.path.isfile(real):
        return None
    home = os.path.dirname(os.path.abspath(path))
    venv = next((d for d in (home, os.path.dirname(home)) if os.path.isfile(os.path.join(d, "pyvenv.cfg"))),
                None)
    return real, venv


class _Wait:
    """A pending job, as much of it as scheduling needs. ``deps``: (type, job id) pairs (see the jobs
    table's depends column); ``singleton``: it waits for the earlier jobs of its name and user."""

    __slots__ = ("id", "cores", "mem", "deps", "singleton", "name", "user")

    def __init__(self, row):
        self.id, self.cores, self.mem = row["id"], row["cores"], row["mem_mb"] or 0
        deps, self.singleton = [], False
        for item in json.loads(row["depends"] or "[]"):
            if item == "singleton":
                self.singleton = True
            elif isinstance(item, list):
                deps.append((str(item[0]), int(item[1])))
            else:
                deps.append(("afterok", int(item)))
        self.deps = tuple(deps)
        self.name, self.user = row["name"], row["user"]


class Runner:
    def __init__(self, sdir: Path, ready_fd: Optional[int] = None):
        self.sdir = sdir
        self.key = state_key(sdir)
        self.ready_fd = ready_fd
        self.threads = _setting(threads_limit, os.cpu_count() or 1)
        self.memory = _setting(memory_limit, 1 << 40)
        self.idle = _setting(idle_timeout, 60.0)
        self.grace = _setting(kill_grace, 3.0)
        self.memory_checked = 0.0  # monotonic time of the last look at the jobs' memory
        self.running: dict[int, _Run] = {}
        self.by_pid: dict[int, _Run] = {}
        self.pending: dict[int, _Wait] = {}  # in id order: FIFO
        self.waiters: dict[int, list[int]] = {}  # job id -> queued jobs that depend on it
        self.known: dict[int, str] = {}  # final states, for dependencies
        self.last_id = 0
        self.updates: list[tuple[str, tuple, Optional[Callable[[], None]]]] = []
        self.load_new = False
        self.resync = False
        self.stopping: Optional[str] = None
        self.stop_waiters: list[socket.socket] = []
        self.clients: dict[socket.socket, bytearray] = {}
        self.idle_since: Optional[float] = time.monotonic()
        self.retry_at: Optional[float] = None  # the database failed: no use of it before then
        self.failures = 0  # passes in a row that could not use the database
        self.pause = 0.0
        self.recovered = False
        self.db_id: Optional[tuple] = None
        self.started = time.time()
        self.pid = os.getpid()
        self.was_clean = False
        self.sel = selectors.DefaultSelector()
        self.sock: Optional[socket.socket] = None
        self.sock_path = socket_path(sdir)
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # back here after a spawn
        self._envs: dict[str, dict] = {}
        self.popens: dict[int, subprocess.Popen] = {}  # scripts started by Popen (no posix_spawn)
        self.db = None
        # warm workers for function jobs (worker.py)
        self.worker_jobs = _setting(worker_jobs, 200)
        self.workers: dict[int, _WorkerProc] = {}
        self.idle_workers: list[_WorkerProc] = []
        self.slot: Any = None  # worker.MarkerSlot once looked for; False when there is none
        self.python = _interpreter(sys.executable)
        self.startup_env = _startup_env(dict(os.environ))
        self._python_ok: dict[str, bool] = {}
        self._env_ok: dict[str, bool] = {}

    # --- life -----------------------------------------------------------------------------------

    def serve(self) -> None:
        self._lock()
        clean = self.sdir / "clean-exit"
        self.was_clean = clean.exists()
        with contextlib.suppress(FileNotFoundError):
            clean.unlink()
        self._open_db()
        self._listen()
        self._signals()
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self._ready()
        _close_on_exec()
        log.info("runner %d serving %s: %d cores, %d MB, idle exit after %g s", os.getpid(), self.sdir,
                 self.threads, self.memory, self.idle)
        try:
            self._loop()
        finally:
            self._close_listener()
            self._stop_workers()
            if not self.running:
                self._kill_orphans()
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

    def _listen(self) -> None:
        path = self.sock_path
        if path.parent != self.sdir and not private_dir(path.parent, create=True):
            raise SystemExit(f"{path.parent} is not a private directory of this user; not listening there")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a dead runner's; we hold the lock, so no live one listens there
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o077)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        sock.listen(512)
        sock.setblocking(False)
        self.sock = sock
        self.sel.register(sock, selectors.EVENT_READ, "listen")

    def _close_listener(self) -> None:
        """Stop listening, and close every client connection: a submitter poking on a connection it
        kept finds it closed and starts a new runner, so a poke is never sent into a closing runner."""
        if self.sock is None:
            return
        self.sel.unregister(self.sock)
        self.sock.close()
        self.sock = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock_path)
        self._drop_clients(len(self.clients))

    def _signals(self) -> None:
        self.sig_r, sig_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _noop)  # the C handler writes the number to the pipe; we read it there
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.sel.register(self.sig_r, selectors.EVENT_READ, "signal")

    # --- the loop -------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            paused = self.retry_at is not None and time.monotonic() < self.retry_at
            busy = not paused and (self.load_new or self.resync or not self.recovered)  # look before sleeping
            registered = self.sel.get_map()
            for key, _ in self.sel.select(0 if busy else self._timeout()):
                if registered.get(key.fd) is not key:
                    # let go earlier in this batch (a client dropped by an accept, a worker closed):
                    # its descriptor is closed, or already reused by what the next select reports
                    continue
                what = key.data
                if what == "listen":
                    self._accept()
                elif what == "signal":
                    self._read_signals()
                elif what == "client":
                    self._client(key.fileobj)
                elif isinstance(what, _WorkerProc):
                    self._worker_readable(what)
                elif isinstance(what, _Run):
                    self._adopted_ended(what)
            self._reap()
            self._timers()
            if self.retry_at is None or time.monotonic() >= self.retry_at:
                self._use_db()
            now = time.monotonic()
            if self.running:
                self.idle_since = None
            elif self.idle_since is None:
                self.idle_since = now
            if self.stopping and not self.running and (not self.updates or self.failures):
                if self.updates:
                    log.error("leaving with %d changes not written to the state database; the next runner "
                              "settles the jobs concerned from their exit files", len(self.updates))
                return
            if self.updates:
                continue  # a failed write is tried again after its pause, never given up by an idle exit
            if not self.running and now - self.idle_since >= self.idle:
                self._close_listener()  # from now on submitters start a new runner
                if not self._work_arrived():
                    return
                # a job came in as we closed: its poke may be lost with the socket, so stay
                self._listen()
                self.load_new = self.resync = True
                self.idle_since = now

    def _use_db(self) -> None:
        """One pass over the database: read what changed, start what can start, write what happened. A
        pass that fails pauses the database (jobs are still watched and killed meanwhile)."""
        try:
            if file_id(self.sdir / DB_NAME) != self.db_id:
                self._reopen()
            if not self.recovered:
                self._recover()
            if self.resync:
                self._resync()
            if self.load_new:
                self._load_new()
            starts = self._schedule()
            while starts:
                self._start(starts)
                # a job that waits for one of these to start (after) can start now
                starts = self._schedule() if any(kind == "after" for w in self.pending.values()
                                                 for kind, _dep in w.deps) else []
            self._flush()
        except sqlite3.Error as exc:
            self._db_failed(exc)
            return
        if self.failures:
            log.info("the state database works again after %d failed attempts", self.failures)
        self.failures, self.pause, self.retry_at = 0, 0.0, None

    def _db_failed(self, exc: sqlite3.Error) -> None:
        """Set a damaged database aside and go on in a new one; else wait a growing, bounded pause before
        the next try (a full disk: the runner neither spins nor gives up what it has to write)."""
        self.load_new = self.resync = True  # read again what this pass may have missed
        if damaged(exc):
            try:
                set_aside(self.sdir)
                self._reopen()
                return
            except (sqlite3.Error, OSError) as again:
                exc = again
        self.failures += 1
        self.pause = min(MAX_PAUSE, FIRST_PAUSE * 2 ** min(self.failures - 1, 16))
        self.retry_at = time.monotonic() + self.pause
        if self.failures == 1:
            log.warning("%s; trying again in growing pauses up to %g s (%d changes to write)",
                        problem(self.sdir, exc), MAX_PAUSE, len(self.updates))

    def _open_db(self) -> None:
        try:
            self.db = open_db(self.sdir)
        except sqlite3.Error as exc:
            if not damaged(exc):
                raise
            set_aside(self.sdir)
            self.db = open_db(self.sdir)
        self.db_id = file_id(self.sdir / DB_NAME)

    def _reopen(self) -> None:
        """The database file was replaced (a damaged one set aside): go on in the new one, writing the
        jobs running here into it again, and read its queue afresh."""
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        self._open_db()
        present: set = set()
        for part in chunks(list(self.running)):
            present.update(r[0] for r in self.db.execute(
                f"SELECT id FROM jobs WHERE id IN ({placeholders(part)})", part))
        # a start the new database does not know is no cancellation (see _discard)
        self.updates = [(sql, params, None) for sql, params, _ in self.updates]
        lost = [run for run in self.running.values() if run.id not in present and not run.discard]
        self.updates += [self._row_again(run) for run in lost]
        self.load_new = self.resync = True
        log.warning("the state database %s was replaced; %d running jobs written into it again",
                    self.sdir / DB_NAME, len(lost))

    @staticmethod
    def _row_again(run: "_Run") -> tuple:
        """The update that writes a running job's row into a database that lost it (what only its
        submitter knew, its options and environment, stays empty)."""
        i = run.info
        return ("INSERT OR IGNORE INTO jobs (id, name, script, options, env, cores, mem_mb, time_limit, "
                "depends, workdir, outfile, errfile, state, pid, pid_ctime, submit_time, start_time, user, call) "
                "VALUES (?, ?, ?, '{}', '{}', ?, ?, ?, '[]', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.id, i.get("name") or f"job {run.id}", i.get("script") or "", run.cores, run.mem or None,
                 run.limit, i.get("workdir") or "/", i.get("outfile"), i.get("errfile"), RUNNING, run.pid,
                 run.ctime, i.get("start_time") or time.time(), i.get("start_time"), i.get("user"),
                 i.get("call")), None)

    def _work_arrived(self) -> bool:
        try:
            count, top = self.db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM jobs WHERE state=?",
                                         (PENDING,)).fetchone()
        except sqlite3.Error:
            return True  # cannot tell: stay
        return count != len(self.pending) or top > self.last_id

    def _timeout(self) -> Optional[float]:
        now = time.monotonic()
        due = [self.retry_at] if self.retry_at else []
        for run in self.running.values():
            if run.kill_at is not None:
                due.append(run.kill_at)
            elif run.deadline is not None and run.kill_state is None:
                due.append(run.deadline)
            if run.pidfd is None and not run.own:
                due.append(now + 1.0)  # adopted without a pidfd: look again in a second
            if run.mem and run.kill_state is None:
                due.append(self.memory_checked + MEMORY_POLL)
        if not self.running and self.idle_since is not None and not self.updates:
            due.append(self.idle_since + self.idle)
        return max(0.0, min(due) - now) if due else None

    # --- clients --------------------------------------------------------------------------------

    def _accept(self) -> None:
        while self.sock is not None:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors: let go of kept poke connections, take it later
                log.warning("cannot accept a connection (%s); closing %d kept ones", exc, len(self.clients))
                self._drop_clients(len(self.clients))
                return
            conn.setblocking(False)
            if len(self.clients) >= MAX_CLIENTS:
                self._drop_clients(len(self.clients) - MAX_CLIENTS + 1)
            self.clients[conn] = bytearray()
            self.sel.register(conn, selectors.EVENT_READ, "client")

    def _drop_clients(self, count: int) -> None:
        """Close the oldest client connections: submitters that kept one open reconnect at their next
        poke, and the database is read again for the pokes they may have sent unread (each was sent after
        its job was committed, so nothing is lost)."""
        for conn in list(self.clients)[:count]:
            self.sel.unregister(conn)
            del self.clients[conn]
            conn.close()
        if count and not self.stopping:
            self.load_new = self.resync = True

    def _client(self, conn: socket.socket) -> None:
        """Read what a client sent: pokes ("wake", "sync") keep coming on the same connection (a
        submitting process keeps it open); any other request is answered and the connection closed."""
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        buf = self.clients[conn]
        buf += data
        while True:
            line, newline, rest = bytes(buf).partition(b"\n")
            if not newline and data and len(buf) < 4096:
                return  # the rest of the line is on its way
            del buf[:len(line) + len(newline)]
            text = line.decode(errors="replace").strip()
            cmd = text.split(" ", 1)[0]
            if cmd in ("wake", "sync"):
                self._poked(cmd)
                if buf:
                    continue
                if data:
                    return  # the connection stays for the next poke
                text = ""
            self.sel.unregister(conn)
            del self.clients[conn]
            if not text:
                conn.close()
                return
            self._handle(conn, text)
            return

    def _poked(self, cmd: str) -> None:
        # pokes get no answer (see control.poke)
        if not self.stopping:
            self.load_new = True
            self.resync = self.resync or cmd == "sync"
            self.idle_since = time.monotonic()

    def _handle(self, conn: socket.socket, line: str) -> None:
        cmd = line.split(" ", 1)[0]
        reply: Optional[str] = "ok"
        if cmd in ("wake", "sync"):
            reply = None
            self._poked(cmd)
        elif cmd == "ping":
            pass
        elif cmd == "status":
            reply = json.dumps(self._status())
        elif cmd == "shutdown":
            self._stop("runner shut down", cancel_queued=True)
            self.stop_waiters.append(conn)
            return
        else:
            reply = f"error: unknown request {cmd!r}"
        with contextlib.suppress(OSError):
            if reply is not None:
                conn.send(reply.encode() + b"\n")
        conn.close()

    def _status(self) -> dict:
        return {"pid": os.getpid(), "pid_ctime": proctools.create_time(os.getpid()),
                "state_dir": str(self.sdir), "socket": str(self.sock_path), "threads": self.threads,
                "memory": self.memory, "idle_timeout": self.idle, "started": self.started,
                "running": sorted(self.running), "pending": sorted(self.pending),
                "stopping": self.stopping, "workers": sorted(self.workers), "db_failures": self.failures,
                "db_pause": self.pause}

    def _stop(self, reason: str, cancel_queued: bool) -> None:
        if self.stopping:
            return
        self.stopping = reason
        self._close_listener()
        if cancel_queued:
            self.updates.append(("UPDATE jobs SET state=?, reason=?, end_time=? WHERE state IN ('PENDING', 'HELD')",
                                 (CANCELLED, reason, time.time()), None))
            self.pending.clear()
        self.retry_at = None  # one more try to write before leaving, even while paused
        runs = [run for run in self.running.values() if not run.kill_state]
        marks = proctools.marked(self.key, self._sessions(runs)) if runs else {}
        for run in runs:
            self._kill(run, CANCELLED, reason, marks)

    # --- signals and children -------------------------------------------------------------------

    def _read_signals(self) -> None:
        try:
            data = os.read(self.sig_r, 4096)
        except BlockingIOError:
            return
        for signum in set(data):
            if signum in (signal.SIGTERM, signal.SIGINT):
                self._stop(f"runner stopped by {signal.Signals(signum).name}", cancel_queued=False)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            run = self.by_pid.pop(pid, None)
            popen = self.popens.pop(pid, None)
            if popen is not None:
                popen.returncode = os.waitstatus_to_exitcode(status)
            if run is None:
                worker = self.workers.pop(pid, None)
                if worker is not None:
                    self._worker_exited(worker, status)
                continue  # else an orphaned descendant of a job, handed to us as subreaper
            self._ended(run, status)

    def _adopted_ended(self, run: _Run) -> None:
        self.sel.unregister(run.pidfd)
        os.close(run.pidfd)
        run.pidfd = None
        self._ended(run, None)

    def _ended(self, run: _Run, status: Optional[int]) -> None:
        """A job's main process is gone (``status`` None: an adopted one, exit status unknown)."""
        self.running.pop(run.id, None)
        # leftovers of the job (its process group, what a kill found) go with it, as under Slurm. An
        # adopted job was never our child and may be reaped already: find its leftovers by marker. A
        # worker that finished a job has killed the job's leftovers itself (and lives on).
        if run.worker is not None:
            if not run.worker.alive:
                proctools.send(proctools.alive(run.victims), signal.SIGKILL, run.pid)
        elif run.spawned:
            proctools.send(proctools.alive(run.victims), signal.SIGKILL, run.pid)
            self._kill_orphans()
        else:
            proctools.send(proctools.alive(run.victims) + proctools.marked(self.key).get(run.id, []),
                           signal.SIGKILL)
        if run.discard:
            return
        code: Optional[int] = None
        signame = None
        end = time.time()
        if status is not None:
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                code = 128 + sig
                signame = _signame(sig)
            else:
                code = os.WEXITSTATUS(status)
        ended = ended_by_exit_file(run.info.get("script"), run.info.get("call")) \
            if status is None and not run.kill_state else None
        if run.kill_state:
            state, reason = run.kill_state, run.kill_reason
        elif ended is not None:  # adopted from a dead runner: its exit file tells how it ended
            state, code, reason, end = ended
        elif status is None:
            state, reason = UNKNOWN, f"{LOST_REASON} (a runner restart left its exit status unknown)"
        elif signame:
            state, reason = FAILED, f"killed by {signame}"
        elif code == 0:
            state, reason = COMPLETED, None
        else:
            state, reason = FAILED, self._short_of_space(run) or f"exit code {code}"
        # the environment (a few KB) has served its purpose: drop it so the database stays small
        self.updates.append(("UPDATE jobs SET state=?, exitcode=?, reason=?, end_time=?, env='{}' WHERE id=?",
                             (state, code, reason, end, run.id), None))
        self._final(run.id, state)

    # --- killing --------------------------------------------------------------------------------

    @staticmethod
    def _short_of_space(run: _Run) -> Optional[str]:
        """A likely cause of a failure that the job's own stderr cannot tell: a (nearly) full file system
        where its output, error or exit file goes."""
        info = run.info
        dirs = {os.path.dirname(p) for p in (info.get("outfile"), info.get("errfile"), info.get("script")) if p}
        if not info.get("outfile") and info.get("workdir"):
            dirs.add(info["workdir"])
        for path in sorted(dirs):
            free = free_space(Path(path))
            if free < LOW_SPACE:
                return (f"only {int(free) // 1024} KB free in {path}, where the job writes its files: "
                        f"writes there may have failed")
        return None

    def _kill_orphans(self) -> None:
        """Kill what ended jobs left running outside their session and process group (a double fork):
        the runner, a subreaper, inherits it, and its marker tells whose it is (unmarked: left alone)."""
        for pid in proctools.children(self.pid):
            if pid in self.by_pid or pid in self.workers:
                continue
            job = proctools.job_of(pid, self.key)
            if job is not None and job not in self.running:
                log.info("killing process %d, left running by job %d", pid, job)
                proctools.send(proctools.tree(proctools.find(pid)), signal.SIGKILL)

    def _kill(self, run: _Run, state: str, reason: str, marks: Optional[dict] = None) -> None:
        if run.kill_state:
            return
        run.kill_state, run.kill_reason = state, reason
        run.victims = self._victims(run, marks)
        if self.grace > 0:
            proctools.send(run.victims, signal.SIGTERM, run.pid)
            run.kill_at = time.monotonic() + self.grace
        else:
            proctools.send(run.victims, signal.SIGKILL, run.pid)

    def _check_memory(self) -> None:
        """Kill a job whose processes hold more resident memory than its ``mem`` (it ends OUT_OF_MEMORY)."""
        limited = [run for run in self.running.values() if run.mem and run.kill_state is None and not run.discard]
        if not limited:
            return
        marks = proctools.marked(self.key, self._sessions(limited))
        for run in limited:
            used = proctools.resident(self._victims(run, marks))
            if used > run.mem * 1024 * 1024:
                self._kill(run, OUT_OF_MEMORY, f"memory limit of {run.mem} MB exceeded ({used >> 20} MB resident)",
                           marks)

    def _victims(self, run: _Run, marks: Optional[dict] = None) -> list:
        """Every live process of a job: its tree, its session, and whatever carries its marker (a double
        fork leaves the first two; ``marks`` is proctools.marked's answer, when asked for several jobs)."""
        if marks is None:
            marks = proctools.marked(self.key, self._sessions([run]))
        return proctools.unique(proctools.tree(self._find(run)) + marks.get(run.id, []))

    def _sessions(self, runs: list) -> dict[int, int]:
        """Session id -> job id for these jobs (a job is the leader of its session): only where the pid is
        surely still the job's (our unreaped child, or an adopted process checked by its marker)."""
        return {run.pid: run.id for run in runs if run.own or self._find(run) is not None}

    @staticmethod
    def _find(run: _Run):
        # our own child stays ours until we reap it; an adopted job is checked by its marker
        return proctools.find(run.pid) if run.own else proctools.find(run.pid, marker=run.marker)

    def _timers(self) -> None:
        now = time.monotonic()
        due = [run for run in self.running.values() if run.kill_at is not None and now >= run.kill_at]
        marks = proctools.marked(self.key, self._sessions(due)) if due else {}
        for run in due:
            run.kill_at = None
            run.victims = proctools.unique(proctools.alive(run.victims) + self._victims(run, marks))
            proctools.send(run.victims, signal.SIGKILL, run.pid)
        if now >= self.memory_checked + MEMORY_POLL:
            self.memory_checked = now
            self._check_memory()
        for run in list(self.running.values()):
            if run.kill_at is not None:
                continue
            if run.kill_state is None and run.deadline is not None and now >= run.deadline:
                self._kill(run, TIMEOUT, f"time limit of {format_time(run.limit)} reached")
            elif not run.own and run.pidfd is None and self._find(run) is None:
                self._ended(run, None)

    # --- the queue ------------------------------------------------------------------------------

    def _final(self, job_id: int, state: str) -> None:
        """Remember a job's final state; cancel every job waiting on it whose dependency can no longer hold
        (afterok on a failed job, afternotok on a completed one), transitively."""
        self.known[job_id] = state
        ended = [job_id]
        while ended:
            for waiter in self.waiters.pop(ended.pop(), ()):
                w = self.pending.get(waiter)
                if w is not None and self._dependency(w, {}) == "never":
                    self._finish_queued(w, CANCELLED, "DependencyNeverSatisfied", cascade=False)
                    ended.append(w.id)

    def _finish_queued(self, w: _Wait, state: str, reason: str, cascade: bool = True) -> None:
        self.pending.pop(w.id, None)
        self.updates.append(("UPDATE jobs SET state=?, reason=?, end_time=?, env='{}' WHERE id=? AND state=?",
                             (state, reason, time.time(), w.id, PENDING), None))
        if cascade:
            self._final(w.id, state)
        else:
            self.known[w.id] = state

    def _queue(self, w: _Wait) -> None:
        self.pending[w.id] = w
        for _kind, dep in w.deps:
            self.waiters.setdefault(dep, []).append(w.id)

    def _requeue(self, rows) -> None:
        """Replace the queue by these rows (in id order), but for jobs this runner started or ended whose
        rows still say queued (their updates not written yet)."""
        self.pending = {}
        self.waiters = {}
        for row in rows:
            if row["id"] not in self.running and row["id"] not in self.known:
                self._queue(_Wait(row))

    def _load(self, where: str, params: tuple) -> list:
        return list(self.db.execute(f"SELECT id, cores, mem_mb, depends, state, name, user FROM jobs WHERE {where} "
                                    f"ORDER BY id", params))

    def _load_new(self) -> None:
        self.load_new = False
        for row in self._load("id > ?", (self.last_id,)):
            self.last_id = row["id"]
            if row["state"] == PENDING:
                self._queue(_Wait(row))
            elif row["state"] in FINISHED:
                self.known[row["id"]] = row["state"]

    def _resync(self) -> None:
        """Re-read the queue after another process changed it (cancel, release)."""
        self.resync = False
        before = set(self.pending)
        self._requeue(self._load("state = ? AND id <= ?", (PENDING, self.last_id)))
        for job_id in before - set(self.pending):
            state = self._db_state(job_id)
            if state in FINISHED:
                self._final(job_id, state)
        runs = [self.running[job_id] for (job_id,) in
                self.db.execute("SELECT id FROM jobs WHERE state=? AND cancel_requested=1", (RUNNING,))
                if job_id in self.running and not self.running[job_id].kill_state]
        marks = proctools.marked(self.key, self._sessions(runs)) if runs else {}
        for run in runs:
            self._kill(run, CANCELLED, "cancelled by user", marks)

    def _db_state(self, job_id: int) -> Optional[str]:
        row = self.db.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
        return row[0] if row else None

    def _dependency(self, w: _Wait, starting: dict) -> str:
        """'ok' when every dependency holds, 'never' when one cannot any more, else 'wait'. ``starting``:
        the jobs this pass starts (id -> _Wait)."""
        result = "ok"
        if w.singleton and self._singleton_waits(w, starting):
            result = "wait"
        for kind, dep in w.deps:
            if dep in self.pending or dep in starting:
                result = "wait"
                continue
            if dep in self.running:
                state = RUNNING
            else:
                state = self.known.get(dep)
                if state is None:
                    state = self._db_state(dep)
                    if state in FINISHED:
                        self.known[dep] = state
            verdict = _verdict(kind, state)
            if verdict == "never":
                return "never"
            if verdict == "wait":
                result = "wait"
        return result

    def _singleton_waits(self, w: _Wait, starting: dict) -> bool:
        """As Slurm's singleton: another job of the same name and user runs, or was queued before it."""
        for run in self.running.values():
            if not run.discard and run.info.get("name") == w.name and run.info.get("user") == w.user:
                return True
        for other in (*self.pending.values(), *starting.values()):
            if other.id < w.id and other.name == w.name and other.user == w.user:
                return True
        return False

    def _schedule(self) -> list[_Wait]:
        if self.stopping or not self.pending:
            return []
        free_cores = self.threads - sum(r.cores for r in self.running.values() if not r.discard)
        free_mem = self.memory - sum(r.mem for r in self.running.values() if not r.discard)
        starts: list[_Wait] = []
        chosen: dict[int, _Wait] = {}
        for w in list(self.pending.values()):
            if free_cores <= 0:
                break
            if w.id not in self.pending:
                continue  # cancelled by a cascade in this pass
            if w.cores > self.threads or w.mem > self.memory:
                self._finish_queued(w, CANCELLED, f"asks {w.cores} cores / {w.mem} MB; this runner has "
                                                  f"{self.threads} cores / {self.memory} MB")
                continue
            dep = self._dependency(w, chosen)
            if dep == "never":
                self._finish_queued(w, CANCELLED, "DependencyNeverSatisfied")
                continue
            if dep == "wait":
                continue
            if w.cores <= free_cores and w.mem <= free_mem:  # else later, smaller jobs may backfill
                del self.pending[w.id]
                starts.append(w)
                chosen[w.id] = w
                free_cores -= w.cores
                free_mem -= w.mem
        return starts

    # --- starting -------------------------------------------------------------------------------

    def _start(self, starts: list[_Wait]) -> None:
        rows = {}
        ids = [w.id for w in starts]
        for part in chunks(ids):
            for row in self.db.execute("SELECT id, name, script, env, workdir, outfile, errfile, time_limit, "
                                       f"call, user FROM jobs WHERE id IN ({placeholders(part)})", part):
                rows[row["id"]] = row
        for w in starts:
            row = rows.get(w.id)
            if row is None:
                continue
            limit = row["time_limit"]
            deadline = time.monotonic() + limit if limit else None
            try:
                run = self._start_warm(row, w, deadline)
                if run is None:
                    pid = self._spawn(row)
                    # no create time here: reading /proc/<pid>/stat while the job execs stalls (~0.5 ms);
                    # the marker in its environment tells the job from a reused pid when that matters
                    run = _Run(w.id, pid, None, self._marker(w.id), w.cores, w.mem, limit, deadline, True)
                    self.by_pid[pid] = run
            except Exception as exc:  # the job cannot start (bad cwd, unwritable output): it fails
                log.warning("job %d could not start: %s", w.id, exc)
                self.updates.append(("UPDATE jobs SET state=?, reason=?, start_time=?, end_time=? "
                                     "WHERE id=? AND state=?",
                                     (FAILED, f"could not start: {exc}", time.time(), time.time(), w.id,
                                      PENDING), None))
                self._final(w.id, FAILED)
                continue
            self.running[w.id] = run
            run.info = dict({k: row[k] for k in _INFO}, start_time=time.time())
            self.updates.append(("UPDATE jobs SET state=?, pid=?, pid_ctime=?, start_time=? WHERE id=? AND state=?",
                                 (RUNNING, run.pid, run.ctime, run.info["start_time"], w.id, PENDING),
                                 lambda run=run: self._discard(run)))

    def _marker(self, job_id: int) -> str:
        return f"{self.key}:{job_id}"

    def _environment(self, text: str) -> dict:
        """A job's environment (a copy: the caller adds to it), decoded once for all jobs that share it."""
        env = self._envs.get(text)
        if env is None:
            if len(self._envs) > 64:
                self._envs.clear()
            env = self._envs[text] = json.loads(text)
        return dict(env)

    def _spawn(self, row) -> int:
        """Start a job's script (``/bin/bash SCRIPT`` in a session of its own); returns its pid."""
        job_id = row["id"]
        env = self._environment(row["env"])
        env["CLUSTER_JOB_ID"] = str(job_id)
        env["CLUSTER_JOB_NAME"] = row["name"]
        env[MARKER] = self._marker(job_id)
        cwd = row["workdir"]
        out_path = row["outfile"] or os.path.join(cwd, f"local-{job_id}.out")
        err_path = row["errfile"] or out_path
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        out = os.open(out_path, flags, 0o666)
        try:
            err = out if err_path == out_path else os.open(err_path, flags, 0o666)
            try:
                global _posix_spawn_ok
                if _posix_spawn_ok:
                    try:
                        return self._posix_spawn(row["script"], cwd, env, out, err)
                    except NotImplementedError:  # no new session with posix_spawn in this libc
                        _posix_spawn_ok = False
                popen = subprocess.Popen(["/bin/bash", row["script"]], stdin=self.devnull, stdout=out,
                                         stderr=err, cwd=cwd, env=env, start_new_session=True)
                self.popens[popen.pid] = popen  # kept: a Popen dropped while its process runs gets reaped
                return popen.pid
            finally:
                if err != out:
                    os.close(err)
        finally:
            os.close(out)

    def _posix_spawn(self, script: str, cwd: str, env: dict, out: int, err: int) -> int:
        """posix_spawn (vfork and exec, no Python in between): what Popen does here, for less. The job
        starts in the runner's working directory, so the runner steps into the job's for the call; every
        descriptor of the runner is close-on-exec (checked at start), so only 0, 1 and 2 are passed."""
        os.chdir(cwd)
        try:
            return os.posix_spawn(
                "/bin/bash", ["/bin/bash", script], env, setsid=True, setsigdef=_RESET_SIGNALS,
                file_actions=[(os.POSIX_SPAWN_DUP2, self.devnull, 0), (os.POSIX_SPAWN_DUP2, out, 1),
                              (os.POSIX_SPAWN_DUP2, err, 2)])
        finally:
            os.fchdir(self.home)

    # --- warm workers ---------------------------------------------------------------------------

    def _start_warm(self, row, w: _Wait, deadline: Optional[float]) -> Optional[_Run]:
        """Hand a function job to a warm worker; None when it must run its script (no call, another
        interpreter or interpreter settings, no worker to be had)."""
        call = self._warm_call(row)
        if call is None:
            return None
        job_id = row["id"]
        cwd = row["workdir"]
        out_path = row["outfile"] or os.path.join(cwd, f"local-{job_id}.out")
        err_path = row["errfile"] or out_path
        task = call.get("task")
        extra = {"CLUSTER_JOB_ID": str(job_id), "CLUSTER_JOB_NAME": row["name"], MARKER: self._marker(job_id),
                 "PWD": cwd}
        args = [call["in"], call["out"]]
        if task is not None:
            extra["CLUSTER_TASK_ID"] = str(task)
            args += ["--task", str(task)]
        message = (f'{{"id":{job_id},"cwd":{json.dumps(cwd)},"out":{json.dumps(out_path)},'
                   f'"err":{json.dumps(err_path)},"exit":{json.dumps(call["exit"])},"args":{json.dumps(args)},'
                   f'"extra":{json.dumps(extra)},"env":{row["env"]}}}\n').encode()
        while True:
            worker = self._idle_worker()
            if worker is None:
                return None
            try:
                worker.sock.settimeout(10.0)  # an idle worker reads at once; one that does not is broken
                worker.sock.sendall(message)
                worker.sock.settimeout(None)
                break
            except OSError as exc:  # it died idle, or hangs: the reaper forgets it
                log.warning("worker %d does not take a job (%s): another one runs job %d", worker.pid, exc,
                            job_id)
                self._close_worker(worker)
                with contextlib.suppress(OSError):
                    os.kill(worker.pid, signal.SIGKILL)
        run = _Run(job_id, worker.pid, worker.ctime, self._marker(job_id), w.cores, w.mem, row["time_limit"],
                   deadline)
        run.worker, run.exit_file, run.started = worker, call["exit"], time.time()
        worker.run = run
        return run

    def _warm_call(self, row) -> Optional[dict]:
        if not row["call"] or self.worker_jobs <= 0 or self.stopping:
            return None
        if self.slot is None:
            from .worker import MarkerSlot
            self.slot = MarkerSlot.find(self.key) or False
            if not self.slot:
                log.info("no marker slot in this runner's environment (not started by a submitter): "
                         "function jobs run their scripts")
        if not self.slot:
            return None
        call = json.loads(row["call"])
        python = call.get("python") or ""
        ok = self._python_ok.get(python)
        if ok is None:
            ok = self._python_ok[python] = self.python is not None and _interpreter(python) == self.python
        if not ok:
            return None
        env = row["env"]
        ok = self._env_ok.get(env)
        if ok is None:
            if len(self._env_ok) > 64:
                self._env_ok.clear()
            ok = self._env_ok[env] = _startup_env(json.loads(env)) == self.startup_env
        return call if ok else None

    def _idle_worker(self) -> Optional[_WorkerProc]:
        while self.idle_workers:
            worker = self.idle_workers.pop()
            if not worker.alive or worker.run is not None:
                continue
            try:  # one that died idle (killed from outside) since the last pass must not get the job
                pid, status = os.waitpid(worker.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = worker.pid, 0
            if pid == 0:
                return worker
            self.workers.pop(worker.pid, None)
            self._worker_exited(worker, status)
        return self._fork_worker()

    def _fork_worker(self) -> Optional[_WorkerProc]:
        import gc

        from . import worker as worker_module
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        # SQLite does not survive fork: a worker inheriting the open database (its lock table and the map of
        # its -shm file) fails every job that submits another one ("locking protocol"); it is closed around
        # the fork and opened again here
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        gc.freeze()  # what exists now is shared with the worker: no collection there touches it
        try:
            pid = os.fork()
        except OSError as exc:
            log.warning("cannot fork a worker (%s): the job runs its script", exc)
            ours.close()
            theirs.close()
            return None
        finally:
            if os.getpid() == self.pid:
                gc.unfreeze()  # the runner's own garbage stays collectable
                try:
                    self._open_db()
                except (sqlite3.Error, OSError) as exc:
                    log.warning("the state database cannot be opened again after a fork: %s", exc)
                    self.db_id = None  # this pass fails on the closed one; the next opens it again
        if pid == 0:  # the worker; it never comes back here
            worker_module.serve(theirs, self.slot, self.worker_jobs)
        theirs.close()
        worker = _WorkerProc(pid, proctools.create_time(pid), ours)
        self.workers[pid] = worker
        self.sel.register(ours, selectors.EVENT_READ, worker)
        return worker

    def _worker_readable(self, worker: _WorkerProc) -> None:
        try:
            # never blocks: a process the job forked may hold the worker's end open after it is gone
            data = worker.sock.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            if not worker.alive:
                self._close_worker(worker)
            return
        except OSError:
            data = b""
        if not data:  # it is gone (the reaper tells how) or going (it ran its last job)
            self._close_worker(worker)
            return
        worker.buf += data
        while b"\n" in worker.buf:
            line, worker.buf = worker.buf.split(b"\n", 1)
            self._worker_said(worker, line.decode(errors="replace"))

    def _worker_said(self, worker: _WorkerProc, line: str) -> None:
        kind, _, rest = line.partition(" ")
        run, worker.run = worker.run, None
        if run is None:
            log.warning("worker %d said %r while running nothing", worker.pid, line)
            return
        if kind == "done":
            code, _, why = rest.partition(" ")
            retiring = json.loads(why or "null")
            if retiring is None:
                self.idle_workers.append(worker)
            else:
                log.debug("worker %d leaves after job %d: %s", worker.pid, run.id, retiring)
            self._ended(run, (int(code) & 0xFF) << 8)
        else:  # "fail": the job's files or directory cannot be opened
            self.idle_workers.append(worker)
            reason = f"could not start: {json.loads(rest)}"
            log.warning("job %d %s", run.id, reason)
            self.running.pop(run.id, None)
            if run.discard:
                return
            self.updates.append(("UPDATE jobs SET state=?, reason=?, end_time=?, env='{}' WHERE id=?",
                                 (FAILED, reason, time.time(), run.id), None))
            self._final(run.id, FAILED)

    def _worker_exited(self, worker: _WorkerProc, status: int) -> None:
        """A worker is gone: the job it was running (if any) ended as its process did."""
        worker.alive = False
        if worker.sock is not None:
            self._worker_readable(worker)  # what it said before it went (its socket is at EOF now)
            while worker.sock is not None:
                self._worker_readable(worker)
        with contextlib.suppress(ValueError):
            self.idle_workers.remove(worker)
        run, worker.run = worker.run, None
        if run is None:
            return
        # as the job's script would: an exit code (128 + signal for a killed interpreter) and the exit file
        code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if not run.discard and run.exit_file:
            with contextlib.suppress(OSError):
                fd = os.open(run.exit_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
                try:
                    os.write(fd, f"{code} {run.started:.6f} {time.time():.6f} end\n".encode())
                finally:
                    os.close(fd)
        self._ended(run, (code & 0xFF) << 8)

    def _close_worker(self, worker: _WorkerProc) -> None:
        if worker.sock is not None:
            self.sel.unregister(worker.sock)
            worker.sock.close()
            worker.sock = None
        with contextlib.suppress(ValueError):
            self.idle_workers.remove(worker)

    def _stop_workers(self) -> None:
        """On the way out: idle workers end with the runner (a busy one was killed with its job)."""
        for worker in list(self.workers.values()):
            self._close_worker(worker)
            with contextlib.suppress(OSError):
                os.kill(worker.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(worker.pid, 0)
        self.workers.clear()

    def _discard(self, run: _Run) -> None:
        """Another process cancelled a job just as it was started: kill it, record nothing."""
        run.discard = True
        proctools.send([], signal.SIGKILL, run.pid)
        self.resync = True

    def _flush(self) -> None:
        """Write what happened in one transaction (kept for the next try when it fails)."""
        if not self.updates:
            return
        zero = []
        with transaction(self.db):
            for sql, params, on_zero in self.updates:
                if self.db.execute(sql, params).rowcount == 0 and on_zero is not None:
                    zero.append(on_zero)
        self.updates.clear()
        for callback in zero:
            callback()

    # --- after a crash --------------------------------------------------------------------------

    def _recover(self) -> None:
        """Adopt the jobs a dead runner left running, settle the ones it lost (by their exit files), kill
        strays, write back live jobs a damaged database lost, and load the queue. Reads first: a failure
        leaves nothing half done."""
        self.last_id = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM jobs").fetchone()[0]
        rows = list(self.db.execute(
            f"SELECT id, pid, pid_ctime, cores, mem_mb, time_limit, start_time, state, cancel_requested, "
            f"depends, {', '.join(_INFO)} FROM jobs WHERE state IN (?, ?) AND id <= ?",
            (RUNNING, PENDING, self.last_id)))
        running = [r for r in rows if r["state"] == RUNNING]
        marks = proctools.marked(self.key) if (running or self._has_marked_candidates()) else {}
        rowless = set(marks)
        for part in chunks(list(marks)):
            rowless -= {r[0] for r in self.db.execute(f"SELECT id FROM jobs WHERE id IN ({placeholders(part)})",
                                                      part)}
        self.recovered = True
        self.updates.append(("DELETE FROM jobs WHERE end_time < ? AND state NOT IN ('PENDING', 'HELD', 'RUNNING')",
                             (time.time() - KEEP_FINISHED,), None))
        now = time.time()
        for row in rows:
            procs = marks.pop(row["id"], [])
            proc = proctools.find(row["pid"], row["pid_ctime"], self._marker(row["id"])) \
                if row["state"] == RUNNING else None
            if proc is None:
                # started by a runner that died before it recorded the pid: the session leader is the job
                proc = next((p for p in procs if proctools.is_session_leader(p)), None)
            if proc is not None:
                self._adopt(row, proc, now)
            elif row["state"] == RUNNING:
                proctools.send(procs, signal.SIGKILL)
                state, code, reason, end = ended_by_exit_file(row["script"], row["call"]) or \
                    (UNKNOWN, None, LOST_REASON, now)
                self.updates.append(("UPDATE jobs SET state=?, exitcode=?, reason=?, end_time=?, env='{}' "
                                     "WHERE id=? AND state=?", (state, code, reason, end, row["id"], RUNNING), None))
                self.known[row["id"]] = state
                log.warning("job %d ended while no runner ran: %s", row["id"], reason or state.lower())
        for job_id, procs in marks.items():
            leader = next((p for p in procs if proctools.is_session_leader(p)), None) \
                if job_id in rowless else None
            if leader is not None and (proctools.create_time(leader.pid) or 0) > now - KEEP_FINISHED:
                # a live job whose row a damaged database took with it: write back what can be told
                self._adopt(self._rowless(job_id, leader), leader, now)
                self.updates.append(self._row_again(self.running[job_id]))
                continue
            log.warning("killing %d stray processes of finished job %d", len(procs), job_id)  # strays
            proctools.send(procs, signal.SIGKILL)
        self._requeue([row for row in rows if row["state"] == PENDING])
        for job_id, state in list(self.known.items()):
            if state in _BAD:
                self._final(job_id, state)
        self.load_new = True

    @staticmethod
    def _rowless(job_id: int, proc) -> dict:
        """What can be told of a live job from its process alone."""
        try:
            cmd, cwd = proc.cmdline(), proc.cwd()
        except Exception:  # gone meanwhile (psutil.Error), or not ours to read
            cmd, cwd = [], "/"
        script = cmd[1] if len(cmd) == 2 and os.path.basename(cmd[0]) == "bash" else ""
        return {"id": job_id, "name": f"job {job_id} (recovered)", "script": script, "workdir": cwd,
                "outfile": None, "errfile": None, "call": None, "user": _user(), "cores": 1, "mem_mb": None,
                "time_limit": None, "start_time": None, "cancel_requested": 0}

    def _has_marked_candidates(self) -> bool:
        """Whether the last runner may have left processes behind (it did not exit cleanly)."""
        row = self.db.execute("SELECT 1 FROM jobs WHERE state=? LIMIT 1", (RUNNING,)).fetchone()
        return row is not None or not self.was_clean

    def _adopt(self, row, proc, now: float) -> None:
        ctime = proc.create_time()
        start = row["start_time"] or ctime
        limit = row["time_limit"]
        deadline = time.monotonic() + (start + limit - now) if limit else None
        run = _Run(row["id"], proc.pid, ctime, self._marker(row["id"]), row["cores"], row["mem_mb"], limit,
                   deadline)
        run.info = dict({k: row[k] for k in _INFO}, start_time=start)
        try:
            run.pidfd = os.pidfd_open(proc.pid)
        except ProcessLookupError:
            run.pidfd = None
        except (AttributeError, OSError):
            run.pidfd = None  # no pidfds here: _timers looks every second
        else:
            if proctools.find(proc.pid, ctime) is None:  # gone (or replaced) before the pidfd opened
                os.close(run.pidfd)
                run.pidfd = None
        self.running[row["id"]] = run
        if run.pidfd is not None:
            self.sel.register(run.pidfd, selectors.EVENT_READ, run)
        self.updates.append(("UPDATE jobs SET state=?, pid=?, pid_ctime=?, start_time=? WHERE id=?",
                             (RUNNING, proc.pid, ctime, start, row["id"]), None))
        log.info("adopted job %d (pid %d) from a previous runner", row["id"], proc.pid)
        if row["cancel_requested"]:
            self._kill(run, CANCELLED, "cancelled by user")


def _close_on_exec() -> None:
    """Make every descriptor above 2 close-on-exec (what Python and SQLite open is already): a job
    started by posix_spawn inherits only its 0, 1 and 2."""
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        if fd > 2:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)


def _setting(getter, default):
    try:
        return getter()
    except ConfigError as exc:
        log.error("%s; using %s", exc, default)
        return default


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _noop(signum, frame) -> None:
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
