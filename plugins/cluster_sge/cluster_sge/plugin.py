"""The Grid Engine backend's hook implementations: each delegates to a module of one concern.

render.py turns options into qsub words, parse.py reads Grid Engine's output (pure, tested on captures),
calls.py runs qsub/qstat/qacct/qdel. Only the core's public modules are imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence


from cluster_core.backend import BackendInfo, Detection, QueueJob, hookimpl

from . import calls, directives, parse, render


def _info() -> BackendInfo:
    """The backend's description. ``task_id_offset``: Grid Engine's tasks start at 1 (``qsub -t 0-9`` is
    refused), the core's at 0. ``afterok_dependencies``: ``-hold_jid`` releases a job whatever its
    predecessor's outcome (afterany), so for afterok and afternotok the core's script checks the
    predecessors' exit files itself. Grid Engine cannot wait for a start, and has no singleton."""
    return BackendInfo(
        name="sge",
        description="Grid Engine: qsub, qstat -xml, qacct, qdel",
        directive_prefix="#$",
        directive_escapes_backslash=False,  # the plugin submits argv words; the #$ lines are for reading
        supports_arrays=True,
        task_id_offset=parse.TASK_BASE,
        dependency_kinds={"afterok", "afterany", "afternotok"},  # no start (after), no singleton
        afterok_dependencies=False,
        task_id_variable="SGE_TASK_ID",
        job_id_variable="JOB_ID",
        array_id_variable="JOB_ID",  # a task's JOB_ID is its array's
        poll_interval=2.0,
        priority=90,
        distribution="cluster-sge",
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
def task_id(array_id: str, index: int) -> str:
    """Grid Engine's ``<job>.<task>``, its tasks counted from 1: the core's task 0 of job 12 is ``12.1``."""
    return f"{array_id}.{index + parse.TASK_BASE}"


@hookimpl
def parse_task_id(job_id: str) -> Optional[tuple[str, int]]:
    try:
        number, task = parse.split_id(job_id)
    except ValueError:
        return None
    return (number, task - parse.TASK_BASE) if task is not None else None


@hookimpl
def cancel(job_ids: Sequence[str]) -> bool:
    return calls.cancel(job_ids)


@hookimpl
def release(job_ids: Sequence[str]) -> bool:
    return calls.release(job_ids)


@hookimpl
def refine_failure(record: QueueJob, stderr: str) -> Optional[QueueJob]:
    """h_vmem is an address-space limit: the job's allocation fails and it exits on its own, which
    accounting cannot tell from any other failure; the program's message in stderr can."""
    return parse.refine_oom(record, stderr)


@hookimpl
def parse_directives(text: str) -> Mapping[str, Any]:
    return directives.parse_directives(text)


@hookimpl
def settings() -> Mapping[str, str]:
    return {"pe": "the parallel environment giving a job several slots on one host (default smp)",
            "memory_resource": "the complex memory is requested with (default h_vmem)",
            "gpu_resource": "the complex GPUs are requested with (default gpu)",
            "account_flag": "-P (charge a project, the default) or -A (label the accounting record)",
            "verify": "qsub's -w level (default e: refuse a job no queue could run)"}
