"""The Slurm backend's hook implementations: each delegates to a module of one concern.

render.py turns options into sbatch words, parse.py reads Slurm's output (pure, tested on captures),
calls.py runs sbatch/squeue/sacct/scancel; with slurm.transport=rest (or auto and slurmrestd answering)
submit, the queue and cancel go to slurmrestd instead (rest.py).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from cluster_core.backend import BackendInfo, ClusterError, Detection, QueueJob, hookimpl

from . import calls, directives, parse, render, rest

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
    try:
        if rest.transport() == "rest":
            return rest.detect()
    except ClusterError as exc:  # a bad slurm.transport or slurm.rest_url
        return Detection(False, str(exc))
    return calls.detect()


@hookimpl
def render_options(options: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return render.render(options)


@hookimpl
def submit(script: Path, options: Mapping[str, Any], arguments: Sequence[str]) -> str:
    # slurmrestd 22.05 refuses --signal's "B:" (the batch shell only: what a checkpointing job needs),
    # though its own schema allows it (measured): such a job goes through sbatch, the rest through REST
    if rest.use_rest() and "checkpoint_before" not in options:
        return rest.submit(Path(script), options, arguments)
    return calls.submit(Path(script), options, arguments)


@hookimpl
def requeue_lines() -> list[str]:
    # a checkpointing job, once saved, puts itself back in the queue under its id (it must be --requeue,
    # which render.py adds); Slurm starts it again once the job credential expired (AuthInfo cred_expire)
    return [f'{shlex.quote(calls.which("scontrol") or "scontrol")} requeue "$SLURM_JOB_ID"']


@hookimpl
def max_array_size() -> int:
    return calls.max_array_size()


@hookimpl
def parse_queue(job_ids: Optional[Sequence[str]], user: Optional[str],
                partition: Optional[str]) -> list[QueueJob]:
    if rest.use_rest():
        return rest.parse_queue(job_ids, user, partition)
    return calls.parse_queue(job_ids, user, partition)


@hookimpl
def task_id(array_id: str, index: int) -> str:
    return f"{array_id}_{index}"


@hookimpl
def parse_task_id(job_id: str) -> Optional[tuple[str, int]]:
    return parse.split_task_id(job_id)


@hookimpl
def cancel(job_ids: Sequence[str]) -> bool:
    if rest.use_rest():
        return rest.cancel(job_ids)
    return calls.cancel(job_ids)


@hookimpl
def release(job_ids: Sequence[str]) -> bool:
    if rest.use_rest():
        return rest.release(job_ids)
    return calls.release(job_ids)


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
    return {  # and slurm.bin_dir, commands.<program>
        "transport": "how to reach Slurm: commands (sbatch, squeue, sacct, scancel; the default), rest "
                     "(slurmrestd, JWT from $SLURM_JWT or scontrol token) or auto (rest when slurmrestd answers)",
        "rest_url": f"slurmrestd's address, http://HOST:PORT or unix:/path/to/socket (default ${rest.URL_ENV}, "
                    f"else {rest.DEFAULT_URL})",
    }
