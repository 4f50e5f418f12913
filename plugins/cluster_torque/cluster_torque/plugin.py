"""The hook implementations of the torque backend (Torque, PBS Pro and OpenPBS); each hook is a few lines
over :mod:`.render`, :mod:`.client` and :mod:`.dialect`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from cluster_core.backend import BackendInfo, argv_words, Detection, QueueJob, SubmitError, hookimpl, setting

from . import client, dialect, directives, ids, render

log = logging.getLogger("cluster_core.torque")  # shown by `cluster -v`, with the core's

ENV_ALLOW_ROOT = "CLUSTER_TORQUE_ALLOW_ROOT"
DETECT_TIMEOUT = 3.0


@hookimpl
def backend_info() -> BackendInfo:
    # Static by contract: Torque names the task index PBS_ARRAYID, PBS Pro PBS_ARRAY_INDEX; the core reads
    # the first of the listed variables that is set.
    return BackendInfo(
        name="torque",
        description="Torque, PBS Pro and OpenPBS: qsub, qstat, qdel",
        directive_prefix="#PBS",
        supports_arrays=True,
        min_array_size=2,  # PBS Pro refuses a one-task array (-J needs a range)
        task_id_variable="PBS_ARRAYID PBS_ARRAY_INDEX",
        job_id_variable="PBS_JOBID",  # no array id variable on Torque: %A is refused there
        dependency_kinds={"afterok", "afterany", "afternotok", "after"},  # -W depend=...; no singleton
        poll_interval=2.0,
        priority=90,
        distribution="cluster-torque",
    )


@hookimpl
def detect() -> Detection:
    try:
        flavour = dialect.detected(refresh=True)
        if flavour.dialect is None:
            return Detection(False, flavour.reason)
        ok, said = client.server_answers(timeout=DETECT_TIMEOUT)
        if not ok:
            return Detection(False, f"{flavour.reason} client found, but its server did not answer: {said}")
        return Detection(True, f"{flavour.reason}: {said}")
    except Exception as exc:  # the contract: never raise
        return Detection(False, f"detection failed: {type(exc).__name__}: {exc}")


@hookimpl
def render_options(options: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return render.render(options, dialect.current())


def _root_allowed() -> bool:
    value = os.environ.get(ENV_ALLOW_ROOT)
    if value is None:
        value = setting("torque.allow_root")
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


@hookimpl
def submit(script: Path, options: Mapping[str, Any], directives_in_script: bool) -> str:
    refusal = client.root_refusal()
    if refusal and not _root_allowed():
        raise SubmitError(refusal + f" (or, on OpenPBS with acl_roots, set {ENV_ALLOW_ROOT}=1 to try anyway)")
    current = dialect.current()
    directives = argv_words(render.render(options, current))
    args: list[str] = []
    if not directives_in_script:
        args = list(directives)
        if current == dialect.PBSPRO and options.get("workdir"):
            log.warning("PBS Pro has no working-directory option: %s starts in $HOME with PBS_O_WORKDIR=%s; "
                        "it must cd there itself", script, options["workdir"])
    # a token in the job's variables lets a failed qsub find out whether the job was created all the same
    fresh = client.new_token()
    token: Optional[str] = fresh
    tagged = client.tagged_args(args, directives, Path(script), fresh, directives_in_script)
    if tagged is None:
        token = None
    else:
        args = tagged
    workdir = options.get("workdir")
    return client.submit(Path(script), args, workdir=str(workdir) if workdir else None, token=token,
                         outputs=(options.get("outfile"), options.get("errfile")), dialect=current)


@hookimpl
def max_array_size() -> Optional[int]:
    return client.max_array_size(dialect.current())


@hookimpl
def parse_queue(job_ids: Optional[Sequence[str]], user: Optional[str],
                partition: Optional[str]) -> list[QueueJob]:
    return client.query(dialect.current(), job_ids, user=user, partition=partition)


@hookimpl
def task_id(array_id: str, index: int) -> str:
    """``12[].server`` and 3 -> ``12[3].server``."""
    parsed = ids.try_parse(array_id)
    return str(parsed.subjob(index)) if parsed is not None else f"{array_id}[{index}]"


@hookimpl
def parse_task_id(job_id: str) -> Optional[tuple[str, int]]:
    """``12[3].server`` -> (``12[].server``, 3)."""
    parsed = ids.try_parse(job_id)
    if parsed is None or parsed.task_id is None:  # not a subjob
        return None
    return str(parsed.parent), parsed.task_id


@hookimpl
def cancel(job_ids: Sequence[str]) -> bool:
    if not job_ids:
        return True
    return client.cancel(job_ids)


@hookimpl
def release(job_ids: Sequence[str]) -> bool:
    if not job_ids:
        return True
    return client.release(job_ids)


@hookimpl
def parse_directives(text: str) -> Mapping[str, Any]:
    return directives.parse_directives(text)


@hookimpl
def settings() -> Mapping[str, str]:
    return {"dialect": "torque or pbspro, when qstat --version cannot tell",
            "allow_root": "true to submit as root (Torque refuses it, OpenPBS mishandles root jobs)"}
