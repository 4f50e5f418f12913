"""Job: one shell command or Python function call, written as a script and run by a backend.

The module-level functions (make_job, submit, wait, get, clean, clean_dir, ...) are the classic job-library
interface over the same class.
"""

from __future__ import annotations

import logging
import os
import pickle
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from . import config, plugins
from .errors import JobError, JobFailedError, OptionError, RemoteTraceback
from .options import array_indices, check_arguments, directive_lines
from .queue import tracker
from .records import FunctionCall, QueueJob, State
from .script import (JobFiles, TaskSpec, atomic_write, function_command, is_job_file, job_files,
                     payload_for, read_exit_file, render_script, safe_name, write_script)

log = logging.getLogger(__name__)

DEFAULT_JOBDIR = "cluster_jobs"


def _jobdir(options: Mapping[str, Any]) -> Path:
    chosen = options.get("jobdir") or config.get_option("core.jobdir") or DEFAULT_JOBDIR
    return Path(os.path.expanduser(str(chosen))).absolute()


class _Outcome:
    """How one tracked unit of work (a job, or one task of an array) ended, and what it left behind.

    Needs: ``files`` (its JobFiles), ``outfile``, ``errfile``, ``function`` (None for shell work),
    ``_backend_name``, ``submitted``, ``id`` and ``_track_key``.
    """

    files: JobFiles
    function: Optional[Callable]

    @property
    def backend(self) -> plugins.Backend:
        # looked up once per name: a job asks several times per submission and result
        name = self._backend_name
        if name is None:
            return plugins.get_backend(None)
        cached = self.__dict__.get("_backend")
        if cached is None or cached[0] != name:
            cached = self._backend = (name, plugins.get_backend(name))
        return cached[1]

    def _tracker(self):
        return tracker(self.backend.name)

    def _need_key(self) -> str:
        if not self.submitted:
            raise JobError(f"job {self.name} has not been submitted; call submit() first")
        return self._track_key

    def update(self):
        self._need_key()
        self._tracker().refresh()
        return self

    @property
    def record(self) -> Optional[QueueJob]:
        """The latest report on this job (None before the first poll)."""
        if not self.submitted:
            return None
        return self._tracker().record(self._track_key)

    @property
    def state(self) -> State:
        if not self.submitted:
            return State.UNKNOWN
        rec = self.update().record
        return rec.state if rec else State.PENDING

    @property
    def done(self) -> bool:
        """True once the job has ended (or the scheduler lost it)."""
        if not self.submitted:
            return False
        return self._tracker().is_done(self.update()._track_key)

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
        self._tracker().wait([self._need_key()], timeout=timeout, progress=progress)
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
        if getattr(self, "_result_loaded", False):
            return self._result
        self.wait(timeout=timeout)
        if self.function is None:
            if self.state is not State.COMPLETED:
                raise self._failure()
            value = self.stdout
        else:
            value = self._load_result()
        self._result, self._result_loaded = value, True
        return value

    def _load_result(self) -> Any:
        try:
            with open(self.files.pickle_out, "rb") as fh:
                result = pickle.load(fh)
        except FileNotFoundError:
            raise self._failure() from None
        except Exception as exc:
            raise JobFailedError(f"job {self.id} ({self.name}): its result file {self.files.pickle_out} "
                                 f"cannot be read: {type(exc).__name__}: {exc}", job=self) from None
        if result.get("ok"):
            return result["value"]
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


class Task(_Outcome):
    """One task of an array job (or one element of ``map``): tracked, waited and read on its own."""

    def __init__(self, job: "Job", index: int, job_id: Optional[str] = None):
        self.job = job
        self.index = index
        self.files = job.files.for_task(index)
        self.outfile, self.errfile = self.files.out, self.files.err
        self.function = job.function
        self.name = f"{job.name}[{index}]"
        self._backend_name = job._backend_name
        self._own_id = job_id  # set when the backend ran this task as a job of its own
        self._track_key = job_id or f"{job.id}#{index}"
        self.submitted = True

    @property
    def id(self) -> str:
        if self._own_id:
            return self._own_id
        rec = self.record
        if rec is not None and rec.task_id == self.index:
            return rec.id
        return f"{self.job.id}[{self.index}]"

    def cancel(self) -> None:
        self.backend.cancel([self.id])

    def __repr__(self) -> str:
        return f"<Task {self.name} id={self.id}>"


