"""A user's own script's ``#SBATCH`` lines, read into job keywords (the ``parse_directives`` hook)."""

from __future__ import annotations

from typing import Any

from cluster_core.backend import read_directives

_VALUE = {
    "cores": ("-c", "--cpus-per-task"), "tasks": ("-n", "--ntasks"), "nodes": ("-N", "--nodes"),
    "tasks_per_node": ("--ntasks-per-node",), "mem": ("--mem",), "mem_per_cpu": ("--mem-per-cpu",),
    "time": ("-t", "--time"), "partition": ("-p", "--partition"), "account": ("-A", "--account"),
    "qos": ("-q", "--qos"), "name": ("-J", "--job-name"), "outfile": ("-o", "--output"),
    "errfile": ("-e", "--error"), "workdir": ("-D", "--chdir"), "array": ("-a", "--array"),
    "gres": ("--gres",), "features": ("-C", "--constraint"), "reservation": ("--reservation",),
    "begin": ("-b", "--begin"), "email": ("--mail-user",), "licenses": ("-L", "--licenses"),
}
_SWITCH = {"exclusive": ("--exclusive",), "hold": ("-H", "--hold"), "requeue": ("--requeue",)}
FLAGS = {flag: key for key, flags in _VALUE.items() for flag in flags}
SWITCHES = {flag: key for key, flags in _SWITCH.items() for flag in flags}


def parse_directives(text: str) -> dict[str, Any]:
    """Keywords from ``#SBATCH`` lines; as sbatch does, stderr goes to the ``--output`` file when the
    script names no ``--error``. Slurm's own placeholders (%j, %x, %u, %A, %a) are the core's too."""
    found = read_directives(text, "#SBATCH", FLAGS, SWITCHES)
    if "outfile" in found and "errfile" not in found:
        found["errfile"] = found["outfile"]
    return found
