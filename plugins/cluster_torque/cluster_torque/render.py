"""Job options as qsub arguments, in the Torque or the PBS Pro/OpenPBS dialect.

Each directive is a tuple of argv words; the core quotes them after ``#PBS`` (both qsub parsers split a
directive line like a shell: quotes group, backslash escapes) or passes them as they are. Resources:

* Torque asks per node: ``-l nodes=N:ppn=P[:gpus=G][:property...]``, ``-l mem=`` for the job,
  ``-l pmem=`` per process, ``-d`` for the working directory, ``-t`` for arrays (ranges, lists, ``%limit``).
* PBS Pro asks per chunk: ``-l select=N:ncpus=P[:mpiprocs=T][:mem=M][:ngpus=G]``, ``-l place=``, ``-J``
  for arrays (one range ``X-Y[:Z]``, at least two indices, ``%limit``). It has no working-directory
  option: jobs start in $HOME and the core's job script changes into ``workdir`` itself.

Both read walltime as ``[[hours:]minutes:]seconds`` (hours unbounded), priority as -1024..1023 with
higher running sooner, and ``-a`` as ``[[[[CC]YY]MM]DD]hhmm[.SS]``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import re
from typing import Any, Callable, Mapping, Optional

from cluster_core.backend import (OptionError, array_range, dependency_groups, describe, format_hms, index_list,
                                  mail_letters, priority_from_nice, render_with)

from . import ids
from .dialect import PBSPRO, TORQUE

log = logging.getLogger("cluster_core.torque")  # shown by `cluster -v`, with the core's

BACKEND = "torque"
RESOURCE_KEYS = ("nodes", "cores", "tasks", "tasks_per_node", "gpus", "features", "mem", "mem_per_cpu",
                 "exclusive")
PRIORITY_RANGE = (-1024, 1023)
NAME_LIMIT = {TORQUE: 256, PBSPRO: 230}  # Torque 6.1.3 ck_job_name.c; OpenPBS pbs_ifl.h PBS_MAXJOBNAME


# --- values -------------------------------------------------------------------------------------------

def priority(nice: int) -> str:
    """PBS priority from the core's nice value: PBS runs higher priorities first, nice is the opposite."""
    return str(priority_from_nice(nice, *PRIORITY_RANGE, "PBS"))


_BEGIN_RE = re.compile(r"^(?:[0-9]{2}){2,6}(?:\.[0-9]{2})?$")


def begin(value: str) -> str:
    """``-a`` date_time; an ISO time (``2026-12-31T18:30``) is converted, PBS's own form passed on."""
    text = str(value).strip()
    if _BEGIN_RE.match(text):
        return text
    try:
        when = _dt.datetime.fromisoformat(text)
        if when.tzinfo is not None:
            when = when.astimezone().replace(tzinfo=None)
    except (ValueError, OverflowError):  # OverflowError: a time zone shifts it past year 1 or 9999
        raise OptionError(f"begin={describe(value)}: PBS reads [[[[CC]YY]MM]DD]hhmm[.SS] (e.g. 202612311830) or give "
                          "an ISO time such as 2026-12-31T18:30", keyword="begin", value=value) from None
    if when.year < 1000:  # CCYY has four digits
        raise OptionError(f"begin={describe(value)}: PBS reads a four-digit year", keyword="begin", value=value)
    return f"{when:%Y%m%d%H%M.%S}"


def job_name(name: str, dialect: str) -> str:
    """A name qsub accepts. Torque takes printable characters without spaces; PBS Pro only letters,
    digits and ``-_+.`` (older PBS Pro also wants a letter first). Others become ``_``; logged."""
    if dialect == PBSPRO:
        clean = re.sub(r"[^A-Za-z0-9_+.-]", "_", name)
        if not clean[:1].isalpha():
            clean = "j" + clean
    else:
        clean = re.sub(r"[^\x21-\x7e]", "_", name)
    clean = clean[:NAME_LIMIT[dialect]]
    if clean != name:
        log.debug("job name %r written as %r for %s", name, clean, dialect)
    return clean


def output_path(value: str, keyword: str, dialect: str) -> str:
    """qsub reads ``[host:]path`` and splits at the first colon, so a colon in the path is not possible;
    Torque's mom cannot deliver to a path with a backslash or whitespace (6.1.3 leaves the file in its
    spool's ``undelivered/``, whatever the quoting or escaping; OpenPBS delivers both)."""
    if ":" in value:
        raise OptionError(f"{keyword}={describe(value)}: qsub reads 'host:path', so a path containing ':' cannot be "
                          "given; choose a path without a colon", keyword=keyword, value=value)
    if dialect == TORQUE and "\\" in value:
        raise OptionError(f"{keyword}={describe(value)}: Torque cannot deliver output to a path containing a "
                          "backslash (it ends up in the server's undelivered directory); choose another path",
                          keyword=keyword, value=value)
    if dialect == TORQUE and re.search(r"\s", value):
        raise OptionError(f"{keyword}={describe(value)}: Torque cannot deliver output to a path containing a space "
                          "(it ends up in the server's undelivered directory); choose a jobdir (or "
                          f"{keyword}) without spaces", keyword=keyword, value=value)
    return value


