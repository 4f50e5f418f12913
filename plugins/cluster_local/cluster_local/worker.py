"""Warm workers: the runner's forked children that run function jobs without starting an interpreter.

A function job's script only starts ``python -m cluster_core.runner IN OUT``; starting that interpreter
costs tens of milliseconds, forking the runner (which has cluster_core and cloudpickle loaded) about two.
A worker is forked from the runner, detaches from it (own session, none of the runner's descriptors,
default signal handlers, no logging), and then runs jobs the runner sends it one at a time over a socket
pair. For each job it leaves what the script would have left: stdout and stderr in the job's files, the
result pickle written by the core's ``run_call``, and the exit file (``write_exit_record``);
it runs in the job's directory with the job's environment, ``sys.argv``, ``sys.path[0]`` and umask, and
the interpreter's exit steps (joining threads, atexit) follow the call, as they would in a fresh one.

A worker runs another job only when the last one left nothing behind that it can see: no module imported,
no thread, child process or open descriptor left, no signal handler, hook, warnings filter, logging
setting or interpreter limit changed. Otherwise (and after ``local.worker_jobs`` jobs) it exits and the
runner forks a fresh one for the next job. A job that changes an already-imported module in place (say,
monkeypatching the standard library) without importing anything can still be seen by the next job of
that worker; set ``local.worker_jobs`` to 1 for a fresh worker per job.

While it runs a job, the worker shows the job's marker in /proc/<pid>/environ (written into the runner's
environment block, see :class:`MarkerSlot`), so a restarted runner finds and adopts it like a script job.
It is a child subreaper: what the job leaves running is its child when the job returns, and is killed.
"""

from __future__ import annotations

import _locale
# no stub: the C module under signal, whose getsignal and valid_signals wrap every value in an enum (25x slower)
import _signal  # type: ignore[import-not-found]
import atexit
import builtins
import copyreg
import faulthandler
import gc
import importlib.machinery
import io
import json
import logging
import os
import random
import resource
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from typing import Any, Mapping, Optional, cast

import cloudpickle  # noqa: F401  (loaded once in the runner, not by every job)

from cluster_core.backend import prepare_run_call, run_call, write_exit_record

