"""slurmrestd's JSON (REST API v0.0.38 and dbv0.0.38, Slurm 22.05) as the same QueueJob records the
squeue and sacct parsers give: states, exit codes, array task ids ("12_3"), reasons.

Pure: every function reads a decoded JSON document, and is tested on responses captured from the real
slurmrestd (tests/fixtures/rest-*.json). States and exit codes go through parse.py's tables, so both
transports name them alike.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional

from cluster_core.backend import QueueJob, State, parse_timestamp

from .parse import JOB_ID_RE, exit_from_status, expand_hostlist, map_state

_EMPTY = frozenset({"", "None", "N/A", "(null)", "Unknown"})


def errors(doc: Mapping[str, Any]) -> list[str]:
    """The messages of a response's ``errors`` list ("Invalid partition name specified", ...)."""
    out = []
    for err in doc.get("errors") or ():
        if isinstance(err, Mapping):
            text = err.get("description") or err.get("error") or ""
            if err.get("error") and err.get("error") not in text:
                text = f"{text}: {err['error']}" if text else str(err["error"])
            out.append(str(text))
        else:
            out.append(str(err))
    return [t for t in out if t]


def error_numbers(doc: Mapping[str, Any]) -> set[int]:
    """Slurm's error numbers in a response (2017 = invalid job id, 9003 = nothing found, ...)."""
    nums = set()
    for err in doc.get("errors") or ():
        if isinstance(err, Mapping):
            for key in ("error_number", "error_code"):
                if isinstance(err.get(key), int):
                    nums.add(err[key])
    return nums


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    text = str(value).strip()
    return None if text in _EMPTY else text


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _started(state: State) -> bool:
    return state in (State.RUNNING, State.SUSPENDED, State.COMPLETING) or state.finished


def _ids(job_id: Any, array_job_id: Any, task: Any, task_string: Any) -> tuple[str, Optional[str], Optional[int]]:
    """(id, array_id, task_id) as parse.py gives them: a task "12_3"; the pending rest of an array,
    shown collapsed ("12_[3-9%2]"), one record with the array's id and no task id."""
    array = _int(array_job_id)
    if array:
        if _int(task) is not None:
            return f"{array}_{task}", str(array), int(task)
        if _text(task_string) or str(job_id) == str(array):
            return str(array), str(array), None
    return str(job_id), None, None


def job_record(job: Mapping[str, Any]) -> QueueJob:
    """One entry of ``GET /slurm/v0.0.38/jobs`` (``job_state``, ``state_reason``, ``exit_code`` = the raw
    wait status as in squeue: exit 3 is 768, SIGKILL 9; times are epoch seconds)."""
    job_id, array_id, task_id = _ids(job.get("job_id"), job.get("array_job_id"), job.get("array_task_id"),
                                     job.get("array_task_string"))
    raw_state = str(job.get("job_state") or "")
    reason = _text(job.get("state_reason"))
    state = map_state(raw_state, reason)
    status = job.get("exit_code")
    return QueueJob(
        id=job_id, state=state, name=job.get("name"), user=_text(job.get("user_name")),
        partition=_text(job.get("partition")),
        exitcode=exit_from_status(state, str(status)) if _int(status) is not None else None,
        reason=reason, raw_state=raw_state, cores=_int(job.get("cpus")),
        nodes=expand_hostlist(str(job.get("nodes") or "")), submit_time=parse_timestamp(job.get("submit_time")),
        start_time=parse_timestamp(job.get("start_time")) if _started(state) else None,
        end_time=parse_timestamp(job.get("end_time")) if state.finished else None,
        array_id=array_id, task_id=task_id)


