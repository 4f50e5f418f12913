"""The Slurm backend's hook implementations: each delegates to a module of one concern.

render.py turns options into sbatch words, parse.py reads Slurm's output (pure, tested on captures),
calls.py runs sbatch/squeue/sacct/scancel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from cluster_core.backend import BackendInfo, Detection, QueueJob, hookimpl

from . import calls, directives, parse, render

INFO = BackendInfo(
    name="slurm",
    description="Slurm: sbatch, squeue, sacct, scancel",
    directive_prefix="#SBATCH",
    directive_escapes_backslash=True,  # sbatch reads "\" as an escape even inside single quotes
    supports_arrays=True,
    task_id_variable="SLURM_ARRAY_TASK_ID",
    job_id_variable="SLURM_JOB_ID",
    array_id_variable="SLURM_ARRAY_JOB_ID",
    dependency_kinds={"afterok", "afterany", "afternotok", "after", "singleton"},
    poll_interval=2.0,
    priority=100,
    distribution="cluster-slurm",
)


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
def submit(script: Path, options: Mapping[str, Any], arguments: Sequence[str]) -> str:
    return calls.submit(Path(script), options, arguments)


@hookimpl
def max_array_size() -> int:
    return calls.max_array_size()


@hookimpl
def parse_queue(job_ids: Optional[Sequence[str]], user: Optional[str],
                partition: Optional[str]) -> list[QueueJob]:
    return calls.parse_queue(job_ids, user, partition)


@hookimpl
def task_id(array_id: str, index: int) -> str:
    return f"{array_id}_{index}"


@hookimpl
def parse_task_id(job_id: str) -> Optional[tuple[str, int]]:
    return parse.split_task_id(job_id)


@hookimpl
def cancel(job_ids: Sequence[str]) -> bool:
    return calls.cancel(job_ids)


@hookimpl
def refine_failure(record: QueueJob, stderr: str) -> Optional[QueueJob]:
    """Slurm without cgroups kills a job over its memory through OverMemoryKill and reports it FAILED
    (signal 9); slurmstepd says why in the job's stderr."""
    return parse.refine_oom(record, stderr)


@hookimpl
def parse_directives(text: str) -> Mapping[str, Any]:
    return directives.parse_directives(text)


@hookimpl
def settings() -> Mapping[str, str]:
    return {}  # only slurm.bin_dir (and commands.<program>)
