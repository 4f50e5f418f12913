"""Pure parsers of Grid Engine's output: qsub -terse ids, ``qstat -xml -r``, ``qacct -j``, states, errors.

Nothing here runs a command, so every function is tested on output captured from a real Son of Grid
Engine 8.1.9 cell (tests/fixtures/). Grid Engine numbers array tasks from 1; the core from 0. Records
keep Grid Engine's own task names in ``id`` ("12.3") and give the core's index in ``task_id`` (2).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Iterable, Optional

import attrs

from cluster_core.backend import QueueJob, State, parse_timestamp, refine_oom as _refine_oom

#: Grid Engine's first array task is 1; the core's is 0. task_id = Grid Engine task - TASK_BASE.
TASK_BASE = 1

#: A job id we accept to ask Grid Engine about: "12", "12.3" (a task), "12.1-5:2" (qsub -terse's
#: answer for an array), or the core's own name for a task it has no record of, "12[2]" (index 2).
JOB_ID_RE = re.compile(r"^(\d+)(?:\.(\d+)(?:-\d+(?::\d+)?)?|\[(\d+)\])?$")


def split_id(job_id: str) -> tuple[str, Optional[int]]:
    """(job number, Grid Engine task number or None) of an id; ValueError for what is no job id.

    "12" -> ("12", None); "12.3" -> ("12", 3); "12.1-5:1" -> ("12", None); "12[2]" -> ("12", 3)."""
    m = JOB_ID_RE.match(str(job_id).strip())
    if not m:
        raise ValueError(f"{job_id!r} is not a Grid Engine job id")
    number, task, core_index = m.groups()
    if core_index is not None:
        return number, int(core_index) + TASK_BASE
    if task is not None and "-" not in str(job_id):
        return number, int(task)
    return number, None


# --- qsub -----------------------------------------------------------------------------------------

#: The job id in ``qsub -terse`` output: "123", or "123.1-3:1" for an array (its number is the id).
QSUB_ID = r"(?P<id>\d+)(?:\.\d+-\d+:\d+)?"
#: What qsub puts before its messages; a user reads the message alone (and no closing "Exiting.").
QSUB_ERROR_PREFIXES = (r"^((Unable to run job|qsub|error): )+", r"^job rejected: ")


#: What ``qsub -w e`` says of a job no queue could ever run, and the keywords that may be the cause (the
#: first the job set is named; the message lists every one it set).
NO_QUEUE = re.compile(r"no suitable queues", re.IGNORECASE)
NO_QUEUE_KEYWORDS = ("cores", "nodes", "tasks", "tasks_per_node", "mem", "mem_per_cpu", "time", "gpus", "gres",
                     "exclusive", "partition", "extra")

#: qsub messages (Grid Engine 8.1.9, tests/fixtures/qsub-errors.txt) and the keyword each concerns;
#: "{mem}" stands for the configured memory resource.
SUBMIT_ERRORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"unknown queue|queue .* does not exist", ("partition",)),
    (r"no suitable queues", NO_QUEUE_KEYWORDS),
    (r"parallel environment", ("cores",)),
    (r"requested project", ("account",)),
    (r"advance reservation", ("reservation",)),
    (r'"h_rt"|"s_rt"', ("time",)),
    (r'"{mem}"', ("mem", "mem_per_cpu")),
    (r'"exclusive"', ("exclusive",)),
    (r'"{gpu}"', ("gpus",)),
    (r"unknown resource|is not a (memory|time|boolean|integer|double) value", ("gres", "extra")),
    (r"invalid task id|task id range|-t option", ("array",)),
    (r"-a option|date/time", ("begin",)),
    (r"priority", ("priority",)),
    (r"object ?name|valid object name", ("name",)),
    (r"resolve hostname|two files are specified|can't (open|create).*(output|error)", ("outfile", "errfile")),
    (r"working directory|-wd", ("workdir",)),
    (r"hold_jid|predecessor", ("depends",)),
    (r"mail", ("email", "notify")),
    (r"Unknown option|invalid option|ERROR! .* option", ("extra",)),
)


def submit_errors(memory_resource: str = "h_vmem", gpu_resource: str = "gpu") -> list[tuple[str, tuple[str, ...]]]:
    """:data:`SUBMIT_ERRORS` for the configured memory and GPU resources, for ``keyword_for_error``."""
    return [(p.replace("{mem}", re.escape(memory_resource)).replace("{gpu}", re.escape(gpu_resource)), k)
            for p, k in SUBMIT_ERRORS]


# --- states ---------------------------------------------------------------------------------------

def map_state(raw: str, waiting_for: Iterable[str] = ()) -> State:
    """The core's state for a qstat state code, read letter by letter (codes combine: "hRwq", "dr").

    E (error) -> FAILED: the job cannot start until someone clears it (``qmod -cj``) and almost always
    needs a fix and a new submission (a missing working directory, an output file it cannot open), so a
    waiting user is told at once instead of waiting forever. d (being deleted) -> COMPLETING. s/S/T
    (suspended by the user, its queue, or a load threshold) -> SUSPENDED. r/t (running, being
    transferred to its host) -> RUNNING. h (hold) -> HELD, but PENDING while it only waits for
    predecessors (``waiting_for``; -hold_jid shows as "hqw" too). q/w -> PENDING.
    z (zombie: finished) -> COMPLETED here; the plugin takes finished jobs from qacct instead.
    """
    code = raw.strip()
    if not code:
        return State.UNKNOWN
    if "z" in code:
        return State.COMPLETED
    if "E" in code:
        return State.FAILED
    if "d" in code:
        return State.COMPLETING
    if any(c in code for c in "sST"):
        return State.SUSPENDED
    if "r" in code or "t" in code:
        return State.RUNNING
    if "h" in code:
        return State.PENDING if tuple(waiting_for) else State.HELD
    if "q" in code or "w" in code:
        return State.PENDING
    return State.UNKNOWN


# --- qstat -xml -r --------------------------------------------------------------------------------

def expand_tasks(spec: str) -> list[int]:
    """Grid Engine task ranges as numbers: "2,3" -> [2, 3]; "1-10:4" -> [1, 5, 9]; "7" -> [7]."""
    out: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part)
        if not m:
            raise ValueError(f"{spec!r} is not a task range")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        out.extend(range(first, last + 1, int(m.group(3) or 1)))
    return out


def _text(el: ET.Element, tag: str) -> Optional[str]:
    child = el.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


@attrs.frozen
class QstatEntry:
    """One ``<job_list>`` of ``qstat -xml -r``: a job, a running task, or a range of pending tasks."""

    number: str
    state: str
    name: Optional[str]
    user: Optional[str]
    queue: Optional[str]
    slots: Optional[int]
    submit_time: Optional[float]
    start_time: Optional[float]
    tasks: Optional[str]  # "3", "2,3", "1-10:1"; None for a job without tasks
    waiting_for: tuple[str, ...] = ()


def parse_qstat_xml(text: str) -> list[QstatEntry]:
    """Every ``<job_list>`` of ``qstat -xml [-r]`` output (running ones first, as qstat prints them).

    ValueError when the text is not qstat's XML."""
    text = text.strip()
    if not text:
        return []
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"qstat printed no readable XML ({exc}): {text[:200]!r}") from None
    entries = []
    for el in root.iter("job_list"):
        number = _text(el, "JB_job_number")
        if not number:
            continue
        slots = _text(el, "slots")
        queue = _text(el, "queue_name")
        entries.append(QstatEntry(
            number=number, state=_text(el, "state") or "", name=_text(el, "full_job_name") or _text(el, "JB_name"),
            user=_text(el, "JB_owner"), queue=queue, slots=int(slots) if slots and slots.isdigit() else None,
            submit_time=parse_timestamp(_text(el, "JB_submission_time")),
            start_time=parse_timestamp(_text(el, "JAT_start_time")), tasks=_text(el, "tasks"),
            waiting_for=tuple(w for p in el.findall("predecessor_jobs") if p.text for w in p.text.split(","))))
    return entries


