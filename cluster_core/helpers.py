"""fyrd's high-level helpers: the ``jobify`` decorator, ``parapply``, ``parapply_summary`` and ``splitrun``.

Code written for fyrd 0.6 runs with only its import changed; where we differ from fyrd, the function's
docstring says how and why. Each helper submits one job per part, then waits for all of them at once
(``cluster_core.job.get``): the first failure is raised once every job has ended, and the jobs' files
stay for a look. On success the jobs' files are deleted, as fyrd did by default (``clean_files=False``
keeps the script and pickles, ``clean_outputs=False`` the stdout and stderr files).

pandas is optional (``pip install 'cluster-core[pandas]'``): only ``parapply``, ``parapply_summary`` and
joining DataFrames need it, and it is imported when they run.
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import shutil
import string
import tempfile
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, Union, cast

from .errors import OptionError
from .run import _open_bytes, even_bounds, split_file

if TYPE_CHECKING:
    from .job import Job

    # one job of a helper: (a function or a shell command string, its args, its kwargs)
    _Call = tuple[Union[Callable[..., Any], str], tuple[Any, ...], dict[str, Any]]

log = logging.getLogger(__name__)

__all__ = ["jobify", "parapply", "parapply_summary", "splitrun"]

# fyrd's qtype names the batch system; "normal" was its old name for the local queue.
_LOCAL_QTYPES = frozenset({"local", "normal"})
# DataFrame.apply's (and .map's) own parameters: they go to pandas even where a job keyword shares the
# name (``raw`` is also an alias of the job keyword ``extra``).
_PANDAS_KEYWORDS = frozenset({"axis", "raw", "result_type", "by_row", "engine", "engine_kwargs", "na_action"})
# fyrd's clean-up keywords: the helpers delete their jobs' files once every result is in (default True).
_CLEAN_KEYWORDS = frozenset({"clean_files", "clean_outputs"})
# Keywords of the driver job that direct=False submits, as fyrd's wrapper job took mem and partition.
_DRIVER_KEYWORDS = frozenset({"mem", "partition", "account", "qos", "jobdir", *_CLEAN_KEYWORDS})


# --- jobify -----------------------------------------------------------------------------------------

def jobify(name: Any = None, profile: Optional[str] = None, qtype: Optional[str] = None, submit: bool = True,
           **kwds: Any) -> Callable[..., Any]:
    """Decorator: calling the function makes a job of that call and returns the :class:`~cluster_core.Job`
    (submitted unless ``submit=False``); ``job.get()`` gives the function's return value.

    ``@jobify`` and ``@jobify(name=..., profile=..., qtype=..., **job_keywords)`` both work. ``qtype`` is
    fyrd's name for the backend (``"local"`` and fyrd's old ``"normal"`` are the local backend; any other
    name is passed as ``backend=``). Job keywords are checked when the function is decorated.

    The decorated function keeps its name, docstring and signature (``__wrapped__`` is the original);
    fyrd replaced the docstring by a note around the original. The job runs the original function: the
    module attribute now names the wrapper, so cloudpickle sends the original by value, which also works
    for functions defined in ``__main__``.
    """
    if callable(name) and profile is None and qtype is None and submit is True and not kwds:
        bare: Callable[[Callable[..., Any]], Callable[..., Any]] = jobify()
        return bare(name)  # bare @jobify
    if name is not None and not isinstance(name, str):
        raise OptionError(f"name={name!r}: expected a job name (a string)", keyword="name")
    options = _job_options(kwds, qtype)
    _check_keywords(options)

    def decorate(function: Callable[..., Any]) -> Callable[..., Job]:
        if not callable(function):
            raise OptionError(f"jobify decorates a function, not {type(function).__name__}", keyword="function")

        @functools.wraps(function)
        def make_job(*args: Any, **kwargs: Any) -> Job:
            from .job import Job
            job = Job(function, args, kwargs, name=name, profile=profile, **options)
            return job.submit() if submit else job

        return make_job

    return decorate


# --- parapply ---------------------------------------------------------------------------------------

def parapply(jobs: int, df: Any, func: Callable[..., Any], args: Sequence[Any] = (), profile: Optional[str] = None,
             applymap: bool = False, merge_axis: int = 0, merge_apply: bool = False, name: str = "parapply",
             imports: Optional[Sequence[str]] = None, direct: bool = True, **kwds: Any) -> Any:
    """Split a DataFrame into ``jobs`` row chunks, run ``chunk.apply(func, args=args)`` (``applymap``:
    ``func`` on every element) in one job per chunk, and concatenate the results along ``merge_axis``.

    Chunks follow ``numpy.array_split``: sizes differ by at most one row and no row is lost; where there
    are fewer rows than ``jobs``, fewer jobs run (fyrd also submitted the empty chunks). Jobs are named
    ``<name>_<i>_of_<n>``. ``merge_apply`` applies ``func`` once more to the concatenation.

    Keywords are shared out as fyrd did: job keywords (``cores``, ``mem``, ``time``, ..., ``backend`` or
    fyrd's ``qtype``) go to the jobs; ``axis``, ``raw``, ``result_type`` and every other keyword go to
    ``DataFrame.apply``, which passes unknown ones on to ``func`` (fyrd: "keyword arguments can just be
    passed directly"); one that ``func`` cannot take is an error before anything is submitted, naming the
    closest job keyword (``cors=2``). ``imports`` (statements run on the node before ``func``) is the job keyword
    ``imports``. ``applymap`` uses ``DataFrame.map`` where pandas has it (2.1 and later) and passes
    ``args`` to ``func`` after the element (fyrd passed them to ``applymap``, which rejected them).

    With ``direct=False``, as in fyrd, this call itself runs as one job (which submits the chunk jobs from
    the node) and that Job is returned, submitted: ``.get()`` gives the result. fyrd returned it unsubmitted.
    """
    _check_jobs(jobs)
    _check_callable(func, "func")
    pd = _pandas("parapply")
    _check_frame(pd, df, applymap)
    plan = _Plan.of(kwds, profile, imports)
    _check_func_keywords(func, plan.pandas)
    if not direct:
        return _driver(parapply, (jobs, df, func), dict(
            args=args, profile=profile, applymap=applymap, merge_axis=merge_axis, merge_apply=merge_apply,
            name=name, imports=imports, **kwds), name, profile, kwds)
    chunks = [df.iloc[start:stop] for start, stop in even_bounds(len(df), jobs)] or [df]
    calls: list[_Call] = [(_apply_chunk, (chunk, func, tuple(_args(args)), plan.pandas, applymap), {})
                          for chunk in chunks]
    results = plan.run(calls, name)
    merged = pd.concat(results, axis=merge_axis)
    return _apply_chunk(merged, func, tuple(_args(args)), plan.pandas, applymap) if merge_apply else merged


def parapply_summary(jobs: int, df: Any, func: Callable[..., Any], args: Sequence[Any] = (),
                     profile: Optional[str] = None, applymap: bool = False, name: str = "parapply",
                     imports: Optional[Sequence[str]] = None, direct: bool = True, **kwds: Any) -> Any:
    """``parapply`` for summaries: apply ``func`` to every chunk in its own job, then apply ``func`` once
    more, here, to the per-chunk results stacked one row per chunk.

    That is exact for summaries that combine, such as ``sum``, ``max`` or ``min``. A mean comes out as
    the mean of the chunk means, right only when the chunks are the same size: fyrd's own example, the
    columns ``[0, 2, 9, 13, 4]`` and ``[1, 6, 24, 76, 12]`` in 2 jobs with ``numpy.mean``, gives 6.083333 and
    27.166667 where the means are 5.6 and 23.8. We keep fyrd's result; for a mean, sum per chunk and
    divide by ``len(df)``. Keywords, ``imports`` and ``direct`` as for :func:`parapply`.
    """
    _check_jobs(jobs)
    _check_callable(func, "func")
    _check_frame(_pandas("parapply_summary"), df, applymap)
    _check_func_keywords(func, _Plan.of(kwds, profile, imports).pandas)  # bad keywords fail before submitting
    if not direct:
        return _driver(parapply_summary, (jobs, df, func), dict(
            args=args, profile=profile, applymap=applymap, name=name, imports=imports, **kwds), name, profile, kwds)
    per_chunk = parapply(jobs, df, func, args, profile, applymap, merge_axis=1, name=name, imports=imports, **kwds)
    pandas_kwds = _split_keywords(kwds)[1]
    return _apply_chunk(per_chunk.T, func, tuple(_args(args)), pandas_kwds, applymap)


def _apply_chunk(frame: Any, func: Callable[..., Any], args: tuple[Any, ...] = (),
                 pandas_kwds: Optional[Mapping[str, Any]] = None, applymap: bool = False) -> Any:
    """What one parapply job runs (on the node): ``apply``, or ``func`` on every element."""
    kwds = dict(pandas_kwds or {})
    if not applymap:
        return frame.apply(func, args=args, **kwds) if args else frame.apply(func, **kwds)
    each = functools.partial(_call_after_element, func, args) if args else func
    elementwise = frame.map if hasattr(type(frame), "map") else frame.applymap  # map: pandas 2.1 and later
    return elementwise(each, **kwds)


def _call_after_element(func: Callable[..., Any], args: tuple[Any, ...], value: Any, **kwargs: Any) -> Any:
    return func(value, *args, **kwargs)


# --- splitrun ---------------------------------------------------------------------------------------

def splitrun(jobs: int, infile: Any, inheader: bool, command: Any, args: Any = None,
             kwargs: Optional[Mapping[str, Any]] = None, name: Optional[str] = None, qtype: Optional[str] = None,
             profile: Optional[str] = None, outfile: Optional[str] = None, outheader: bool = False,
             merge_func: Optional[Callable[[list[Any]], Any]] = None, direct: bool = True, **kwds: Any) -> Any:
    """Split a file into ``jobs`` parts (:func:`cluster_core.run.split_file`; ``inheader``: its first line
    is a header, repeated at the top of every part), run ``command`` on each part as its own job, and
    join what they give.

    ``command`` is a function or a shell command. A function gets the part's path wherever an argument in
    ``args`` or a value in ``kwargs`` holds ``{file}`` (``{outfile}``: where it writes its output); with
    neither, the path is its first argument (fyrd raised ValueError). A shell command string has its
    ``{file}`` and ``{outfile}`` filled in by ``str.format``, as in fyrd (so ``{{`` and ``}}`` are
    literal braces), with each path quoted by ``shlex.quote``: pipes and redirections in the command
    work, and no file name is ever read as shell syntax. Write the fields unquoted. Without ``{file}``
    the quoted path is appended to the command; a list of words is an argument vector.

    Result, as in fyrd: with ``outfile``, every part's ``{outfile}`` concatenated into that file (with
    ``outheader``, the first line of the first part's output once at the top and dropped from the
    others; fyrd took the input's header instead) and its absolute path returned; else
    ``merge_func(results)``; else the results, joined into one list where every one is a list.

    ``infile`` may also be a pandas DataFrame or Series, or a list or tuple: it is split into ``jobs``
    parts in memory, ``command(part, *args, **kwargs)`` runs once per part, and the results are joined
    (DataFrames and Series concatenated, lists and tuples chained into one list) unless ``merge_func``
    is given; ``inheader`` is ignored there.

    Every other keyword is a job keyword. Parts and their outputs go to a fresh directory in the job
    directory (it must be reachable from the nodes), removed once the jobs succeeded. ``direct=False``
    runs this call as one job and returns that Job, submitted (see :func:`parapply`).
    """
    _check_jobs(jobs)
    name = name or "split_file"
    if merge_func is not None:
        _check_callable(merge_func, "merge_func")
    plan = _Plan.of({**kwds, "qtype": qtype}, profile, None, pandas_keywords=False)
    if not direct:
        return _driver(splitrun, (jobs, infile, inheader, command), dict(
            args=args, kwargs=kwargs, name=name, qtype=qtype, profile=profile, outfile=outfile, outheader=outheader,
            merge_func=merge_func, **kwds), name, profile, {**kwds, "qtype": qtype})
    args, kwargs = _call_arguments(args, kwargs)
    if _in_memory(infile):
        return _splitrun_memory(plan, jobs, infile, command, args, kwargs, name, outfile, merge_func)
    return _splitrun_file(plan, jobs, infile, inheader, command, args, kwargs, name, outfile, outheader, merge_func)


def _splitrun_memory(plan: "_Plan", jobs: int, data: Any, command: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any], name: str, outfile: Optional[str],
                     merge_func: Optional[Callable[[list[Any]], Any]]) -> Any:
    _check_callable(command, "command", "for data in memory (a DataFrame or a list), command must be a function")
    if outfile is not None:
        raise OptionError("outfile= is for a file split into parts; with data in memory the results are "
                          "returned (or merged by merge_func)", keyword="outfile")
    parts = _memory_parts(data, jobs)
    results = plan.run([(command, (part, *args), kwargs) for part in parts], name)
    return merge_func(results) if merge_func is not None else _join(results, frames=True)


def _splitrun_file(plan: "_Plan", jobs: int, infile: Any, inheader: bool, command: Any, args: tuple[Any, ...],
                   kwargs: dict[str, Any], name: str, outfile: Optional[str], outheader: bool,
                   merge_func: Optional[Callable[[list[Any]], Any]]) -> Any:
    path = _input_path(infile)
    _check_command(command, outfile, args, kwargs)
    jobdir = plan.jobdir()
    os.makedirs(jobdir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=f"{_file_safe(name)}.", suffix=".split", dir=jobdir)
    parts = [os.path.abspath(p) for p in split_file(path, jobs, outpath=workdir, keep_header=bool(inheader))]
    outputs: list[Optional[str]] = [part + ".out" for part in parts] if outfile else [None] * len(parts)
    calls = [_part_call(command, args, kwargs, part, out) for part, out in zip(parts, outputs)]
    try:
        results = plan.run(calls, name)
    except BaseException:
        log.warning("splitrun %s: a job failed; its parts and outputs are kept in %s", name, workdir)
        raise
    if outfile:
        result = _concatenate(cast("list[str]", outputs), outfile, outheader)  # with outfile, each part has one
    elif merge_func is not None:
        result = merge_func(results)
    else:
        result = _join(results, frames=False)
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def _part_call(command: Any, args: tuple[Any, ...], kwargs: dict[str, Any], part: str, out: Optional[str]) -> _Call:
    """The (function or command string, args, kwargs) of the job for one part."""
    if callable(command):
        return (command, *_fill_arguments(args, kwargs, part, out))
    if isinstance(command, (list, tuple)):
        words = [_fill_word(str(word), part, out) for word in command]
        if not any("{file}" in str(word) for word in command):
            words.append(part)
        return shlex.join(words), (), {}
    return _fill_command(command, part, out), (), {}


def _fill_arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any], part: str,
                    out: Optional[str]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``{file}`` and ``{outfile}`` replaced in string arguments; the path first where no ``{file}``."""
    new_args = tuple(_fill_word(a, part, out) if isinstance(a, str) else a for a in args)
    new_kwargs = {k: _fill_word(v, part, out) if isinstance(v, str) else v for k, v in kwargs.items()}
    if not any(isinstance(v, str) and "{file}" in v for v in (*args, *kwargs.values())):
        new_args = (part, *new_args)
    return new_args, new_kwargs


def _fill_word(text: str, part: str, out: Optional[str]) -> str:
    text = text.replace("{file}", part)
    return text.replace("{outfile}", out) if out is not None else text


def _fill_command(command: str, part: str, out: Optional[str]) -> str:
    values = {"file": shlex.quote(part)}
    if out is not None:
        values["outfile"] = shlex.quote(out)
    filled = command.format(**values)
    return filled if "file" in _fields(command) else f"{filled} {shlex.quote(part)}"


def _fields(command: str) -> set[str]:
    try:
        return {field for _, field, _, _ in string.Formatter().parse(command) if field is not None}
    except ValueError as exc:
        raise OptionError(f"command {command!r}: {exc} (fields are {{file}} and {{outfile}}; write {{{{ and }}}} "
                          "for a literal brace, as fyrd's str.format needed)", keyword="command") from None


def _check_command(command: Any, outfile: Optional[str], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Errors before anything is split or submitted: a bad field, or an outfile nothing writes to."""
    if isinstance(command, str):
        fields = _fields(command)
        unknown = sorted(fields - {"file", "outfile"})
        if unknown or ("outfile" in fields and not outfile):
            why = f"holds {{{unknown[0]}}}" if unknown else "uses {outfile} but no outfile= is given"
            raise OptionError(f"command {command!r} {why}; its fields are {{file}} and {{outfile}} (write {{{{ and "
                              "}} for a literal brace, as fyrd's str.format needed)", keyword="command")
        writes = "outfile" in fields
    elif isinstance(command, (list, tuple)) and command:
        writes = any("{outfile}" in str(word) for word in command)
    elif callable(command):
        writes = any(isinstance(v, str) and "{outfile}" in v for v in (*args, *kwargs.values()))
    else:
        raise OptionError(f"command must be a function, a shell command string or a list of words, not "
                          f"{type(command).__name__}", keyword="command")
    if outfile and not writes:
        raise OptionError(f"outfile={outfile!r}: the command must write each part's output to {{outfile}} (in the "
                          "command string, or in args or kwargs of a function)", keyword="outfile")


def _concatenate(outputs: Sequence[str], outfile: str, outheader: bool) -> str:
    """Every part's output into ``outfile``; with ``outheader`` the first part's first line only once."""
    target = os.path.abspath(os.path.expanduser(os.fspath(outfile)))
    with _open_bytes(target, "wb") as fout:
        for index, path in enumerate(outputs):
            try:
                with _open_bytes(path, "rb") as fin:
                    if outheader and index > 0:
                        fin.readline()
                    shutil.copyfileobj(fin, fout)
            except FileNotFoundError:
                raise OptionError(f"outfile={outfile!r}: the job for part {index + 1} wrote no {path}; does the "
                                  "command write to {outfile}?", keyword="outfile") from None
    return target


def _memory_parts(data: Any, jobs: int) -> list[Any]:
    """Row chunks of a DataFrame or Series; slices of a list or tuple (as lists)."""
    if isinstance(data, (list, tuple)):
        return [list(data[a:b]) for a, b in even_bounds(len(data), jobs)] or [list(data)]
    return [data.iloc[a:b] for a, b in even_bounds(len(data), jobs)] or [data]


def _join(results: list[Any], frames: bool) -> Any:
    """fyrd's default: a list of lists becomes one list; with ``frames``, DataFrames and Series are
    concatenated and tuples chained too. Anything else stays a list of results."""
    if frames and results and all(_is_pandas(r) for r in results):
        return _pandas("joining DataFrames").concat(results)
    chained = (list, tuple) if frames else (list,)
    if results and all(isinstance(r, chained) for r in results):
        return [item for result in results for item in result]
    return results


# --- running the jobs -------------------------------------------------------------------------------

class _Plan:
    """How a helper's jobs are made: their keywords, the pandas keywords, and clean-up on success."""

    def __init__(self, options: dict[str, Any], profile: Optional[str], pandas: dict[str, Any], clean_files: bool,
                 clean_outputs: bool):
        self.options, self.profile, self.pandas = options, profile, pandas
        self.clean_files, self.clean_outputs = clean_files, clean_outputs

    @classmethod
    def of(cls, kwds: Mapping[str, Any], profile: Optional[str], imports: Optional[Sequence[str]],
           pandas_keywords: bool = True) -> "_Plan":
        kwds = dict(kwds)
        qtype = kwds.pop("qtype", None)
        clean = {_canonical(key): kwds.pop(key) for key in list(kwds) if _canonical(key) in _CLEAN_KEYWORDS}
        clean_files, clean_outputs = (bool(clean.get(key, True)) for key in ("clean_files", "clean_outputs"))
        job_kwds, pandas_kwds = _split_keywords(kwds) if pandas_keywords else (kwds, {})
        if imports is not None:
            job_kwds["imports"] = [imports] if isinstance(imports, str) else list(imports)
        if profile is not None and not isinstance(profile, str):
            raise OptionError(f"profile={profile!r}: expected a profile name", keyword="profile")
        options = _job_options(job_kwds, qtype)
        _check_keywords(options)
        return cls(options, profile, pandas_kwds, clean_files, clean_outputs)

    def jobdir(self) -> str:
        """The job directory these jobs write to, as Job chooses it (keyword, profile, config, default)."""
        from . import config
        from .job import _jobdir
        return str(_jobdir(config.merged_keywords(self._keywords(), profile=self.profile)))

    def _keywords(self) -> dict[str, Any]:
        from .keywords import CONTROL_KEYWORDS
        return {k: v for k, v in self.options.items() if k not in CONTROL_KEYWORDS}

    def run(self, calls: Sequence[_Call], name: str) -> list[Any]:
        """Submit one job per (function or command, args, kwargs), then wait for all of them at once."""
        from .job import Job, cancel, get
        submitted: list[Job] = []
        try:
            for index, (command, args, kwargs) in enumerate(calls, 1):
                job = Job(command, args, kwargs, name=f"{name}_{index}_of_{len(calls)}", profile=self.profile,
                          **self.options)
                submitted.append(job.submit())
        except BaseException:
            if submitted:
                log.warning("%s: submission failed; cancelling the %d jobs already submitted", name, len(submitted))
                cancel(submitted)
            raise
        log.info("%s: %d jobs submitted (%s)", name, len(submitted), ", ".join(str(j.id) for j in submitted[:10]))
        results: list[Any] = get(submitted)  # jobs given as a list: their results as a list
        if self.clean_files or self.clean_outputs:
            for job in submitted:
                job.clean(delete_outputs=self.clean_outputs, scripts=self.clean_files)
        return results


def _driver(helper: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str,
            profile: Optional[str], kwds: Mapping[str, Any]) -> Job:
    """fyrd's ``direct=False``: one job runs the whole helper (which submits the part jobs from the node);
    it gets the backend, profile and the job keywords in _DRIVER_KEYWORDS, as fyrd's took mem and partition."""
    from .job import Job
    picked = {key: value for key, value in kwds.items() if _canonical(key) in _DRIVER_KEYWORDS}
    options = _job_options({**picked, "backend": kwds.get("backend")}, kwds.get("qtype"))
    options = {k: v for k, v in options.items() if v is not None}
    return Job(helper, args, {**kwargs, "direct": True}, name=name, profile=profile, **options).submit()


# --- checks and small pieces ------------------------------------------------------------------------

def _job_options(kwds: Mapping[str, Any], qtype: Optional[str]) -> dict[str, Any]:
    """Job keywords with fyrd's ``qtype`` turned into ``backend``."""
    options = dict(kwds)
    if qtype is None:
        return options
    if not isinstance(qtype, str) or not qtype.strip():
        raise OptionError(f"qtype={qtype!r}: expected a backend name such as 'local' or 'slurm'", keyword="qtype")
    backend = "local" if qtype.strip().lower() in _LOCAL_QTYPES else qtype.strip().lower()
    if options.get("backend") not in (None, backend):
        raise OptionError(f"qtype={qtype!r} and backend={options['backend']!r} disagree; give one of them",
                          keyword="qtype")
    options["backend"] = backend
    return options


def _canonical(key: str) -> Optional[str]:
    """A job keyword's canonical name (aliases resolved); None for what is no job keyword."""
    from .keywords import get_spec
    if key in _CLEAN_KEYWORDS:  # known here whether or not the keyword table has them
        return key
    try:
        return get_spec(key).name
    except OptionError:
        return None


def _check_keywords(options: Mapping[str, Any]) -> None:
    from .keywords import CONTROL_KEYWORDS, check_arguments
    check_arguments({k: v for k, v in options.items() if k not in CONTROL_KEYWORDS})


def _split_keywords(kwds: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """fyrd's split: job keywords (and backend, profile, qtype) for the jobs, the rest for pandas."""
    from .keywords import CONTROL_KEYWORDS
    job_kwds: dict[str, Any] = {}
    pandas_kwds: dict[str, Any] = {}
    for key, value in kwds.items():
        if key in _PANDAS_KEYWORDS:
            pandas_kwds[key] = value
        elif key in CONTROL_KEYWORDS or key == "qtype" or _canonical(key) is not None:
            job_kwds[key] = value
        else:
            pandas_kwds[key] = value
    return job_kwds, pandas_kwds


def _check_func_keywords(func: Callable[..., Any], pandas_kwds: Mapping[str, Any]) -> None:
    """A keyword that is no job keyword goes to ``func``: if ``func`` cannot take it, it is most likely a
    misspelt job keyword, and the error says so before anything is submitted."""
    import inspect
    extra = [key for key in pandas_kwds if key not in _PANDAS_KEYWORDS]
    try:
        parameters = inspect.signature(func).parameters.values() if extra else ()
    except (TypeError, ValueError):  # no signature to read (some builtins): let pandas decide
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    takes = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for key in extra:
        if key not in takes:
            from .keywords import get_spec
            try:
                get_spec(key)
            except OptionError as exc:
                name = getattr(func, "__name__", "func")
                raise OptionError(f"{exc}; nor is {key!r} a keyword argument of {name}, which gets the keywords "
                                  "that are not job keywords", keyword=key) from None


def _pandas(what: str) -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(f"{what} needs pandas, which is not installed here: pip install 'cluster-core[pandas]'"
                          f" ({exc})") from None
    return pandas


def _is_pandas(value: Any) -> bool:
    return type(value).__module__.split(".", 1)[0] == "pandas" and hasattr(value, "iloc")


def _in_memory(infile: Any) -> bool:
    return isinstance(infile, (list, tuple)) or _is_pandas(infile)


def _check_frame(pd: Any, df: Any, applymap: bool) -> None:
    kinds = (pd.DataFrame,) if applymap else (pd.DataFrame, pd.Series)
    if not isinstance(df, kinds):
        wanted = "a pandas DataFrame" if applymap else "a pandas DataFrame or Series"
        raise OptionError(f"df must be {wanted}, not {type(df).__name__}; wrap it in pandas.DataFrame(...)",
                          keyword="df")


def _check_jobs(jobs: Any) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise OptionError(f"jobs={jobs!r}: expected the number of jobs to split into, 1 or more", keyword="jobs")


def _check_callable(value: Any, keyword: str, message: Optional[str] = None) -> None:
    if not callable(value):
        raise OptionError(f"{message or keyword + ' must be a function'}, not {type(value).__name__}",
                          keyword=keyword)


def _args(args: Any) -> Sequence[Any]:
    if isinstance(args, (list, tuple)):
        return args
    raise OptionError(f"args={args!r}: expected a tuple of positional arguments, such as (5,)", keyword="args")


def _call_arguments(args: Any, kwargs: Optional[Mapping[str, Any]]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """fyrd's splitrun took ``args`` as a tuple, or a dict meaning keyword arguments."""
    if isinstance(args, Mapping) and kwargs is None:
        args, kwargs = (), args
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise OptionError(f"kwargs={kwargs!r}: expected a dict of keyword arguments", keyword="kwargs")
    return tuple(_args(args if args is not None else ())), dict(kwargs or {})


def _input_path(infile: Any) -> str:
    if not isinstance(infile, (str, os.PathLike)):
        raise OptionError(f"infile must be a path, a DataFrame or a list, not {type(infile).__name__}",
                          keyword="infile")
    path = os.path.abspath(os.path.expandvars(os.path.expanduser(os.fspath(infile))))
    if not os.path.isfile(path):
        raise OptionError(f"infile={os.fspath(infile)!r}: no such file ({path})", keyword="infile")
    return path


def _file_safe(name: str) -> str:
    from .script import safe_name
    return safe_name(name)
