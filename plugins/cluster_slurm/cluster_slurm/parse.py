"""Pure parsers of Slurm's output: sbatch ids, squeue and sacct rows, states, exit codes, host lists.

Nothing here runs a command, so every function is tested on output captured from a real Slurm 22.05
(tests/fixtures/). The field lists below are the exact formats the plugin asks for; the job name comes
last because it is the only field that can contain the ``|`` separator.
"""

from __future__ import annotations

import logging
import re
from typing import Callable, Optional, Sequence

from cluster_core.backend import QueueJob, State, parse_timestamp, refine_oom as _refine_oom

log = logging.getLogger("cluster_core.slurm")

# --- formats ----------------------------------------------------------------------------------------

#: squeue ``--Format`` fields. ``JobArrayID`` is the id a user sees ("12", "12_3", "12_[4-9%2]"),
#: ``JobID`` the raw numeric id, ``exit_code`` the raw wait status (exit 3 -> 768, SIGKILL -> 9).
SQUEUE_FIELDS = ("JobArrayID", "JobID", "ArrayJobID", "ArrayTaskID", "State", "Reason", "exit_code",
                 "UserName", "Partition", "NumCPUs", "NodeList", "SubmitTime", "StartTime", "EndTime",
                 "Name")
#: A field with a suffix and no size is printed as is: no padding, no truncation at 20 characters.
SQUEUE_FORMAT = ",".join(f"{f}:|" for f in SQUEUE_FIELDS[:-1]) + "," + SQUEUE_FIELDS[-1] + ":"

#: sacct ``--format`` fields, read with ``--parsable2`` (``|`` between fields, none at the end).
SACCT_FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "Reason", "User", "Partition", "AllocCPUS",
                "NodeList", "Submit", "Start", "End", "JobName")
SACCT_FORMAT = ",".join(SACCT_FIELDS)

#: A job id we accept to pass to squeue/sacct: "12", "12_3", "12_[1-3]", "12+1" (heterogeneous part).
JOB_ID_RE = re.compile(r"^\d+(?:_\d+|_\[[\d,%-]+\]|\+\d+)?$")


def job_ids(given: Sequence[str]) -> list[str]:
    """The Slurm job ids among ``given``, once each in order; anything else is left out (logged)."""
    ids = []
    for job_id in dict.fromkeys(str(j).strip() for j in given):
        if JOB_ID_RE.match(job_id):
            ids.append(job_id)
        else:
            log.debug("%r is not a Slurm job id; left out", job_id)
    return ids

_TASK_ID_RE = re.compile(r"^(\d+)_(\d+)$")


def split_task_id(job_id: str) -> Optional[tuple[str, int]]:
    """("12", 3) for the task id "12_3"; None for any other id."""
    m = _TASK_ID_RE.match(str(job_id).strip())
    return (m.group(1), int(m.group(2))) if m else None


# --- states -----------------------------------------------------------------------------------------

#: Every job state Slurm 22.05 prints (squeue %T / sacct State), mapped to the core's states.
STATE_MAP: dict[str, State] = {
    "PENDING": State.PENDING,
    "REQUEUED": State.PENDING,        # being put back in the queue; it will run again
    "REQUEUE_FED": State.PENDING,     # requeued by the federation
    "CONFIGURING": State.PENDING,     # resources allocated, nodes still booting: the script has not started
    "RUNNING": State.RUNNING,
    "RESIZING": State.RUNNING,
    "SIGNALING": State.RUNNING,       # a signal is being delivered; the job still runs
    "SUSPENDED": State.SUSPENDED,
    "STOPPED": State.SUSPENDED,       # SIGSTOPped, keeps its resources
    "COMPLETING": State.COMPLETING,
    "STAGE_OUT": State.COMPLETING,    # script done, burst buffer being staged out
    "COMPLETED": State.COMPLETED,
    "FAILED": State.FAILED,
    "CANCELLED": State.CANCELLED,
    "REVOKED": State.CANCELLED,       # federation: a sibling cluster runs the job, this copy never will
    "TIMEOUT": State.TIMEOUT,
    "DEADLINE": State.TIMEOUT,        # ended (or never started) because of --deadline
    "OUT_OF_MEMORY": State.OUT_OF_MEMORY,
    "NODE_FAIL": State.NODE_FAIL,
    "BOOT_FAIL": State.NODE_FAIL,     # its node failed to boot
    "PREEMPTED": State.PREEMPTED,
    "REQUEUE_HOLD": State.HELD,       # requeued and held until released
    "SPECIAL_EXIT": State.HELD,       # requeued held after a special exit code, until released
    "RESV_DEL_HOLD": State.HELD,      # held because its reservation was deleted
}

#: Reasons that make a PENDING job held (released with `scontrol release`); the last one is what
#: `scontrol requeuehold` leaves (measured on 22.05).
HELD_REASONS = frozenset({"JobHeldUser", "JobHeldAdmin", "job requeued in held state"})

