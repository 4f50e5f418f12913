"""The supervisor: starts a job's script in a session of its own, reaps it, and kills its whole process tree.

It keeps every running job (``Run``): the scripts it spawned, the calls a warm worker runs (pool.py) and the
jobs adopted from a dead runner (watched through a pidfd). It enforces wall time (SIGTERM, then SIGKILL
after the grace) and memory (the resident memory of the job's tree and session, added up as Slurm's
OverMemoryKill samples it), and kills what a job leaves running when it ends. How a job ended goes to
``on_end(run, outcome)``: (state, exit code, reason, end time), or None for a discarded start.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, cast

from cluster_core.backend import format_time

from . import proctools
from .client import LOST_REASON
from .control import ended_by_exit_file
from .settings import MARKER
from .store import COMPLETED, FAILED, LOW_SPACE, OUT_OF_MEMORY, TIMEOUT, UNKNOWN, free_space

if TYPE_CHECKING:
    import sqlite3

    import psutil

    from .pool import WarmPool, Worker
    from .store import JobRow

log = logging.getLogger("cluster_core.local.runner")

# How often the memory of jobs with a mem limit is read (seconds)
MEMORY_POLL = 0.5

# posix_spawn with a new session (glibc 2.26); the signals Popen(restore_signals=True) resets in a job (the
# runner ignores SIGPIPE; its handled signals are reset by exec anyway)
_posix_spawn_ok = hasattr(os, "posix_spawn") and hasattr(os, "POSIX_SPAWN_DUP2")
_RESET_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGPIPE", "SIGXFZ", "SIGXFSZ")) if s)

# what the runner keeps of a job it runs: enough to write its row again into a new database, and to find
# its exit file and output directories
INFO = ("name", "script", "workdir", "outfile", "errfile", "call", "user")

Outcome = tuple[str, Optional[int], Optional[str], float]  # (state, exit code or None, reason or None, end time)


class Run:
    """A job this runner started (``spawned``: its script; ``worker``: its call, in a warm worker) or
    adopted from a dead runner (``pidfd``)."""

    __slots__ = ("id", "pid", "ctime", "marker", "spawned", "pidfd", "cores", "mem", "limit", "deadline",
                 "kill_state", "kill_reason", "kill_at", "victims", "discard", "worker", "exit_file",
                 "started", "info", "warn_at")

    def __init__(self, job_id: int, pid: int, ctime: Optional[float], marker: str, cores: int, mem: Optional[int],
                 limit: Optional[int], deadline: Optional[float], spawned: bool = False):
        self.id, self.pid, self.ctime, self.marker, self.spawned = job_id, pid, ctime, marker, spawned
        self.cores, self.mem, self.limit, self.deadline = cores, mem or 0, limit, deadline
        self.pidfd: Optional[int] = None
        self.kill_state: Optional[str] = None
        self.kill_reason: Optional[str] = None
        self.kill_at: Optional[float] = None
        self.victims: list[psutil.Process] = []
        self.discard = False
        self.worker: Optional[Worker] = None
        self.exit_file: Optional[str] = None
        self.started = 0.0
        self.info: dict[str, Any] = {}
        self.warn_at: Optional[float] = None  # a checkpointing job: when to warn it (SIGUSR1) of its time limit

    @property
    def own(self) -> bool:
        """Our child (until reaped), as opposed to a job adopted from a dead runner."""
        return self.spawned or self.worker is not None


class Supervisor:
    """The running jobs of one runner (``running``, by job id) and what is done to their processes."""

    def __init__(self, key: str, grace: float, sel: selectors.BaseSelector,
                 on_end: Callable[[Run, Optional[Outcome]], None]):
        self.key, self.grace, self.sel, self.on_end = key, grace, sel, on_end
        self.pid = os.getpid()
        self.running: dict[int, Run] = {}
        self.by_pid: dict[int, Run] = {}
        self.popens: dict[int, subprocess.Popen[bytes]] = {}  # scripts started by Popen (no posix_spawn)
        self.pool: Optional[WarmPool] = None  # the warm pool (pool.py): its workers are our children too
        self.memory_checked = 0.0  # monotonic time of the last look at the jobs' memory
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # back here after a spawn
        self._envs: dict[str, dict[str, str]] = {}

    def marker(self, job_id: int) -> str:
        return f"{self.key}:{job_id}"

    def due(self, now: float) -> list[float]:
        """The monotonic times at which a running job needs a look (kill grace, wall time, memory)."""
        due = []
        for run in self.running.values():
            if run.kill_at is not None:
                due.append(run.kill_at)
            elif run.deadline is not None and run.kill_state is None:
                due.append(run.deadline)
            if run.warn_at is not None and run.kill_state is None:
                due.append(run.warn_at)
            if run.pidfd is None and not run.own:
                due.append(now + 1.0)  # adopted without a pidfd: look again in a second
            if run.mem and run.kill_state is None:
                due.append(self.memory_checked + MEMORY_POLL)
        return due

    # --- starting -------------------------------------------------------------------------------

    def spawn(self, row: sqlite3.Row, cores: int, mem: int, deadline: Optional[float], append: bool = False) -> Run:
        """Start a job's script (``/bin/bash SCRIPT`` in a session of its own) and keep it as running; with
        ``append`` (a requeued job) its output goes on after its earlier runs' (Slurm's --open-mode=append)."""
        job_id = row["id"]
        env = self._environment(row["env"])
        env["CLUSTER_JOB_ID"] = str(job_id)
        env["CLUSTER_JOB_NAME"] = row["name"]
        env[MARKER] = self.marker(job_id)
        cwd = row["workdir"]
        out_path = row["outfile"] or os.path.join(cwd, f"local-{job_id}.out")
        err_path = row["errfile"] or out_path
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
        out = os.open(out_path, flags, 0o666)
        try:
            err = out if err_path == out_path else os.open(err_path, flags, 0o666)
            try:
                pid = self._start_script(row["script"], cwd, env, out, err)
            finally:
                if err != out:
                    os.close(err)
        finally:
            os.close(out)
        # no create time here: reading /proc/<pid>/stat while the job execs stalls (~0.5 ms); the marker
        # in its environment tells the job from a reused pid when that matters
        run = Run(job_id, pid, None, self.marker(job_id), cores, mem, row["time_limit"], deadline, True)
        self.by_pid[pid] = run
        return run

    def _start_script(self, script: str, cwd: str, env: dict[str, str], out: int, err: int) -> int:
        global _posix_spawn_ok
        if _posix_spawn_ok:
            try:
                return self._posix_spawn(script, cwd, env, out, err)
            except NotImplementedError:  # no new session with posix_spawn in this libc
                _posix_spawn_ok = False
        popen = subprocess.Popen(["/bin/bash", script], stdin=self.devnull, stdout=out, stderr=err, cwd=cwd,
                                 env=env, start_new_session=True)
        self.popens[popen.pid] = popen  # kept: a Popen dropped while its process runs gets reaped
        return popen.pid

    def _posix_spawn(self, script: str, cwd: str, env: dict[str, str], out: int, err: int) -> int:
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

    def _environment(self, text: str) -> dict[str, str]:
        """A job's environment (a copy: the caller adds to it), decoded once for all jobs that share it."""
        env = self._envs.get(text)
        if env is None:
            if len(self._envs) > 64:
                self._envs.clear()
            env = self._envs[text] = json.loads(text)
        return dict(env)

    def adopt(self, row: JobRow, proc: psutil.Process, start: float, now: float) -> Run:
        """Take over a job a dead runner started (``proc``: its live main process), watched by a pidfd."""
        ctime = proc.create_time()
        limit = row["time_limit"]
        deadline = time.monotonic() + (start + limit - now) if limit else None
        run = Run(row["id"], proc.pid, ctime, self.marker(row["id"]), row["cores"], row["mem_mb"], limit, deadline)
        run.info = dict({k: row[k] for k in INFO}, start_time=start)
        try:
            run.pidfd = os.pidfd_open(proc.pid)
        except ProcessLookupError:
            run.pidfd = None
        except (AttributeError, OSError):
            run.pidfd = None  # no pidfds here: timers() looks every second
        else:
            if proctools.find(proc.pid, ctime) is None:  # gone (or replaced) before the pidfd opened
                os.close(run.pidfd)
                run.pidfd = None
        self.running[row["id"]] = run
        if run.pidfd is not None:
            self.sel.register(run.pidfd, selectors.EVENT_READ, functools.partial(self._adopted_ended, run))
        return run

    # --- ending ---------------------------------------------------------------------------------

    def reap(self) -> None:
        """Collect every child that exited: a job's script (it ended), a warm worker (the pool's)."""
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
                if self.pool is not None:
                    self.pool.reaped(pid, status)
                continue  # else an orphaned descendant of a job, handed to us as subreaper
            self.ended(run, status)

    def _adopted_ended(self, run: Run) -> None:
        pidfd = cast(int, run.pidfd)  # registered only with one
        self.sel.unregister(pidfd)
        os.close(pidfd)
        run.pidfd = None
        self.ended(run, None)

    def ended(self, run: Run, status: Optional[int]) -> None:
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
            self.kill_orphans()
        else:
            proctools.send(proctools.alive(run.victims) + proctools.marked(self.key).get(run.id, []),
                           signal.SIGKILL)
        self.on_end(run, None if run.discard else self._outcome(run, status))

    def _outcome(self, run: Run, status: Optional[int]) -> Outcome:
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
            state, reason = FAILED, _short_of_space(run.info) or f"exit code {code}"
        return state, code, reason, end

    def start_failed(self, run: Run, reason: str) -> None:
        """A warm worker could not start the job (its files or directory): it failed, as a script would."""
        self.running.pop(run.id, None)
        self.on_end(run, None if run.discard else (FAILED, None, reason, time.time()))

    def discard(self, run: Run) -> None:
        """Another process cancelled a job just as it was started: kill it; its end is recorded nowhere."""
        run.discard = True
        proctools.send([], signal.SIGKILL, run.pid)

    # --- killing --------------------------------------------------------------------------------

    def kill_orphans(self) -> None:
        """Kill what ended jobs left running outside their session and process group (a double fork):
        the runner, a subreaper, inherits it, and its marker tells whose it is (unmarked: left alone)."""
        workers = self.pool.workers if self.pool is not None else {}
        for pid in proctools.children(self.pid):
            if pid in self.by_pid or pid in workers:
                continue
            job = proctools.job_of(pid, self.key)
            if job is not None and job not in self.running:
                log.info("killing process %d, left running by job %d", pid, job)
                proctools.send(proctools.tree(proctools.find(pid)), signal.SIGKILL)

    def kill_all(self, runs: Iterable[Run], state: str, reason: str) -> None:
        """Kill these jobs (those not being killed already); they end as ``state``."""
        runs = [run for run in runs if not run.kill_state]
        marks = proctools.marked(self.key, self._sessions(runs)) if runs else {}
        for run in runs:
            self.kill(run, state, reason, marks)

    def kill(self, run: Run, state: str, reason: str,
             marks: Optional[Mapping[int, list[psutil.Process]]] = None) -> None:
        if run.kill_state:
            return
        run.kill_state, run.kill_reason = state, reason
        run.victims = self._victims(run, marks)
        if self.grace > 0:
            proctools.send(run.victims, signal.SIGTERM, run.pid)
            run.kill_at = time.monotonic() + self.grace
        else:
            proctools.send(run.victims, signal.SIGKILL, run.pid)

    def timers(self) -> None:
        """SIGKILL what outlived its grace, check memory, enforce wall time, and look for adopted jobs
        gone without a pidfd to tell."""
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
        warn = [run for run in self.running.values()
                if run.warn_at is not None and now >= run.warn_at and run.kill_state is None]
        for run in warn:
            # to the job's script alone, as Slurm's --signal=B:USR1: the script passes it on to the function,
            # which saves itself. (Sent to the whole group, the function could save and exit before the
            # script's trap ran, and the script's wait would give 138 instead of the function's status.)
            run.warn_at = None
            log.info("job %d: warning it of its time limit (SIGUSR1)", run.id)
            if run.own:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(run.pid, signal.SIGUSR1)
        for run in list(self.running.values()):
            if run.kill_at is not None:
                continue
            if run.kill_state is None and run.deadline is not None and now >= run.deadline:
                # a deadline comes from a time limit
                self.kill(run, TIMEOUT, f"time limit of {format_time(cast(int, run.limit))} reached")
            elif not run.own and run.pidfd is None and self._find(run) is None:
                self.ended(run, None)

    def _check_memory(self) -> None:
        """Kill a job whose processes hold more resident memory than its ``mem`` (it ends OUT_OF_MEMORY)."""
        limited = [run for run in self.running.values() if run.mem and run.kill_state is None and not run.discard]
        if not limited:
            return
        marks = proctools.marked(self.key, self._sessions(limited))
        for run in limited:
            used = proctools.resident(self._victims(run, marks))
            if used > run.mem * 1024 * 1024:
                self.kill(run, OUT_OF_MEMORY, f"memory limit of {run.mem} MB exceeded ({used >> 20} MB resident)",
                          marks)

    def _victims(self, run: Run, marks: Optional[Mapping[int, list[psutil.Process]]] = None) -> list[psutil.Process]:
        """Every live process of a job: its tree, its session, and whatever carries its marker (a double
        fork leaves the first two; ``marks`` is proctools.marked's answer, when asked for several jobs)."""
        if marks is None:
            marks = proctools.marked(self.key, self._sessions([run]))
        return proctools.unique(proctools.tree(self._find(run)) + marks.get(run.id, []))

    def _sessions(self, runs: Iterable[Run]) -> dict[int, int]:
        """Session id -> job id for these jobs (a job is the leader of its session): only where the pid is
        surely still the job's (our unreaped child, or an adopted process checked by its marker)."""
        return {run.pid: run.id for run in runs if run.own or self._find(run) is not None}

    @staticmethod
    def _find(run: Run) -> Optional[psutil.Process]:
        # our own child stays ours until we reap it; an adopted job is checked by its marker
        return proctools.find(run.pid) if run.own else proctools.find(run.pid, marker=run.marker)


def _short_of_space(info: Mapping[str, Any]) -> Optional[str]:
    """A likely cause of a failure that the job's own stderr cannot tell: a (nearly) full file system
    where its output, error or exit file goes."""
    dirs = {os.path.dirname(p) for p in (info.get("outfile"), info.get("errfile"), info.get("script")) if p}
    if not info.get("outfile") and info.get("workdir"):
        dirs.add(info["workdir"])
    for path in sorted(dirs):
        free = free_space(Path(path))
        if free < LOW_SPACE:
            return (f"only {int(free) // 1024} KB free in {path}, where the job writes its files: "
                    f"writes there may have failed")
    return None


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
