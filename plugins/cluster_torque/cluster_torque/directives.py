"""A user's own script's ``#PBS`` lines (Torque and PBS Pro/OpenPBS), read into job keywords (the
``parse_directives`` hook)."""

from __future__ import annotations

import re
from typing import Any, Callable

from cluster_core.backend import DirectiveRule, read_directives


def _path(key: str) -> Callable[[str], dict[str, Any]]:
    def read(value: str) -> dict[str, Any]:
        value = re.sub(r"^[\w.-]+:(?=/)", "", value)  # PBS's host:path form
        return {key: value.replace("%", "%%")}  # PBS fills in no placeholders: a % stays a %
    return read


_RESOURCES = {"walltime": "time", "mem": "mem", "ncpus": "cores", "ppn": "cores", "nodes": "nodes",
              "select": "nodes", "mpiprocs": "tasks_per_node"}


def _resources(value: str) -> dict[str, Any]:
    """-l nodes=1:ppn=4,walltime=1:00:00,mem=4gb (Torque) or select=1:ncpus=4:mem=4gb (PBS Pro)."""
    out: dict[str, Any] = {}
    for item in value.split(","):
        # a colon separates the parts of a node spec (nodes=1:ppn=4, select=1:ncpus=4:mem=4gb) but not
        # those of a time (walltime=1:00:00)
        parts = item.split(":") if re.match(r"\s*(nodes|select)=", item, re.I) else [item]
        for part in parts:
            name, _, amount = part.partition("=")
            key = _RESOURCES.get(name.strip().lower())
            if key and amount:
                out[key] = amount.strip()
    if "nodes" in out and not out["nodes"].isdigit():
        del out["nodes"]  # nodes=node01+node02: host names, not a count
    return out


FLAGS: dict[str, DirectiveRule] = {
    "-N": "name", "-q": "partition", "-A": "account", "-o": _path("outfile"), "-e": _path("errfile"),
    "-d": "workdir", "-t": "array", "-J": "array", "-l": _resources, "-M": "email", "-a": "begin"}
SWITCHES: dict[str, DirectiveRule] = {"-h": "hold"}


def parse_directives(text: str) -> dict[str, Any]:
    return read_directives(text, "#PBS", FLAGS, SWITCHES)
