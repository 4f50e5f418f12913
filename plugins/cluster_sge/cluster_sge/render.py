"""Job options as qsub arguments, one tuple of argv words per directive.

The same words go after ``#$`` in the job script (for a reader, and for ``qsub script`` by hand) and on
the qsub command line, which is what the plugin submits: Grid Engine's directive parser drops every
quote character and has no escape, so a value holding a quote cannot survive a ``#$`` line.

Settings (``cluster config set sge.<name> <value>``):
``sge.pe`` (default ``smp``): the parallel environment that gives a job several slots on one host;
``sge.memory_resource`` (``h_vmem``): the complex memory is requested with (``mem_free``, ``h_rss``...);
``sge.gpu_resource`` (``gpu``): the complex GPUs are requested with;
``sge.account_flag`` (``-P``): ``-P`` charges a project, ``-A`` only labels the accounting record;
``sge.verify`` (``e``): qsub's ``-w`` level. ``e`` refuses at submission a job no queue could ever run
(``cores=99`` on 16-slot hosts) instead of leaving it waiting forever; ``w`` only warns, ``n`` skips the
check (qsub's own default) for a very large cluster where it is slow.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from cluster_core import backend
from cluster_core.backend import (ConfigError, OptionError, array_range, dependency_groups, describe, format_hms,
                                  mail_letters, priority_from_nice, render_with)

from .parse import TASK_BASE

if TYPE_CHECKING:
    from cluster_core.backend import Renderer

#: The shell every job script runs under: the core writes bash scripts, and a queue in
#: posix_compliant mode (Grid Engine's default) would otherwise start them with its own shell (/bin/sh).
SHELL = ("-S", "/bin/bash")
#: Characters Grid Engine refuses in a job name (sge_types(1): name), besides any non-ASCII or space.
_NAME_BAD = re.compile(r"[^\x21-\x7e]|[/:@\\*?]")
#: Pseudo variables Grid Engine expands in -o/-e paths; a literal one cannot be written.
_PATH_VARS = re.compile(r"\$(HOME|USER|JOB_ID|JOB_NAME|HOSTNAME|TASK_ID)\b")

DEFAULTS = {"pe": "smp", "memory_resource": "h_vmem", "gpu_resource": "gpu", "account_flag": "-P", "verify": "e"}
#: The ``-w`` levels a submission may use (``v`` and ``p`` only report, they never submit).
VERIFY_LEVELS = ("e", "w", "n")


def setting(name: str) -> str:
    """A plugin setting from the core's config file (``[sge]`` section), or its default."""
    try:
        value = backend.setting(f"sge.{name}")
    except Exception:  # a broken config surfaces through the core; the defaults still render
        value = None
    return (value or DEFAULTS[name]).strip()


def verify_level() -> str:
    """``sge.verify`` checked: one of VERIFY_LEVELS, else an error naming the setting."""
    level = setting("verify")
    if level not in VERIFY_LEVELS:
        raise ConfigError(f"sge.verify={level!r}: expected one of {', '.join(VERIFY_LEVELS)} (qsub -w: e refuses "
                          "jobs no queue can run, w warns, n does not check)")
    return level


def job_name(name: str) -> str:
    """A name qsub accepts: printable ASCII without blanks or / : @ \\ * ?, not starting with a digit."""
    cleaned = _NAME_BAD.sub("_", name) or "job"
    return "j" + cleaned if cleaned[0].isdigit() else cleaned


