"""The local scheduler's decisions: which queued jobs start now, and which can never start.

Pure: jobs, limits and final states in, decisions out; no database, no process. The runner feeds it what
it reads from the store and what its supervisor sees end, and carries its decisions out. Jobs start in id
order (first in, first out); a job that does not fit lets later, smaller ones past it (backfill). A job
waits for its dependencies (afterok, afternotok, afterany, after: started; singleton: the earlier jobs of
its name and user) and is cancelled when one can no longer hold, and with it, transitively, every job
waiting on it that way.
"""

from __future__ import annotations

import json
from typing import Callable, Iterable, Mapping, Optional

import attrs

from .store import CANCELLED, COMPLETED, FINISHED, HELD, PENDING, RUNNING, JobRow

NEVER_REASON = "DependencyNeverSatisfied"
BAD = frozenset(FINISHED) - {COMPLETED}


def verdict(kind: str, state: Optional[str]) -> str:
    """Whether one dependency of ``kind`` holds ('ok'), may yet ('wait') or never will ('never'), given the
    state of the job it names (None: no such job any more, long finished)."""
    if kind == "after":  # started, or ended without starting
        return "wait" if state in (PENDING, HELD) else "ok"
    if kind == "afterany":
        return "ok" if state is None or state in FINISHED else "wait"
    if state is None:
        return "never"  # its outcome is forgotten
    if state not in FINISHED:
        return "wait"
    if kind == "afternotok":
        return "ok" if state in BAD else "never"
    return "ok" if state == COMPLETED else "never"  # afterok


@attrs.define(frozen=True, slots=True)
class Job:
    """A job as scheduling sees it: what it asks for (cores, MB of memory) and what it waits on (``deps``:
    (type, job id) pairs; ``singleton``: the earlier jobs of its name and user)."""

    id: int
    cores: int = 1
    mem: int = 0
    deps: tuple[tuple[str, int], ...] = ()
    singleton: bool = False
    name: str = ""
    user: Optional[str] = None

    @classmethod
    def from_row(cls, row: JobRow) -> "Job":
        """From a jobs-table row (id, cores, mem_mb, depends, name, user): ``depends`` holds an id
        (afterok), [type, id] or "singleton" per item."""
        deps: list[tuple[str, int]] = []
        singleton = False
        for item in json.loads(row["depends"] or "[]"):
            if item == "singleton":
                singleton = True
            elif isinstance(item, list):
                deps.append((str(item[0]), int(item[1])))
            else:
                deps.append(("afterok", int(item)))
        return cls(row["id"], row["cores"], row["mem_mb"] or 0, tuple(deps), singleton, row["name"], row["user"])


@attrs.define(frozen=True, slots=True)
class Dropped:
    """A queued job that can never start, and why (it ends CANCELLED)."""

    id: int
    reason: str


@attrs.define(frozen=True, slots=True)
class Plan:
    """One scheduling pass: the jobs to start, in this order, and the queued jobs it cancelled."""

    starts: list[Job]
    dropped: list[Dropped]


