"""Job: one shell command or Python function call, written as a script and run by a backend.

A Job is submitted by one of four small plans, chosen once from what the job is and what the backend can
do: one script; a native array (one submission, the scheduler starts every task); one job per task (a
backend without arrays); a user's own script submitted as it is. Each plan returns the job's record
(:mod:`cluster_core.registry`), and the Job takes its ids and tasks from that record. A Job found again
by id, in this or any other process, is built from its record through the same step, so waiting on it,
reading its output and cancelling it work alike.

The module-level functions (make_job, submit, wait, get, clean, clean_dir, ...) are the classic
job-library interface over the same class.
"""

from __future__ import annotations

import errno
import functools
import getpass
import logging
import os
import pickle
import re
import shlex
import sys
import time
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Callable, Generator, Iterable, Literal, Mapping, Optional, Sequence,
                    SupportsIndex, TypeVar, Union, cast)

import attrs

from . import config, plugins, registry
from .errors import (ClusterError, JobError, JobFailedError, OptionError, PartialSubmitError, RemoteTraceback,
                     SubmitError, UnknownJobError, WaitTimeout)
from .casts import _bool, array_indices, describe, parse_time
from .dependencies import dependency_items, to_dependencies
from .keywords import CORE_KEYWORDS, check_arguments
from .queue import tracker
from .records import DEPENDENCY_KINDS, FunctionCall, QueueJob, State
from .registry import JobRecord
from .rendering import directive_lines
from .checkpoint import DEFAULT_REQUEUES, is_checkpointable
from .script import (FILE_RE, JobFiles, Script, TaskSpec, atomic_write, expand_path, function_command, has_patterns,
                     checkpointed, is_job_file, job_files, payload_for, read_exit_file, render_script, runtime_path,
                     safe_name, write_script)

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Protocol

    from .queue import Tracker

    class _TaskWriter(Protocol):
        """Writes one task's script (into ``files``, by default the task's own); (its path, True if new)."""

        def __call__(self, index: int, files: Optional[JobFiles] = None) -> tuple[Path, bool]: ...

log = logging.getLogger(__name__)

_O = TypeVar("_O", bound="_Outcome")
# one call of a function job's array (map): its positional and keyword arguments
_Call = tuple[tuple[Any, ...], dict[str, Any]]

DEFAULT_JOBDIR = "cluster_jobs"


def _jobdir(options: Mapping[str, Any]) -> Path:
    chosen = options.get("jobdir") or config.get_option("core.jobdir") or DEFAULT_JOBDIR
    text = os.path.expanduser(str(chosen))
    return _absolute_dir(text, None if os.path.isabs(text) else os.getcwd())


@functools.lru_cache(maxsize=64)
def _absolute_dir(text: str, cwd: Optional[str]) -> Path:
    """A job directory as an absolute path, built once per directory (and working directory)."""
    return Path(cwd, text) if cwd is not None else Path(text)


class _Outcome:
    """How one tracked unit of work (a job, or one task of an array) ended, and what it left behind.

    Needs: ``files`` (its JobFiles, None for a job known only by id), ``outfile``, ``errfile``,
    ``is_function``, ``_backend_name``, ``submitted``, ``id``, ``name`` and ``_track_key``.
    """

    files: Optional[JobFiles]
    is_function: bool
    name: str
    outfile: Optional[Path]
    errfile: Optional[Path]
    submitted: bool
    _backend_name: Optional[str]
    _backend: tuple[str, plugins.Backend]  # (name, the loaded plugin), set by ``backend``
    _result: Any
    _result_loaded: bool

    if TYPE_CHECKING:  # a Job's are attributes, a Task's properties (or the reverse): read-only here
        @property
        def id(self) -> Optional[str]: ...

        @property
        def _track_key(self) -> str: ...

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

    def _tracker(self) -> Tracker:
        return tracker(self.backend.name)

    def _need_key(self) -> str:
        if not self.submitted:
            raise JobError(f"job {self.name} has not been submitted; call submit() first")
        return self._track_key

    def __await__(self) -> Generator[Any, None, Any]:
        """``await job`` in asyncio: its result, on the one poller per backend and event loop."""
        from .futures import awaitable  # asyncio only when a job is awaited
        return awaitable(self).__await__()

    def update(self: _O, fetch_info: bool = True) -> _O:
        """Ask for the job's state (at most once per poll interval); ``fetch_info`` is fyrd's, accepted."""
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
    def exit_file(self) -> Optional[Path]:
        return self.files.exit if self.files is not None else None

    @property
    def exitcode(self) -> Optional[int]:
        rec = self.record
        if rec is not None and rec.exitcode is not None:
            return rec.exitcode
        ended = read_exit_file(self.exit_file) if self.exit_file else None
        return ended.returncode if ended else None

    @property
    def runtime(self) -> Optional[float]:
        """Seconds the command ran, from the job's own exit record or the scheduler's times."""
        ended = read_exit_file(self.exit_file) if self.exit_file else None
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
        if not self.is_function:
            if self.state is not State.COMPLETED:
                raise self._failure()
            value = self.stdout
            if value is None:
                raise JobError(f"job {self.id} ({self.name}) on {self.backend.name} completed, but its output "
                               f"file {self.outfile or '(unknown: it was not submitted by cluster-core)'} "
                               "cannot be read")
        else:
            value = self._load_result()
        self._result, self._result_loaded = value, True
        return value

    def _load_result(self) -> Any:
        path = self.files.pickle_out if self.files is not None else None
        try:
            with open(path, "rb") as fh:  # type: ignore[arg-type]
                result = pickle.load(fh)
        except (FileNotFoundError, TypeError):
            raise self._failure() from None
        except Exception as exc:
            raise JobFailedError(f"job {self.id} ({self.name}): its result file {path} "
                                 f"cannot be read: {type(exc).__name__}: {exc}", job=self) from None
        if result.get("ok"):
            return result["value"]
        error = result.get("error")
        cause = RemoteTraceback(result.get("traceback", ""))
        if isinstance(error, BaseException):
            if hasattr(error, "add_note"):
                error.add_note(f"(raised in job {self.id} ({self.name}) on {self.backend.name}; "
                               f"its stderr: {self.errfile})")
            raise error from cause
        raise JobFailedError(f"job {self.id} ({self.name}) on {self.backend.name} raised "
                             f"{result.get('error_repr')}; its stderr: {self.errfile}", job=self) from cause

    def _failure(self) -> JobFailedError:
        rec = self.record
        how = rec.state.value if rec else "unknown"
        code = self.exitcode
        reason = f", {rec.reason}" if rec is not None and rec.reason and rec.reason != f"exit code {code}" else ""
        tail = "\n".join((self.stderr or "").strip().splitlines()[-5:])
        where = f"; its stderr: {self.errfile}" if self.errfile else ""
        more = f"; its end:\n{tail}" if tail else ""
        return JobFailedError(f"job {self.id} ({self.name}) on {self.backend.name} ended {how} with exit code "
                              f"{code}{reason}{where}{more}", job=self)


class Task(_Outcome):
    """One task of an array job (or one element of ``map``): tracked, waited and read on its own."""

    _track_key: str

    def __init__(self, job: "Job", index: int, job_id: Optional[str] = None):
        self.job = job
        self.index = index
        self.files = job.files.for_task(index) if job.files is not None else None
        self.outfile = self.files.out if self.files is not None else None
        self.errfile = self.files.err if self.files is not None else None
        for attr in ("outfile", "errfile"):  # the array's path with placeholders, filled in for this task
            pattern = str(getattr(job, attr) or "")
            if pattern and has_patterns(pattern) and job.id:
                setattr(self, attr, Path(expand_path(pattern, job.id, job.name, _USER, job.id, index)))
        self.is_function = job.is_function
        self.name = f"{job.name}[{index}]"
        self._backend_name = job._backend_name
        self._own_id = job_id  # set when the backend ran this task as a job of its own
        self._track_key = job_id or f"{job.id}#{index}"
        self.submitted = True

    @property
    def function(self) -> Optional[Callable[..., Any]]:
        return self.job.function

    @property
    def id(self) -> str:
        if self._own_id:
            return self._own_id
        return self.backend.task_id(cast(str, self.job.id), self.index)  # a task's job was submitted

    def cancel(self) -> None:
        cancel([self])

    def release(self) -> None:
        """Let the task be scheduled, if it was submitted held."""
        release([self])

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        return (_restore_task, (self.job._record_dict(), self.index))

    def __repr__(self) -> str:
        return f"<Task {self.name} id={self.id}>"