_EMPTY = frozenset({"", "N/A", "NONE", "None", "Unknown", "None assigned", "(null)", "n/a"})


def base_state(raw: str) -> str:
    """The bare state word: "CANCELLED by 0" -> "CANCELLED", "CANCELLED+" (truncated) -> "CANCELLED"."""
    return raw.strip().split(" ", 1)[0].rstrip("+").upper()


def map_state(raw: str, reason: Optional[str] = None) -> State:
    """The core's state for a Slurm state and reason; PENDING with JobHeldUser/JobHeldAdmin is held."""
    state = STATE_MAP.get(base_state(raw), State.UNKNOWN)
    if state is State.PENDING and reason in HELD_REASONS:
        return State.HELD
    return state


# --- exit codes -------------------------------------------------------------------------------------

def _exit_code(state: State, code: int, signal: int) -> Optional[int]:
    """One exit code as a shell reports it: the code, or 128 + the signal that killed the job.

    Only finished jobs have one. Slurm records "0:0" for jobs it cancelled or timed out without
    keeping the script's status (sacct shows TIMEOUT as 0:0 while squeue has 0:15), so a 0 for any
    ending other than COMPLETED or FAILED means "not known", reported as None.
    """
    if not state.finished:
        return None
    value = 128 + signal if signal else code
    if value == 0 and state not in (State.COMPLETED, State.FAILED):
        return None
    return value


def exit_from_status(state: State, status: str) -> Optional[int]:
    """Exit code from squeue's ``exit_code``, the raw wait status (768 = exit 3, 9 = killed by SIGKILL)."""
    try:
        value = int(status)
    except ValueError:
        return None
    return _exit_code(state, (value >> 8) & 0xFF, value & 0x7F)


def exit_from_pair(state: State, pair: str) -> Optional[int]:
    """Exit code from sacct's ``ExitCode`` "N:S" (exit code N, killed by signal S)."""
    m = re.fullmatch(r"\s*(\d+):(\d+)\s*", pair)
    if not m:
        return None
    return _exit_code(state, int(m.group(1)), int(m.group(2)))


# --- small fields -----------------------------------------------------------------------------------

def expand_hostlist(text: str) -> tuple[str, ...]:
    """Slurm's compressed host list as names: "vm" -> ("vm",), "n[01-03,7],gpu1" -> n01 n02 n03 n7 gpu1."""
    text = text.strip()
    if text in _EMPTY:
        return ()
    hosts: list[str] = []
    for m in re.finditer(r"([^,\[\]]*)(?:\[([^\]]*)\])?([^,\[\]]*)(?:,|$)", text):
        prefix, ranges, suffix = m.groups()
        if not prefix and ranges is None and not suffix:
            continue
        if ranges is None:
            hosts.append(prefix + suffix)
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            if hi and lo.isdigit() and hi.isdigit():
                width = len(lo)
                hosts.extend(f"{prefix}{n:0{width}d}{suffix}" for n in range(int(lo), int(hi) + 1))
            else:
                hosts.append(prefix + part + suffix)
    return tuple(hosts)


def _int_or_none(text: str) -> Optional[int]:
    text = text.strip()
    return int(text) if text.isdigit() else None


def _text_or_none(text: str) -> Optional[str]:
    text = text.strip()
    return None if text in _EMPTY else text


def _array_fields(shown_id: str, array_job_id: str, task: str) -> tuple[str, Optional[str], Optional[int]]:
    """(id, array_id, task_id) of a row. A task is "12_3" (array "12", task 3). The pending rest of an
    array, which squeue and sacct show collapsed ("12_[3-9%2]"), becomes one row for the array itself:
    id "12", array_id "12", no task id; the core applies it to every task not reported on its own."""
    if task.strip() in _EMPTY or not array_job_id.strip() or array_job_id.strip() == "0":
        m = re.fullmatch(r"(\d+)_(\d+)", shown_id)  # sacct has no separate task column
        if m:
            return shown_id, m.group(1), int(m.group(2))
        m = re.fullmatch(r"(\d+)_\[.*\]", shown_id)
        if m:
            return m.group(1), m.group(1), None
        return shown_id, None, None
    if task.isdigit():
        return f"{array_job_id}_{task}", array_job_id, int(task)
    return array_job_id, array_job_id, None


# --- sbatch -----------------------------------------------------------------------------------------

#: The job id in ``sbatch --parsable`` output: "123" or "123;cluster".
SBATCH_ID = r"(?P<id>\d+)(?:;\S+)?"
#: What sbatch puts before its messages; a user reads the message alone.
#: sbatch retrying a refusal by itself (15 times, 2 minutes in all): "sbatch: error: Slurm temporarily unable
#: to accept job, sleeping and retrying" is what a full queue (MaxJobCount) gives, captured on 22.05; "Slurm
#: job queue full" and "Job creation temporarily disabled" are its other two such messages.
SBATCH_RETRYING = re.compile(r"sleeping and retrying|temporarily disabled, retrying")
SBATCH_ERROR_PREFIXES = (r"^sbatch: error: (Batch job submission failed: )?",)


# --- squeue and sacct -------------------------------------------------------------------------------

def _split(line: str, nfields: int) -> Optional[list[str]]:
    parts = line.split("|", nfields - 1)
    return parts if len(parts) == nfields else None


def parse_squeue(text: str) -> list[QueueJob]:
    """Rows of ``squeue -h -O SQUEUE_FORMAT``; lines that do not fit the format are skipped."""
    jobs = []
    for line in text.splitlines():
        f = _split(line, len(SQUEUE_FIELDS))
        if f is None or not f[0].strip():
            continue
        (shown, _raw, array_job, task, raw_state, reason, status, user, partition, cpus, nodes,
         submit, start, end, name) = f
        jobs.append(_record(_array_fields(shown.strip(), array_job, task.strip()), raw_state, reason,
                            lambda state: exit_from_status(state, status), user, partition, cpus, nodes,
                            submit, start, end, name))
    return jobs


def _record(ids: tuple[str, Optional[str], Optional[int]], raw_state: str, reason: str,
            exitcode: Callable[[State], Optional[int]], user: str, partition: str, cpus: str,
            nodes: str, submit: str, start: str, end: str, name: str) -> QueueJob:
    """One QueueJob from the fields squeue and sacct share; ``exitcode(state)`` reads the exit code."""
    job_id, array_id, task_id = ids
    why = _text_or_none(reason)
    state = map_state(raw_state, why)
    return QueueJob(
        id=job_id, state=state, name=name, user=_text_or_none(user),
        partition=_text_or_none(partition), exitcode=exitcode(state),
        reason=why, raw_state=raw_state.strip(), cores=_int_or_none(cpus),
        nodes=expand_hostlist(nodes), submit_time=parse_timestamp(submit),
        # squeue prints the expected start and end of jobs that have not started or ended
        start_time=parse_timestamp(start) if _started(state) else None,
        end_time=parse_timestamp(end) if state.finished else None,
        array_id=array_id, task_id=task_id)


def parse_scontrol_config(text: str) -> dict[str, str]:
    """``scontrol show config`` as a dict ("MaxArraySize = 1001" -> {"MaxArraySize": "1001"})."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if sep and key.strip() and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out


def parse_sacct(text: str) -> list[QueueJob]:
    """Allocation rows of ``sacct -X -n -P -o SACCT_FORMAT``; step rows ("12.batch") are skipped."""
    jobs = []
    for line in text.splitlines():
        f = _split(line, len(SACCT_FIELDS))
        if f is None or not f[0].strip() or "." in f[0]:
            continue
        shown, _raw, raw_state, exit_pair, reason, user, partition, cpus, nodes, submit, start, end, name = f
        jobs.append(_record(_array_fields(shown.strip(), "", ""), raw_state, reason,
                            lambda state: exit_from_pair(state, exit_pair), user, partition, cpus, nodes,
                            submit, start, end, name))
    return jobs


def _started(state: State) -> bool:
    return state in (State.RUNNING, State.SUSPENDED, State.COMPLETING) or state.finished


# --- sbatch errors ----------------------------------------------------------------------------------

#: sbatch messages (Slurm 22.05, tests/fixtures/sbatch-errors.txt) and the keyword each concerns.
SUBMIT_ERRORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"invalid partition", ("partition",)),
    (r"Memory specification can not be satisfied|Invalid --mem", ("mem", "mem_per_cpu")),
    (r"Invalid account", ("account",)),
    (r"Invalid qos", ("qos",)),
    (r"time limit|Invalid --time", ("time",)),
    (r"reservation", ("reservation",)),
    (r"Invalid feature specification", ("features",)),
    (r"generic resource|gres", ("gpus", "gres")),
    (r"Invalid license", ("licenses",)),
    (r"dependency", ("depends",)),
    (r"job array", ("array",)),
    (r"Invalid --begin", ("begin",)),
    (r"--mail-type", ("notify",)),
    (r"--export", ("export",)),
    (r"--nice", ("priority",)),
    (r"More processors requested than permitted|Requested node configuration is not available",
     ("cores", "tasks", "nodes", "tasks_per_node")),
    (r"Node count specification invalid", ("nodes",)),
    (r"--ntasks\b", ("tasks",)),
    (r"--ntasks-per-node", ("tasks_per_node",)),
    (r"--cpus-per-task", ("cores",)),
)


_OOM_RE = re.compile(r"exceeded (job )?memory limit|oom-kill|out of memory", re.IGNORECASE)


def refine_oom(record: QueueJob, stderr: str) -> Optional[QueueJob]:
    """OUT_OF_MEMORY for a FAILED job whose stderr carries slurmstepd's memory-kill message."""
    return _refine_oom(record, stderr, _OOM_RE, "exceeded memory limit")
