"""The ``local`` backend's hooks: jobs run on this machine under a per-user runner (see runner.py)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from cluster_core.backend import BackendInfo, Detection, FunctionCall, QueueJob, State, hookimpl, render_with

from . import control
from .submit import submit_job, submit_jobs

_STATES = {"PENDING": State.PENDING, "HELD": State.HELD, "RUNNING": State.RUNNING,
           "COMPLETED": State.COMPLETED, "FAILED": State.FAILED, "CANCELLED": State.CANCELLED,
           "TIMEOUT": State.TIMEOUT, "OUT_OF_MEMORY": State.OUT_OF_MEMORY, "UNKNOWN": State.UNKNOWN}


@hookimpl
def backend_info() -> BackendInfo:
    return BackendInfo(name="local", description="runs jobs on this machine under a per-user runner daemon",
                       directive_prefix=None, supports_arrays=False, poll_interval=0.05, priority=0,
                       dependency_kinds={"afterok", "afterany", "afternotok", "after", "singleton"},
                       job_id_variable="CLUSTER_JOB_ID", distribution="cluster-local")


@hookimpl
def detect() -> Detection:
    return Detection(True, "runs jobs on this machine")


#: The keywords the local runner carries out (submit.submit_job reads them).
HONOURED = ("cores", "tasks", "threads", "mem", "mem_per_cpu", "time", "name", "outfile", "errfile", "workdir",
            "depends", "export", "hold", "nodes", "array", "checkpoint_before")


@hookimpl
def render_options(options: Mapping[str, Any]) -> list[tuple[str, ...]]:
    # No directives: the runner reads these options itself; any other keyword is one it cannot honour
    return render_with({}, options, "local", skip=HONOURED)


@hookimpl
def submit(script: Path, options: Mapping[str, Any], directives_in_script: bool,
           call: Optional[FunctionCall]) -> str:
    # a function job's call may run in one of the runner's warm workers instead of the script
    return str(submit_job(script, options, call=call))


@hookimpl
def submit_many(submissions: Sequence[Any]) -> list[str]:
    # one transaction and one poke of the runner for the whole batch; a job that cannot run submits none
    jobs = [(script, options, call) for script, options, _in_script, call, _arguments in submissions]
    return [str(job_id) for job_id in submit_jobs(jobs)]


@hookimpl
def requeue_lines() -> list[str]:
    # the runner puts back in the queue a job whose exit file says it saved a checkpoint (runner.py), after
    # warning it checkpoint_before seconds ahead of its time limit (supervisor.py)
    return []


@hookimpl
def parse_queue(job_ids: Optional[Sequence[str]], user: Optional[str],
                partition: Optional[str]) -> list[QueueJob]:
    host = socket.gethostname()
    return [QueueJob(id=str(row["id"]), state=_STATES.get(row["state"], State.UNKNOWN), name=row["name"],
                     user=row["user"], exitcode=row["exitcode"], reason=row["reason"], raw_state=row["state"],
                     cores=row["cores"], nodes=(host,) if row["start_time"] else (),
                     submit_time=row["submit_time"], start_time=row["start_time"], end_time=row["end_time"])
            for row in control.job_rows(job_ids, user)]


@hookimpl
def cancel(job_ids: Sequence[str]) -> bool:
    control.cancel(job_ids)
    return True


@hookimpl
def release(job_ids: Sequence[str]) -> bool:
    control.release(job_ids)
    return True


@hookimpl
def settings() -> Mapping[str, str]:
    return {"threads": "cores the runner hands out at once (default: every CPU; $CLUSTER_LOCAL_THREADS)",
            "memory": "memory the runner hands out at once, e.g. 16G (default: the machine's; $CLUSTER_LOCAL_MEMORY)",
            "worker_jobs": "function jobs a warm worker runs before it is replaced (0: no warm workers)"}
