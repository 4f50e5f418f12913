"""The warm pool: the runner's forked workers (worker.py) that run function jobs without a new interpreter.

A function job runs warm when the runner has a marker slot (it was started by a submitter), the job's
interpreter and its interpreter settings (``PYTHON*``, locale) are the runner's, and a worker can be had:
an idle one, else a fresh fork. Otherwise it runs its script like any job. A worker that ends a job tells
the runner "done <rc> <why it leaves or null>" (or "fail <why>": the job could not start); one that dies
takes its job with it, and the exit file is written for it as the script would have.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import os
import selectors
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Union, cast

from cluster_core.backend import write_exit_record

from . import proctools
from .settings import MARKER
from .supervisor import Run, Supervisor

if TYPE_CHECKING:
    import sqlite3

    from .identity import MarkerSlot

log = logging.getLogger("cluster_core.local.runner")

# Environment variables that change how an interpreter starts: a warm worker runs a job only when the job
# has the runner's values of them (else the job's own interpreter would behave differently).
_STARTUP_ENV = ("LANG", "LC_ALL", "LC_CTYPE")


def startup_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("PYTHON") or k in _STARTUP_ENV}


def interpreter(path: str) -> Optional[tuple[str, Optional[str]]]:
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


class Worker:
    """A warm worker: a forked child of the runner that runs function jobs."""

    __slots__ = ("pid", "ctime", "sock", "run", "buf", "alive")

    def __init__(self, pid: int, ctime: Optional[float], sock: socket.socket):
        self.pid, self.ctime = pid, ctime
        self.sock: Optional[socket.socket] = sock  # None once closed
        self.run: Optional[Run] = None
        self.buf = b""
        self.alive = True


class WarmPool:
    """The workers of one runner (``workers``, by pid). ``before_fork``/``after_fork`` let the runner put
    away what must not cross a fork (its SQLite connection) and take it back in the runner."""

    def __init__(self, sup: Supervisor, sel: selectors.BaseSelector, worker_jobs: int,
                 before_fork: Callable[[], None], after_fork: Callable[[], None]):
        self.sup, self.sel, self.worker_jobs = sup, sel, worker_jobs
        self.before_fork, self.after_fork = before_fork, after_fork
        self.closed = False  # the runner is stopping: no new worker
        self.workers: dict[int, Worker] = {}
        self.idle: list[Worker] = []
        self.slot: Union[MarkerSlot, bool, None] = None  # worker.MarkerSlot once looked for; False when there is none
        self.python = interpreter(sys.executable)
        self.startup_env = startup_env(dict(os.environ))
        self._python_ok: dict[str, bool] = {}
        self._env_ok: dict[str, bool] = {}
        sup.pool = self

    def start(self, row: sqlite3.Row, cores: int, mem: int, deadline: Optional[float]) -> Optional[Run]:
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
        marker = self.sup.marker(job_id)
        extra = {"CLUSTER_JOB_ID": str(job_id), "CLUSTER_JOB_NAME": row["name"], MARKER: marker, "PWD": cwd}
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
                sock = cast(socket.socket, worker.sock)  # open: an idle or a new worker
                sock.settimeout(10.0)  # an idle worker reads at once; one that does not is broken
                sock.sendall(message)
                sock.settimeout(None)
                break
            except OSError as exc:  # it died idle, or hangs: the reaper forgets it
                log.warning("worker %d does not take a job (%s): another one runs job %d", worker.pid, exc,
                            job_id)
                self._close(worker)
                with contextlib.suppress(OSError):
                    os.kill(worker.pid, signal.SIGKILL)
        run = Run(job_id, worker.pid, worker.ctime, marker, cores, mem, row["time_limit"], deadline)
        run.worker, run.exit_file, run.started = worker, call["exit"], time.time()
        worker.run = run
        return run

    def _warm_call(self, row: sqlite3.Row) -> Optional[dict[str, Any]]:
        if not row["call"] or self.worker_jobs <= 0 or self.closed:
            return None
        if self.slot is None:
            from .identity import MarkerSlot
            self.slot = MarkerSlot.find(self.sup.key) or False
            if not self.slot:
                log.info("no marker slot in this runner's environment (not started by a submitter): "
                         "function jobs run their scripts")
        if not self.slot:
            return None
        call = json.loads(row["call"])
        python = call.get("python") or ""
        ok = self._python_ok.get(python)
        if ok is None:
            ok = self._python_ok[python] = self.python is not None and interpreter(python) == self.python
        if not ok:
            return None
        env = row["env"]
        ok = self._env_ok.get(env)
        if ok is None:
            if len(self._env_ok) > 64:
                self._env_ok.clear()
            ok = self._env_ok[env] = startup_env(json.loads(env)) == self.startup_env
        return call if ok else None

    def _idle_worker(self) -> Optional[Worker]:
        while self.idle:
            worker = self.idle.pop()
            if not worker.alive or worker.run is not None:
                continue
            try:  # one that died idle (killed from outside) since the last pass must not get the job
                pid, status = os.waitpid(worker.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = worker.pid, 0
            if pid == 0:
                return worker
            self.workers.pop(worker.pid, None)
            self._exited(worker, status)
        return self._fork()

    def _fork(self) -> Optional[Worker]:
        from . import worker as worker_module
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self.before_fork()
        gc.freeze()  # what exists now is shared with the worker: no collection there touches it
        try:
            pid = os.fork()
        except OSError as exc:
            log.warning("cannot fork a worker (%s): the job runs its script", exc)
            ours.close()
            theirs.close()
            return None
        finally:
            if os.getpid() == self.sup.pid:
                gc.unfreeze()  # the runner's own garbage stays collectable
                self.after_fork()
        if pid == 0:  # the worker; it never comes back here
            worker_module.serve(theirs, cast("MarkerSlot", self.slot), self.worker_jobs)  # found: _warm_call
        theirs.close()
        worker = Worker(pid, proctools.create_time(pid), ours)
        self.workers[pid] = worker
        self.sel.register(ours, selectors.EVENT_READ, functools.partial(self._readable, worker))
        return worker

    def _readable(self, worker: Worker) -> None:
        try:
            # never blocks: a process the job forked may hold the worker's end open after it is gone
            data = cast(socket.socket, worker.sock).recv(65536, socket.MSG_DONTWAIT)  # called while open
        except (BlockingIOError, InterruptedError):
            if not worker.alive:
                self._close(worker)
            return
        except OSError:
            data = b""
        if not data:  # it is gone (the reaper tells how) or going (it ran its last job)
            self._close(worker)
            return
        worker.buf += data
        while b"\n" in worker.buf:
            line, worker.buf = worker.buf.split(b"\n", 1)
            self._said(worker, line.decode(errors="replace"))

    def _said(self, worker: Worker, line: str) -> None:
        kind, _, rest = line.partition(" ")
        run, worker.run = worker.run, None
        if run is None:
            log.warning("worker %d said %r while running nothing", worker.pid, line)
            return
        if kind == "done":
            code, _, why = rest.partition(" ")
            retiring = json.loads(why or "null")
            if retiring is None:
                self.idle.append(worker)
            else:
                log.debug("worker %d leaves after job %d: %s", worker.pid, run.id, retiring)
            self.sup.ended(run, (int(code) & 0xFF) << 8)
        else:  # "fail": the job's files or directory cannot be opened
            self.idle.append(worker)
            reason = f"could not start: {json.loads(rest)}"
            log.warning("job %d %s", run.id, reason)
            self.sup.start_failed(run, reason)

    def reaped(self, pid: int, status: int) -> None:
        """A child of the runner that is no job's script exited: if it was a worker, forget it."""
        worker = self.workers.pop(pid, None)
        if worker is not None:
            self._exited(worker, status)

    def _exited(self, worker: Worker, status: int) -> None:
        """A worker is gone: the job it was running (if any) ended as its process did."""
        worker.alive = False
        if worker.sock is not None:
            self._readable(worker)  # what it said before it went (its socket is at EOF now)
            while worker.sock is not None:
                self._readable(worker)
        with contextlib.suppress(ValueError):
            self.idle.remove(worker)
        run, worker.run = worker.run, None
        if run is None:
            return
        # as the job's script would: an exit code (128 + signal for a killed interpreter) and the exit file
        code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if not run.discard and run.exit_file:
            with contextlib.suppress(OSError):
                write_exit_record(run.exit_file, code, run.started)
        self.sup.ended(run, (code & 0xFF) << 8)

    def _close(self, worker: Worker) -> None:
        if worker.sock is not None:
            self.sel.unregister(worker.sock)
            worker.sock.close()
            worker.sock = None
        with contextlib.suppress(ValueError):
            self.idle.remove(worker)

    def stop(self) -> None:
        """On the way out: idle workers end with the runner (a busy one was killed with its job)."""
        for worker in list(self.workers.values()):
            self._close(worker)
            with contextlib.suppress(OSError):
                os.kill(worker.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(worker.pid, 0)
        self.workers.clear()