def _queue_parts(queue: Optional[str]) -> tuple[Optional[str], tuple[str, ...]]:
    """("all.q", ("vm",)) from a queue instance "all.q@vm"."""
    if not queue:
        return None, ()
    name, _, host = queue.partition("@")
    return name or None, ((host,) if host else ())


def qstat_records(entries: Iterable[QstatEntry], wanted: Optional[set[str]] = None,
                  errors: Optional[dict[str, str]] = None) -> list[QueueJob]:
    """QueueJob records of qstat entries; only job numbers in ``wanted`` when given.

    A task range becomes one record per task ("12.3", task_id 2). Zombies (state z) are left out: a
    finished job's outcome comes from qacct or the job's exit file. ``errors`` maps a job number (or
    "number.task") to the reason of its error state, from :func:`parse_error_reasons`.
    """
    errors = errors or {}
    out = []
    for e in entries:
        if wanted is not None and e.number not in wanted:
            continue
        if "z" in e.state:
            continue
        state = map_state(e.state, e.waiting_for)
        reason = None
        if "E" in e.state:
            reason = "error state: " + (errors.get(e.number) or "see `qstat -j " + e.number + "`")
        elif state is State.PENDING and e.waiting_for:
            reason = "waiting for job " + ", ".join(e.waiting_for)
        elif state is State.HELD:
            reason = "held"
        elif state is State.COMPLETING:
            reason = "being deleted"
        partition, nodes = _queue_parts(e.queue)
        common: dict[str, Any] = dict(state=state, name=e.name, user=e.user, partition=partition, nodes=nodes,
                      raw_state=e.state, cores=e.slots, submit_time=e.submit_time,
                      start_time=e.start_time if state in (State.RUNNING, State.SUSPENDED, State.COMPLETING)
                      else None)
        if e.tasks is None:
            out.append(QueueJob(id=e.number, reason=reason, **common))
            continue
        for task in expand_tasks(e.tasks):
            task_reason = reason
            if "E" in e.state and f"{e.number}.{task}" in errors:
                task_reason = "error state: " + errors[f"{e.number}.{task}"]
            out.append(QueueJob(id=f"{e.number}.{task}", array_id=e.number, task_id=task - TASK_BASE,
                                reason=task_reason, **common))
    return out


