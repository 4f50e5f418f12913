"""Watching jobs: one shared poller per backend per process, and the user-facing Queue.

Every poll asks the backend once (``parse_queue``) for all tracked unfinished jobs, never more often
than the backend's ``poll_interval``, and less often the longer nothing ends (the tracker paces its own
queries, so any number of waits, reads and futures in one process cost the polls of one); finished states are cached and never asked again, and written into
the job's record so that no other process has to ask either. A job the scheduler no longer knows is
settled from the exit file its script writes. A scheduler that cannot be reached for a while (a
controller restarting) is waited out: the wait polls on, with a warning, for up to ``core.outage_limit``
seconds (600 by default) before it gives up.
"""

from __future__ import annotations

import getpass
import logging
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Sequence, Union, cast

import attrs

from . import plugins, session
from .errors import ConfigError, SchedulerError, WaitTimeout
from .records import QueueJob, State
from .script import read_exit_file

if TYPE_CHECKING:
    from typing import Protocol, TypeVar

    from . import outcomes, records
    from .job import Job, Task

    _Key = TypeVar("_Key", contravariant=True)

    class _Reports(Protocol[_Key]):
        """What ``_show_progress`` reads: a Tracker (by job id), or futures' records of any backends."""

        def record(self, key: _Key, /) -> Optional[QueueJob]: ...

log = logging.getLogger(__name__)

# A tracked job neither the scheduler nor its exit file knows for this long after its submission is
# reported UNKNOWN (or CANCELLED when its cancellation was asked for).
LOST_AFTER = 60.0
# How late the end of a wait may be noticed, as a share of the time waited so far (the pause between
# polls never exceeds it, nor 10 poll intervals): a 1-minute wait ends at most 6 s late, a long one 10x
# the interval; the polls of an hour's wait number about 200, whatever the number of jobs.
OVERSHOOT = 0.1
# The pause after a query is at least this many times the CPU time the next one will take (this one's,
# for the jobs still open): a waiter asking about thousands of jobs (each query costs in proportion)
# spends at most a fifth of a CPU asking, and leaves the rest of the machine to the jobs (the local
# backend's run beside it). CPU, not wall time: a query that waits for a remote scheduler, or for a CPU
# the jobs hold, costs the jobs nothing. The jobs that ended in a poll are settled and saved once: that
# work does not recur, so it does not delay the next poll (the last jobs' end is noticed in time).
QUERY_COST_FACTOR = 4.0
# How long a wait rides out a scheduler that cannot be asked (seconds; config core.outage_limit).
OUTAGE_LIMIT = 600.0


def next_pause(pause: float, base: float, elapsed: float, progressed: bool) -> float:
    """The pause before the next poll: grows by a quarter while nothing finishes (jobs that keep
    finishing are followed at the pace reached), within ``[base, min(10 base, OVERSHOOT x elapsed)]``."""
    if not progressed:
        pause *= 1.25
    return max(base, min(pause, base * 10, OVERSHOOT * elapsed))


def outage_limit() -> float:
    """Seconds a wait keeps polling a scheduler that cannot be reached (config ``core.outage_limit``)."""
    from . import config
    text = config.get_option("core.outage_limit")
    if text is None:
        return OUTAGE_LIMIT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"core.outage_limit={text!r}: expected a number of seconds, 0 or more")
    return value


@attrs.define
class _Tracked:
    key: str  # a job id, or "<array id>#<index>" for a task of a native array
    exit_file: Optional[Path]
    query_id: str  # the id to ask the scheduler about (an array task's array id)
    task: Optional[int] = None
    errfile: Optional[Path] = None  # where the scheduler's own messages about the job land
    since: Optional[float] = None  # when it was submitted (seconds since the epoch), if known
    first_asked: Optional[float] = None
    record: Optional[QueueJob] = None
    lost: bool = False
    owner: Optional[tuple[str, Optional[int]]] = None  # (record id, task index or None): where its outcome is kept
    saved: bool = False  # its final record is in the job record already
    cancel_requested: bool = False


def _another_job(t: _Tracked, exit_file: Optional[Path], since: Optional[float]) -> bool:
    """True when a job tracked under a known id is not the one tracked before (its files or its submission
    time differ): what was known of the old one must not be served for it."""
    if exit_file is not None and t.exit_file is not None and Path(exit_file) != t.exit_file:
        return True
    return since is not None and t.since is not None and since != t.since


class Outage:
    """A scheduler that cannot be asked, as one waiter rides it out: ``failed(exc)`` for each failed query
    (it raises the error when it is not transient, or once it has lasted ``core.outage_limit`` seconds,
    else warns), ``answered()`` when a query works again."""

    def __init__(self, backend_name: str):
        self.backend_name = backend_name
        self.start: Optional[float] = None
        self.limit = 0.0

    def failed(self, exc: SchedulerError) -> None:
        now = time.monotonic()
        if not exc.transient:
            raise exc
        if self.start is None:
            self.start, self.limit = now, outage_limit()
        if now - self.start >= self.limit:
            raise SchedulerError(f"{self.backend_name} could not be asked about the jobs for {now - self.start:.0f} s "
                                 f"(core.outage_limit={self.limit:g}); the jobs may go on running. Last error: "
                                 f"{exc}", command=exc.command, returncode=exc.returncode, output=exc.output) from None
        log.warning("%s cannot be asked about the jobs (%s); still waiting (%.0f of %g s)", self.backend_name,
                    str(exc).splitlines()[0], now - self.start, self.limit)

    def answered(self) -> bool:
        """True when the scheduler was away until now."""
        if self.start is None:
            return False
        log.warning("%s answers again after %.0f s", self.backend_name, time.monotonic() - self.start)
        self.start = None
        return True


class Tracker:
    """The process's poller for one backend: batched queries, minimum interval, cached final states."""

    def __init__(self, backend_name: str):
        self.backend = plugins.backend(backend_name)
        self._jobs: dict[str, _Tracked] = {}
        self._open: dict[str, _Tracked] = {}  # those without a final record: what a poll asks about
        self._lock = threading.RLock()
        self._last_query = 0.0
        self._pause = self.backend.info.poll_interval  # the gap the next query waits for (see next_pause)
        self._busy_since: Optional[float] = None  # when the open jobs were first asked about
        self._cost_gap = 0.0  # the least gap between queries: the last one's cost, then QUERY_COST_FACTOR x it
        self._saver: Optional[outcomes.OutcomeSaver] = None  # made when the first outcome is learnt
        self.queries = 0

    def track(self, key: str, exit_file: Optional[Path] = None, array_id: Optional[str] = None,
              task: Optional[int] = None, errfile: Optional[Path] = None, *, since: Optional[float] = None,
              owner: Optional[tuple[str, Optional[int]]] = None, known: Optional[QueueJob] = None,
              cancel_requested: bool = False) -> None:
        """Watch a job (by id) or an array task (``array_id`` and ``task``; key "<array_id>#<task>").

        ``owner`` is (record id, task index) of the job record that keeps the outcome; ``known`` is a final
        outcome read from that record (nothing is asked about the job then).
        """
        with self._lock:
            t = self._jobs.get(key)
            if t is not None and _another_job(t, exit_file, since):
                t = None  # the scheduler handed out this id again (a new state dir, a reinstalled cluster)
            if t is None:
                t = self._jobs[key] = self._open[key] = _Tracked(
                    key, Path(exit_file) if exit_file else None, query_id=array_id or key, task=task,
                    errfile=Path(errfile) if errfile else None, since=since, owner=owner)
                self._pause = self.backend.info.poll_interval  # a new job: followed closely at first
            if owner is not None and t.owner is None:
                t.owner = owner
            t.cancel_requested = t.cancel_requested or cancel_requested
            if known is not None and known.state.finished and (t.record is None or not t.record.state.finished):
                t.record, t.saved = known, True
                self._open.pop(key, None)

    def cancel_requested(self, keys: Iterable[str]) -> None:
        """Note that these jobs were asked to cancel (one that then vanishes without a word was cancelled)."""
        with self._lock:
            for key in keys:
                if key in self._jobs:
                    self._jobs[key].cancel_requested = True

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)
            self._open.pop(job_id, None)

    def record(self, job_id: str) -> Optional[QueueJob]:
        tracked = self._jobs.get(job_id)
        return tracked.record if tracked else None

    def due_in(self) -> float:
        """Seconds until the next query is due (0: now): the poll interval, stretched while nothing ends."""
        return max(0.0, self._last_query + self._gap() - time.monotonic())

    def _gap(self) -> float:
        return max(self._pause, self._cost_gap)

    def refresh(self, force: bool = False) -> None:
        """Ask the backend about every unfinished tracked job once, when a query is due (``due_in``)."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last_query < self._gap():
                return
            # only the jobs without a final record (not every tracked one: a thousand results read one
            # by one after a wait would otherwise cost a million checks)
            pending = list(self._open.values())
            if not pending:
                return
            self._last_query = now
            self.queries += 1
            if self._busy_since is None:
                self._busy_since = now
            cost = 0.0
            try:
                cost = self._ask(pending)
            finally:
                self._pace(len(pending), now, cost)

    def _pace(self, asked: int, now: float, cost: float) -> None:
        """The gap before the next query: grows while nothing ends, back to the poll interval when all did;
        never under ``1 + QUERY_COST_FACTOR`` times the ``cost`` (CPU seconds) of the next query, as
        :meth:`_ask` foresees it from the one made ``now``."""
        base = self.backend.info.poll_interval
        if not self._open:
            self._pause, self._busy_since, self._cost_gap = base, None, 0.0
        else:
            self._pause = next_pause(self._pause, base, now - (self._busy_since or now), len(self._open) < asked)
            self._cost_gap = (1 + QUERY_COST_FACTOR) * cost  # from the query's start

    def _ask(self, pending: list[_Tracked]) -> float:
        """One query about ``pending``; settles what it learns. Returns what the next query will cost
        (CPU seconds): this query's share for the jobs still open, and settling those. A job that ended
        costs its settling and its saved outcome once, never again: it does not space the next query."""
        ids = list(dict.fromkeys(t.query_id for t in pending))
        by_id: dict[str, QueueJob] = {}
        by_task: dict[tuple[str, int], QueueJob] = {}
        cpu = time.thread_time()
        for rec in self.backend.parse_queue(ids):
            by_id.setdefault(rec.id, rec)
            if rec.array_id is not None and rec.task_id is not None:
                by_task[(rec.array_id, rec.task_id)] = rec
        query = time.thread_time() - cpu
        wall = time.time()
        settling = 0.0
        still_open = 0
        for t in pending:
            report = by_id.get(t.key) if t.task is None else (
                by_task.get((t.query_id, t.task)) or by_id.get(t.query_id))
            cpu = time.thread_time()
            self._settle(t, report, wall)
            if t.record is not None and (t.record.state.finished or t.lost):
                self._open.pop(t.key, None)  # never asked about again (a lost job: not at every poll)
            else:
                still_open += 1
                settling += time.thread_time() - cpu
        self._save_outcomes(pending)
        return query * still_open / len(pending) + settling

    def _settle(self, t: _Tracked, rec: Optional[QueueJob], now: float) -> None:
        self._settle_report(t, rec, now)
        if t.cancel_requested and t.record is not None and t.record.state is State.FAILED:
            # killed on the user's request: some schedulers' accounting cannot tell that from a crash
            # (Grid Engine records a qdel'ed job as failed, exit 137)
            t.record = attrs.evolve(t.record, state=State.CANCELLED, reason=_joined(
                "cancelled", f"the scheduler reported it failed, exit code {t.record.exitcode}"))

    def _settle_report(self, t: _Tracked, rec: Optional[QueueJob], now: float) -> None:
        if t.first_asked is None:
            t.first_asked = now
        # the exit file only when the scheduler's answer lacks what it tells (one file read per job per
        # poll would cost more than the query itself)
        ended = None
        if (rec is None or rec.state.finished or rec.state is State.UNKNOWN) and t.exit_file:
            ended = read_exit_file(t.exit_file)
            if ended is not None and ended.not_run:  # its script found a dependency that did not succeed
                # "<dependency's exit file>" (afterok) or "<its exit file> succeeded" (afternotok)
                why = ended.not_run if " " in ended.not_run else f"{ended.not_run} did not succeed"
                t.record = QueueJob(id=t.key, state=State.CANCELLED, reason=f"not run: {why}",
                                    array_id=t.query_id if t.task is not None else None, task_id=t.task)
                return
        if rec is not None and rec.state is not State.UNKNOWN:
            if rec.state.finished and rec.exitcode is None and ended is not None:
                rec = attrs.evolve(rec, exitcode=ended.returncode)
            if rec.state is State.FAILED and t.errfile is not None:
                rec = self.backend.refine_failure(rec, _tail(t.errfile))
            t.record = rec
            return
        if ended is not None:
            log.debug("job %s: the scheduler did not report it; settled from its exit file", t.key)
            state = State.COMPLETED if ended.returncode == 0 else State.FAILED
            base = rec if (rec is not None and (t.task is None or rec.task_id == t.task)) else \
                QueueJob(id=t.key, state=state, array_id=t.query_id if t.task is not None else None,
                         task_id=t.task)
            # the scheduler's reason for not knowing ("unknown", "lost") no longer applies
            reason = base.reason if (rec is None or rec.state is not State.UNKNOWN) and base.reason else \
                "from the job's exit file"
            settled = attrs.evolve(base, state=state, exitcode=ended.returncode, start_time=ended.start,
                                   end_time=ended.end, reason=reason)
            if state is State.FAILED and t.errfile is not None:
                # as for a failure the scheduler reports: its kill message may say more (out of memory)
                settled = self.backend.refine_failure(settled, _tail(t.errfile))
            t.record = settled
            return
        if t.cancel_requested and rec is None:
            # asked to cancel, and gone without a word (cancelled while queued: no exit file, and no
            # accounting record where accounting is off or down)
            t.record = QueueJob(id=t.key, state=State.CANCELLED, reason="cancelled; the scheduler kept no "
                                "record of it", array_id=t.query_id if t.task is not None else None, task_id=t.task)
            return
        known_since = min(x for x in (t.since, t.first_asked) if x is not None)
        if now - known_since > LOST_AFTER:
            # neither the scheduler nor the job can tell any more: stop waiting, say so
            t.record = QueueJob(id=t.key, state=State.UNKNOWN, reason=(rec.reason if rec else None) or
                                "the scheduler no longer knows this job and it wrote no exit file")
            t.lost = True
        elif rec is not None:
            t.record = rec

    def _save_outcomes(self, units: Sequence[_Tracked]) -> None:
        """Keep the final outcomes learnt in this poll in their job records (when, see outcomes.py)."""
        from . import registry
        from .outcomes import OutcomeSaver
        if self._saver is None:
            self._saver = OutcomeSaver(self.backend.name)
        learnt = False
        for t in units:
            if t.owner is None or t.saved or t.record is None or not t.record.state.finished:
                continue
            r = t.record
            self._saver.add(t.owner[0], t.owner[1], registry.Outcome(
                state=r.state.value, exitcode=r.exitcode, reason=r.reason, start_time=r.start_time,
                end_time=r.end_time, nodes=r.nodes))
            t.saved = learnt = True
        if learnt:
            open_tasks: dict[str, int] = {}
            for t in self._open.values():
                if t.owner is not None and t.owner[1] is not None:
                    open_tasks[t.owner[0]] = open_tasks.get(t.owner[0], 0) + 1
            self._saver.save(open_tasks)

    def is_done(self, job_id: str) -> bool:
        t = self._jobs.get(job_id)
        if t is None or t.record is None:
            return False
        return t.record.state.finished or t.lost

    def wait(self, job_ids: Sequence[str], timeout: Optional[float] = None, progress: Optional[bool] = None) -> None:
        """Block until every job is finished (or lost); WaitTimeout after ``timeout`` seconds.

        The queries are the tracker's (``refresh`` when one is due): waits one after another, or in several
        threads, add none. A scheduler that cannot be asked (SchedulerError marked transient) is polled on
        with a warning and a growing pause, until it has failed for ``core.outage_limit`` seconds in a row.
        """
        if isinstance(timeout, bool):  # fyrd's flags in this place (wait's notify, get's save): no timeout
            timeout = None
        if all(self.is_done(j) for j in job_ids):
            return  # known to have ended: no query (reading N results one by one costs none)
        start = time.monotonic()
        base = self.backend.info.poll_interval
        show = _progress_wanted(progress)
        outage = Outage(self.backend.name)
        still = list(job_ids)  # a finished job stays finished: each poll looks only at those left

        def time_left() -> Optional[float]:
            return None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
        try:
            while True:
                try:
                    self.refresh()  # a query only when one is due: a younger state is served as it is
                except SchedulerError as exc:
                    outage.failed(exc)
                    with self._lock:  # the scheduler is away: every waiter of this process backs off
                        self._pause = min(max(self._pause * 1.5, base), 30.0)
                    left = time_left()
                    time.sleep(self.due_in() if left is None else min(self.due_in(), left))
                    if timeout is not None and time_left() == 0.0:
                        still = [j for j in job_ids if not self.is_done(j)]
                        raise WaitTimeout(_timeout_message(still, len(job_ids), timeout), still) from exc
                    continue
                if outage.answered():
                    with self._lock:
                        self._pause = base  # back: follow the jobs closely again
                still = [j for j in still if not self.is_done(j)]
                if show:
                    _show_progress(self, job_ids, len(still), time.monotonic() - start)
                if not still:
                    return
                left = time_left()
                if left == 0.0 and timeout is not None:
                    raise WaitTimeout(_timeout_message(still, len(job_ids), timeout), still)
                pause = self.due_in() or base  # 0 only when nothing was asked: not a busy loop
                time.sleep(pause if left is None else min(pause, left))
        finally:
            if show:
                sys.stderr.write("\n")
                sys.stderr.flush()


def _joined(*parts: Optional[str]) -> str:
    return "; ".join(p for p in parts if p)


def _timeout_message(left: Sequence[str], total: int, timeout: float) -> str:
    return (f"{len(left)} of {total} jobs still not finished after {timeout:g} s "
            f"(e.g. {', '.join(left[:5])}); they go on running")


def _tail(path: Path, size: int = 8192) -> str:
    """The end of a text file ("" when it is missing)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - size))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _progress_wanted(progress: Optional[bool]) -> bool:
    if progress is not None:
        return progress
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _show_progress(tracker: _Reports[_Key], job_ids: Sequence[_Key], left: int, elapsed: float) -> None:
    counts: dict[str, int] = {}
    for j in job_ids:
        rec = tracker.record(j)
        key = rec.state.value if rec else "submitted"
        counts[key] = counts.get(key, 0) + 1
    parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    done = len(job_ids) - left
    sys.stderr.write(f"\r[{done}/{len(job_ids)} done, {elapsed:5.0f} s] {parts}\x1b[K")
    sys.stderr.flush()


