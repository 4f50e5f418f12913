"""Job options as sbatch arguments: one argv word per value ("--job-name=my job" is one word).

The same words go on the sbatch command line or, quoted by the core, after ``#SBATCH`` in the script.
Values are never interpreted by a shell. Slurm itself expands ``%j``/``%A``/``%a`` in output paths, so a
``%`` in outfile/errfile is doubled to stay literal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from cluster_core.backend import OptionError, dependency_groups, describe, format_time, render_with

if TYPE_CHECKING:
    from cluster_core.backend import Renderer


def _one(flag: str) -> Renderer:
    return lambda value, _opts: [(f"{flag}={value}",)]


def _flag(flag: str) -> Renderer:
    return lambda value, _opts: [(flag,)] if value else None


def _path(keyword: str, flag: str) -> Renderer:
    def render(value: str, _opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
        if "\\" in value:
            # slurmstepd drops a backslash from output paths and then stops expanding %-patterns,
            # so no spelling of such a path reaches the file system intact
            raise OptionError(f"{keyword}={describe(value)}: Slurm cannot write to a path containing a backslash",
                              keyword=keyword, value=value)
        return [(f"{flag}={value.replace('%', '%%')}",)]
    return render


def _depends(value: tuple[Any, ...], _opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Every type Slurm has, by its own name: afterok:1:2,afterany:3,singleton (a comma: all must hold)."""
    parts = [kind if kind == "singleton" else f"{kind}:" + ":".join(ids)
             for kind, ids in dependency_groups(value).items()]
    # Without kill-on-invalid-dep a job whose parent failed pends forever (DependencyNeverSatisfied)
    return [("--dependency=" + ",".join(parts),), ("--kill-on-invalid-dep=yes",)]


def _export(value: tuple[str, ...], _opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
    for item in value:
        if "," in item:
            # sbatch splits --export on every comma; there is no quoting (quotes end up in the value)
            raise OptionError(f"export={describe(item)}: Slurm cannot pass a value that contains a comma",
                              keyword="export", value=item)
    words = [w.upper() if w.upper() in ("ALL", "NONE") else w for w in value]
    return [("--export=" + ",".join(words),)]


def _notify(value: tuple[str, ...], _opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return [("--mail-type=" + ",".join(w.upper() for w in value),)]


def _requeue(value: bool, _opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return [("--requeue",)] if value else [("--no-requeue",)]


def _checkpoint(value: int, _opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
    # SIGUSR1 to the batch shell (which passes it on) so many seconds before the time limit (Slurm checks
    # every 30 s or so: it may come up to a minute earlier); requeueable; each run's output after the last's
    return [(f"--signal=B:USR1@{int(value)}",), ("--requeue",), ("--open-mode=append",)]


def _extra(value: tuple[str, ...], _opts: Mapping[str, Any]) -> list[tuple[str, ...]]:
    # one directive, so "--comment hi" keeps its argument (sbatch reads several options per #SBATCH line)
    return [tuple(value)]


RENDERERS: dict[str, Renderer] = {
    "cores": _one("--cpus-per-task"),
    "nodes": _one("--nodes"),
    "tasks": _one("--ntasks"),
    "tasks_per_node": _one("--ntasks-per-node"),
    "mem": lambda v, _o: [(f"--mem={v}M",)],
    "mem_per_cpu": lambda v, _o: [(f"--mem-per-cpu={v}M",)],
    "time": lambda v, _o: [(f"--time={format_time(v)}",)],
    "gpus": _one("--gpus"),
    "gres": _one("--gres"),
    "features": lambda v, _o: [("--constraint=" + "&".join(v),)],
    "exclusive": _flag("--exclusive"),
    "licenses": lambda v, _o: [("--licenses=" + ",".join(v),)],
    "partition": _one("--partition"),
    "account": _one("--account"),
    "qos": _one("--qos"),
    "reservation": _one("--reservation"),
    "priority": _one("--nice"),
    "begin": _one("--begin"),
    "hold": _flag("--hold"),
    "name": _one("--job-name"),
    "outfile": _path("outfile", "--output"),
    "errfile": _path("errfile", "--error"),
    "workdir": _one("--chdir"),
    "depends": _depends,
    "array": _one("--array"),
    "export": _export,
    "email": _one("--mail-user"),
    "notify": _notify,
    "requeue": _requeue,
    "checkpoint_before": _checkpoint,
    "extra": _extra,
}


def render(options: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The sbatch arguments for checked options, one tuple per directive."""
    return render_with(RENDERERS, options, "slurm")