def parse_error_reasons(text: str) -> dict[str, str]:
    """Why jobs are in error state, from ``qstat -j ids -xml``: {"12": "can't chdir to /x: ..."}.

    Array tasks get "12.3" keys as well. The message loses qstat's time stamp and "[uid:pid]: error:"."""
    out: dict[str, str] = {}
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError:
        return out
    for job in root.iter("element"):
        number = _text(job, "JB_job_number")
        if not number:
            continue
        for task in job.iter("ulong_sublist"):
            task_number = _text(task, "JAT_task_number")
            for msg in task.iter("QIM_message"):
                if msg.text:
                    clean = re.sub(r"^\S+ \S+ \[\d+:\d+\]: (error: )?", "", msg.text.strip())
                    out.setdefault(number, clean)
                    if task_number:
                        out.setdefault(f"{number}.{task_number}", clean)
    return out


def parse_job_contexts(text: str) -> dict[str, dict[str, str]]:
    """Each job's context (qsub -ac/-sc) from ``qstat -xml -j numbers``: {"12": {"NAME": "value"}}, with an
    empty mapping for a job without one. Jobs qstat does not know are left out (it lists them under
    ``<unknown_jobs>``). ValueError when the text is not qstat's XML."""
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise ValueError(f"qstat -j printed no readable XML ({exc}): {text[:200]!r}") from None
    out: dict[str, dict[str, str]] = {}
    for info in root.iter("djob_info"):
        for job in info.findall("element"):
            number = _text(job, "JB_job_number")
            if not number:
                continue
            context: dict[str, str] = {}
            for var in job.findall("JB_context/context_list"):
                key = _text(var, "VA_variable")
                if key:
                    context[key] = _text(var, "VA_value") or ""
            out[number] = context
    return out