def wanted(ids: Iterable[str]) -> Callable[[Any, QueueJob], bool]:
    """A test of a job entry (live or accounting) against the ids asked for: its own id ("12" or "12_3"),
    its raw numeric id, or its array's id (which stands for every task, as squeue -j and sacct -j read it)."""
    asked = set()
    for job_id in ids:
        job_id = str(job_id).strip()
        if JOB_ID_RE.match(job_id):
            asked.add(job_id.split("_[")[0])
    def test(raw_id: Any, record: QueueJob) -> bool:
        return str(raw_id) in asked or record.id in asked or (record.array_id or "") in asked
    return test


def parse_jobs(doc: Mapping[str, Any], ids: Optional[Iterable[str]] = None, user: Optional[str] = None,
               partition: Optional[str] = None) -> list[QueueJob]:
    """The records of a ``GET /slurm/v0.0.38/jobs`` answer, only those of ``ids`` (all when None), of
    ``user`` and of ``partition`` when given. Heterogeneous job components other than the leader and
    entries without a job id are left out."""
    test = wanted(ids) if ids is not None else None
    out = []
    for job in doc.get("jobs") or ():
        if not isinstance(job, Mapping) or _int(job.get("job_id")) is None:
            continue
        if _int(job.get("het_job_offset")):
            continue
        record = job_record(job)
        if test is not None and not test(job.get("job_id"), record):
            continue
        if user and record.user != user:
            continue
        if partition and record.partition != partition:
            continue
        out.append(record)
    return out


# --- accounting (slurmdbd) -----------------------------------------------------------------------------

def db_exit_code(state: State, exit_code: Any) -> Optional[int]:
    """The exit code of a finished job from dbv0.0.38's ``exit_code`` object. A signal is 128 + its number.
    Slurm 22.05 reports ``{"status": "SUCCESS", "return_code": 0}`` for jobs that exited non-zero (a bug:
    sacct's text says 3:0), so a FAILED job's 0 is "not known" (None) and its exit file tells; as in
    sacct's text, a 0 for an ending other than COMPLETED is not known either."""
    if not state.finished or not isinstance(exit_code, Mapping):
        return None
    signal = exit_code.get("signal") or {}
    if exit_code.get("status") == "SIGNALED" and _int(signal.get("signal_id")):
        return 128 + int(signal["signal_id"])
    code = _int(exit_code.get("return_code"))
    if code is None or (code == 0 and state is not State.COMPLETED):
        return None
    return code


def db_job_record(job: Mapping[str, Any]) -> QueueJob:
    """One entry of ``GET /slurmdb/v0.0.38/jobs`` (the allocation, as ``sacct -X`` shows it)."""
    array = job.get("array") or {}
    job_id, array_id, task_id = _ids(job.get("job_id"), array.get("job_id"), array.get("task_id"),
                                     array.get("task"))
    st = job.get("state") or {}
    raw_state = str(st.get("current") or "")
    reason = _text(st.get("reason"))
    state = map_state(raw_state, reason)
    times = job.get("time") or {}
    required = job.get("required") or {}
    return QueueJob(
        id=job_id, state=state, name=job.get("name"), user=_text(job.get("user")),
        partition=_text(job.get("partition")), exitcode=db_exit_code(state, job.get("exit_code")),
        reason=reason, raw_state=raw_state, cores=_int(required.get("CPUs")),
        nodes=expand_hostlist(str(job.get("nodes") or "")), submit_time=parse_timestamp(times.get("submission")),
        start_time=parse_timestamp(times.get("start")) if _started(state) else None,
        end_time=parse_timestamp(times.get("end")) if state.finished else None,
        array_id=array_id, task_id=task_id)


def parse_db_jobs(doc: Mapping[str, Any], ids: Optional[Iterable[str]] = None) -> list[QueueJob]:
    """The records of a ``GET /slurmdb/v0.0.38/jobs`` answer, only those of ``ids`` when given."""
    test = wanted(ids) if ids is not None else None
    out = []
    for job in doc.get("jobs") or ():
        if not isinstance(job, Mapping) or _int(job.get("job_id")) is None:
            continue
        record = db_job_record(job)
        if test is None or test(job.get("job_id"), record):
            out.append(record)
    return out
