"""The Grid Engine backend's hook implementations: each delegates to a module of one concern.

render.py turns options into qsub words, parse.py reads Grid Engine's output (pure, tested on captures),
calls.py runs qsub/qstat/qacct/qdel. Only the core's public modules are imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import attrs

from cluster_core import hookimpl
from cluster_core.records import BackendInfo, Detection, QueueJob

from . import calls, parse, render


def _info() -> BackendInfo:
    """The backend's description, using two BackendInfo fields proposed to the core when it has them.

    ``task_id_offset``: Grid Engine's tasks start at 1 (``qsub -t 0-9`` is refused) and the core's at
    0, so the script must compute ``$SGE_TASK_ID - 1``; without the field, arrays run as one job per
    task (correct, one qsub each). ``afterok_dependencies``: ``-hold_jid`` is after-any, so the core's
    script should check its predecessors' exit files; without the field a dependant runs after a
    predecessor that failed."""
    fields = attrs.fields_dict(BackendInfo)
    arrays = "task_id_offset" in fields
    extra: dict[str, Any] = {"task_id_offset": -parse.TASK_BASE} if arrays else {}
    if "afterok_dependencies" in fields:
        extra["afterok_dependencies"] = False
    return BackendInfo(
        name="sge",
        description="Grid Engine: qsub, qstat -xml, qacct, qdel",
        directive_prefix="#$",
        directive_escapes_backslash=False,  # the plugin submits argv words; the #$ lines are for reading
        supports_arrays=arrays,
        task_id_variable="SGE_TASK_ID",
        poll_interval=2.0,
        priority=90,
        distribution="cluster-sge",
        **extra,
    )


INFO = _info()


@hookimpl
def backend_info() -> BackendInfo:
    return INFO


@hookimpl
def detect() -> Detection:
    return calls.detect()


@hookimpl
def render_options(options: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return render.render(options)


@hookimpl
def submit(script: Path, options: Mapping[str, Any], directives_in_script: bool) -> str:
    return calls.submit(Path(script), options, directives_in_script)


@hookimpl
def max_array_size() -> int:
    return calls.max_array_size()


@hookimpl
def parse_queue(job_ids: Optional[Sequence[str]], user: Optional[str],
                partition: Optional[str]) -> list[QueueJob]:
    return calls.parse_queue(job_ids, user, partition)


@hookimpl
def cancel(job_ids: Sequence[str]) -> bool:
    return calls.cancel(job_ids)


@hookimpl
def refine_failure(record: QueueJob, stderr: str) -> Optional[QueueJob]:
    """h_vmem is an address-space limit: the job's allocation fails and it exits on its own, which
    accounting cannot tell from any other failure; the program's message in stderr can."""
    return parse.refine_oom(record, stderr)