# --- qacct -j -------------------------------------------------------------------------------------

#: Grid Engine's "failed" codes (sge_status / accounting(5)): what went wrong around the job.
FAILED_CODES = {
    1: "failed before the job started",
    7: "failed before the prolog", 8: "failed in the prolog",
    9: "failed before the parallel environment started", 10: "failed starting the parallel environment",
    11: "failed before the job started", 12: "failed before the parallel environment stopped",
    13: "failed stopping the parallel environment", 14: "failed before the epilog",
    15: "failed in the epilog", 17: "killed by a signal", 18: "its shepherd failed",
    21: "the job was not recognised", 25: "rescheduled", 26: "its output file could not be opened",
    27: "its shell could not be found", 28: "it could not change into its working directory",
    30: "the application asked for its error state (exit 100)", 37: "killed by the qmaster for a limit",
    100: "ended by a signal",
}


def parse_qacct_blocks(text: str) -> list[dict[str, str]]:
    """``qacct -j`` output as one dict per record (blocks separated by lines of "=")."""
    blocks: list[dict[str, str]] = []
    current: Optional[dict[str, str]] = None
    for line in text.splitlines():
        if line.startswith("====="):
            current = {}
            blocks.append(current)
            continue
        if current is None or not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        current[key] = value.strip()
    return [b for b in blocks if b.get("jobnumber")]


def _leading_int(text: Optional[str]) -> Optional[int]:
    m = re.match(r"\s*(-?\d+)", text or "")
    return int(m.group(1)) if m else None


def _seconds(text: Optional[str]) -> Optional[float]:
    """qacct durations: "6s", "6", "1.5s", or "1:02:03"."""
    if not text:
        return None
    text = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)s?", text)
    if m:
        return float(m.group(1))
    parts = text.split(":")
    if all(p.isdigit() for p in parts) and 1 < len(parts) <= 3:
        total = 0.0
        for p in parts:
            total = total * 60 + int(p)
        return total
    return None


def category_limits(category: Optional[str]) -> dict[str, str]:
    """The ``-l`` requests of qacct's category: "-l h_rt=5,h_vmem=1G -pe smp 2" -> {"h_rt": "5", ...}."""
    out: dict[str, str] = {}
    words = (category or "").split()
    for i, word in enumerate(words[:-1]):
        if word in ("-l", "-hard"):
            for item in words[i + 1].split(","):
                key, _, value = item.partition("=")
                out[key] = value
    return out


def accounting_outcome(block: dict[str, str], cancelled: bool = False) -> tuple[State, Optional[int], Optional[str]]:
    """(state, exit code, reason) of one qacct record.

    ``failed`` 0: the exit status decides (COMPLETED for 0, else FAILED; 128+N for a job killed by signal
    N). 37 (the qmaster enforced a limit): TIMEOUT when the run reached its h_rt (or an h_cpu limit is
    set), OUT_OF_MEMORY for h_vmem. 100 (ended by a signal): CANCELLED when the plugin deleted it,
    TIMEOUT for the soft-limit signals (SIGUSR1, SIGXCPU) under s_rt/s_cpu, else FAILED. Other codes: the
    job failed around its start; its exit status is not the command's, so the exit code is None.
    """
    failed = _leading_int(block.get("failed")) or 0
    exit_status = _leading_int(block.get("exit_status"))
    failed_text = (block.get("failed") or "").partition(":")[2].strip()
    limits = category_limits(block.get("category"))
    if failed == 0:
        if cancelled and exit_status is not None and exit_status > 128:
            return State.CANCELLED, exit_status, "deleted (qdel)"
        if exit_status == 0:
            return State.COMPLETED, 0, None
        reason = f"killed by signal {exit_status - 128}" if exit_status and exit_status > 128 else None
        return State.FAILED, exit_status, reason
    if cancelled and failed in (100, 37, 17):
        return State.CANCELLED, exit_status, "deleted (qdel)"
    if failed == 37:
        wallclock = _seconds(block.get("ru_wallclock"))
        h_rt = _seconds(limits.get("h_rt"))
        if h_rt is not None and wallclock is not None and wallclock >= h_rt:
            return State.TIMEOUT, exit_status, f"wall-time limit h_rt={limits['h_rt']} reached"
        if "h_vmem" in limits and "h_cpu" not in limits:
            return State.OUT_OF_MEMORY, exit_status, f"memory limit h_vmem={limits['h_vmem']} reached"
        if "h_cpu" in limits:
            return State.TIMEOUT, exit_status, f"CPU-time limit h_cpu={limits['h_cpu']} reached"
        return State.TIMEOUT, exit_status, failed_text or FAILED_CODES[37]
    if failed == 100:
        signal = exit_status - 128 if exit_status and exit_status > 128 else None
        if signal == 10 and "s_rt" in limits:  # SIGUSR1: the s_rt warning, not caught
            return State.TIMEOUT, exit_status, f"soft wall-time limit s_rt={limits['s_rt']} reached"
        if signal == 24 and "s_cpu" in limits:  # SIGXCPU
            return State.TIMEOUT, exit_status, f"soft CPU-time limit s_cpu={limits['s_cpu']} reached"
        return State.FAILED, exit_status, f"killed by signal {signal}" if signal else failed_text or None
    if failed == 30:  # the job script itself exited 99/100: its exit status is the command's
        return State.FAILED, exit_status, failed_text or FAILED_CODES[30]
    return State.FAILED, None, f"failed {failed}: {failed_text or FAILED_CODES.get(failed, 'unknown')}"


