"""A user's own script's ``#$`` lines (Grid Engine), read into job keywords (the ``parse_directives`` hook)."""

from __future__ import annotations

import re
from typing import Any, Callable

from cluster_core.backend import DirectiveRule, read_directives

# Grid Engine's pseudo variables in -o/-e paths, as the core's placeholders
_PSEUDO = {"JOB_ID": "%j", "JOB_NAME": "%x", "USER": "%u", "TASK_ID": "%a"}


def _path(key: str) -> Callable[[str], dict[str, Any]]:
    def read(value: str) -> dict[str, Any]:
        value = value.replace("%", "%%")
        value = re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: _PSEUDO.get(m.group(1) or m.group(2), m.group(0)), value)
        return {key: value}
    return read


def _resources(value: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in value.split(","):
        name, _, amount = item.partition("=")
        if name.strip() in ("h_rt", "s_rt") and amount:
            out["time"] = amount.strip()
    return out


FLAGS: dict[str, DirectiveRule] = {
    "-N": "name", "-q": "partition", "-P": "account", "-A": "account", "-o": _path("outfile"),
    "-e": _path("errfile"), "-wd": "workdir", "-l": _resources, "-M": "email"}
SWITCHES: dict[str, DirectiveRule] = {"-h": "hold"}
_PE = re.compile(r"^#\$.*?\s-pe\s+\S+\s+(\d+)\b", re.MULTILINE)
_MERGE = re.compile(r"^#\$.*?\s-j\s+(y|yes)\b", re.MULTILINE | re.IGNORECASE)


def parse_directives(text: str) -> dict[str, Any]:
    """Keywords from ``#$`` lines: ``-pe <pe> N`` is N cores; with ``-j y`` stderr goes to the -o file."""
    found = read_directives(text, "#$", FLAGS, SWITCHES)
    pe = _PE.findall(text)
    if pe:
        found["cores"] = pe[-1]
    if _MERGE.search(text) and "outfile" in found:
        found["errfile"] = found["outfile"]
    return found
