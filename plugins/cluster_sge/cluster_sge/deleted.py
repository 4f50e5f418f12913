"""The jobs the cancel hook deleted, written down where every process of the user reads them.

Accounting cannot tell a ``qdel`` from a kill by a signal (both ``failed 100``, exit 137), and a job deleted
before it started reaches no accounting record at all, so what was deleted must be known from elsewhere,
and not from the memory of the process that deleted it: a job cancelled in one shell is read in another.
Each job number gets a file in the backend's state directory holding one ``<id> <time>`` line per
deletion ("12" for the job or array, "12.3" for one task). A note made before the job was submitted is
about an earlier job of the same number (a cell started afresh counts from 1 again) and is ignored.
"""

from __future__ import annotations

import os
import re
import time
from typing import Iterable, Optional

from cluster_core.backend import state_dir

#: Notes older than this are removed when new ones are written (seconds).
KEEP = 30 * 86400.0
#: How far the qmaster's clock (a job's submission time) may run ahead of this host's (seconds).
CLOCK_SLACK = 60.0


def _dir() -> str:
    cell = re.sub(r"[^\w.-]", "_", os.environ.get("SGE_CELL") or "default")
    path = os.path.join(state_dir("sge"), "deleted", cell)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def mark(job_ids: Iterable[str], now: Optional[float] = None) -> None:
    """Note that these ids ("12", "12.3") were deleted now: one appended line per id, in one file per job
    number (an append of one short line is never read half done)."""
    when = time.time() if now is None else now
    folder = _dir()
    by_number: dict[str, list[str]] = {}
    for job_id in job_ids:
        by_number.setdefault(job_id.split(".")[0], []).append(job_id)
    for number, ids in by_number.items():
        fd = os.open(os.path.join(folder, number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, "".join(f"{i} {when:.3f}\n" for i in ids).encode())
        finally:
            os.close(fd)
    _prune(folder, when)


def _prune(folder: str, now: float) -> None:
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.stat().st_mtime < now - KEEP:
                        os.unlink(entry.path)
                except OSError:
                    continue
    except OSError:
        return


def read(numbers: Iterable[str]) -> dict[str, float]:
    """When each id of these job numbers was deleted (the latest note of each); {} for none."""
    out: dict[str, float] = {}
    folder = _dir()
    for number in dict.fromkeys(numbers):
        try:
            with open(os.path.join(folder, number)) as fh:
                text = fh.read()
        except OSError:
            continue
        for line in text.splitlines():
            job_id, _, when = line.partition(" ")
            try:
                out[job_id] = max(out.get(job_id, 0.0), float(when))
            except ValueError:
                continue
    return out


def applies(when: Optional[float], submitted: Optional[float]) -> bool:
    """Whether a deletion noted at ``when`` concerns a job submitted at ``submitted`` (not an earlier job
    of the same number)."""
    return when is not None and (submitted is None or when >= submitted - CLOCK_SLACK)