class Scheduler:
    """The queue (``pending``, in id order), the jobs holding cores and memory (``running``) and the final
    states it knows (``known``), within ``cores`` and ``memory`` (MB). ``lookup(job_id)`` tells the state of
    a job it does not know (the store's; None when there is no such job)."""

    def __init__(self, cores: int, memory: int, lookup: Optional[Callable[[int], Optional[str]]] = None):
        self.cores, self.memory = cores, memory
        self.lookup = lookup or (lambda job_id: None)
        self.pending: dict[int, Job] = {}
        self._order: list[int] = []  # queued ids in order, and some that left (skipped): see _queued
        self._head = 0  # ids before this one in _order have left the queue
        self.running: dict[int, Job] = {}
        self.discarded: set[int] = set()  # running, but holding nothing: being killed unrecorded
        self.waiters: dict[int, list[int]] = {}  # job id -> queued jobs that depend on it
        self.known: dict[int, str] = {}
        self._after = 0  # queued jobs with an 'after' dependency: one start may let them start

    # --- what the runner tells it ---------------------------------------------------------------

    def queue(self, job: Job) -> None:
        """A job joins the queue (after the ones there: give them in id order)."""
        self.pending[job.id] = job
        self._order.append(job.id)
        for kind, dep in job.deps:
            self.waiters.setdefault(dep, []).append(job.id)
        self._after += any(kind == "after" for kind, _dep in job.deps)

    def requeue(self, jobs: Iterable[Job]) -> list[int]:
        """Replace the queue by ``jobs`` (in id order), but for those it runs or knows ended (what the store
        says of them may be behind); returns the ids that were queued and are not any more."""
        before = self.pending
        self.clear()
        for job in jobs:
            if job.id not in self.running and job.id not in self.known:
                self.queue(job)
        return [job_id for job_id in before if job_id not in self.pending]

    def clear(self) -> None:
        """Forget the queue (the runner is stopping, or reads it anew)."""
        self.pending, self.waiters, self._after = {}, {}, 0
        self._order, self._head = [], 0

    def run(self, job: Job) -> None:
        """A job holds its cores and memory: one it did not choose (adopted from a dead runner)."""
        self.running[job.id] = job

    def discard(self, job_id: int) -> None:
        """A running job's start was undone (another process cancelled it first): it holds nothing any
        more, but counts as running for its dependents until :meth:`ended`."""
        self.discarded.add(job_id)

    def ended(self, job_id: int, state: Optional[str]) -> list[Dropped]:
        """A job chosen to run (or adopted) is gone: with its final ``state`` (None: a discarded one, or
        whose row vanished) it ends as :meth:`final` says."""
        self.running.pop(job_id, None)
        self.discarded.discard(job_id)
        return self.final(job_id, state) if state is not None else []

    def remember(self, job_id: int, state: str) -> None:
        """A final state read from the store."""
        self.known[job_id] = state

    def final(self, job_id: int, state: str) -> list[Dropped]:
        """Remember a job's final state; cancel every queued job waiting on it whose dependency can no
        longer hold (afterok on a failed job, afternotok on a completed one), transitively."""
        self.known[job_id] = state
        dropped: list[Dropped] = []
        ended = [job_id]
        while ended:
            for waiter in self.waiters.pop(ended.pop(), ()):
                job = self.pending.get(waiter)
                if job is not None and self._dependency(job, {}) == "never":
                    self._drop(job, NEVER_REASON, dropped)
                    ended.append(job.id)
        return dropped

    # --- its decisions --------------------------------------------------------------------------

    def schedule(self) -> Plan:
        """Choose the queued jobs that start now; they hold their cores and memory from here on. A job
        waiting to start 'after' one chosen here starts in the same plan, after it."""
        starts: list[Job] = []
        dropped: list[Dropped] = []
        while self.pending:
            chosen = self._pass(dropped)
            starts += chosen
            if not chosen or not self._after:
                break
        return Plan(starts, dropped)

    def _pass(self, dropped: list[Dropped]) -> list[Job]:
        free_cores = self.cores - sum(j.cores for i, j in self.running.items() if i not in self.discarded)
        free_mem = self.memory - sum(j.mem for i, j in self.running.items() if i not in self.discarded)
        chosen: dict[int, Job] = {}
        for job_id in self._queued():
            if free_cores <= 0:
                break
            job = self.pending.get(job_id)
            if job is None:
                continue  # started or cancelled (by a cascade in this pass, say)
            if job.cores > self.cores or job.mem > self.memory:
                self._drop(job, f"asks {job.cores} cores / {job.mem} MB; this runner has {self.cores} cores / "
                                f"{self.memory} MB", dropped)
                dropped.extend(self.final(job.id, CANCELLED))
                continue
            dep = self._dependency(job, chosen)
            if dep == "never":
                self._drop(job, NEVER_REASON, dropped)
                dropped.extend(self.final(job.id, CANCELLED))
                continue
            if dep == "wait":
                continue
            if job.cores <= free_cores and job.mem <= free_mem:  # else later, smaller jobs may backfill
                self._unqueue(job)
                chosen[job.id] = job
                free_cores -= job.cores
                free_mem -= job.mem
        self.running.update(chosen)
        return list(chosen.values())

    def _queued(self) -> Iterable[int]:
        """The ids to look at in order: ``_order`` from the first still queued. A pass looks at a few jobs
        when few cores are free, so it costs the same with ten or ten thousand queued (no copy of all)."""
        order, pending = self._order, self.pending
        head = self._head
        while head < len(order) and order[head] not in pending:
            head += 1
        if head > 1024 and head * 2 > len(order):
            del order[:head]
            head = 0
        self._head = head
        return (order[i] for i in range(head, len(order)))  # no copy: _order does not change in a pass

    def _drop(self, job: Job, reason: str, dropped: list[Dropped]) -> None:
        self._unqueue(job)
        self.known[job.id] = CANCELLED
        dropped.append(Dropped(job.id, reason))

    def _unqueue(self, job: Job) -> None:
        del self.pending[job.id]
        self._after -= any(kind == "after" for kind, _dep in job.deps)

    def _dependency(self, job: Job, starting: Mapping[int, Job]) -> str:
        """'ok' when every dependency holds, 'never' when one cannot any more, else 'wait'. ``starting``:
        the jobs this pass starts."""
        result = "ok"
        if job.singleton and self._singleton_waits(job, starting):
            result = "wait"
        for kind, dep in job.deps:
            if dep in self.pending or dep in starting:
                result = "wait"
                continue
            state: Optional[str]
            if dep in self.running:
                state = RUNNING
            else:
                state = self.known.get(dep)
                if state is None:
                    state = self.lookup(dep)
                    if state in FINISHED:
                        self.known[dep] = state
            answer = verdict(kind, state)
            if answer == "never":
                return "never"
            if answer == "wait":
                result = "wait"
        return result

    def _singleton_waits(self, job: Job, starting: Mapping[int, Job]) -> bool:
        """As Slurm's singleton: another job of the same name and user runs, or was queued before it."""
        for other_id, other in self.running.items():
            if other_id not in self.discarded and other.name == job.name and other.user == job.user:
                return True
        for other in (*self.pending.values(), *starting.values()):
            if other.id < job.id and other.name == job.name and other.user == job.user:
                return True
        return False

