"""Job: one shell command or Python function call, written as a script and run by a backend.

The module-level functions (make_job, submit, wait, get, clean, clean_dir, ...) are the classic job-library
interface over the same class.
"""

from __future__ import annotations

import logging
import os
import pickle
import shlex
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from . import config, plugins
from .errors import JobError, JobFailedError, OptionError, RemoteTraceback
from .options import check_arguments, directive_lines
from .queue import tracker
from .records import QueueJob, State
from .script import (JobFiles, atomic_write, function_command, is_job_file, job_files, payload_for,
                     read_exit_file, render_script, safe_name)

log = logging.getLogger(__name__)

DEFAULT_JOBDIR = "cluster_jobs"


def _jobdir(options: Mapping[str, Any]) -> Path:
    chosen = options.get("jobdir") or config.get_option("core.jobdir") or DEFAULT_JOBDIR
    return Path(os.path.expanduser(str(chosen))).absolute()


class Job:
    """A shell command (a string) or a Python function with its arguments, to run as one job.

    Keyword options are the job keywords of :mod:`cluster_core.options` (``cores=4, mem="8G"``), plus
    ``backend=`` (a backend name) and ``profile=`` (a saved profile applied under the keywords).
    """

    def __init__(self, command: Union[str, Callable], args: Sequence[Any] = (),
                 kwargs: Optional[Mapping[str, Any]] = None, *, backend: Optional[str] = None,
                 profile: Optional[str] = None, **options: Any):
        if isinstance(command, str):
            if not command.strip():
                raise OptionError("the command is empty", keyword="command")
            if args or kwargs:
                raise OptionError("args and kwargs are for function jobs; put them into the command string",
                                  keyword="args")
            self.function: Optional[Callable] = None
            self.command: Optional[str] = command
        elif callable(command):
            self.function = command
            self.command = None
        else:
            raise OptionError(f"a job runs a command string or a callable, not {type(command).__name__}",
                              keyword="command")
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        depends = None
        for key in list(options):
            if key in ("depends", "dependencies", "dependency", "afterok"):
                depends = options.pop(key)
        self._depends = [] if depends is None else (
            list(depends) if isinstance(depends, (list, tuple, set)) else [depends])
        self.options = config.merged_keywords(options, profile=profile)
        self.profile = profile
        self._backend_name = backend
        self.name: str = self.options.get("name") or safe_name(_default_name(self.function, self.command))
        self.options["name"] = self.name
        self.files: JobFiles = job_files(_jobdir(self.options), self.name)
        self.outfile = Path(self.options.get("outfile") or self.files.out).absolute()
        self.errfile = Path(self.options.get("errfile") or self.files.err).absolute()
        self.options["outfile"], self.options["errfile"] = str(self.outfile), str(self.errfile)
        self.scriptfile = self.files.script
        self.id: Optional[str] = None
        self.submitted = False
        self.written = False
        self._result: Any = None
        self._result_loaded = False

    # --- backend ------------------------------------------------------------------------------------

    @property
    def backend(self) -> plugins.Backend:
        return plugins.get_backend(self._backend_name)

    # --- files --------------------------------------------------------------------------------------

    def write(self) -> Path:
        """Write the job script (and the function's pickle); return the script's path."""
        self.files.jobdir.mkdir(parents=True, exist_ok=True)
        backend = self.backend
        self._backend_name = backend.name
        options = self._submit_options()
        directives = directive_lines(backend.render_options(options), backend.info.directive_prefix)
        if self.function is not None:
            atomic_write(self.files.pickle_in, payload_for(self.function, self.args, self.kwargs), mode=0o600)
            command = function_command(self.files, config.get_option("core.python"))
        else:
            command = self.command
        text = render_script(command, exit_file=self.files.exit, directives=directives,
                             workdir=options.get("workdir"), modules=options.get("modules", ()))
        atomic_write(self.files.script, text, mode=0o755)
        self.written = True
        return self.files.script

    def _submit_options(self) -> dict[str, Any]:
        options = dict(self.options)
        if self._depends:
            ids = []
            for dep in self._depends:
                if isinstance(dep, Job) and not dep.submitted:
                    log.info("submitting %s first: %s depends on it", dep.name, self.name)
                    dep.submit()
                ids.append(dep)
            options.update(check_arguments({"depends": ids}))
        return options

    # --- running ------------------------------------------------------------------------------------

    def submit(self) -> "Job":
        """Write the files and hand the job to the backend; sets ``id``."""
        if self.submitted:
            raise JobError(f"job {self.name} was already submitted as {self.id}; use resubmit()")
        script = self.write()
        for path in (self.files.exit, self.files.pickle_out):
            path.unlink(missing_ok=True)
        self.id = self.backend.submit(script, self._submit_options(), directives_in_script=True)
        self.submitted = True
        tracker(self.backend.name).track(self.id, self.files.exit)
        log.info("submitted %s as job %s on %s", self.name, self.id, self.backend.name)
        return self

    def _need_id(self) -> str:
        if not self.submitted or self.id is None:
            raise JobError(f"job {self.name} has not been submitted; call submit() first")
        return self.id

    def update(self) -> "Job":
        track = tracker(self.backend.name)
        track.track(self._need_id(), self.files.exit)
        track.refresh()
        return self

    @property
    def record(self) -> Optional[QueueJob]:
        """The latest report on this job (None before the first poll)."""
        if not self.submitted:
            return None
        return tracker(self.backend.name).record(self.id)

    @property
    def state(self) -> State:
        if not self.submitted:
            return State.UNKNOWN if not self.written else State.PENDING
        rec = self.update().record
        return rec.state if rec else State.PENDING

    @property
    def done(self) -> bool:
        """True once the job has ended (or the scheduler lost it)."""
        if not self.submitted:
            return False
        return tracker(self.update().backend.name).is_done(self.id)

    @property
    def exitcode(self) -> Optional[int]:
        rec = self.record
        if rec is not None and rec.exitcode is not None:
            return rec.exitcode
        ended = read_exit_file(self.files.exit)
        return ended.returncode if ended else None

    @property
    def runtime(self) -> Optional[float]:
        """Seconds the command ran, from the job's own exit record or the scheduler's times."""
        ended = read_exit_file(self.files.exit)
        if ended is not None and ended.runtime is not None:
            return ended.runtime
        rec = self.record
        if rec is not None and rec.start_time and rec.end_time:
            return rec.end_time - rec.start_time
        return None

    def wait(self, timeout: Optional[float] = None, progress: Optional[bool] = None) -> bool:
        """Block until the job ends; True when it completed with exit code 0."""
        track = tracker(self.backend.name)
        track.track(self._need_id(), self.files.exit)
        track.wait([self.id], timeout=timeout, progress=progress)
        return self.state is State.COMPLETED and (self.exitcode in (0, None))

    @property
    def stdout(self) -> Optional[str]:
        return _read_text(self.outfile)

    @property
    def stderr(self) -> Optional[str]:
        return _read_text(self.errfile)

    @property
    def out(self) -> Any:
        """The function's return value (waits for the job); for a shell job, its stdout."""
        return self.get()

    def get(self, timeout: Optional[float] = None) -> Any:
        """Wait, then return the function's return value or the shell job's stdout.

        A function's exception is re-raised here with the remote traceback as its cause; a job that
        ended without a result raises JobFailedError saying how it ended.
        """
        if self._result_loaded:
            return self._result
        self.wait(timeout=timeout)
        if self.function is None:
            if self.state is not State.COMPLETED:
                raise self._failure()
            self._result, self._result_loaded = self.stdout, True
            return self._result
        try:
            with open(self.files.pickle_out, "rb") as fh:
                result = pickle.load(fh)
        except FileNotFoundError:
            raise self._failure() from None
        except Exception as exc:
            raise JobFailedError(f"job {self.id} ({self.name}): its result file {self.files.pickle_out} "
                                 f"cannot be read: {type(exc).__name__}: {exc}", job=self) from None
        if result.get("ok"):
            self._result, self._result_loaded = result["value"], True
            return self._result
        error = result.get("error")
        cause = RemoteTraceback(result.get("traceback", ""))
        if isinstance(error, BaseException):
            raise error from cause
        raise JobFailedError(f"job {self.id} ({self.name}) raised {result.get('error_repr')}", job=self) from cause

    def _failure(self) -> JobFailedError:
        rec = self.record
        how = rec.state.value if rec else "unknown"
        reason = f", {rec.reason}" if rec is not None and rec.reason else ""
        tail = "\n".join((self.stderr or "").strip().splitlines()[-5:])
        more = f"; end of its stderr ({self.errfile}):\n{tail}" if tail else ""
        return JobFailedError(f"job {self.id} ({self.name}) ended {how} with exit code {self.exitcode}"
                              f"{reason}{more}", job=self)

    def cancel(self) -> None:
        self.backend.cancel([self._need_id()])

    def clean(self, outputs: bool = True) -> None:
        """Delete the job's files (its script and pickles; with ``outputs`` also stdout/stderr)."""
        keep = set() if outputs else {self.files.out, self.files.err}
        for path in self.files.all():
            if path not in keep:
                path.unlink(missing_ok=True)
        if outputs:
            for path in (self.outfile, self.errfile):
                if path.parent == self.files.jobdir and is_job_file(path):
                    path.unlink(missing_ok=True)

    def resubmit(self) -> "Job":
        """Submit the same job again (a new id); the previous outputs and results are removed first."""
        if self.submitted and not self.done:
            raise JobError(f"job {self.id} ({self.name}) has not finished; cancel it before resubmitting")
        old = self.id
        if old is not None:
            tracker(self.backend.name).forget(old)
        for path in (self.files.exit, self.files.pickle_out, self.outfile, self.errfile):
            path.unlink(missing_ok=True)
        self.submitted, self.id = False, None
        self._result, self._result_loaded = None, False
        return self.submit()

    def __repr__(self) -> str:
        what = self.function.__name__ if self.function is not None else self.command
        status = f"id={self.id} state={self.state.value}" if self.submitted else "not submitted"
        return f"<Job {self.name} {status}: {what!r}>"


def _default_name(function: Optional[Callable], command: Optional[str]) -> str:
    """A function's name, or the program a command starts with."""
    if function is not None:
        return getattr(function, "__name__", "function")
    try:
        words = shlex.split(command or "", comments=True)
    except ValueError:
        words = []
    return words[0].rsplit("/", 1)[-1] if words else "job"


def _read_text(path: Path) -> Optional[str]:
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return None


# --- module-level interface ------------------------------------------------------------------------

def make_job(command: Union[str, Callable], args: Sequence[Any] = (), kwargs: Optional[Mapping] = None,
             **options: Any) -> Job:
    """A written, unsubmitted Job."""
    job = Job(command, args, kwargs, **options)
    job.write()
    return job


def make_job_file(command: Union[str, Callable], args: Sequence[Any] = (), kwargs: Optional[Mapping] = None,
                  **options: Any) -> Path:
    """Write a job's script and return its path."""
    return make_job(command, args, kwargs, **options).scriptfile


def submit(command: Union[str, Callable], args: Sequence[Any] = (), kwargs: Optional[Mapping] = None,
           **options: Any) -> Job:
    """Create and submit a Job; returns it."""
    return Job(command, args, kwargs, **options).submit()


class FileJob(Job):
    """A user's existing script, submitted as it is (options passed to the backend, not written in)."""

    def __init__(self, script: Union[str, os.PathLike], *, backend: Optional[str] = None,
                 profile: Optional[str] = None, **options: Any):
        path = Path(script).absolute()
        if not path.is_file():
            raise OptionError(f"script {str(path)!r} does not exist", keyword="script")
        super().__init__(f"bash {shlex.quote(str(path))}", backend=backend, profile=profile,
                         **{"name": path.stem, **options})
        self.scriptfile = path

    def write(self) -> Path:
        self.files.jobdir.mkdir(parents=True, exist_ok=True)
        self.written = True
        return self.scriptfile

    def submit(self) -> "Job":
        if self.submitted:
            raise JobError(f"job {self.name} was already submitted as {self.id}; use resubmit()")
        self.write()
        backend = self.backend
        self.id = backend.submit(self.scriptfile, self._submit_options(), directives_in_script=False)
        self.submitted = True
        tracker(backend.name).track(self.id, None)
        return self


def submit_file(script: Union[str, os.PathLike], depends: Any = None, **options: Any) -> Job:
    """Submit an existing script file as it is (with dependencies and options); returns its Job."""
    if depends is not None:
        options["depends"] = depends
    return FileJob(script, **options).submit()


def _as_jobs(jobs: Union[Job, Iterable[Job]]) -> list[Job]:
    if isinstance(jobs, Job):
        return [jobs]
    return list(jobs)


def wait(jobs: Union[Job, str, Iterable[Union[Job, str]]], timeout: Optional[float] = None,
         backend: Optional[str] = None, progress: Optional[bool] = None) -> bool:
    """Wait for all jobs (Jobs or ids) with one poll per interval for all; True if all completed."""
    items = [jobs] if isinstance(jobs, (Job, str)) else list(jobs)
    by_backend: dict[str, list[str]] = {}
    for item in items:
        if isinstance(item, Job):
            be = item.backend.name
            tracker(be).track(item._need_id(), item.files.exit)
            by_backend.setdefault(be, []).append(item.id)
        else:
            be = plugins.get_backend(backend).name
            tracker(be).track(str(item))
            by_backend.setdefault(be, []).append(str(item))
    for be, ids in by_backend.items():
        tracker(be).wait(ids, timeout=timeout, progress=progress)
    return all((tracker(be).record(i) or QueueJob(i, State.UNKNOWN)).state is State.COMPLETED
               for be, ids in by_backend.items() for i in ids)


def get(jobs: Union[Job, Iterable[Job]], timeout: Optional[float] = None) -> Any:
    """The results of jobs (one value for one Job, a list for many), waiting for them together."""
    items = _as_jobs(jobs)
    wait(items, timeout=timeout)
    results = [j.get() for j in items]
    return results[0] if isinstance(jobs, Job) else results


def clean(jobs: Union[Job, Iterable[Job]], outputs: bool = True) -> None:
    for job in _as_jobs(jobs):
        job.clean(outputs=outputs)


def clean_dir(directory: Union[str, os.PathLike, None] = None, confirm: bool = True,
              outputs: bool = True) -> list[Path]:
    """Delete the job files cluster-core wrote in a directory (default: the job directory).

    Only names matching the job-file convention are touched. With ``confirm`` the user is asked first
    (on a terminal); returns the deleted paths.
    """
    folder = Path(directory) if directory else _jobdir({})
    if not folder.is_dir():
        return []
    kinds = None if outputs else {"sh", "exit", "in.pkl", "out.pkl"}
    found = sorted(p for p in folder.iterdir() if p.is_file() and is_job_file(p) and
                   (kinds is None or p.name.split(".cluster.", 1)[1] in kinds))
    if not found:
        return []
    if confirm:
        answer = input(f"Delete {len(found)} job files in {folder}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            return []
    for path in found:
        path.unlink(missing_ok=True)
    return found