from .identity import PR_SET_CHILD_SUBREAPER, PR_SET_NAME, MarkerSlot, prctl, retitle

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_SIGNALS = sorted(_signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP})
_RLIMITS = [getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")]

# sys.argv[0] of a job script's interpreter (python -m cluster_core.runner); loads what run_call runs
RUN_CALL_ARGV0 = prepare_run_call()


def serve(conn: socket.socket, slot: MarkerSlot, max_jobs: int) -> None:
    """The worker's life, in the child right after the runner's fork; never returns."""
    code = 0
    try:
        _Worker(conn, slot, max_jobs).loop()
    except BaseException:  # a bug of the worker itself: the runner sees it exit
        code = 70
        try:
            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:
            pass
    finally:
        os._exit(code)


class _Worker:
    def __init__(self, conn: socket.socket, slot: MarkerSlot, max_jobs: int):
        # leave the runner behind: its wakeup pipe, handlers, session and descriptors are not ours
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        prctl(PR_SET_NAME, b"cluster-worker")
        retitle([sys.executable, "-m", "cluster_local.worker", *sys.argv[-1:]])
        keep = conn.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 20)
        self.conn = conn
        self.slot = slot
        self.max_jobs = max_jobs
        # where fds 1 and 2 point between jobs (the runner's log)
        self.log_out = os.dup(1)
        self.log_err = os.dup(2)
        os.set_inheritable(self.log_out, False)
        os.set_inheritable(self.log_err, False)
        atexit._clear()  # the runner's; a job's own are run after it
        root = logging.getLogger()
        root.handlers.clear()
        root.setLevel(logging.WARNING)
        self.stdio = [(s.encoding, s.errors, s.line_buffering, s.write_through,
                       isinstance(getattr(s, "buffer", None), io.FileIO))
                      for s in cast("tuple[io.TextIOWrapper, ...]", (sys.__stdout__, sys.__stderr__))]  # the runner's
        self.buf = b""
        self.argv = list(sys.argv)
        self.baseline = self._state()
        # the environment the last job was given, and os.environ's own (encoded) dict right after: when the
        # job left that unchanged, the next one's environment is set by the few variables that differ
        self.environ: Optional[dict[str, str]] = None
        self.environ_data: Optional[dict[bytes, bytes]] = None

    # --- the job loop ---------------------------------------------------------------------------

    def loop(self) -> None:
        done = 0
        while True:
            message = self._receive()
            if message is None:
                return  # the runner has gone
            try:
                rc, dirty = self._run(json.loads(message))
            except _CannotStart as exc:
                reply, dirty = "fail " + json.dumps(str(exc)), None
            else:
                done += 1
                if dirty is None and done >= self.max_jobs:
                    dirty = f"ran {done} jobs"
                reply = f"done {rc} " + json.dumps(dirty)
            try:
                self.conn.sendall(reply.encode() + b"\n", socket.MSG_NOSIGNAL)
            except OSError:
                return  # the runner died while the job ran: its successor adopted the job, or not
            if dirty is not None:
                return  # the runner forks a fresh worker for the next job

    def _receive(self) -> Optional[bytes]:
        while b"\n" not in self.buf:
            try:
                chunk = self.conn.recv(1 << 16)
            except InterruptedError:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def _run(self, job: dict[str, Any]) -> tuple[int, Optional[str]]:
        """Run one job as its script would; returns its exit code and what it left changed in this
        worker (None: nothing, the worker may run another job)."""
        job_id = job["id"]
        cwd = job["cwd"]
        try:
            out = os.open(job["out"], _FLAGS, 0o666)
            try:
                err = out if job["err"] == job["out"] else os.open(job["err"], _FLAGS, 0o666)
            except OSError:
                os.close(out)
                raise
            try:
                os.chdir(cwd)
            except OSError:
                os.close(out)
                if err != out:
                    os.close(err)
                raise
        except OSError as exc:
            raise _CannotStart(str(exc)) from None
        self.slot.show(job_id)
        env = job["env"]
        env.update(job["extra"])
        self._set_environ(env)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        if err != out:
            os.close(err)
        sys.stdout, sys.stderr = (self._stream(fd, *spec) for fd, spec in zip((1, 2), self.stdio))
        args = job["args"]  # IN OUT [--task N], as the script passes them
        sys.argv = [RUN_CALL_ARGV0, *args]
        sys.path[:] = [cwd, *self.baseline["path"][1:]]
        random.seed()
        umask = os.umask(0o077)
        start = time.time()
        dirty = None
        try:
            rc = run_call(args[0], args[1], int(args[3]) if len(args) == 4 else None)
        except BaseException:  # what the interpreter would print before exiting 1
            rc, dirty = 1, "the runner's main raised"
            try:
                traceback.print_exc()
            except BaseException:
                pass
        # the interpreter's exit steps: wait for the job's threads, run its atexit functions, flush
        main = threading.main_thread()
        for thread in threading.enumerate():
            if thread is not main and not thread.daemon:
                try:
                    thread.join()
                except BaseException:
                    dirty = "a thread could not be joined"
        if atexit._ncallbacks():
            dirty = "atexit functions"
            try:
                atexit._run_exitfuncs()
            finally:
                atexit._clear()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                dirty = "stdout/stderr"
        os.umask(umask)
        end = time.time()
        try:
            write_exit_record(job["exit"], rc, start, end)
        except OSError:
            pass
        if self._kill_children():
            dirty = "child processes"
        os.dup2(self.log_out, 1)
        os.dup2(self.log_err, 2)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        sys.path[:] = self.baseline["path"]
        sys.argv = self.argv
        self.slot.show(None)
        if dirty is None:
            dirty = self._forget_modules()
        if dirty is None:
            now = self._state()
            dirty = next((key for key, value in self.baseline.items() if now[key] != value), None)
        return rc, dirty

    def _forget_modules(self) -> Optional[str]:
        """Unload the modules the job imported, so that the next job imports them afresh as a new
        interpreter would (a function from the user's own module comes by reference and imports it).
        Only plain Python modules outside the packages loaded before can go; anything else (an extension
        module, a submodule of a package the runner had loaded) leaves the worker unfit: returns why."""
        baseline = self.baseline["modules"]
        new = [name for name in sys.modules if name not in baseline]
        for name in new:
            module = sys.modules[name]
            parent = name.rpartition(".")[0]
            if parent and parent in baseline:
                return f"module {name} (in a package loaded before)"
            if module is not None and not _plain_python(module):
                return f"module {name} (not plain Python)"
        for name in new:
            del sys.modules[name]
        return None

    def _set_environ(self, env: dict[str, str]) -> None:
        data = getattr(os.environ, "_data", None)  # CPython's: bytes to bytes, what os.environ[...] = sets
        last = self.environ
        if last is not None and data is not None and data == self.environ_data:
            for key in [k for k in last if k not in env]:
                del os.environ[key]
            for key, value in env.items():
                if last.get(key) != value:
                    os.environ[key] = value
        else:
            _set_environ(env)
        self.environ, self.environ_data = env, (None if data is None else dict(data))

    @staticmethod
    def _stream(fd: int, encoding: str, errors: Optional[str], line_buffering: bool, write_through: bool,
                raw: bool) -> io.TextIOWrapper:
        """A new sys.stdout/stderr on ``fd``, made like the interpreter makes its own."""
        binary = io.FileIO(fd, "w", closefd=False)
        buffer = binary if raw else io.BufferedWriter(binary)
        return io.TextIOWrapper(buffer, encoding=encoding, errors=errors, line_buffering=line_buffering,
                                write_through=write_through)

    @staticmethod
    def _kill_children() -> bool:
        """Kill and reap whatever the job left running (as a subreaper, all of it is our child now);
        True when there was anything."""
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        import psutil  # only a job that started processes gets here
        me = psutil.Process()
        while True:
            try:
                procs = me.children(recursive=True)
            except psutil.Error:
                procs = []
            for proc in procs:
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return True

    @staticmethod
    def _state() -> dict[str, Any]:
        """What a job could leave changed behind it, in a form that compares cheaply."""
        try:
            fds = sorted(os.listdir("/proc/self/fd"))
        except OSError:
            fds = None
        root = logging.getLogger()
        return {
            "modules": set(sys.modules), "path": list(sys.path), "fds": fds,
            "signals": [_signal.getsignal(sig) for sig in _SIGNALS],
            "threads": threading.active_count(), "meta_path": list(sys.meta_path),
            "path_hooks": list(sys.path_hooks),
            "hooks": (sys.excepthook, sys.displayhook, sys.breakpointhook, sys.unraisablehook,
                      threading.excepthook, sys.gettrace(), sys.getprofile(),
                      getattr(threading, "_trace_hook", None), getattr(threading, "_profile_hook", None),
                      sys.stdin, sys.__stdout__, sys.__stderr__),
            "limits": (sys.getrecursionlimit(), sys.getswitchinterval(), _gc_state(),
                       socket.getdefaulttimeout(), faulthandler.is_enabled(), sys.get_int_max_str_digits()),
            "warnings": list(warnings.filters), "copyreg": len(copyreg.dispatch_table),
            "logging": (list(root.handlers), root.level, len(logging.Logger.manager.loggerDict),
                        logging.getLoggerClass(), logging.getLogRecordFactory(), logging.root.manager.disable),
            "builtins": tuple(map(id, builtins.__dict__.values())),
            "process": ([resource.getrlimit(r) for r in _RLIMITS], os.getpriority(os.PRIO_PROCESS, 0),
                        os.getresuid(), os.getresgid(), os.getgroups(), signal.pthread_sigmask(signal.SIG_BLOCK, []),
                        os.sched_getaffinity(0), _locale.setlocale(_locale.LC_ALL, None), sys.dont_write_bytecode),
        }


def _plain_python(module: Any) -> bool:
    """A module loaded from Python source or bytecode (or a namespace package): importing it again
    makes a new one. Extension, built-in and frozen modules live as long as the process."""
    spec = getattr(module, "__spec__", None)
    if spec is None:
        return False
    if spec.origin is None or spec.origin == "namespace" or spec.loader is None:
        return spec.submodule_search_locations is not None  # a namespace package
    return isinstance(spec.loader, (importlib.machinery.SourceFileLoader, importlib.machinery.SourcelessFileLoader))


def _gc_state() -> tuple[bool, tuple[int, int, int], int, int]:
    return gc.isenabled(), gc.get_threshold(), gc.get_debug(), len(gc.callbacks)


def _set_environ(env: Mapping[str, str]) -> None:
    """Make os.environ (and the C environment) exactly ``env``, changing only what differs."""
    current = os.environ
    for key in [k for k in current if k not in env]:
        del current[key]
    for key, value in env.items():
        if current.get(key) != value:
            current[key] = value


class _CannotStart(Exception):
    """The job's files or directory cannot be opened: it fails as a script job would."""