def workdir(value: str) -> list[tuple[str, ...]]:
    """Torque's ``-d``, except for a path with a backslash: Torque 6.1.3 drops the backslash and the job
    fails to start (exit -2). The core's job script changes into the directory itself, so ``-d`` is
    left out then (a user's own script from ``submit_file`` starts in $HOME instead; logged)."""
    if "\\" in value:
        log.info("workdir=%r: not passed to Torque as -d (it drops backslashes); the job script changes "
                 "into it itself", value)
        return []
    return [("-d", value)]


#: PBS's names of the core's dependency types (``after``: once started); Torque wants its own names for an
#: array parent (``1[].srv``): afterokarray and so on. Neither has Slurm's singleton.
DEPEND_TYPES = {"afterok": "afterok", "afterany": "afterany", "afternotok": "afternotok", "after": "after"}
TORQUE_ARRAY_TYPES = {"afterok": "afterokarray", "afterany": "afteranyarray", "afternotok": "afternotokarray",
                      "after": "afterstartarray"}


def depend(value: tuple[Any, ...], dialect: str) -> str:
    """``-W depend=afterok:1.srv:2.srv,afterany:3.srv``: one type after another, all must hold."""
    parts = []
    for kind, job_ids in dependency_groups(value).items():
        if kind not in DEPEND_TYPES:  # the core refuses what backend_info does not list; this is a guard
            raise OptionError(f"depends: {describe(kind)} dependencies: PBS has none", keyword="depends",
                              value=kind)
        plain: list[str] = []
        arrays: list[str] = []
        for text in job_ids:
            jid = ids.try_parse(text)
            (arrays if (dialect == TORQUE and jid is not None and jid.is_array_parent) else plain).append(text)
        if plain:
            parts.append(f"{DEPEND_TYPES[kind]}:" + ":".join(plain))
        if arrays:
            parts.append(f"{TORQUE_ARRAY_TYPES[kind]}:" + ":".join(arrays))
    return "depend=" + ",".join(parts)


def array(spec: str, dialect: str) -> str:
    """``-t`` (Torque) or ``-J`` (PBS Pro) argument for the core's array spec ("0-9", "1,3,5", "0-99:2",
    "0-9%2"). Torque has no step syntax, so steps become a list; PBS Pro takes one range only, so a list
    must form one (1,3,5 -> 1-5:2)."""
    limit = spec.partition("%")[2]
    suffix = f"%{limit}" if limit else ""
    if dialect == TORQUE:
        return index_list(spec) + suffix
    first, last, step, _ = array_range(spec, "PBS Pro", min_tasks=2)
    return f"{first}-{last}" + (f":{step}" if step != 1 else "") + suffix


_BAD_ENV_VALUE = re.compile(r"[,\"'\\]")


