"""Running a scheduler's commands the way every batch backend must, re-exported by
:mod:`cluster_core.backend`: the backend's own command directory first, its transient-error table, a
cancel that ignores jobs already gone, a submission retried only when no copy of the job can exist, and
a question that is asked again while the scheduler cannot answer it.

Nothing here names a scheduler: a plugin passes its patterns and its callbacks.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any, Callable, Iterable, Mapping, NoReturn, Optional, Sequence, TypeVar

import attrs

from ._backend_parse import Patterns, first_line, harmless_failure, matches_any
from .commands import Result, run, which
from .errors import SchedulerError, SubmitError

log = logging.getLogger("cluster_core.backend")
T = TypeVar("T")

#: How long a submission keeps asking whether a job whose submit command failed transiently exists (s).
CHECK_PATIENCE = 600.0


def _env_name(backend: str) -> str:
    return "CLUSTER_" + re.sub(r"\W", "_", backend).upper() + "_BIN"


def bin_dir_setting(backend: str) -> Optional[str]:
    """Where the backend's command directory is configured, as a user would read it
    (``$CLUSTER_TORQUE_BIN=/opt/torque/bin`` or ``torque.bin_dir=/opt/torque/bin``); None when it is not."""
    env = os.environ.get(_env_name(backend), "").strip()
    if env:
        return f"${_env_name(backend)}={env}"
    try:
        from . import config
        value = str(config.get_option(f"{backend}.bin_dir") or "").strip()
    except Exception:  # a broken config is reported where it is read for real
        value = ""
    return f"{backend}.bin_dir={value}" if value else None


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    """``tuple`` as an attrs converter whose type mypy can read (the builtin's constructor is overloaded)."""
    return tuple(items)


@attrs.frozen
class Commands:
    """One backend's scheduler commands: looked up in ``$CLUSTER_<BACKEND>_BIN`` or ``<backend>.bin_dir``
    before PATH (Torque, OpenPBS and Grid Engine all install a ``qsub``), run with the backend's table of
    ``transient`` messages (worth another try) and ``not_submitted`` ones (a submission that never
    reached the scheduler: retried without asking whether the job exists). ``env`` is added to the
    environment of every call (``{"LC_ALL": "C"}`` where messages and dates are parsed)."""

    backend: str
    transient: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    not_submitted: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    env: Mapping[str, str] = attrs.field(factory=dict)

    def run(self, args: Sequence[str], **kwargs: Any) -> Result:
        """:func:`cluster_core.commands.run` for this backend (keyword arguments as there)."""
        kwargs.setdefault("transient", self.transient)
        if self.env and kwargs.get("env") is None:
            kwargs["env"] = {**os.environ, **self.env}
        return run(list(args), backend=self.backend, **kwargs)

    def which(self, command: str) -> Optional[str]:
        """The full path of one of the backend's commands, or None."""
        return which(command, self.backend)

    def missing(self, commands: Sequence[str]) -> Optional[str]:
        """Why the first of ``commands`` that cannot be found is missing, naming where it was looked
        for and how to point the backend at it; None when all are there."""
        for command in commands:
            if self.which(command) is None:
                where = bin_dir_setting(self.backend)
                if where:
                    return f"no {command} in {where}"
                return (f"{command} not found on PATH (point the {self.backend} backend at its commands with "
                        f"{self.backend}.bin_dir or ${_env_name(self.backend)}, or at this one with "
                        f"commands.{command})")
        return None

    def is_transient(self, text: Optional[str]) -> bool:
        return matches_any(text, self.transient)

    def never_reached(self, exc: SchedulerError) -> bool:
        """Whether a failed submission said it never reached the scheduler (so no job can exist)."""
        return exc.returncode is not None and matches_any(exc.output or str(exc), self.not_submitted)

    def cancel(self, args: Sequence[str], harmless: Patterns, relevant: Optional[str] = None, *,
               timeout: float = 30.0, retries: int = 2, backoff: float = 1.0) -> bool:
        """Run one cancel command for many jobs; True. A failure whose every line (of those matching
        ``relevant``) is ``harmless`` (the job already ended, or was purged) is no error; any other
        raises SchedulerError."""
        try:
            self.run(args, timeout=timeout, retries=retries, backoff=backoff)
        except SchedulerError as exc:
            if not harmless_failure(exc.output, harmless, relevant):
                raise
        return True


def ask_patiently(ask: Callable[[], T], give_up: Callable[[SchedulerError], Exception], *, waiting: str,
                  patience: float = CHECK_PATIENCE, delay: float = 1.0, max_delay: float = 30.0,
                  logger: logging.Logger = log) -> T:
    """``ask()`` until the scheduler answers. While it raises a transient SchedulerError it is asked again,
    with back-off, for up to ``patience`` seconds: an unanswered question is no "no" (reading it as one
    submits a job twice). Then, or at once for a permanent error, the exception ``give_up(error)`` is
    raised. ``waiting`` says what cannot be asked, for the log."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return ask()
        except SchedulerError as exc:
            if not exc.transient or time.monotonic() + delay > deadline:
                raise give_up(exc) from None
            logger.warning("%s (%s); asking again in %.1f s", waiting, first_line(exc, "no answer"), delay)
            time.sleep(delay)
            delay = min(max(delay * 2, 0.1), max_delay)


def submit_retrying(attempt: Callable[[], str], commands: Commands, *,
                    find: Callable[[SchedulerError], Optional[str]], refused: Callable[[SchedulerError], NoReturn],
                    retries: int, backoff: float, logger: logging.Logger = log) -> str:
    """The job id from ``attempt()`` (one submission; SchedulerError when it fails), retried only safely.

    A permanent failure goes to ``refused(error)``, which raises the SubmitError a user reads. A transient
    one may have created the job all the same (the answer was lost): unless it said it never reached the
    scheduler, ``find(error)`` asks for the job by the submission's unique token and a job found is the
    answer (``find`` raises when it cannot tell). Only then is it submitted again, up to ``retries``
    times with exponential back-off, and after that ``refused(error)``."""
    tries = 0
    while True:
        tries += 1
        try:
            return attempt()
        except SubmitError:  # attempt's own verdict (no job id in the answer)
            raise
        except SchedulerError as exc:
            if not exc.transient:
                refused(exc)
            if not commands.never_reached(exc):
                found = find(exc)
                if found:
                    logger.warning("%s, but job %s was created: not submitting it again", first_line(exc), found)
                    return found
            if tries > retries:
                refused(exc)
            delay = backoff * 2 ** (tries - 1)
            logger.warning("%s; the job was not created, submitting again in %.1f s (attempt %d of %d)",
                           first_line(exc), delay, tries + 1, retries + 1)
            time.sleep(delay)


def output_appeared(before: Mapping[str, bool]) -> Optional[bool]:
    """Whether one of a job's output files that did not exist before its submission (``before``, from
    :func:`files_existing`) exists now: the job has started. None when there is no such file to tell by."""
    watched = [p for p, existed in before.items() if not existed]
    return any(os.path.exists(p) for p in watched) if watched else None


def files_existing(paths: Sequence[Optional[str]]) -> dict[str, bool]:
    """Which of these paths exist now (None entries left out), for :func:`output_appeared`."""
    return {str(p): os.path.exists(p) for p in paths if p}


def state_dir(backend: str) -> str:
    """A directory (created 0700) for a backend's own state that every process of the user shares, e.g.
    what the scheduler forgets but a later process must know: ``<registry root>/../backend-state/<backend>``
    (``<user state dir>/cluster-core/backend-state/<backend>`` by default)."""
    from . import registry
    path = registry.root().parent / "backend-state" / re.sub(r"[^\w.-]", "_", backend)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(path)