class Job(_Outcome):
    """A shell command (a string) or a Python function with its arguments, to run as one job.

    Keyword options are the job keywords of :mod:`cluster_core.options` (``cores=4, mem="8G"``), plus
    ``backend=`` (a backend name) and ``profile=`` (a saved profile applied under the keywords). With
    ``array=`` the job is an array: ``tasks`` holds one :class:`Task` per index, each with its own output
    and exit code, and ``$CLUSTER_TASK_ID`` holds the index inside the job.
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
        self.calls: Optional[list[tuple]] = None  # map(): one (args, kwargs) per task index
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
        self.tasks: list[Task] = []
        self.submitted = False
        self.written = False
        self._new_files = False  # the script was created by this submission: no earlier outputs to remove
        self._result: Any = None
        self._result_loaded = False

    @property
    def _track_key(self) -> Optional[str]:
        return self.id

    @property
    def indices(self) -> Optional[list[int]]:
        """The array's task indices, None for a plain job."""
        if "array" not in self.options:
            return None
        return array_indices(self.options["array"])[0]

    @property
    def native_array(self) -> bool:
        """True when the backend runs this array as one submission (else one job per task)."""
        indices = self.indices
        info = self.backend.info
        return indices is not None and info.supports_arrays and len(indices) >= max(1, info.min_array_size)

    # --- files --------------------------------------------------------------------------------------

    def write(self) -> Path:
        """Write the job script (and the function's pickle); return the script's path.

        For an array on a backend without arrays, one script per task is written (``<stem>.cluster.<i>.sh``).
        """
        write_task = self._write_files()
        if write_task is not None:
            for index in self.indices:
                write_task(index)
        self.written = True
        return self.files.script if self.indices is None or self.native_array else \
            self.files.for_task(self.indices[0]).script

    def _write_files(self) -> Optional[Callable[[int], tuple[Path, bool]]]:
        """Write the pickle and the script, except the scripts of an array that runs as one job per task:
        for those, return the function that writes one task's script (submit writes each just before it
        submits it, so the first task can start before the last script is written)."""
        self.files.jobdir.mkdir(parents=True, exist_ok=True)
        backend = self.backend
        self._backend_name = backend.name
        options = self._submit_options()
        if self.function is not None:
            calls = self.calls
            if calls is None and self.indices is not None:
                calls = [(self.args, self.kwargs)] * (max(self.indices) + 1)
            atomic_write(self.files.pickle_in, payload_for(self.function, self.args, self.kwargs, calls=calls),
                         mode=0o600)
            command = function_command(self.files, config.get_option("core.python"), array=calls is not None)
        else:
            command = self.command
        common = dict(workdir=options.get("workdir"), modules=options.get("modules", ()))
        if not backend.info.afterok_dependencies:  # the scheduler releases on any end: check success here
            common["requires"] = [t.files.exit for dep in self._depends if isinstance(dep, _Outcome)
                                  for t in (getattr(dep, "tasks", None) or [dep])]
        if self.indices is None:
            text = render_script(command, exit_file=self.files.exit, directives=self._directives(options),
                                 **common)
            self._new_files = write_script(self.files.script, text)
            return None
        if self.native_array:
            variables = tuple((backend.info.task_id_variable or "").split())
            # the scheduler's task i + task_id_offset is the core's task i
            task = TaskSpec(self.files, variables=variables, offset=-backend.info.task_id_offset)
            text = render_script(command, directives=self._directives(options), task=task, **common)
            self._new_files = write_script(self.files.script, text)
            return None
        directives = self._directives({k: v for k, v in options.items() if k != "array"})

        def write_task(index: int) -> tuple[Path, bool]:
            script = self.files.for_task(index).script
            text = render_script(command, directives=directives, task=TaskSpec(self.files, fixed=index), **common)
            return script, write_script(script, text)
        return write_task

    def _directives(self, options: Mapping[str, Any]) -> list[str]:
        backend = self.backend
        return directive_lines(backend.render_options(options), backend.info.directive_prefix,
                               backend.info.directive_escapes_backslash)

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
        """Write the files and hand the job to the backend; sets ``id`` (and ``tasks`` for an array)."""
        if self.submitted:
            raise JobError(f"job {self.name} was already submitted as {self.id}; use resubmit()")
        write_task = self._write_files()
        self.written = True
        backend = self.backend
        options = self._submit_options()
        track = tracker(backend.name)
        # results of an earlier submission under the same files must not count for this one (files that
        # did not exist before this submission wrote its script cannot have any)
        if self.indices is None:
            if not self._new_files:
                for path in (self.files.exit, self.files.pickle_out):
                    path.unlink(missing_ok=True)
            self.id = backend.submit(self.files.script, options, directives_in_script=True,
                                     call=self._function_call())
            track.track(self.id, self.files.exit, errfile=self.errfile)
        else:
            if self.native_array:
                for index in self.indices if not self._new_files else ():
                    files = self.files.for_task(index)
                    for path in (files.exit, files.pickle_out):
                        path.unlink(missing_ok=True)
                self.id = backend.submit(self.files.script, options, directives_in_script=True)
                self.tasks = [Task(self, i) for i in self.indices]
                for task, i in zip(self.tasks, self.indices):
                    track.track(task._track_key, task.files.exit, array_id=self.id, task=i,
                                errfile=self.errfile)
            else:
                # one job per task; each task's script sends its output to the task's own files, so the
                # backend is told those (and, for a function, the task's call to run warm if it can)
                single = {k: v for k, v in options.items() if k != "array"}
                self.tasks = []
                for index in self.indices:
                    files = self.files.for_task(index)
                    script, new = write_task(index)
                    for path in (files.exit, files.pickle_out) if not new else ():
                        path.unlink(missing_ok=True)
                    task_options = dict(single, outfile=str(files.out), errfile=str(files.err))
                    task_id = backend.submit(script, task_options, directives_in_script=True,
                                             call=self._function_call(index))
                    task = Task(self, index, job_id=task_id)
                    track.track(task_id, task.files.exit, errfile=task.errfile)
                    self.tasks.append(task)
                self.id = self.tasks[0].id
        self.submitted = True
        log.info("submitted %s as job %s on %s%s", self.name, self.id, backend.name,
                 f" ({len(self.tasks)} tasks)" if self.tasks else "")
        return self

    def _function_call(self, task: Optional[int] = None) -> Optional[FunctionCall]:
        """What a backend needs to run this function job (or the array task ``task`` of it, submitted as
        a job of its own) without its script; None for shell jobs."""
        if self.function is None:
            return None
        files = self.files if task is None else self.files.for_task(task)
        return FunctionCall(pickle_in=str(self.files.pickle_in), pickle_out=str(files.pickle_out),
                            exit_file=str(files.exit), python=config.get_option("core.python") or sys.executable,
                            task=task)

    def wait(self, timeout: Optional[float] = None, progress: Optional[bool] = None) -> bool:
        """Block until the job (every task of an array) ends; True when all completed with exit code 0."""
        if not self.tasks:
            return super().wait(timeout=timeout, progress=progress)
        self._need_key()
        return wait(self.tasks, timeout=timeout, progress=progress)

    def get(self, timeout: Optional[float] = None) -> Any:
        """The return value or stdout; for an array, the list of every task's, in index order."""
        if not self.tasks:
            return super().get(timeout=timeout)
        return get(self.tasks, timeout=timeout)

    @property
    def state(self) -> State:
        if not self.tasks:
            return super().state
        states = [t.state for t in self.tasks]
        for s in (State.RUNNING, State.PENDING, State.HELD, State.COMPLETING, State.SUSPENDED):
            if s in states:
                return s
        bad = [s for s in states if s is not State.COMPLETED]
        return bad[0] if bad else State.COMPLETED

    @property
    def done(self) -> bool:
        if not self.tasks:
            return super().done
        return all(t.done for t in self.tasks)

    def cancel(self) -> None:
        if self.tasks and not self.native_array:
            self.backend.cancel([t.id for t in self.tasks])
        else:
            self.backend.cancel([self._need_key()])

    def clean(self, outputs: bool = True) -> None:
        """Delete the job's files (its script and pickles; with ``outputs`` also stdout/stderr)."""
        kinds = ("sh", "exit", "in.pkl", "out.pkl") + (("out", "err") if outputs else ())
        for files in [self.files] + [t.files for t in self.tasks]:
            for kind in kinds:
                files.path(kind).unlink(missing_ok=True)
        if outputs:
            for path in (self.outfile, self.errfile):
                if path.parent == self.files.jobdir and is_job_file(path):
                    path.unlink(missing_ok=True)

    def resubmit(self) -> "Job":
        """Submit the same job again (a new id); the previous outputs and results are removed first."""
        if self.submitted and not self.done:
            raise JobError(f"job {self.id} ({self.name}) has not finished; cancel it before resubmitting")
        if self.submitted:
            for unit in self.tasks or [self]:
                self._tracker().forget(unit._track_key)
                for path in (unit.files.exit, unit.files.pickle_out, unit.outfile, unit.errfile):
                    path.unlink(missing_ok=True)
        self.submitted, self.id, self.tasks = False, None, []
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
        tracker(backend.name).track(self.id, None, errfile=self.errfile)
        return self