def export(items: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``-V`` for ALL, ``-v`` for names and NAME=value pairs; NONE is PBS's default (only PBS_O_*)."""
    out: list[tuple[str, ...]] = []
    names = []
    for item in items:
        upper = item.upper()
        if upper == "ALL":
            out.append(("-V",))
        elif upper == "NONE":
            continue
        else:
            name, sep, value = item.partition("=")
            if sep and _BAD_ENV_VALUE.search(value):
                raise OptionError(f"export={describe(item)}: qsub -v cannot carry a value containing a comma, a quote "
                                  "or a backslash; set it in the job's command instead", keyword="export",
                                  value=item)
            names.append(item)
    if names:
        out.append(("-v", ",".join(names)))
    return out


_NOTIFY = {"begin": "b", "end": "e", "fail": "a", "all": "abe", "none": "n"}


def mail_points(words: tuple[str, ...]) -> str:
    """``-m`` letters: begin b, end e, fail a (abort), all abe; none n wins over the others."""
    return mail_letters(words, _NOTIFY, order="abe")


# --- resources ----------------------------------------------------------------------------------------

_FEATURE_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def _layout(options: Mapping[str, Any]) -> tuple[int, int]:
    """(nodes, tasks per node) from nodes, tasks and tasks_per_node."""
    tasks = options.get("tasks")
    per_node = options.get("tasks_per_node")
    nodes = options.get("nodes")
    if nodes is None:
        nodes = math.ceil(tasks / per_node) if (tasks and per_node) else 1
    if per_node is None:
        per_node = math.ceil(tasks / nodes) if tasks else 1
    return nodes, per_node


def _features(options: Mapping[str, Any], dialect: str) -> list[str]:
    out = []
    for f in options.get("features") or ():
        name, sep, value = f.partition("=")
        ok = _FEATURE_RE.match(name) and (not sep or (dialect == PBSPRO and _FEATURE_RE.match(value)))
        if not ok:
            form = "name or name=value" if dialect == PBSPRO else "node property names"
            raise OptionError(f"features={describe(f)}: expected {form} made of letters, digits, '_', '.', '-'",
                              keyword="features", value=f)
        out.append(f if (sep or dialect == TORQUE) else f"{f}=True")
    return out


def resources(options: Mapping[str, Any], dialect: str) -> list[tuple[str, ...]]:
    """The resource directives, which combine several keywords into one ``-l`` word."""
    out: list[tuple[str, ...]] = []
    wanted = any(options.get(k) is not None for k in ("nodes", "cores", "tasks", "tasks_per_node", "gpus",
                                                      "features", "mem_per_cpu"))
    wanted = wanted or (dialect == PBSPRO and options.get("mem") is not None)
    nodes, per_node = _layout(options)
    ncpus = int(options.get("cores") or 1) * per_node
    gpus = options.get("gpus")
    if dialect == TORQUE:
        if wanted:
            spec = f"nodes={nodes}:ppn={ncpus}"
            if gpus:
                spec += f":gpus={math.ceil(gpus / nodes)}"
            for f in _features(options, dialect):
                spec += f":{f}"
            out.append(("-l", spec))
        if options.get("mem") is not None:
            out.append(("-l", f"mem={options['mem']}mb"))
        if options.get("mem_per_cpu") is not None:
            out.append(("-l", f"pmem={options['mem_per_cpu']}mb"))
        if options.get("exclusive"):
            out.append(("-n",))
        return out
    if wanted:
        chunk = [str(nodes), f"ncpus={ncpus}"]
        if options.get("tasks") or options.get("tasks_per_node"):
            chunk.append(f"mpiprocs={per_node}")
        if options.get("mem") is not None:
            chunk.append(f"mem={math.ceil(options['mem'] / nodes)}mb")
        elif options.get("mem_per_cpu") is not None:
            chunk.append(f"mem={options['mem_per_cpu'] * ncpus}mb")
        if gpus:
            chunk.append(f"ngpus={math.ceil(gpus / nodes)}")
        chunk += _features(options, dialect)
        out.append(("-l", "select=" + ":".join(chunk)))
    if nodes > 1 or options.get("exclusive"):
        place = "scatter" if nodes > 1 else ""
        if options.get("exclusive"):
            place = f"{place}:excl" if place else "excl"
        out.append(("-l", f"place={place}"))
    return out


# --- the tables ---------------------------------------------------------------------------------------

Renderer = Callable[[Any, Mapping[str, Any]], Optional[list[tuple[str, ...]]]]


def _common(dialect: str) -> dict[str, Renderer]:
    return {
        "time": lambda v, o: [("-l", f"walltime={format_hms(v, hour_digits=2)}")],  # hours past a day, no "D-"
        "partition": lambda v, o: [("-q", v)],
        "account": lambda v, o: [("-A", v)],
        "priority": lambda v, o: [("-p", priority(v))],
        "begin": lambda v, o: [("-a", begin(v))],
        "hold": lambda v, o: [("-h",)] if v else [],
        "name": lambda v, o: [("-N", job_name(v, dialect))],
        "outfile": lambda v, o: [("-o", output_path(v, "outfile", dialect))],
        "errfile": lambda v, o: [("-e", output_path(v, "errfile", dialect))],
        "depends": lambda v, o: [("-W", depend(v, dialect))],
        "array": lambda v, o: [("-t" if dialect == TORQUE else "-J", array(v, dialect))],
        "export": lambda v, o: export(v),
        "email": lambda v, o: [("-M", v)],
        "notify": lambda v, o: [("-m", mail_points(v))],
        "requeue": lambda v, o: [("-r", "y" if v else "n")],
        "extra": lambda v, o: [tuple(v)],
    }


RENDERERS: dict[str, dict[str, Renderer]] = {
    TORQUE: {**_common(TORQUE),
             "workdir": lambda v, o: workdir(v),
             "gres": lambda v, o: [("-l", f"gres={v}")],
             "qos": lambda v, o: [("-l", f"qos={v}")]},
    PBSPRO: _common(PBSPRO),  # no -d: the core's script changes into workdir
}


def render(options: Mapping[str, Any], dialect: str) -> list[tuple[str, ...]]:
    """Directives for checked options, resources first. Keywords this dialect lacks are skipped and
    logged at debug level (licenses, reservation; gres, qos and workdir on PBS Pro)."""
    if dialect not in RENDERERS:
        raise ValueError(f"unknown PBS dialect {dialect!r}")
    out = resources(options, dialect)
    out += render_with(RENDERERS[dialect], options, f"{BACKEND} ({dialect})",
                       skip=RESOURCE_KEYS)
    return out
