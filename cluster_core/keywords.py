"""The job keyword table: every option a job takes, with its type, aliases, default and checks.

The table says what a keyword means; each backend says how its scheduler spells it (its
``render_options`` hook, usually through :func:`.rendering.render_with`). ``check_arguments`` is the single
place where user values are cast (by :mod:`.casts` and :mod:`.dependencies`) and validated, so every
backend receives the same clean values.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import attrs

from .casts import (_args, _array, _bool, _count, _email, _export, _imports, _int, _notify, _path, _paths,
                    _positive_int, _seconds, _suffix, _text, _words, describe, parse_memory, parse_time)
from .dependencies import _depends
from .errors import OptionError

_CASTS: dict[str, Callable[[Any], Any]] = {
    "int": _positive_int,
    "signed": _int,
    "count": _count,
    "seconds": _seconds,
    "str": _text,
    "bool": _bool,
    "memory": parse_memory,
    "time": parse_time,
    "words": _words,
    "args": _args,
    "depends": _depends,
    "export": _export,
    "array": _array,
    "notify": _notify,
    "email": _email,
    "path": _path,
    "paths": _paths,
    "imports": _imports,
    "suffix": _suffix,
}


# --- the table --------------------------------------------------------------------------------------

@attrs.frozen
class OptionSpec:
    """One job keyword: its canonical name, type (a key of the cast table), aliases, default and help."""

    name: str
    type: str = attrs.field(validator=attrs.validators.in_(tuple(_CASTS)))
    help: str
    aliases: tuple[str, ...] = ()
    default: Any = None
    category: str = "resources"

    def cast(self, value: Any) -> Any:
        """Cast and validate one value; raises OptionError naming the keyword and the value."""
        try:
            return _CASTS[self.type](value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            reason = str(exc)
            if len(reason) > 300:
                reason = reason[:297] + "..."
            raise OptionError(f"{self.name}={describe(value)}: {reason}", keyword=self.name, value=value) from None


def _opt(name: str, type_: str, help_: str, *aliases: str, default: Any = None,
         category: str = "resources") -> OptionSpec:
    return OptionSpec(name=name, type=type_, help=help_, aliases=tuple(aliases), default=default,
                      category=category)


OPTIONS: tuple[OptionSpec, ...] = (
    # resources
    _opt("cores", "int", "CPU cores for the job (per task)", "cpus", "ncpus", "cpus_per_task", "ppn",
         "threads_per_job", default=1),
    _opt("nodes", "int", "number of nodes", "node_count"),
    _opt("tasks", "int", "number of tasks (MPI ranks)", "ntasks"),
    _opt("tasks_per_node", "int", "tasks on each node", "ntasks_per_node"),
    _opt("mem", "memory", "memory for the job: MB, or a size such as 500M, 4GB, 1.5T", "memory"),
    _opt("mem_per_cpu", "memory", "memory per CPU core: MB or a size such as 2G", "memory_per_cpu"),
    _opt("time", "time", "wall-time limit: D-HH:MM:SS, HH:MM:SS, MM:SS, minutes, or 2h30m", "walltime",
         "time_limit"),
    _opt("gpus", "int", "GPUs for the job", "ngpus"),
    _opt("gres", "str", "generic resources in the scheduler's syntax, e.g. gpu:a100:2"),
    _opt("features", "words", "node features the job needs", "constraint", "constraints"),
    _opt("exclusive", "bool", "run alone on whole nodes"),
    _opt("licenses", "words", "licenses the job needs", "license"),
    # placement and accounting
    _opt("partition", "str", "partition or queue to submit to", "queue", category="placement"),
    _opt("account", "str", "account (project) to charge", "project", "allocation", category="placement"),
    _opt("qos", "str", "quality of service", category="placement"),
    _opt("reservation", "str", "reservation to run in", category="placement"),
    _opt("priority", "signed", "nice value: a positive number lowers the job's priority", "nice",
         category="placement"),
    _opt("begin", "str", "do not start before this time, in the scheduler's syntax", "begin_time",
         category="placement"),
    _opt("hold", "bool", "submit the job held; release it with job.release() or `cluster release ID`",
         category="placement"),
    # naming and files
    _opt("name", "str", "job name", "job_name", category="files"),
    _opt("outfile", "path", "file for the job's stdout", "output", "stdout", "out_file", category="files"),
    _opt("errfile", "path", "file for the job's stderr", "error", "stderr", "err_file", category="files"),
    _opt("workdir", "path", "directory the job runs in", "chdir", "dir", "work_dir", "cwd", "runpath", "path",
         category="files"),
    _opt("jobdir", "path", "directory for the files cluster-core writes (script, results)", "filedir",
         "scriptdir", "scriptpath", "filepath", category="files"),
    _opt("outpath", "path", "directory for the job's stdout and stderr files (default: the job directory)",
         "outdir", category="files"),
    _opt("suffix", "suffix", "the word in the job's file names, <name>.<token>.<suffix>.sh (default: cluster)",
         category="files"),
    _opt("clean_files", "bool", "delete the job's script and pickles once get() has read its result",
         "delete_files", "cleanfiles", "delfiles", category="files"),
    _opt("clean_outputs", "bool", "delete the job's stdout and stderr files once get() has read them",
         "delete_outputs", "cleanouts", "delouts", "deloutputs", "cleanoutputs", category="files"),
    # running
    _opt("depends", "depends", 'jobs to wait for: ids or Jobs that must succeed first ("12,13"), or typed: '
         '"afterany:12:13", "afternotok:12", "after:12" (started), "singleton"', "dependencies",
         "dependency", "depend", "afterok", category="running"),
    _opt("array", "array", 'array task indices: "0-9", "1,3,5", "0-99:2", "0-9%2", or a count',
         "array_spec", category="running"),
    _opt("modules", "words", "environment modules to load before the command", "module",
         category="running"),
    _opt("imports", "imports", 'a function job: imports run before the function ("numpy as np", '
         '"from os import path")', "import", category="running"),
    _opt("syspaths", "paths", "a function job: directories put first on sys.path before it is loaded",
         "syspath", "paths", category="running"),
    _opt("threads", "int", "local backend: the cores its runner hands out at once, set when the runner "
         "starts (config local.threads)", "local_threads", category="running"),
    # ALL by default on every backend, as Slurm does (Torque, OpenPBS and Grid Engine would pass almost
    # nothing): the same job sees the same environment wherever it runs
    _opt("export", "export", 'environment: "ALL" (the default), "NONE", names, or NAME=value pairs', "env",
         "environment", default=("ALL",), category="running"),
    _opt("email", "email", "address for notifications", "mail_user", "mail", category="running"),
    _opt("notify", "notify", "when to mail: begin, end, fail, all, none", "mail_type", category="running"),
    _opt("requeue", "bool", "let the scheduler requeue the job after a node failure", category="running"),
    _opt("max_requeue", "count", "a function job: how many times it may save a checkpoint and be requeued "
         "(before its time limit, or when preempted); 3 for a Checkpointable, else 0: no checkpointing",
         "max_requeues", "requeues", category="running"),
    _opt("checkpoint_before", "seconds", "a checkpointing job: how long before its time limit it is warned "
         "to save itself: seconds, or 2m, 1:30 (default 60 s, or a quarter of a shorter time limit)",
         "signal_before", "checkpoint_time", category="running"),
    _opt("extra", "args", "raw scheduler arguments passed through as they are, e.g. --tmp=10G",
         "raw", "extra_args", "passthrough", category="running"),
)

_BY_NAME: dict[str, OptionSpec] = {}
for _spec in OPTIONS:
    for _key in (_spec.name, *_spec.aliases):
        if _key in _BY_NAME:  # pragma: no cover - a table error, caught by the tests
            raise RuntimeError(f"option name {_key!r} is used twice")
        _BY_NAME[_key] = _spec

# Keywords the submission calls take that are not job options; they never reach a backend.
CONTROL_KEYWORDS = frozenset({"backend", "profile", "qtype"})

# Job keywords the core itself carries out (file names and places, clean-up, what a function job loads);
# they are removed before the options reach a backend.
CORE_KEYWORDS = frozenset({"outpath", "suffix", "clean_files", "clean_outputs", "imports", "syspaths",
                           "max_requeue"})


def get_spec(keyword: str) -> OptionSpec:
    """The spec of a keyword or alias; an OptionError suggests the closest names for a typo."""
    if not isinstance(keyword, str):
        shown = describe(keyword, 40)
        raise OptionError(f"job keywords are names (strings), not {type(keyword).__name__}: {shown}; "
                          "`cluster keywords` lists them all", keyword=shown)
    key = keyword.strip().lower().replace("-", "_")
    if key in _BY_NAME:
        return _BY_NAME[key]
    import difflib  # only for a misspelled keyword's message
    close = difflib.get_close_matches(key, list(_BY_NAME), n=3, cutoff=0.6) if len(key) <= 64 else []
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        "; `cluster keywords` lists them all"
    raise OptionError(f"unknown job keyword {describe(keyword, 60)}{hint}", keyword=keyword)


def canonical_name(keyword: str) -> str:
    return get_spec(keyword).name


OptionsError = OptionError  # fyrd's name


def split_keywords(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """fyrd's ``split_keywords``: (the job keywords, checked; everything else, as given). A job keyword with
    a bad value is still an OptionError."""
    ours = {k: v for k, v in kwargs.items() if isinstance(k, str) and _known(k)}
    return check_arguments(ours), {k: v for k, v in kwargs.items() if k not in ours}


def _known(keyword: str) -> bool:
    return keyword.strip().lower().replace("-", "_") in _BY_NAME


def check_arguments(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Cast and validate job keywords; return a dict keyed by canonical names.

    Unknown keywords raise OptionError with the closest names; a keyword given twice under two aliases
    is an error; ``None`` means "not set" and is dropped, as is an empty ``depends`` (no dependency).
    """
    if not isinstance(kwargs, Mapping):
        raise OptionError(f"job options come as a mapping of keywords to values, not {type(kwargs).__name__}",
                          keyword="options")
    out: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, value in kwargs.items():
        spec = get_spec(key)  # an unknown keyword is an error even when its value is None
        if value is None:
            continue
        if spec.name in given_as:
            raise OptionError(f"{spec.name!r} given twice (as {describe(given_as[spec.name], 40)} and "
                              f"{describe(key, 40)})", keyword=spec.name)
        given_as[spec.name] = key
        cast = spec.cast(value)
        if spec.type == "depends" and not cast:
            continue
        out[spec.name] = cast
    if "mem" in out and "mem_per_cpu" in out:
        raise OptionError("give mem or mem_per_cpu, not both", keyword="mem")
    return out


def defaults() -> dict[str, Any]:
    """The table's default values, applied under the user's profile and keywords."""
    return {s.name: s.default for s in OPTIONS if s.default is not None}
