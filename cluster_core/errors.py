"""The exceptions cluster-core raises: every error a user can cause is one of these."""

from __future__ import annotations

from typing import Any, Sequence


class ClusterError(Exception):
    """Base class of every error raised by cluster-core on purpose."""


class OptionError(ClusterError, ValueError):
    """A job keyword is unknown or its value cannot be used; the message names both."""

    def __init__(self, message: str, keyword: str | None = None, value: object = None):
        super().__init__(message)
        self.keyword = keyword
        self.value = value


class ConfigError(ClusterError):
    """The config file cannot be read or holds a bad value; the message names the file and line."""


class BackendError(ClusterError):
    """A backend is missing, unavailable, or a plugin broke its contract."""


class SchedulerError(ClusterError):
    """A scheduler command failed; carries the command, its exit code and what it printed."""

    def __init__(self, message: str, command: list[str] | None = None, returncode: int | None = None,
                 output: str = "", transient: bool = False):
        super().__init__(message)
        self.command = command or []
        self.returncode = returncode
        self.output = output
        self.transient = transient


class SubmitError(SchedulerError):
    """The scheduler refused a job. `keyword` names the option concerned when it can be told."""

    def __init__(self, message: str, keyword: str | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.keyword = keyword


class PartialSubmitError(SubmitError):
    """Submitting many jobs or tasks failed part-way; what went through stays submitted and recorded.

    ``submitted`` holds the scheduler ids that went through, in order. After :func:`cluster_core.map`,
    ``tasks`` holds the Tasks of the arrays submitted whole (the first elements, in order), to wait on and
    read as usual; an array submitted part-way (a backend without arrays) is recorded, and
    :func:`cluster_core.jobs` finds it. The rest were not submitted: the message says why."""

    def __init__(self, message: str, submitted: Sequence[str] = (), tasks: Sequence[Any] = (), **kwargs: Any):
        super().__init__(message, **kwargs)
        self.submitted = list(submitted)
        self.tasks = list(tasks)

    @classmethod
    def part_way(cls, cause: BaseException, done: int, total: int, ids: Sequence[str],
                 tasks: Sequence[Any] = (), what: str = "tasks") -> "PartialSubmitError":
        """The error for ``done`` of ``total`` submitted (``ids``) before ``cause`` stopped the rest."""
        shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
        return cls(f"{done} of {total} {what} were submitted ({shown}); the rest were not: {cause}",
                   submitted=ids, tasks=tasks, keyword=getattr(cause, "keyword", None),
                   command=getattr(cause, "command", None), returncode=getattr(cause, "returncode", None),
                   output=getattr(cause, "output", "") or "", transient=getattr(cause, "transient", False))


class JobError(ClusterError):
    """A job cannot do what was asked (not submitted yet, no result, failed)."""


class JobFailedError(JobError):
    """A job ended without success; `job` is the Job, its state and exit code say how."""

    def __init__(self, message: str, job: object = None):
        super().__init__(message)
        self.job = job


class UnknownJobError(JobError, LookupError):
    """No job record and no scheduler knows these job ids; ``ids`` lists them."""

    def __init__(self, message: str, ids: list[str] | None = None):
        super().__init__(message)
        self.ids = list(ids or [])


class WaitTimeout(ClusterError, TimeoutError):
    """wait() gave up before the jobs finished; the jobs go on running. ``pending`` lists their ids."""

    def __init__(self, message: str, pending: list[str] | None = None):
        super().__init__(message)
        self.pending = list(pending or [])


class RemoteTraceback(Exception):
    """Carries the traceback text of an exception raised inside a job, set as the re-raised error's cause."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb
