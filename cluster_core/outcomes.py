"""When the outcomes a tracker learns go into the job records (see :mod:`cluster_core.registry`).

A job's outcome is written as soon as it is known: one small link, once. The outcomes of an array's (or
a map's) tasks share one file beside the record, which each write reads, merges and rewrites whole; were
it written at every poll that saw a task end, a wait on N tasks would write O(N) each time, O(N x polls)
in all (a 2000-task map spent half its waiting CPU there). So a record of many tasks is written when
its tasks left open in this process are none, when its unsaved outcomes reach half of those it holds
(the writes grow geometrically: O(N) in all), when its last write is :data:`FRESH_FOR` seconds old, and
for what is left, when the process exits. Losing the unsaved ones to a kill costs nothing but a query:
the scheduler, its accounting or the tasks' exit files still tell how they ended.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import Mapping, Optional

from . import registry

log = logging.getLogger(__name__)

#: The oldest an array record's last write may be while its tasks go on ending (seconds).
FRESH_FOR = 30.0


class OutcomeSaver:
    """The outcomes one backend's tracker has learnt and not yet written, by record id."""

    def __init__(self, backend: str):
        self.backend = backend
        self._unsaved: dict[str, dict[Optional[int], registry.Outcome]] = {}
        self._held: dict[str, int] = {}  # outcomes written into each record so far
        self._written: dict[str, float] = {}  # when each record was last written (monotonic)
        self._lock = threading.Lock()
        _savers.add(self)

    def add(self, record_id: str, index: Optional[int], outcome: registry.Outcome) -> None:
        """An outcome to keep: ``index`` None for a job, else the task's index in the record."""
        with self._lock:
            self._unsaved.setdefault(record_id, {})[index] = outcome

    def save(self, open_tasks: Mapping[str, int]) -> None:
        """Write the records that are due; ``open_tasks``: how many tasks of each record this process
        still waits to see end."""
        now = time.monotonic()
        with self._lock:
            done = {rid for rid, outcomes in self._unsaved.items() if None in outcomes or not open_tasks.get(rid)}
            due = {rid: outcomes for rid, outcomes in self._unsaved.items()
                   if rid in done or 2 * len(outcomes) >= self._held.get(rid, 0)
                   or now - self._written.get(rid, now) >= FRESH_FOR}
            self._write(due, now)
            for rid in done:  # written whole: nothing more to pace (a long-lived process keeps no trace)
                self._held.pop(rid, None)
                self._written.pop(rid, None)

    def flush(self) -> None:
        """Write every unsaved outcome (at exit)."""
        with self._lock:
            self._write(dict(self._unsaved), time.monotonic())

    def _write(self, due: dict[str, dict[Optional[int], registry.Outcome]], now: float) -> None:
        if not due:
            return
        for rid, outcomes in due.items():
            del self._unsaved[rid]
            self._held[rid] = self._held.get(rid, 0) + len(outcomes)
            self._written[rid] = now
        try:
            registry.record_outcomes_many(self.backend, due)  # each failure logged, the rest written
        except registry.RegistryError as exc:  # the root itself cannot be found (a broken config)
            log.warning("%s", exc)


_savers: weakref.WeakSet[OutcomeSaver] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for saver in list(_savers):
        try:
            saver.flush()
        except Exception as exc:  # noqa: BLE001 - at exit, a record not written is a warning, not a crash
            log.warning("job outcomes not written at exit: %s", exc)