def submit_file(script: Union[str, os.PathLike], depends: Any = None, **options: Any) -> Job:
    """Submit an existing script file as it is (with dependencies and options); returns its Job."""
    if depends is not None:
        options["depends"] = depends
    return FileJob(script, **options).submit()


def _units(jobs: Any) -> list:
    """Jobs, tasks and ids flattened to what is tracked: an array Job becomes its tasks."""
    items = [jobs] if isinstance(jobs, (_Outcome, str)) else list(jobs)
    out = []
    for item in items:
        if isinstance(item, Job) and item.tasks:
            out.extend(item.tasks)
        else:
            out.append(item)
    return out


def wait(jobs: Any, timeout: Optional[float] = None, backend: Optional[str] = None,
         progress: Optional[bool] = None) -> bool:
    """Wait for jobs, tasks or job ids, with one poll per interval for all; True if all completed."""
    by_backend: dict[str, list[str]] = {}
    for item in _units(jobs):
        if isinstance(item, _Outcome):
            be = item.backend.name
            by_backend.setdefault(be, []).append(item._need_key())
        else:
            be = plugins.get_backend(backend).name
            tracker(be).track(str(item))
            by_backend.setdefault(be, []).append(str(item))
    for be, keys in by_backend.items():
        tracker(be).wait(keys, timeout=timeout, progress=progress)
    return all((tracker(be).record(k) or QueueJob(k, State.UNKNOWN)).state is State.COMPLETED
               for be, keys in by_backend.items() for k in keys)


def get(jobs: Any, timeout: Optional[float] = None) -> Any:
    """Results of jobs or tasks (one value for one Job, a list for many; an array Job gives a list),
    waiting for all of them together."""
    wait(jobs, timeout=timeout)
    if isinstance(jobs, _Outcome):
        return jobs.get()
    return [j.get() for j in jobs]


def map(function: Callable, iterable: Iterable[Any], *, star: bool = False, **options: Any) -> list[Task]:
    """Run ``function`` on every element as one array submission (split at the backend's array size
    limit; one job per element where the backend has no arrays). Returns one Task per element, in order.

    With ``star``, each element is a tuple of positional arguments.
    """
    elements = list(iterable)
    if not elements:
        return []
    if "array" in options:
        raise OptionError("map() makes the array itself; drop array=", keyword="array")
    backend = plugins.get_backend(options.pop("backend", None))
    limit = backend.max_array_size() or len(elements)
    tasks: list[Task] = []
    for start in range(0, len(elements), limit):
        chunk = elements[start:start + limit]
        job = Job(function, backend=backend.name, array=f"0-{len(chunk) - 1}", **options)
        job.calls = [((tuple(e) if star else (e,)), {}) for e in chunk]
        tasks.extend(job.submit().tasks)
    return tasks


def clean(jobs: Union[Job, Iterable[Job]], outputs: bool = True) -> None:
    for job in ([jobs] if isinstance(jobs, Job) else list(jobs)):
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