def _path(keyword: str, flag: str) -> Renderer:
    def render(value: str, _opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
        if "," in value:
            raise OptionError(f"{keyword}={describe(value)}: Grid Engine reads a comma in an output path as a list of "
                              "paths; choose a path without one", keyword=keyword, value=value)
        m = _PATH_VARS.search(value)
        if m:
            raise OptionError(f"{keyword}={describe(value)}: Grid Engine would replace {m.group(0)} in the path; "
                              "write it out", keyword=keyword, value=value)
        # "host:path" is how -o names a host; an empty host keeps a colon in the path literal
        return [(flag, f":{value}" if ":" in value else value)]
    return render


def _slots(opts: Mapping[str, Any]) -> int:
    """Slots of the job: cores per task times tasks, all on one host (nodes above 1 are refused)."""
    nodes = opts.get("nodes") or 1
    if nodes > 1:
        raise OptionError(f"nodes={nodes}: Grid Engine places slots through a parallel environment; ask "
                          "for several hosts with your site's MPI environment, e.g. extra='-pe mpi 64'",
                          keyword="nodes", value=nodes)
    return (opts.get("cores") or 1) * (opts.get("tasks") or opts.get("tasks_per_node") or 1)


def _parallel(opts: Mapping[str, Any]) -> Optional[list[tuple[str, ...]]]:
    slots = _slots(opts)
    return [("-pe", setting("pe"), str(slots))] if slots > 1 else None


def _memory(value: int, opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
    # h_vmem and mem_free are per slot: the job's memory is shared out over its slots
    per_slot = math.ceil(value / _slots(opts))
    return [("-l", f"{setting('memory_resource')}={per_slot}M")]


def array_flags(spec: str) -> list[tuple[str, ...]]:
    """``-t first-last:step`` (and ``-tc`` for a limit) for the core's 0-based indices, shifted to Grid
    Engine's 1-based tasks. Grid Engine takes one evenly stepped range only."""
    first, last, step, limit = array_range(spec, "Grid Engine", offset=TASK_BASE)
    out: list[tuple[str, ...]] = [("-t", f"{first}-{last}:{step}")]
    if limit:
        out.append(("-tc", str(limit)))
    return out


#: -hold_jid releases a job once its predecessors ended, however they ended: afterany itself; for afterok
#: and afternotok the core's job script checks the predecessors' exit files (afterok_dependencies=False).
#: Grid Engine cannot wait for a start (after) and has no singleton.
HOLD_KINDS = ("afterok", "afterany", "afternotok")


def _depends(value: tuple[Any, ...], _opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
    numbers = []
    for kind, job_ids in dependency_groups(value).items():
        if kind not in HOLD_KINDS:  # the core refuses what backend_info does not list; this is a guard
            raise OptionError(f"depends: Grid Engine has no {kind!r} dependencies", keyword="depends", value=kind)
        # -hold_jid names jobs, not tasks: a dependency on task "12.3" (or the core's "12[2]") waits for job 12
        numbers += [re.split(r"[.\[]", v, 1)[0] for v in job_ids]
    return [("-hold_jid", ",".join(dict.fromkeys(numbers)))]


def _export(value: tuple[str, ...], _opts: Mapping[str, Any]) -> Optional[list[tuple[str, ...]]]:
    out: list[tuple[str, ...]] = []
    for item in value:
        if item.upper() == "ALL":
            out.append(("-V",))
        elif item.upper() == "NONE":
            continue  # Grid Engine passes nothing but -v variables unless told -V
        elif "," in item:
            raise OptionError(f"export={describe(item)}: Grid Engine splits -v on every comma; it cannot pass a value "
                              "that contains one", keyword="export", value=item)
        else:
            out.append(("-v", item))
    return out or None


_NOTIFY = {"begin": "b", "end": "e", "fail": "a", "all": "bea", "none": "n"}


def _notify(value: tuple[str, ...], _opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return [("-m", mail_letters(value, _NOTIFY))]


def _priority(value: int, _opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
    # the core's keyword is a nice value (higher runs later); qsub -p is the opposite, -1023..1024
    return [("-p", str(priority_from_nice(value, -1023, 1024, "Grid Engine")))]


def _flag(*words: str) -> Renderer:
    return lambda value, _opts: [words] if value else None


def _one(flag: str) -> Renderer:
    return lambda value, _opts: [(flag, str(value))]


def _resource(value_of: Callable[[Any], str]) -> Renderer:
    return lambda value, _opts: [("-l", value_of(value))]


RENDERERS: dict[str, Renderer] = {
    # cores, nodes, tasks and tasks_per_node together make one -pe request, written by render()
    "cores": lambda v, o: None,
    "nodes": lambda v, o: None,
    "tasks": lambda v, o: None,
    "tasks_per_node": lambda v, o: None,
    "mem": _memory,
    "mem_per_cpu": lambda v, _o: [("-l", f"{setting('memory_resource')}={v}M")],
    "time": _resource(lambda v: f"h_rt={format_hms(v)}"),
    "gpus": _resource(lambda v: f"{setting('gpu_resource')}={v}"),
    "gres": _resource(str),
    "features": _resource(lambda v: ",".join(f"{f}=TRUE" for f in v)),
    "exclusive": _flag("-l", "exclusive=TRUE"),
    "licenses": _resource(lambda v: ",".join(w.replace(":", "=") if ":" in w else f"{w}=1" for w in v)),
    "partition": _one("-q"),
    "account": lambda v, _o: [(setting("account_flag"), v)],
    "reservation": _one("-ar"),
    "priority": _priority,
    "begin": _one("-a"),
    "hold": _flag("-h"),
    "name": lambda v, _o: [("-N", job_name(v))],
    "outfile": _path("outfile", "-o"),
    "errfile": _path("errfile", "-e"),
    "depends": _depends,
    "array": lambda v, _o: array_flags(v),
    "export": _export,
    "email": _one("-M"),
    "notify": _notify,
    "requeue": lambda v, _o: [("-r", "y" if v else "n")],
    "extra": lambda v, _o: [tuple(v)],
}


def render(options: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The qsub arguments for checked options, one tuple per directive; ``-S /bin/bash`` first, and
    ``-cwd`` when no working directory is set, so a job starts where it was submitted (as with sbatch)."""
    out: list[tuple[str, ...]] = [SHELL, ("-wd", options["workdir"]) if "workdir" in options else ("-cwd",)]
    out += _parallel(options) or []
    return out + render_with(RENDERERS, options, "sge", skip=("workdir",))