def qacct_records(text: str, wanted: Optional[set[str]] = None,
                  cancelled: Iterable[str] = ()) -> list[QueueJob]:
    """Finished jobs from ``qacct -j`` output, only job numbers in ``wanted`` when given.

    A job that ran more than once (rescheduled, or cleared from an error state) has several records;
    the last one wins. ``cancelled`` holds ids ("12", or "12.3" for one task) the plugin deleted.
    """
    cancelled = set(cancelled)
    latest: dict[str, QueueJob] = {}
    for block in parse_qacct_blocks(text):
        number = block["jobnumber"].split()[0]
        if wanted is not None and number not in wanted:
            continue
        task = block.get("taskid", "undefined").split()[0] if block.get("taskid") else "undefined"
        is_task = task.isdigit() and task != "0"
        job_id = f"{number}.{task}" if is_task else number
        state, exitcode, reason = accounting_outcome(block, cancelled=job_id in cancelled or number in cancelled)
        slots = _leading_int(block.get("slots"))
        host = (block.get("hostname") or "").strip()
        latest[job_id] = QueueJob(
            id=job_id, state=state, name=block.get("jobname"), user=block.get("owner"),
            partition=block.get("qname") if block.get("qname") not in (None, "", "UNKNOWN") else None,
            exitcode=exitcode, reason=reason, raw_state=f"failed={_leading_int(block.get('failed')) or 0}",
            cores=slots, nodes=(host,) if host and host != "UNKNOWN" else (),
            submit_time=parse_timestamp(block.get("qsub_time")),
            start_time=parse_timestamp(block.get("start_time")),
            end_time=parse_timestamp(block.get("end_time")),
            array_id=number if is_task else None, task_id=int(task) - TASK_BASE if is_task else None)
    return list(latest.values())


# --- refine_failure -------------------------------------------------------------------------------

#: What a program prints when an allocation fails under h_vmem (an address-space limit, not a kill).
_OOM_RE = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory|"
                     r"memory exhausted|failed to (allocate|map) (memory|segment)", re.IGNORECASE)


def refine_oom(record: QueueJob, stderr: str) -> Optional[QueueJob]:
    """OUT_OF_MEMORY for a FAILED job whose stderr ends with an allocation failure.

    Grid Engine enforces h_vmem as an address-space limit (setrlimit): the job is not killed, its next
    allocation fails and the program exits with its own error, which accounting records as an ordinary
    failure (failed 0, exit 1)."""
    return _refine_oom(record, stderr, _OOM_RE, "an allocation failed: the job reached its memory limit",
                       tail_lines=20)
