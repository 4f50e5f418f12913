"""Value records shared by the core and the backends: the normalised job state and what backends report."""

from __future__ import annotations

import enum
from typing import Iterable, Optional

import attrs


class State(str, enum.Enum):
    """The one state model every backend maps its own codes onto."""

    PENDING = "pending"
    HELD = "held"
    RUNNING = "running"
    SUSPENDED = "suspended"
    COMPLETING = "completing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    NODE_FAIL = "node_fail"
    PREEMPTED = "preempted"
    UNKNOWN = "unknown"

    @property
    def finished(self) -> bool:
        """True for states a job never leaves."""
        return self in FINISHED_STATES

    @property
    def active(self) -> bool:
        """True while the job holds or waits for resources."""
        return self in (State.PENDING, State.HELD, State.RUNNING, State.SUSPENDED, State.COMPLETING)

    @property
    def queued(self) -> bool:
        return self in (State.PENDING, State.HELD)

    def __str__(self) -> str:
        return self.value


FINISHED_STATES = frozenset({State.COMPLETED, State.FAILED, State.CANCELLED, State.TIMEOUT,
                             State.OUT_OF_MEMORY, State.NODE_FAIL, State.PREEMPTED})


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    """``tuple`` as an attrs converter whose type mypy can read (the builtin's constructor is overloaded)."""
    return tuple(items)


@attrs.frozen
class QueueJob:
    """One job as a scheduler reports it, already normalised by the backend."""

    id: str
    state: State = attrs.field(converter=State)
    name: Optional[str] = None
    user: Optional[str] = None
    partition: Optional[str] = None
    exitcode: Optional[int] = None
    reason: Optional[str] = None
    raw_state: Optional[str] = None
    cores: Optional[int] = None
    nodes: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    submit_time: Optional[float] = None
    start_time: Optional[float] = None
    end_time: Optional[float] = None
    array_id: Optional[str] = None
    task_id: Optional[int] = None


DEPENDENCY_KINDS = ("afterok", "afterany", "afternotok", "after", "singleton")


@attrs.frozen
class Dependency:
    """One dependency of a job, as the ``depends`` keyword is checked into (a tuple of these).

    kind: "afterok" (the job runs once ``job_id`` ended successfully; the default), "afterany" (once it
    ended, however), "afternotok" (once it ended without success: failed, cancelled, timed out),
    "after" (once it started, or was cancelled before it could), "singleton" (once no earlier job of the
    same name and user is running; ``job_id`` is None). A condition that can no longer hold (afterok on a
    failed job, afternotok on a successful one) cancels the dependent job.
    ``str()`` gives the text form the ``depends`` keyword reads back: the bare id for afterok,
    "kind:id" otherwise, "singleton".
    """

    kind: str = attrs.field(validator=attrs.validators.in_(DEPENDENCY_KINDS))
    job_id: Optional[str] = attrs.field(default=None)

    @job_id.validator
    def _check(self, _attribute: attrs.Attribute[Optional[str]], value: object) -> None:
        if (value is None) != (self.kind == "singleton"):
            raise ValueError("a singleton dependency names no job; every other kind names one")
        if value is not None and not isinstance(value, str):
            raise TypeError(f"job_id must be a string, not {type(value).__name__}")

    def __str__(self) -> str:
        if self.job_id is None:
            return self.kind
        return self.job_id if self.kind == "afterok" else f"{self.kind}:{self.job_id}"


def _string_set(items: Iterable[str]) -> frozenset[str]:
    """``frozenset`` as an attrs converter whose type mypy can read."""
    return frozenset(items)


@attrs.frozen
class BackendInfo:
    """What a backend is and can do; the core reads this instead of asking which scheduler it is.

    directive_prefix: how option lines start in a job script ("#SBATCH"); None when the backend reads none.
    directive_escapes_backslash: the scheduler's directive parser reads a backslash as an escape even
        inside single quotes, so the core doubles backslashes in directive words.
    task_id_variable: the environment variable(s) holding an array task's index, None without arrays;
        several names separated by spaces are tried in order (the first one set wins).
    min_array_size: arrays with fewer tasks are submitted as single jobs (PBS Pro refuses one-task arrays).
    task_id_offset: what the scheduler's first task index is (1 for Grid Engine, which refuses task 0):
        the core's task ``i`` is submitted as scheduler task ``i + task_id_offset``, and the backend reports
        ``task_id`` in the core's numbering.
    job_id_variable: the environment variable holding the job's own id in a running job, as the core knows
        the id (``SLURM_JOB_ID``); with it, ``%j`` in an output path is filled in on every backend.
    array_id_variable: the variable holding a native array's id in each of its tasks (``%A``).
    dependency_kinds: the :class:`Dependency` kinds a job may be given on this backend; a job with any
        other kind is refused at submit with an OptionError naming the kind and the backend.
    afterok_dependencies: the scheduler can hold a job until its dependencies *succeeded* (or failed).
        When false (Grid Engine's -hold_jid waits for any end), the backend renders afterok and afternotok
        as "after any end", and the core's script checks the dependencies' exit files itself: it records
        "not run" when the wanted outcome did not come, and the core reports that job cancelled.
    poll_interval: the shortest pause between two queue queries, in seconds, to spare the scheduler.
    priority: which detected backend wins in auto-detection (higher wins; the local backend is 0).
    name: the backend's name, always its entry point's name (the core fills it in); a backend may leave it
        out, and one that gives another name is refused, so a listing never shows one name for another.
    distribution: the distribution that ships the backend, shown by ``cluster backends`` when the backend
        was not installed through an entry point (which already names its distribution and version).
    """

    name: Optional[str] = None
    description: str = ""
    directive_prefix: Optional[str] = None
    directive_escapes_backslash: bool = False
    supports_arrays: bool = False
    task_id_variable: Optional[str] = None
    min_array_size: int = 1
    task_id_offset: int = 0
    dependency_kinds: frozenset[str] = attrs.field(default=frozenset({"afterok"}), converter=_string_set)
    afterok_dependencies: bool = True
    poll_interval: float = 2.0
    priority: int = 10
    distribution: Optional[str] = None
    job_id_variable: Optional[str] = None
    array_id_variable: Optional[str] = None


@attrs.frozen
class Detection:
    """The answer of a backend's detect hook: can it be used here, and why (not)."""

    available: bool
    reason: str = ""


@attrs.frozen
class FunctionCall:
    """A function job's files, for a backend that can run the call in a warm interpreter instead of
    starting the script (it must then leave exactly what the script would: ``pickle_out`` from
    ``cluster_core.runner``, the job's stdout/stderr, and the exit file ``exit_file``).

    ``python`` is the interpreter the script would use; a backend must start the script instead when it
    cannot run the call with that interpreter (or when ``modules`` or a ``workdir`` it cannot honour
    are set). ``task`` is the array index for an array task's call, None otherwise.
    """

    pickle_in: str
    pickle_out: str
    exit_file: str
    python: str
    task: Optional[int] = None