def reset_trackers(backend_name: Optional[str] = None) -> None:
    """Forget what this session knows about jobs (of one backend, or all): for tests whose scheduler
    starts afresh and hands out the same ids again (:func:`cluster_core.session.fresh` forgets everything)."""
    state = session.current()
    with state.trackers_lock:
        if backend_name is None:
            state.trackers.clear()
        else:
            state.trackers.pop(backend_name, None)


def tracker(backend_name: str) -> Tracker:
    """The shared poller of a backend in this session."""
    state = session.current()
    with state.trackers_lock:
        found = state.trackers.get(backend_name)
        if found is None:
            found = state.trackers[backend_name] = Tracker(backend_name)
        return found


QueueError = SchedulerError  # the seed's and fyrd's name


def check_queue(qtype: Optional[str] = None) -> bool:
    """True when the backend (default: the one chosen or detected) is installed and answers here; else a
    BackendError saying why (the seed's ``check_queue``: "Raise exception if MODE is incorrect")."""
    from .errors import BackendError
    be = plugins.get_backend(plugins.backend_of(None, qtype))
    detected = be.detect()
    if not detected.available:
        raise BackendError(f"backend {be.name} is not available here: {detected.reason}")
    return True


class Queue:
    """The jobs of a user (and partition) on a backend, as ``QueueJob`` records keyed by job id.

    ``update()`` makes one scheduler query for the listing (plus one for tracked jobs that have left
    it), never one per job, and not more often than the backend's poll interval. With ``history`` the
    jobs this user submitted through cluster-core (their records) are listed too, with how they ended,
    also after the scheduler forgot them; ``since`` (seconds since the epoch) limits them to newer ones.
    """

    QueueJob = QueueJob  # the seed's Queue.QueueJob
    QueueError = SchedulerError  # the seed's Queue.QueueError

    #: fyrd's default for ``can_submit`` / ``wait_to_submit`` (its config's queue.max_jobs)
    MAX_QUEUE_LEN = 1000

    def __init__(self, user: Optional[str] = "self", partition: Optional[str] = None,
                 backend: Optional[str] = None, history: bool = False, since: Optional[float] = None,
                 qtype: Optional[str] = None):
        self.user = getpass.getuser() if user == "self" else user
        self.partition = partition
        self.backend = plugins.get_backend(plugins.backend_of(backend, qtype))
        self.history = history
        self.since = since
        self.jobs: dict[str, QueueJob] = {}
        self._last = 0.0

    def update(self, force: bool = False) -> "Queue":
        now = time.monotonic()
        if not force and self._last and now - self._last < self.backend.info.poll_interval:
            return self
        self._last = now
        listing = {r.id: r for r in self.backend.parse_queue(None, self.user, self.partition)}
        if self.history:
            from .job import jobs as recorded_jobs
            for job in recorded_jobs(since=self.since, backend=self.backend.name):
                units: Sequence[Union[Job, Task]] = job.tasks or [job]
                for unit in units:
                    unit_id = cast(str, unit.id)  # a recorded job was submitted: it has its id
                    rec = unit.record or QueueJob(unit_id, State.PENDING)
                    rec = attrs.evolve(rec, id=unit_id, name=rec.name or unit.name)
                    if self.partition and rec.partition not in (None, self.partition):
                        continue
                    self.jobs.setdefault(unit_id, rec)
        self.jobs.update(listing)
        track = tracker(self.backend.name)
        gone = [j for j, r in self.jobs.items() if j not in listing and not r.state.finished]
        if gone:
            for j in gone:
                track.track(j)
            track.refresh(force=True)
            for j in gone:
                settled = track.record(j)
                if settled is not None:
                    self.jobs[j] = settled
        return self

    def _view(self, pred: Callable[[State], bool]) -> dict[str, records.QueueJob]:
        return {j: r for j, r in self.jobs.items() if pred(r.state)}

    @property
    def running(self) -> dict[str, records.QueueJob]:
        return self._view(lambda s: s in (State.RUNNING, State.COMPLETING, State.SUSPENDED))

    @property
    def queued(self) -> dict[str, records.QueueJob]:
        return self._view(lambda s: s.queued)

    @property
    def completed(self) -> dict[str, records.QueueJob]:
        return self._view(lambda s: s is State.COMPLETED)

    @property
    def failed(self) -> dict[str, records.QueueJob]:
        return self._view(lambda s: s.finished and s is not State.COMPLETED)

    bad = failed  # fyrd's name

    @property
    def finished(self) -> dict[str, records.QueueJob]:
        return self._view(lambda s: s.finished)

    @property
    def queue(self) -> list[records.QueueJob]:
        """The jobs in the queue, as a list (the seed's ``Queue.queue``)."""
        return list(self.jobs.values())

    def can_submit(self, max_queue_len: Optional[int] = None) -> bool:
        """True when this user's running and queued jobs are fewer than ``max_queue_len`` (default
        :attr:`MAX_QUEUE_LEN`; 0 means no limit)."""
        limit = self.MAX_QUEUE_LEN if max_queue_len is None else int(max_queue_len)
        if limit <= 0:
            return True
        self.update()
        return sum(1 for r in self.jobs.values() if not r.state.finished) < limit

    def wait_to_submit(self, max_queue_len: Optional[int] = None, timeout: Optional[float] = None,
                       max_jobs: Optional[int] = None) -> None:
        """Block until :meth:`can_submit` says yes, asking the scheduler once per poll interval
        (``max_jobs`` is fyrd's name for ``max_queue_len``)."""
        max_queue_len = max_jobs if max_queue_len is None else max_queue_len
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.can_submit(max_queue_len):
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"the queue of {self.user} on {self.backend.name} stayed at "
                                  f"{max_queue_len or self.MAX_QUEUE_LEN} jobs or more for {timeout:g} s")
            time.sleep(self.backend.info.poll_interval)
            self.update(force=True)

    def wait(self, jobs: Any, timeout: Optional[float] = None, progress: Optional[bool] = None,
             return_disp: bool = False, notify: Any = None) -> bool:
        """Wait for a job or jobs (Job objects or ids); True when all completed successfully. fyrd's
        ``return_disp`` and ``notify`` (e-mail when done) are accepted and do nothing."""
        from .job import wait as wait_jobs
        return wait_jobs(jobs, timeout=timeout, backend=self.backend.name, progress=progress)

    def get(self, jobs: Any, timeout: Optional[float] = None, return_exceptions: bool = False) -> Any:
        """Results of a job or jobs (Job objects or ids), as :func:`cluster_core.get`."""
        from .job import get as get_jobs
        return get_jobs(jobs, timeout=timeout, backend=self.backend.name, return_exceptions=return_exceptions)

    def __getitem__(self, job_id: str) -> records.QueueJob:
        return self.jobs[str(job_id)]

    def __contains__(self, job_id: object) -> bool:
        return str(getattr(job_id, "id", job_id)) in self.jobs

    def __iter__(self) -> Iterator[records.QueueJob]:
        return iter(self.jobs.values())

    def __len__(self) -> int:
        return len(self.jobs)

    def __repr__(self) -> str:
        return (f"<Queue {self.backend.name} user={self.user} {len(self.running)} running, "
                f"{len(self.queued)} queued, {len(self.completed)} completed>")