class Job(_Outcome):
    """A shell command (a string) or a Python function with its arguments, to run as one job.

    Keyword options are the job keywords of :mod:`cluster_core.options` (``cores=4, mem="8G"``), plus
    ``backend=`` (a backend name) and ``profile=`` (a saved profile applied under the keywords). With
    ``array=`` the job is an array: ``tasks`` holds one :class:`Task` per index, each with its own output
    and exit code, and ``$CLUSTER_TASK_ID`` holds the index inside the job.

    A submitted Job pickles as its record: unpickled in another process it is the same job, to wait on
    and read. :meth:`from_id` finds a job again by its id.
    """

    id: Optional[str]  # the scheduler's id, None until submitted

    def __init__(self, command: Union[str, Callable[..., Any]], args: Any = (),
                 kwargs: Union[Mapping[str, Any], str, None] = None, name: Optional[str] = None,
                 qtype: Optional[str] = None, profile: Optional[str] = None, *, backend: Optional[str] = None,
                 **options: Any):
        if isinstance(kwargs, str):  # the seed's Job(command, args, name, path, qtype, profile)
            kwargs, name, options["path"] = None, kwargs, name
        if name is not None:
            options["name"] = name
        backend = _backend_of(backend, qtype)
        args = () if args is None else args
        if isinstance(command, str):
            if not command.strip():
                raise OptionError("the command is empty", keyword="command")
            if "\0" in command:
                raise OptionError(f"the command holds a NUL character at position {command.index(chr(0))}; a job "
                                  "script cannot carry one", keyword="command")
            try:
                command.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise OptionError(f"the command is not valid Unicode text: {command[exc.start]!r} at position "
                                  f"{exc.start} is a lone surrogate", keyword="command") from None
            if args or kwargs:
                raise OptionError("args and kwargs are for function jobs; put them into the command string",
                                  keyword="args")
            self.function: Optional[Callable[..., Any]] = None
            self.command: Optional[str] = command
        elif callable(command):
            self.function = command
            self.command = None
        else:
            raise OptionError(f"a job runs a command string or a callable, not {type(command).__name__}",
                              keyword="command")
        if isinstance(args, Mapping):
            raise OptionError(f"args={describe(args)}: expected a list or tuple of positional arguments (a dict of "
                              "keyword arguments goes in kwargs)", keyword="args")
        if self.function is not None and (isinstance(args, (str, bytes, bytearray)) or not isinstance(args, Iterable)):
            args = (args,)  # one argument, as fyrd took it: submit(parse, path)
        elif isinstance(args, (str, bytes, bytearray)) or not isinstance(args, Iterable):
            raise OptionError(f"args={describe(args)}: expected a list or tuple of positional arguments",
                              keyword="args")
        if kwargs is not None and not (isinstance(kwargs, Mapping) and all(isinstance(k, str) for k in kwargs)):
            raise OptionError(f"kwargs={describe(kwargs)}: expected a dict of keyword arguments (names are strings)",
                              keyword="kwargs")
        self.is_function = self.function is not None
        try:
            self.args = tuple(args)
        except Exception as exc:
            raise OptionError(f"args={describe(args)}: cannot be read as a list ({type(exc).__name__}: {exc})",
                              keyword="args") from None
        self.kwargs = dict(kwargs or {})
        self.calls: Optional[list[_Call]] = None  # map(): one (args, kwargs) per task index
        given = [key for key in options if key in ("depends", "dependencies", "dependency", "depend", "afterok")]
        if len([key for key in given if options[key] is not None]) > 1:
            raise OptionError(f"'depends' given twice (as {' and '.join(repr(k) for k in given)})", keyword="depends")
        depends = None
        for key in given:
            value = options.pop(key)
            depends = value if value is not None else depends
        try:
            # (type, id or Job) pairs: job ids are checked now; Jobs are kept (one not yet submitted is
            # submitted first)
            self._depends = [] if depends is None else dependency_items(depends)
            to_dependencies([(kind, d) for kind, d in self._depends if not isinstance(d, _Outcome)])
        except ValueError as exc:
            raise OptionError(f"depends={describe(depends)}: {exc}", keyword="depends", value=depends) from None
        self.options = config.merged_keywords(options, profile=profile)
        if self.function is not None and "max_requeue" not in self.options and is_checkpointable(self.function):
            self.options["max_requeue"] = DEFAULT_REQUEUES  # it says how to save itself: let it
        self.profile = profile
        self._backend_name = backend
        self.name: str = self.options.get("name") or safe_name(_default_name(self.function, self.command))
        self.options["name"] = self.name
        self.files: Optional[JobFiles] = job_files(_jobdir(self.options), self.name,
                                                   suffix=self.options.get("suffix", "cluster"))
        outdir = Path(os.path.expanduser(self.options["outpath"])) if self.options.get("outpath") else None
        for attr, own in (("outfile", self.files.out), ("errfile", self.files.err)):
            path = self.options.get(attr)
            if path or outdir:  # the job's own paths are absolute already: no new Path for them
                setattr(self, attr, Path(path or cast(Path, outdir) / own.name).absolute())
            else:
                setattr(self, attr, own)
        self.options["outfile"], self.options["errfile"] = str(self.outfile), str(self.errfile)
        self.scriptfile: Optional[Path] = self.files.script
        # output paths with placeholders (%j %x %u %A %a): the script fills them in where the job runs
        self._patterns = {a: self.options[a] for a in ("outfile", "errfile") if has_patterns(self.options[a])}
        self._reset()
        self.written = False

    def _reset(self) -> None:
        self.id: Optional[str] = None
        self.tasks: list[Task] = []
        self.submitted = False
        self._registry_record: Optional[JobRecord] = None
        self._new_files = False  # the script was created by this submission: no earlier outputs to remove
        self._result: Any = None
        self._result_loaded = False
        self._outputs: Optional[tuple[Optional[str], Optional[str]]] = None  # read before clean() deleted them

    @property
    def _track_key(self) -> str:
        return cast(str, self.id)  # None before submission, when nothing tracks the job

    @property
    def _job_files(self) -> JobFiles:
        """The job's files, for what writes them: None only for a job followed by its id alone."""
        return cast(JobFiles, self.files)

    @property
    def indices(self) -> Optional[list[int]]:
        """The array's task indices, None for a plain job."""
        if self._registry_record is not None and self._registry_record.kind in ("array", "tasks"):
            return list(self._registry_record.indices)
        if "array" not in self.options:
            return None
        return array_indices(self.options["array"])[0]

    @property
    def native_array(self) -> bool:
        """True when the backend runs this array as one submission (else one job per task)."""
        if self._registry_record is not None:
            return self._registry_record.kind == "array"
        indices = self.indices
        info = self.backend.info
        return indices is not None and info.supports_arrays and len(indices) >= max(1, info.min_array_size)

    def _plan(self) -> "_Plan":
        if self.indices is None:
            return _OneScript()
        return _NativeArray() if self.native_array else _OneJobPerTask()

    # --- files --------------------------------------------------------------------------------------

    def write(self, overwrite: bool = True) -> Path:
        """Write the job script (and the function's pickle); return the script's path. Without
        ``overwrite``, a script already written is left as it is.

        For an array on a backend without arrays, one script per task is written (``<stem>.cluster.<i>.sh``).
        """
        if not overwrite and self.written and self.scriptfile is not None and self.scriptfile.exists():
            return self.scriptfile
        with _job_dir_errors(self):
            path = self._plan().write(self)
        self.written = True
        return path

    def _prepare(self) -> tuple[dict[str, Any], str, dict[str, Any]]:
        """Write the function's pickle; return the submit options, the command line, and what every
        script of this job shares (workdir, modules, dependency exit files)."""
        self._job_files.jobdir.mkdir(parents=True, exist_ok=True)
        if self.options.get("outpath"):
            outdir = Path(os.path.expanduser(self.options["outpath"])).absolute()
            try:
                outdir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OptionError(f"outpath={describe(str(outdir))}: cannot be made: {exc.strerror or exc}",
                                  keyword="outpath") from None
        backend = self.backend
        self._backend_name = backend.name
        options = self._submit_options()
        if self.function is not None:
            calls = self.calls
            if calls is None and self.indices is not None:
                calls = [(self.args, self.kwargs)] * (max(self.indices) + 1)
            try:
                payload = payload_for(self.function, self.args, self.kwargs, calls=calls,
                                      imports=self.options.get("imports", ()), syspaths=self.options.get("syspaths", ()))
            except Exception as exc:
                raise _unpicklable(self, calls, exc) from None
            atomic_write(self._job_files.pickle_in, payload, mode=0o600)
            max_requeue = self._max_requeue()
            command = function_command(self._job_files, config.get_option("core.python"), array=calls is not None,
                                       max_requeue=max_requeue)
            if max_requeue:
                command = checkpointed(command, _requeue_lines(backend))
        else:
            command = cast(str, self.command)  # a job without a function has a command
        _check_workdir(options.get("workdir"))
        common: dict[str, Any] = dict(workdir=options.get("workdir") or os.getcwd(),
                                      modules=options.get("modules", ()), umask=_umask())
        if not backend.info.afterok_dependencies:  # the scheduler releases on any end: check the outcome here
            common["requires"] = _required_outcomes(self._depends, backend.name)
        if self._patterns:
            common["outputs"] = self._runtime_outputs(backend)
        return options, command, common

    def _runtime_outputs(self, backend: plugins.Backend) -> tuple[str, str]:
        """The output paths as shell words the script expands (placeholders in them); an OptionError for
        a placeholder this backend cannot fill in, or a directory that does not exist."""
        info = backend.info
        array = self.indices is not None
        native = array and self.native_array
        words = []
        for attr in ("outfile", "errfile"):
            pattern = self._patterns.get(attr) or str(getattr(self, attr))
            folder = os.path.dirname(pattern)
            if not has_patterns(folder) and not os.path.isdir(folder):
                raise OptionError(f"{attr}={pattern!r}: its directory does not exist", keyword=attr)
            if array and "%j" in pattern.replace("%%", ""):
                raise OptionError(f"{attr}={pattern!r}: %j in an array's output path would name each task's own "
                                  "job id; use %A (the array's id) and %a (the task index)", keyword=attr)
            try:
                words.append(runtime_path(pattern, self.name, _USER, info.job_id_variable,
                                          info.array_id_variable if native else None,
                                          "$CLUSTER_TASK_ID" if array else None))
            except ValueError as exc:
                raise OptionError(f"{attr}={pattern!r}: {exc} on {backend.name}"
                                  + (" (an array that runs one job per task, or no array id variable)" if array
                                     else ""), keyword=attr) from None
        return words[0], words[1]

    def _directives(self, options: Mapping[str, Any]) -> list[str]:
        backend = self.backend
        return directive_lines(backend.render_options(options), backend.info.directive_prefix,
                               backend.info.directive_escapes_backslash)

    def _max_requeue(self) -> int:
        """How many times this job may save itself and be requeued (0: it is not checkpointed)."""
        count = int(self.options.get("max_requeue") or 0)
        if count and self.function is None:
            raise OptionError(f"max_requeue={count}: checkpointing is for function jobs (a shell command saves "
                              "nothing); give the job a function", keyword="max_requeue")
        return count

    def _submit_options(self) -> dict[str, Any]:
        options = {k: v for k, v in self.options.items() if k not in CORE_KEYWORDS}
        if self._max_requeue():  # the scheduler's warning, so much ahead of the time limit
            limit = options.get("time")
            options.setdefault("checkpoint_before", min(60, limit // 4) if limit else 60)
        else:
            options.pop("checkpoint_before", None)
        if self._patterns:  # the scheduler writes to the job's own files; the script moves to the real ones
            options.update(outfile=str(self._job_files.out), errfile=str(self._job_files.err))
        if self._depends:
            _check_dependency_kinds(self._depends, self.backend)  # before any parent is submitted
            pairs: list[tuple[str, Any]] = []
            for kind, dep in self._depends:
                if isinstance(dep, Job) and not dep.submitted:
                    log.info("submitting %s first: %s depends on it", dep.name, self.name)
                    dep.submit()
                pairs.extend((kind, d) for d in _dependency_ids(dep))
            options["depends"] = to_dependencies(pairs)
        elif options.get("depends"):  # from a profile, the config, or a job record (its text form)
            options["depends"] = check_arguments({"depends": options["depends"]})["depends"]
            _check_dependency_kinds([(d.kind, d.job_id) for d in options["depends"]], self.backend)
        return options

    def _new_record(self, kind: str, job_id: str, options: Mapping[str, Any], *, indices: Sequence[int] = (),
                    task_ids: Sequence[str] = ()) -> JobRecord:
        options = {**options, **{k: v for k, v in self.options.items() if k in CORE_KEYWORDS}}
        if self._patterns and kind == "job":  # the id is known now: the paths the job writes
            for attr, pattern in self._patterns.items():
                setattr(self, attr, Path(expand_path(pattern, job_id, self.name, _USER)))
        return JobRecord(
            backend=self.backend.name, id=job_id, kind=kind, name=self.name,
            jobdir=str(self.files.jobdir) if self.files else "", stem=self.files.stem if self.files else "",
            suffix=self.files.suffix if self.files else "cluster",
            script=str(self.scriptfile or ""), outfile=str(self.outfile or ""), errfile=str(self.errfile or ""),
            function=self.is_function, command=_describe(self.function, self.command), indices=tuple(indices),
            task_ids=tuple(task_ids), depends=tuple(str(d) for d in options.get("depends", ())),
            options=_jsonable_options(options), host=_HOST, user=_USER, cwd=os.getcwd(), submit_time=time.time())

    # --- running ------------------------------------------------------------------------------------

    def submit(self, max_queue_len: Optional[int] = None, wait_on_max_queue: bool = True,
               additional_keywords: Optional[Mapping[str, Any]] = None, max_jobs: Optional[int] = None) -> "Job":
        """Write the files and hand the job to the backend; sets ``id`` (and ``tasks`` for an array).

        Submitting a job that was already submitted does nothing (use :meth:`resubmit` to run it again).
        With ``max_queue_len`` (the seed's; fyrd's ``max_jobs``), the call first blocks until fewer of the
        user's jobs than that are queued or running on the backend; None or 0 (or fyrd's
        ``wait_on_max_queue=False``) does not wait. fyrd's ``additional_keywords`` are job keywords added
        before submission (those naming files must be given when the Job is made).
        """
        if self.submitted:
            log.debug("job %s was already submitted as %s", self.name, self.id)
            return self
        if additional_keywords:
            extra = check_arguments(additional_keywords)
            fixed = sorted(set(extra) & {"name", "jobdir", "outpath", "suffix", "outfile", "errfile"})
            if fixed:
                raise OptionError(f"additional_keywords: {', '.join(fixed)} name the job's files; give them when "
                                  "the Job is made", keyword=fixed[0])
            self.options.update(extra)
        if isinstance(max_queue_len, bool):  # fyrd's submit(wait_on_max_queue)
            wait_on_max_queue, max_queue_len = max_queue_len, None
        max_queue_len = max_jobs if max_queue_len is None else max_queue_len
        if max_queue_len and wait_on_max_queue:
            from .queue import Queue
            Queue(backend=self.backend.name).wait_to_submit(max_queue_len)
        record = self._plan().submit(self)
        self.written = True
        self._adopt(record)
        log.info("submitted %s as job %s on %s%s", self.name, self.id, record.backend,
                 f" ({len(self.tasks)} tasks)" if self.tasks else "")
        return self

    def _adopt(self, record: JobRecord) -> None:
        """Take the job's identity from its record: its id, its tasks, what the tracker watches."""
        self._registry_record = record
        self._backend_name = record.backend
        self.id = record.id
        self.submitted = True
        track = self._tracker()
        since = record.submit_time or None
        cancel = record.cancel_requested

        def known(outcome: Optional[registry.Outcome], key: str, index: Optional[int] = None) -> Optional[QueueJob]:
            if outcome is None:
                return None
            return QueueJob(id=key, state=State(outcome.state), exitcode=outcome.exitcode, reason=outcome.reason,
                            start_time=outcome.start_time, end_time=outcome.end_time, nodes=outcome.nodes,
                            name=record.name, task_id=index)

        if record.kind in ("job", "file"):
            self.tasks = []
            track.track(record.id, self.exit_file if record.kind == "job" else None, errfile=self.errfile,
                        since=since, owner=(record.id, None), known=known(record.outcome, record.id),
                        cancel_requested=cancel)
            return
        own_ids = record.task_ids if record.kind == "tasks" else (None,) * len(record.indices)
        self.tasks = [Task(self, i, job_id=tid) for i, tid in zip(record.indices, own_ids)]
        for task in self.tasks:
            outcome = known(record.task_outcomes.get(str(task.index)), task._track_key, task.index)
            if record.kind == "array":
                track.track(task._track_key, task.exit_file, array_id=record.id, task=task.index,
                            errfile=task.errfile, since=since, owner=(record.id, task.index), known=outcome,
                            cancel_requested=cancel)
            else:
                track.track(task._track_key, task.exit_file, errfile=task.errfile, since=since,
                            owner=(record.id, task.index), known=outcome, cancel_requested=cancel)

    def _add_task(self, index: int, task_id: str) -> Task:
        """A task of a one-job-per-task array that its record does not list (found through its alias)."""
        task = Task(self, index, job_id=task_id)
        record = cast(JobRecord, self._registry_record)  # a job found by its record
        self._tracker().track(task._track_key, task.exit_file, errfile=task.errfile,
                              since=record.submit_time or None, owner=(cast(str, self.id), index))
        self.tasks.append(task)
        return task

    def _save_record(self, record: JobRecord, new: bool = True) -> None:
        """Keep the record (``new``: of a new submission); a job that was submitted is never lost because
        its record cannot be written."""
        try:
            registry.save(record, new)
        except registry.RegistryError as exc:
            log.warning("job %s was submitted, but %s; it can be followed from this process only", record.id, exc)

    def _record_dict(self) -> dict[str, Any]:
        if self._registry_record is None:
            raise JobError(f"job {self.name} has not been submitted")
        return registry._to_dict(self._registry_record)

    def _function_call(self, task: Optional[int] = None, files: Optional[JobFiles] = None,
                       python: Optional[str] = None) -> Optional[FunctionCall]:
        """What a backend needs to run this function job (or the array task ``task`` of it, submitted as
        a job of its own, whose ``files`` may be given) without its script; None for shell jobs."""
        if self.function is None or self._max_requeue():  # a checkpointing job needs its script's signals
            return None
        files = files or (self._job_files if task is None else self._job_files.for_task(task))
        python = python or config.get_option("core.python") or sys.executable
        return FunctionCall(pickle_in=str(self._job_files.pickle_in), pickle_out=str(files.pickle_out),
                            exit_file=str(files.exit), python=python, task=task)

    def wait(self, timeout: Optional[float] = None, progress: Optional[bool] = None) -> bool:
        """Block until the job (every task of an array) ends; True when all completed with exit code 0.
        A job not yet submitted is submitted first."""
        if not self.submitted:
            self.submit()
        if not self.tasks:
            return super().wait(timeout=timeout, progress=progress)
        self._need_key()
        return wait(self.tasks, timeout=timeout, progress=progress)

    def get(self, timeout: Optional[float] = None, save: bool = True, cleanup: Optional[bool] = None,
            delete_outfiles: Optional[bool] = None, del_no_save: Optional[bool] = None,
            raise_on_error: bool = True) -> Any:
        """The return value or stdout; for an array, the list of every task's, in index order. A job not
        yet submitted is submitted first. With the job keywords ``clean_files`` / ``clean_outputs`` (fyrd's
        ``cleanup`` / ``delete_outfiles`` for this call) the job's scripts / stdout and stderr files are
        deleted once the result is read (its stdout and stderr stay readable as ``job.stdout`` and
        ``job.stderr``). Without ``raise_on_error`` a failed job gives None (logged as an error) instead of
        raising. fyrd's ``save`` and ``del_no_save`` are accepted: results are always kept on the Job."""
        if not self.submitted:
            self.submit()
        try:
            value = super().get(timeout=timeout) if not self.tasks else get(self.tasks, timeout=timeout)
        except Exception as exc:
            if raise_on_error or isinstance(exc, WaitTimeout):
                raise
            log.error("job %s (%s) failed: %s", self.id, self.name, exc)
            value = None
        scripts = self.options.get("clean_files") if cleanup is None else cleanup
        outputs = self.options.get("clean_outputs") if delete_outfiles is None else delete_outfiles
        if scripts or outputs:
            self.clean(delete_outputs=bool(outputs), scripts=bool(scripts))
        return value

    get_output = get  # fyrd's name

    # --- fyrd's names -------------------------------------------------------------------------------

    def kill(self, confirm: bool = True) -> None:
        """fyrd's name for :meth:`cancel` (no confirmation is asked)."""
        self.cancel()

    @property
    def code(self) -> Optional[int]:
        return self.exitcode

    @property
    def err(self) -> Optional[str]:
        return self.stderr

    @property
    def running(self) -> bool:
        """True while the job waits or runs (fyrd's ``running``)."""
        return self.submitted and self.state.active

    @property
    def kind(self) -> str:
        return "function" if self.is_function else "script"

    @property
    def suffix(self) -> Optional[str]:
        return self.files.suffix if self.files is not None else None

    @property
    def poutfile(self) -> Optional[Path]:
        return self.files.pickle_out if self.files is not None and self.is_function else None

    @property
    def outfiles(self) -> list[Path]:
        return [p for p in (self.outfile, self.errfile) if p is not None]

    @property
    def dependencies(self) -> list[Any]:
        """The jobs (Jobs, or ids) this job waits for, whatever the type of each dependency."""
        return [dep for _kind, dep in self._depends if dep is not None]

    def get_keywords(self) -> dict[str, Any]:
        """The job's checked keywords (fyrd's ``get_keywords``)."""
        return dict(self.options)

    # --- the seed's accessors -----------------------------------------------------------------------

    def get_exitcode(self, update: bool = True) -> Optional[int]:
        """The exit code, None while the job runs (the seed's name for :attr:`exitcode`)."""
        if update and self.submitted:
            self.update()
        return self.exitcode

    def get_stdout(self, update: bool = True) -> Optional[str]:
        """The job's stdout, None before it exists (the seed's name for :attr:`stdout`)."""
        if update and self.submitted:
            self.update()
        return self.stdout

    def get_stderr(self, update: bool = True) -> Optional[str]:
        """The job's stderr, None before it exists (the seed's name for :attr:`stderr`)."""
        if update and self.submitted:
            self.update()
        return self.stderr

    def update_queue_info(self) -> Optional[QueueJob]:
        """Ask the scheduler now; the latest report on the job (the seed's name)."""
        if not self.submitted:
            return None
        self._tracker().refresh(force=True)
        return self.record

    @property
    def stdout(self) -> Optional[str]:
        return self._outputs[0] if self._outputs is not None else _read_text(self.outfile)

    @property
    def stderr(self) -> Optional[str]:
        return self._outputs[1] if self._outputs is not None else _read_text(self.errfile)

    @property
    def state(self) -> State:
        if not self.tasks:
            return super().state
        return combined_state([t.state for t in self.tasks])

    @property
    def done(self) -> bool:
        if not self.tasks:
            return super().done
        return all(t.done for t in self.tasks)

    def cancel(self) -> None:
        """Cancel the job (every task of an array); one scheduler call."""
        cancel([self])

    def release(self) -> None:
        """Let a job submitted with ``hold`` (every task of an array) be scheduled; one scheduler call."""
        release([self])

    def clean(self, delete_outputs: bool = False, get_outputs: bool = True, *, outputs: Optional[bool] = None,
              scripts: bool = True) -> None:
        """Delete the files this job wrote: its script and pickles, and with ``delete_outputs`` (or
        ``outputs``) its stdout and stderr too, read first so ``job.stdout`` and ``job.stderr`` keep them
        (unless ``get_outputs`` is False). Only files named by the job-file convention are deleted (never a
        user's own ``outfile``)."""
        if self.files is None:
            return
        outputs = delete_outputs if outputs is None else outputs
        if outputs and get_outputs and self._outputs is None and self.done:
            self._outputs = (self.stdout, self.stderr)
        if self.is_function and scripts and not self._result_loaded and self.done:
            try:  # keep the result: the pickle is about to go
                self._result, self._result_loaded = _Outcome.get(self), True
            except Exception:
                pass
        kinds = (("sh", "exit", "in.pkl", "out.pkl") if scripts else ()) + (("out", "err") if outputs else ())
        for files in [self.files] + [t.files for t in self.tasks if t.files is not None]:
            for kind in kinds:
                files.path(kind).unlink(missing_ok=True)
        if outputs:
            for path in (self.outfile, self.errfile):
                if path is not None and is_job_file(path):
                    path.unlink(missing_ok=True)

    def resubmit(self) -> "Job":
        """Submit the same job again (a new id); the previous outputs and results are removed first."""
        if self.submitted and not self.done:
            raise JobError(f"job {self.id} ({self.name}) has not finished; cancel it before resubmitting")
        if self.command is None and self.function is None:
            raise JobError(f"job {self.id} ({self.name}) was found by its id: its command is not known here, "
                           "so it cannot be submitted again")
        if self.submitted:
            units: Sequence[_Outcome] = self.tasks or [self]
            for unit in units:
                self._tracker().forget(unit._track_key)
                for path in (unit.exit_file, unit.files.pickle_out if unit.files else None,
                             unit.outfile, unit.errfile):
                    if path is not None:
                        path.unlink(missing_ok=True)
        self._reset()
        return self.submit()

    # --- finding jobs again -------------------------------------------------------------------------

    @classmethod
    def from_id(cls, job_id: Any, backend: Optional[str] = None) -> Union["Job", Task]:
        """The job (or the task of an array) with this id, from any process: its record tells its files
        and how it was submitted. ``job_id`` is the scheduler's id (a task in the scheduler's own spelling,
        such as ``274_3`` or ``274[3].server``, gives that Task) or a tuple ``(array id, index)``.

        Without ``backend`` every backend that has records is searched, then the chosen backend is
        asked. A job the scheduler knows but that cluster-core did not submit is followed by its id
        alone (no files: its state, not its output). UnknownJobError when nobody knows the id.
        """
        return find_jobs([job_id], backend)[0]

    @classmethod
    def _from_record(cls, record: JobRecord) -> "Job":
        kind = FileJob if record.kind == "file" else Job
        job = kind.__new__(kind)
        job.function = None
        job.command = record.command if not record.function else None
        job.is_function = record.function
        job.args, job.kwargs, job.calls, job._depends = (), {}, None, []
        job.options = dict(record.options)
        job.profile = None
        job._backend_name = record.backend
        job.name = record.name
        job.files = JobFiles(Path(record.jobdir), record.stem, suffix=record.suffix) if record.stem else None
        job.outfile = Path(record.outfile) if record.outfile else None
        job._patterns = {}
        job.errfile = Path(record.errfile) if record.errfile else None
        job.scriptfile = Path(record.script) if record.script else None
        job._reset()
        job.written = True
        job._adopt(record)
        return job

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_backend", None)  # the loaded plugin: looked up again where the job is unpickled
        return state

    def __reduce_ex__(self, protocol: SupportsIndex) -> Union[str, tuple[Any, ...]]:
        if self.submitted and self._registry_record is not None:
            return (_restore_job, (self._record_dict(),))
        return super().__reduce_ex__(protocol)

    @property
    def submission(self) -> Optional[Script]:
        """The job's script (the seed's ``job.submission``: ``.file``, ``.script``, ``.written``)."""
        return Script(self.scriptfile) if self.scriptfile is not None else None

    def __repr__(self) -> str:
        what = (getattr(self.function, "__name__", None) or type(self.function).__name__) if self.function is not None \
            else (self.command or "?")
        status = f"id={self.id} on {self._backend_name}" if self.submitted else "not submitted"
        return f"<Job {self.name} {status}: {what!r}>"

    def __str__(self) -> str:
        """What the job is and where it stands, one fact a line (the seed: "Printing the class will display
        detailed job information"). Shows the latest known state; asks the scheduler nothing."""
        what = (f"function {getattr(self.function, '__qualname__', self.function)!r}" if self.function is not None
                else f"command {self.command!r}" if self.command else "a job found by its id")
        rec = self.record
        state = (rec.state.value if rec else "submitted") if self.submitted else "not submitted"
        lines = [f"Job {self.name}: {what}", f"  backend: {self._backend_name or self.backend.name}",
                 f"  id: {self.id or '-'}", f"  state: {state}" + (f", exit code {rec.exitcode}"
                                                                    if rec and rec.exitcode is not None else "")]
        if self.tasks:
            lines.append(f"  tasks: {len(self.tasks)} ({_spans([t.index for t in self.tasks])})")
        lines += [f"  script: {self.scriptfile}", f"  stdout: {self.outfile}", f"  stderr: {self.errfile}"]
        shown = {k: v for k, v in self.options.items() if k not in ("name", "outfile", "errfile", "export")}
        if shown:
            lines.append("  options: " + ", ".join(f"{k}={v}" for k, v in sorted(shown.items())))
        return "\n".join(lines)


class _job_dir_errors:
    """A job directory that cannot be written (full, read-only, not a directory) is a SubmitError naming
    it, raised before the job (for a per-task map: that task) reached the scheduler."""

    def __init__(self, job: Job):
        self.job = job

    def __enter__(self) -> _job_dir_errors:
        return self

    def __exit__(self, kind: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> Literal[False]:
        files = self.job.files
        error = cast(OSError, exc)  # read once ``kind`` says it is one
        if kind is None or not issubclass(kind, OSError) or files is None or (
                error.filename and not str(error.filename).startswith(str(files.jobdir))):
            return False  # not one of the job's own files
        where = files.jobdir
        raise SubmitError(f"job {self.job.name}: cannot write its files in {where}: {error.strerror or error}"
                          f"{' (the disk is full)' if error.errno == errno.ENOSPC else ''}; free space there or "
                          "choose another with jobdir= (config core.jobdir)", keyword="jobdir") from None


def _restore_job(data: dict[str, Any]) -> Job:
    return Job._from_record(registry._from_dict(data))


def _restore_task(data: dict[str, Any], index: int) -> Task:
    job = _restore_job(data)
    return next(t for t in job.tasks if t.index == index)


def combined_state(states: Sequence[State]) -> State:
    """One state for several tasks: the most active one while any is unfinished, else the first bad end."""
    for s in (State.RUNNING, State.COMPLETING, State.SUSPENDED, State.PENDING, State.HELD, State.UNKNOWN):
        if s in states and (s is not State.UNKNOWN or all(x is State.UNKNOWN for x in states)):
            return s
    bad = [s for s in states if s is not State.COMPLETED]
    return bad[0] if bad else State.COMPLETED


# --- plans ------------------------------------------------------------------------------------------

class _Plan:
    """How one kind of job is written and submitted; ``submit`` returns the job's record."""

    def write(self, job: Job) -> Path:
        raise NotImplementedError

    def submit(self, job: Job) -> JobRecord:
        raise NotImplementedError


def _array_indices(job: Job) -> list[int]:
    """The task indices of an array job (the plans for arrays are chosen for arrays only)."""
    return cast("list[int]", job.indices)


def _drop_old_results(files: Iterable[JobFiles]) -> None:
    """Results of an earlier submission under the same files must not count for this one."""
    for f in files:
        for path in (f.exit, f.pickle_out, f.checkpoint):
            path.unlink(missing_ok=True)


class _OneScript(_Plan):
    """One script, one submission (a job, or a native array: the scheduler starts every task)."""

    kind = "job"

    def text(self, job: Job, command: str, directives: list[str], common: dict[str, Any]) -> str:
        return render_script(command, exit_file=job._job_files.exit, directives=directives, **common)

    def results(self, job: Job) -> list[JobFiles]:
        return [job._job_files]

    def write(self, job: Job) -> Path:
        options, command, common = job._prepare()
        job._new_files = write_script(job._job_files.script,
                                      self.text(job, command, job._directives(options), common))
        return job._job_files.script

    def submit(self, job: Job) -> JobRecord:
        with _job_dir_errors(job):
            self.write(job)
        options = job._submit_options()
        if not job._new_files:
            _drop_old_results(self.results(job))
        call = job._function_call() if self.kind == "job" else None  # native array submissions carry none
        job_id = job.backend.submit(job._job_files.script, options, directives_in_script=True, call=call)
        record = job._new_record(self.kind, job_id, options, indices=job.indices or ())
        job._save_record(record)
        return record


class _NativeArray(_OneScript):
    kind = "array"

    def text(self, job: Job, command: str, directives: list[str], common: dict[str, Any]) -> str:
        info = job.backend.info
        variables = tuple((info.task_id_variable or "").split())
        # the scheduler's task i + task_id_offset is the core's task i
        task = TaskSpec(job._job_files, variables=variables, offset=-info.task_id_offset)
        return render_script(command, directives=directives, task=task, **common)

    def results(self, job: Job) -> list[JobFiles]:
        return [job._job_files.for_task(i) for i in _array_indices(job)]


class _OneJobPerTask(_Plan):
    """An array on a backend without arrays: each task's script is written just before it is submitted
    (the first task can start before the last script is written), and sends its output to the task's own
    files, so the backend is told those (and, for a function, the task's call to run warm if it can)."""

    def _task_writer(self, job: Job) -> tuple[dict[str, Any], _TaskWriter]:
        options, command, common = job._prepare()
        single = {k: v for k, v in options.items() if k != "array"}
        directives = job._directives(single)

        def write_task(index: int, files: Optional[JobFiles] = None) -> tuple[Path, bool]:
            script = (files or job._job_files.for_task(index)).script
            text = render_script(command, directives=directives, task=TaskSpec(job._job_files, fixed=index),
                                 **common)
            return script, write_script(script, text)
        return single, write_task

    def write(self, job: Job) -> Path:
        _, write_task = self._task_writer(job)
        indices = _array_indices(job)
        for index in indices:
            write_task(index)
        return job._job_files.for_task(indices[0]).script

    #: Tasks go to the backend in batches (its ``submit_many``: one transaction and one round trip each):
    #: a small first batch, so the first tasks start while later scripts are written, then each batch
    #: twice the last, up to the largest.
    FIRST_BATCH, LARGEST_BATCH = 8, 1024

    def submit(self, job: Job) -> JobRecord:
        with _job_dir_errors(job):
            single, write_task = self._task_writer(job)
        backend = job.backend
        indices = list(_array_indices(job))
        task_ids: list[str] = []
        record: Optional[JobRecord] = None
        python = (config.get_option("core.python") or sys.executable) if job.is_function else None
        start, size = 0, self.FIRST_BATCH
        while start < len(indices):
            batch: list[tuple[Path, dict[str, Any], bool, Optional[FunctionCall]]] = []
            for index in indices[start:start + size]:
                files = job._job_files.for_task(index)
                with _job_dir_errors(job):
                    script, new = write_task(index, files)
                if not new:
                    _drop_old_results([files])
                batch.append((script, dict(single, outfile=str(files.out), errfile=str(files.err)), True,
                              job._function_call(index, files, python)))
            try:
                ids = backend.submit_many(batch)
            except SubmitError as exc:  # the tasks that went through are recorded all the same
                if isinstance(exc, PartialSubmitError):
                    self._record(job, record, single, indices, task_ids, exc.submitted)
                if not task_ids:
                    raise
                why = exc.__cause__ if isinstance(exc, PartialSubmitError) and exc.__cause__ else exc
                raise PartialSubmitError.part_way(why, len(task_ids), len(indices), task_ids) from exc
            # recorded before the next batch: a submitter killed mid-way leaves its tasks findable
            record = self._record(job, record, single, indices, task_ids, ids)
            start += len(batch)
            size = min(2 * size, self.LARGEST_BATCH)
        return cast(JobRecord, record)  # set by the first batch: the backend gave its tasks' ids

    def _record(self, job: Job, record: Optional[JobRecord], single: dict[str, Any], indices: list[int],
                task_ids: list[str], new_ids: Sequence[str]) -> Optional[JobRecord]:
        """Add the tasks just submitted to the record (written again) and give each an alias (its own id)."""
        if not new_ids:
            return record
        first = len(task_ids)
        task_ids.extend(new_ids)
        done = tuple(indices[:len(task_ids)])
        new = record is None
        if record is None:
            record = job._new_record("tasks", group_id(task_ids[0]), single, indices=done, task_ids=task_ids)
        else:
            record = attrs.evolve(record, indices=done, task_ids=tuple(task_ids))
        job._save_record(record, new)  # written again: tasks of the first batches may have ended already
        with _suppress_registry():  # each task findable by its own id
            registry.add_aliases(record.backend, [(tid, record.id, index) for tid, index
                                                  in zip(new_ids, indices[first:len(task_ids)])])
        return record


def _requeue_lines(backend: plugins.Backend) -> list[str]:
    """How a checkpointing job requeues itself on ``backend``; an OptionError when it cannot."""
    lines = backend.requeue_lines()
    if lines is None:
        able = [name for name in plugins.backend_names() if _can_requeue(name)]
        raise OptionError(f"max_requeue: the {backend.name} backend cannot requeue a running job in place, so a "
                          "job cannot save itself and go on there; submit it with max_requeue=0 (the default "
                          "for a plain function)" + (f", or to a backend that can: {', '.join(able)}" if able else ""),
                          keyword="max_requeue")
    return lines


def _can_requeue(name: str) -> bool:
    try:
        return plugins.backend(name).requeue_lines() is not None
    except Exception:  # noqa: BLE001 - a backend that fails to load cannot
        return False


def _check_workdir(workdir: Optional[str]) -> None:
    """A workdir that does not exist here is refused at submission (a scheduler would take it and the job
    would fail when it starts, hours later); ``core.check_workdir false`` allows it where the nodes see
    paths this machine does not."""
    if not workdir or os.path.isdir(os.path.expanduser(workdir)):
        return
    try:
        check = _bool(config.get_option("core.check_workdir") or "true")
    except ValueError:
        check = True
    if check:
        raise OptionError(f"workdir={describe(workdir)}: no such directory here; create it first, or `cluster config set "
                          "core.check_workdir false` when the nodes see paths this machine does not", keyword="workdir")


def _unpicklable(job: "Job", calls: Optional[Sequence[_Call]], error: Exception) -> OptionError:
    """Which part of a function job cannot be pickled (the function, an argument by position or keyword, or
    a map element), as an OptionError naming the job and the object, raised before anything is submitted."""
    import cloudpickle

    def fails(value: Any) -> Optional[Exception]:
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            return exc
        return None

    parts: list[tuple[str, Any]] = [("the function", job.function)]
    parts += [(f"argument {i} (args[{i}])", a) for i, a in enumerate(job.args)]
    parts += [(f"keyword argument {k!r}", v) for k, v in job.kwargs.items()]
    for n, (args, kwargs) in enumerate(calls or ()):
        parts += [(f"element {n}, argument {i}", a) for i, a in enumerate(args)]
        parts += [(f"element {n}, keyword argument {k!r}", v) for k, v in kwargs.items()]
    for what, value in parts:
        exc = fails(value)
        if exc is not None:
            return OptionError(f"job {job.name}: {what}, {describe(value, 60)} of type {type(value).__name__}, cannot "
                               f"be pickled to send it to the job ({type(exc).__name__}: {exc}); pass something "
                               "the job can rebuild (a path, the data) instead", keyword="args", value=value)
    return OptionError(f"job {job.name}: the call cannot be pickled: {type(error).__name__}: {error}", keyword="args")


def group_id(first_task_id: str) -> str:
    """The core's id for an array that a backend without arrays runs as one job per task."""
    return f"@{first_task_id}"


# --- finding jobs -----------------------------------------------------------------------------------

def find_jobs(job_ids: Sequence[Any], backend: Optional[str] = None) -> list[Union[Job, Task]]:
    """Jobs (or tasks) by id, as :meth:`Job.from_id`; ids that only the scheduler knows are checked with
    one query per backend for all of them. UnknownJobError names every id nobody knows."""
    out: list[Any] = []
    bare: dict[str, list[int]] = {}  # backend -> positions of ids without a record
    for pos, item in enumerate(job_ids):
        found = _find_recorded(item, backend)
        if found is not None:
            out.append(found)
            continue
        if isinstance(item, tuple):
            raise UnknownJobError(f"no array {item[0]!r} is recorded" + (f" on {backend}" if backend else ""),
                                  [str(item[0])])
        be = plugins.get_backend(backend).name
        out.append(str(item))
        bare.setdefault(be, []).append(pos)
    unknown = []
    for be_name, positions in bare.items():
        plugin = plugins.backend(be_name)
        ids = [out[p] for p in positions]
        reported = plugin.parse_queue(ids)
        seen = {r.id for r in reported} | {r.array_id for r in reported if r.array_id}
        by_id = {r.id: r for r in reported}
        for p in positions:
            job_id = out[p]
            if job_id not in seen:
                unknown.append(job_id)
                continue
            out[p] = _bare_job(be_name, job_id, by_id.get(job_id))
    if unknown:
        where = f"on {backend}" if backend else f"in the job records or on {', '.join(bare)}"
        raise UnknownJobError(f"unknown job id{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: not found "
                              f"{where}", unknown)
    return out


def _find_recorded(item: Any, backend: Optional[str]) -> Optional[Union[Job, Task]]:
    """A Job or Task from the records, None when no record has the id."""
    if isinstance(item, _Outcome):
        return cast("Union[Job, Task]", item)  # the two kinds of _Outcome
    if isinstance(item, tuple):
        if len(item) != 2:
            raise OptionError(f"job id {item!r}: a tuple must be (array id, index)", keyword="job_id")
        array_id, task_index = str(item[0]), int(item[1])
        found = _find_recorded(array_id, backend)
        if isinstance(found, Job):
            return _task_of(found, task_index)
        return None
    job_id = str(item).strip()
    if not job_id:
        raise OptionError("an empty job id", keyword="job_id")
    names = [backend] if backend else registry.backends_with_records()
    for name in names:
        hit = registry.resolve(name, job_id)
        if hit is None:  # a task in the scheduler's own spelling: the record is its array's
            split = _parse_task_id(name, job_id)
            if split is not None:
                array_hit = registry.resolve(name, split[0])
                if array_hit is not None and array_hit[1] is None:
                    hit = (array_hit[0], split[1])
        if hit is not None:
            record, index = hit
            job = Job._from_record(record)
            if index is None:
                return job
            if record.kind == "tasks" and all(t.index != index for t in job.tasks):
                # its submitter died before it recorded this task; the task's alias still names it
                return job._add_task(index, job_id)
            return _task_of(job, index)
    return None


def _parse_task_id(backend: str, job_id: str) -> Optional[tuple[str, int]]:
    try:
        return plugins.get_backend(backend).parse_task_id(job_id)
    except Exception as exc:  # an uninstalled backend's records, or a plugin bug: not this id's fault
        log.debug("cannot ask %s about %r: %s", backend, job_id, exc)
        return None


def _task_of(job: Job, index: int) -> Task:
    for task in job.tasks:
        if task.index == index:
            return task
    raise UnknownJobError(f"job {job.id} has no task {index} (its tasks: "
                          f"{_spans([t.index for t in job.tasks]) or 'none'})", [f"{job.id}[{index}]"])


def _spans(indices: Sequence[int]) -> str:
    out: list[str] = []
    run: list[int] = []
    for i in sorted(indices):
        if run and i != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(i)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def _bare_job(backend: str, job_id: str, seen: Optional[QueueJob]) -> Job:
    """A job cluster-core did not submit (or has no record of): followed by its id alone."""
    record = JobRecord(backend=backend, id=job_id, kind="file", name=(seen.name if seen and seen.name else job_id),
                       jobdir="", stem="", script="", outfile="", errfile="")
    return Job._from_record(record)


def jobs(since: Optional[float] = None, name: Optional[str] = None, state: Any = None,
         backend: Optional[str] = None) -> list[Job]:
    """Every job submitted through cluster-core (by any process of this user), newest first, from the
    job records; ``since`` (seconds since the epoch, or a duration such as "2d"), ``name`` (exact, or a
    glob such as "align*"), ``state`` (a state name or several) filter them. States of unfinished jobs
    are asked of their schedulers: one query per backend for all of them."""
    import fnmatch
    cutoff = _since(since)
    wanted = None if state is None else {State(s) for s in ([state] if isinstance(state, (str, State)) else state)}
    found: list[Job] = []
    for record in registry.records(backend, since=cutoff):
        if name is not None and not fnmatch.fnmatchcase(record.name, name):
            continue
        try:
            found.append(Job._from_record(record))
        except Exception as exc:  # a record of a backend no longer installed
            log.debug("job record %s on %s skipped: %s", record.id, record.backend, exc)
    by_backend: dict[str, list[Job]] = {}
    for job in found:
        by_backend.setdefault(job.backend.name, []).append(job)
    for be, group in by_backend.items():
        track = tracker(be)
        if any(not track.is_done(u._track_key) for j in group for u in _tracked(j)):
            track.refresh(force=True)
    if wanted is not None:
        found = [j for j in found if j.state in wanted]
    return found


def _tracked(job: Job) -> Sequence[_Outcome]:
    """What the tracker follows of a submitted job: its tasks, or the job itself."""
    return job.tasks or [job]


def _since(value: Any) -> Optional[float]:
    """An age ("2d", "36h", a number of minutes) or a time (epoch seconds, datetime) as epoch seconds."""
    import datetime
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 10 ** 8:
        return float(value)
    try:
        return time.time() - parse_time(value)
    except ValueError as exc:
        raise OptionError(f"since={value!r}: {exc}", keyword="since", value=value) from None


def _check_dependency_kinds(pairs: Sequence[tuple[str, Any]], backend: Any) -> None:
    """A dependency type the backend does not have is an error at submit, naming the type and the backend."""
    have = backend.info.dependency_kinds
    for kind, _dep in pairs:
        if kind not in have:
            known = ", ".join(k for k in DEPENDENCY_KINDS if k in have) or "none"
            raise OptionError(f"depends: the {backend.name} backend has no {kind!r} dependencies (it has: "
                              f"{known})", keyword="depends", value=kind)


def _required_outcomes(pairs: Sequence[tuple[str, Any]], backend: str) -> list[tuple[str, list[Path]]]:
    """For a backend that releases a job once its dependencies ended however they ended: the outcome each
    dependency must have had, as ("afterok", exit files that must all say 0) or ("afternotok", exit files
    of which one at least must not), one group per dependency. Only jobs of the core's own have exit files:
    a dependency given by id is looked up in the job records."""
    out: list[tuple[str, list[Path]]] = []
    for kind, dep in pairs:
        if kind not in ("afterok", "afternotok"):
            continue
        if not isinstance(dep, _Outcome):
            try:
                found = _find_recorded(str(dep), backend)
            except (ClusterError, ValueError):
                found = None
            if found is None:
                log.warning("depends: %s %s is not a job of cluster-core's: this backend waits for it to end, "
                            "and cannot check that it %s", kind, dep,
                            "succeeded" if kind == "afterok" else "failed")
                continue
            dep = found
        files = [t.exit_file for t in (getattr(dep, "tasks", None) or [dep]) if t.exit_file]
        if files:
            out.append((kind, files))
    return out


def _dependency_ids(dep: Any) -> list[Any]:
    """What the scheduler is told a dependency's id is: a per-task array's every task."""
    if isinstance(dep, Job) and dep._registry_record is not None and dep._registry_record.kind == "tasks":
        return list(dep._registry_record.task_ids)
    return [dep]


def _describe(function: Optional[Callable[..., Any]], command: Optional[str]) -> str:
    if function is not None:
        module = getattr(function, "__module__", None) or ""
        qual = getattr(function, "__qualname__", None) or getattr(function, "__name__", repr(function))
        return f"{module}.{qual}" if module else cast(str, qual)
    return command or ""


def _jsonable_options(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = [v if isinstance(v, (str, int, float, bool)) else str(v) for v in value]
        else:
            out[key] = str(value)
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_HOST = os.uname().nodename  # what socket.gethostname() answers, without importing socket
try:
    _USER = getpass.getuser()
except Exception:  # no user name for this uid (a container)
    _USER = str(os.getuid())


class _suppress_registry:
    def __enter__(self) -> _suppress_registry:
        return self

    def __exit__(self, kind: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> bool:
        if kind is not None and issubclass(kind, registry.RegistryError):
            log.warning("%s", exc)
            return True
        return False


_PLAIN_FIRST_WORD = re.compile(r"[ \t\r\n]*([A-Za-z0-9_./+=:,@%-]+)(?:[ \t\r\n]|$)")


def _default_name(function: Optional[Callable[..., Any]], command: Optional[str]) -> str:
    """A function's name, or the program a command starts with."""
    if function is not None:
        name = getattr(function, "__name__", None)
        return name if isinstance(name, str) else "function"
    plain = _PLAIN_FIRST_WORD.match(command or "")
    if plain:  # a first word without quotes, escapes or comments: what shlex would give, without shlex
        return plain.group(1).rsplit("/", 1)[-1]
    try:
        words = shlex.split(command or "", comments=True)
    except ValueError:
        words = []
    return words[0].rsplit("/", 1)[-1] if words else "job"


def _read_text(path: Optional[Path]) -> Optional[str]:
    if path is None:
        return None
    try:
        return Path(path).read_text(errors="replace")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None


# --- module-level interface ------------------------------------------------------------------------

def make_job(command: Union[str, Callable[..., Any]], args: Any = (),
             kwargs: Union[Mapping[str, Any], str, None] = None, *positional: Any, **options: Any) -> Job:
    """A written, unsubmitted Job (arguments as :class:`Job`'s)."""
    job = Job(command, args, kwargs, *positional, **options)
    job.write()
    return job


def make_job_file(command: Union[str, Callable[..., Any]], args: Any = (),
                  kwargs: Union[Mapping[str, Any], str, None] = None, *positional: Any, **options: Any) -> Path:
    """Write a job's script and return its path."""
    return cast(Path, make_job(command, args, kwargs, *positional, **options).scriptfile)  # written: it has one


def submit(command: Union[str, Callable[..., Any]], args: Any = (),
           kwargs: Union[Mapping[str, Any], str, None] = None, *positional: Any, **options: Any) -> Job:
    """Create and submit a Job; returns it. Takes :class:`Job`'s arguments: fyrd's ``submit(command, args,
    kwargs, name, qtype, profile, **keywords)`` and the seed's ``submit(command, args, name, path, qtype,
    profile, **keywords)``."""
    return Job(command, args, kwargs, *positional, **options).submit()


class _UserScript(_Plan):
    def write(self, job: Job) -> Path:
        job._job_files.jobdir.mkdir(parents=True, exist_ok=True)
        return cast(Path, job.scriptfile)  # a FileJob's is the user's script

    def submit(self, job: Job) -> JobRecord:
        with _job_dir_errors(job):
            self.write(job)
        own = cast(FileJob, job)  # the plan of FileJobs only
        # the script's own directives stand; only what the caller gave, and what it leaves unsaid, is added
        options = {k: v for k, v in job._submit_options().items() if k in own._given or k not in own._own}
        job_id = job.backend.submit(cast(Path, job.scriptfile), options, directives_in_script=False)
        for attr in ("outfile", "errfile"):  # the script's own paths, its placeholders filled in
            if attr not in options and attr in own._own:
                setattr(job, attr, Path(expand_path(str(getattr(job, attr)), job_id, job.name, _USER)))
        record = job._new_record("file", job_id, options)
        job._save_record(record)
        return record


class FileJob(Job):
    """A user's existing script, submitted as it is: its own directives stand (the backend's
    ``parse_directives`` hook reads them, so the Job knows its name, cores and output files), and only
    the keywords the caller gave (or a profile holds) are added, on the scheduler's command line."""

    _given: set[str]  # the keywords the caller gave (or a profile holds): they override the script's
    _own: set[str]  # the keywords the script's directives set

    def __init__(self, script: Union[str, os.PathLike[str]], *, backend: Optional[str] = None,
                 profile: Optional[str] = None, qtype: Optional[str] = None, **options: Any):
        path = Path(script).absolute()
        if not path.is_file():
            raise OptionError(f"script {str(path)!r} does not exist", keyword="script")
        backend = _backend_of(backend, qtype)
        own = _own_directives(plugins.get_backend(backend), path)
        given = set(check_arguments({k: v for k, v in options.items() if v is not None and k != "depends"}))
        if profile:
            named = config.get_profile(profile)
            given |= set(named.kwargs) if named is not None else set()
        if "depends" in options or "dependencies" in options:
            given.add("depends")
        keep = {k: own[k] for k in own if k not in given and k not in ("outfile", "errfile")}
        super().__init__(f"bash {shlex.quote(str(path))}", backend=backend, profile=profile,
                         **{"name": path.stem, **keep, **options})
        self._given = given
        self._own = set(own)
        self._patterns = {}  # submitted as it is: the scheduler fills in what the script's own paths hold
        for attr in ("outfile", "errfile"):
            if attr in own and attr not in given:
                where = Path(os.path.expanduser(self.options.get("workdir") or os.getcwd()))
                setattr(self, attr, (where / own[attr]).absolute())
                self.options[attr] = str(getattr(self, attr))
        self.scriptfile = path

    def _plan(self) -> _Plan:
        return _UserScript()

    def resubmit(self) -> Job:
        if getattr(self, "_given", None) is None:  # found by its id: what the caller gave is not known here
            raise JobError(f"job {self.id} ({self.name}) is a script found by its id; submit it again with "
                           f"submit_file({str(self.scriptfile)!r}) and the keywords it needs (its own directives "
                           "are read again then)")
        return super().resubmit()


def _own_directives(backend: plugins.Backend, path: Path) -> dict[str, Any]:
    """The keywords a user's script sets in its directives, checked one by one (a value the core cannot
    read is left to the scheduler, which reads the script anyway)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise OptionError(f"script {str(path)!r} cannot be read: {exc}", keyword="script") from None
    own: dict[str, Any] = {}
    for key, value in backend.parse_directives(text).items():
        try:
            canonical = check_arguments({key: value})
        except OptionError as exc:
            log.debug("%s: directive %s=%r not read here (%s); the scheduler reads it", path, key, value, exc)
            continue
        own.update({k: value for k in canonical})
    return own


def submit_file(script: Union[str, os.PathLike[str]], dependencies: Any = None, threads: Optional[int] = None,
                qtype: Optional[str] = None, *, depends: Any = None, **options: Any) -> Job:
    """Submit an existing script file as it is (with dependencies and options); returns its Job.

    The seed's ``submit_file(script_file, dependencies=None, threads=None, qtype=None)``: ``threads`` is the
    local backend's core limit, ``qtype`` the backend."""
    if dependencies is not None and depends is not None:
        raise OptionError("'depends' given twice (as 'dependencies' and 'depends')", keyword="depends")
    depends = dependencies if depends is None else depends
    if depends is not None:
        options["depends"] = depends
    if threads is not None:
        options["threads"] = threads
    return FileJob(script, backend=_backend_of(options.pop("backend", None), qtype), **options).submit()


_backend_of = plugins.backend_of  # the name job's callers (and the seed's code) know


def _single(jobs: Any) -> bool:
    """One job: a Job or Task, an id, or an (array id, task index) pair; else an iterable of them (a
    tuple of Jobs or ids, as the seed took, is a list)."""
    if isinstance(jobs, (_Outcome, str, int)):
        return True
    return (isinstance(jobs, tuple) and len(jobs) == 2 and isinstance(jobs[0], (str, int))
            and isinstance(jobs[1], int) and not isinstance(jobs[1], bool))


def _units(jobs: Any, backend: Optional[str] = None) -> list[_Outcome]:
    """Jobs, tasks and ids (found again by id) flattened to what is tracked: an array Job becomes its tasks.
    A Job not yet submitted is submitted first (as fyrd's wait and get did)."""
    items = [jobs] if _single(jobs) else list(jobs)
    items = find_jobs(items, backend) if any(not isinstance(i, _Outcome) for i in items) else items
    out: list[_Outcome] = []
    for item in items:
        if isinstance(item, Job) and not item.submitted:
            log.info("submitting %s first: it is waited for", item.name)
            item.submit()
        if isinstance(item, Job) and item.tasks:
            out.extend(item.tasks)
        else:
            out.append(item)
    return out


def wait(jobs: Any, timeout: Optional[float] = None, backend: Optional[str] = None,
         progress: Optional[bool] = None, cancel_on_interrupt: bool = False, notify: Any = None,
         return_disp: bool = False) -> bool:
    """Wait for jobs, tasks or job ids, with one poll per interval for all; True if all completed.
    fyrd's ``notify`` (e-mail) and ``return_disp`` are accepted and do nothing.

    Ctrl-C stops the wait and says which jobs go on running; with ``cancel_on_interrupt`` they are
    cancelled first.
    """
    units = _units(jobs, backend)
    by_backend: dict[str, list[str]] = {}
    for unit in units:
        by_backend.setdefault(unit.backend.name, []).append(unit._need_key())
    try:
        for be, keys in by_backend.items():
            tracker(be).wait(keys, timeout=timeout, progress=progress)
    except KeyboardInterrupt as exc:
        left = [u for u in units if not u._tracker().is_done(u._track_key)]
        ids = ", ".join(cast(str, u.id) for u in left[:20]) + (" ..." if len(left) > 20 else "")  # submitted
        if cancel_on_interrupt and left:
            for be in {u.backend.name for u in left}:
                plugins.backend(be).cancel([cast(str, u.id) for u in left if u.backend.name == be])
            message = f"interrupted: cancelled {len(left)} unfinished jobs ({ids})"
        elif left:
            message = (f"interrupted: {len(left)} jobs go on running ({ids}); wait for them again with "
                       f"cluster_core.wait([...ids]) or `cluster wait`, or cancel them with `cluster cancel`")
        else:
            message = "interrupted: every job had ended"
        log.warning("%s", message)
        exc.add_note(message)
        raise
    return all((tracker(u.backend.name).record(u._track_key) or QueueJob(u._track_key, State.UNKNOWN)).state
               is State.COMPLETED for u in units)


def get(jobs: Any, timeout: Optional[float] = None, backend: Optional[str] = None,
        return_exceptions: bool = False, cancel_on_interrupt: bool = False) -> Any:
    """Results of jobs, tasks or job ids (one value for one job, a list for many; an array gives a
    list), waiting for all of them together.

    A failed job's error is raised once every job has ended, saying how many others failed; with
    ``return_exceptions`` each failed job's exception takes its place in the list instead.
    """
    single = _single(jobs)
    items = [jobs] if single else list(jobs)
    found = find_jobs(items, backend) if any(not isinstance(i, _Outcome) for i in items) else items
    wait(found, timeout=timeout, backend=backend, cancel_on_interrupt=cancel_on_interrupt)
    values: list[Any] = []
    errors: list[tuple[Any, BaseException]] = []
    for job in found:
        try:
            values.append(job.get())
        except Exception as exc:
            if not return_exceptions:
                errors.append((job, exc))
            values.append(exc)
    if errors:
        first = errors[0][1]
        if len(found) > 1 and hasattr(first, "add_note"):
            failed = ", ".join(str(j.id) for j, _ in errors[:10]) + (" ..." if len(errors) > 10 else "")
            first.add_note(f"{len(errors)} of {len(found)} jobs failed ({failed}); "
                           "get(..., return_exceptions=True) returns every result and error")
        raise first
    return values[0] if single else values


def cancel(jobs: Any, backend: Optional[str] = None) -> None:
    """Cancel jobs, tasks or job ids (an array: every task), with one scheduler call per backend."""
    for be, (ids, records, units) in _scheduler_ids(jobs, backend).items():
        tracker(be).cancel_requested(u._track_key for u in units)
        with _suppress_registry():
            registry.mark_cancel_requested(be, records)
        plugins.backend(be).cancel(ids)


def release(jobs: Any, backend: Optional[str] = None) -> None:
    """Let held jobs, tasks or job ids (an array: every task) be scheduled, one scheduler call per backend;
    those not held are left as they are. A backend that cannot release raises BackendError."""
    for be, (ids, _, _) in _scheduler_ids(jobs, backend).items():
        plugins.backend(be).release(ids)


def _scheduler_ids(jobs: Any, backend: Optional[str]) -> dict[str, tuple[list[str], list[str], list[_Outcome]]]:
    """For each backend: the ids to give its scheduler for these jobs (an array's own id when every task
    is asked for), the ids of those with a job record, and every job and task they stand for."""
    items = [jobs] if _single(jobs) else list(jobs)
    found = find_jobs(items, backend) if any(not isinstance(i, _Outcome) for i in items) else items
    by_backend: dict[str, tuple[list[str], list[str], list[_Outcome]]] = {}
    # every task of a native array asked for (the tasks of a map): the array's id, one word for the
    # scheduler instead of one per task (scancel of 1000 task ids took 0.6 s, of the array's id 6 ms)
    asked: dict[int, set[int]] = {}
    for unit in found:
        if isinstance(unit, Task) and unit.job.native_array:
            asked.setdefault(id(unit.job), set()).add(unit.index)
    for unit in found:
        ids, records, units = by_backend.setdefault(unit.backend.name, ([], [], []))
        if isinstance(unit, Job) and unit.tasks and not unit.native_array:
            ids.extend(t.id for t in unit.tasks)
        elif isinstance(unit, Job):
            ids.append(unit._need_key())
        elif isinstance(unit, Task) and len(asked.get(id(unit.job), ())) == len(unit.job.tasks):
            ids.append(unit.job._need_key())
        else:
            ids.append(unit.id)
        owner = unit.job if isinstance(unit, Task) else unit
        if owner._registry_record is not None and owner._registry_record.stem:
            records.append(cast(str, owner.id))  # it has a record: it was submitted
        units.extend(unit.tasks if isinstance(unit, Job) and unit.tasks else [unit])
    return {be: (list(dict.fromkeys(ids)), records, units) for be, (ids, records, units) in by_backend.items()}


def map(function: Callable[..., Any], iterable: Iterable[Any], *, star: bool = False, **options: Any) -> list[Task]:
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
        try:
            tasks.extend(job.submit().tasks)
        except SubmitError as exc:
            if not tasks:  # the first array: its own error says what went through
                raise
            # what went through stays submitted: the caller gets its Tasks with the reason the rest did not
            # (only native arrays come in several chunks, and one is submitted whole or not at all)
            ids = list(dict.fromkeys(t.job.id for t in tasks if t.job.id))
            raise PartialSubmitError.part_way(exc, len(tasks), len(elements), ids, tasks) from exc
    return tasks


def clean(jobs: Union[Job, Iterable[Job]], clean_outputs: bool = False, *, outputs: Optional[bool] = None) -> None:
    """Delete the files of jobs (a Job or a list): scripts and pickles, and with ``clean_outputs`` (or
    ``outputs``) stdout and stderr, read first (the seed's ``clean``)."""
    for job in ([jobs] if isinstance(jobs, Job) else list(jobs)):
        job.clean(delete_outputs=clean_outputs if outputs is None else outputs)


def clean_dir(directory: Union[str, os.PathLike[str], None] = None, suffix: Optional[str] = None,
              qtype: Optional[str] = None, confirm: bool = False, outputs: bool = True,
              delete_outputs: Optional[bool] = None) -> list[Path]:
    """Delete the job files cluster-core wrote in a directory (default: the job directory); returns the
    deleted paths.

    Only names matching the job-file convention (``<name>.<token>.<suffix>.<kind>``) are touched, with
    ``suffix`` only those of that suffix; without ``outputs``, stdout and stderr files are kept. With
    ``confirm`` the user is asked first; asking without a terminal to answer is a ClusterError (nothing is
    deleted). ``qtype`` is the seed's: file names do not say which backend ran a job, so it is refused
    unless None.
    """
    from .errors import ClusterError
    outputs = outputs if delete_outputs is None else delete_outputs  # fyrd's name
    if qtype is not None:
        raise OptionError(f"qtype={qtype!r}: job files do not record their backend, so clean_dir cannot keep "
                          "to one; clean by suffix or directory instead", keyword="qtype")
    folder = Path(directory) if directory else _jobdir({})
    if not folder.is_dir():
        return []
    kinds = None if outputs else {"sh", "exit", "in.pkl", "out.pkl"}
    found = []
    for path in folder.iterdir():
        match = FILE_RE.match(path.name)
        if (match and path.is_file() and (suffix is None or match.group("suffix") == suffix)
                and (kinds is None or match.group("kind") in kinds)):
            found.append(path)
    found.sort()
    if not found:
        return []
    if confirm:
        if not (sys.stdin and sys.stdin.isatty()):
            raise ClusterError(f"{len(found)} job files in {folder} would be deleted, but there is no terminal "
                               "to confirm it; pass confirm=False (CLI: --yes) to delete them without asking")
        answer = input(f"Delete {len(found)} job files in {folder}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            return []
    for path in found:
        path.unlink(missing_ok=True)
    return found
