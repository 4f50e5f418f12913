"""How a warm worker shows itself in /proc: a command line of its own, and the marker of the job it runs.

A worker is forked from the runner, so /proc/<pid>/cmdline and /proc/<pid>/environ show the runner's. It
writes its own title over the first, and the running job's id into the room the runner's starter left in
the second (``$CLUSTER_LOCAL_JOB``, see :func:`settings.marker_slot`), so a restarted runner finds and
adopts it like a script job's process.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Optional

from .settings import MARKER, MARKER_DIGITS, marker_slot

PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36


def _stat_fields() -> list[bytes]:
    """/proc/self/stat from its third field on (the name in parentheses may hold spaces)."""
    with open("/proc/self/stat", "rb") as fh:
        stat = fh.read()
    return stat[stat.rindex(b")") + 2:].split()


def retitle(title: list[str]) -> None:
    """Show ``title`` as this process's command line (/proc/<pid>/cmdline, ps), in place of the
    runner's, which a worker inherits: a worker is not a runner. Best effort."""
    try:
        fields = _stat_fields()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49)
        size = end - start
        data = " ".join(title).encode()[:max(0, size - 2)] + b"\0"
        # the rest not NUL: the kernel then shows the area up to the first NUL (as for setproctitle)
        ctypes.memmove(start, data + b" " * (size - len(data)), size)
    except (OSError, ValueError, IndexError):
        pass


class MarkerSlot:
    """The characters of MARKER's value in this process's original environment block (what
    /proc/<pid>/environ shows, whatever ``os.environ`` holds later), where a forked worker writes the
    id of the job it runs. The runner gets one from its starter (``settings.marker_slot``)."""

    def __init__(self, address: int):
        self.address = address

    @classmethod
    def find(cls, key: str) -> Optional["MarkerSlot"]:
        """The slot of this process, or None (no slot in the environment, or not Linux)."""
        wanted = f"{MARKER}={marker_slot(key)}".encode()
        if os.environ.get(MARKER) != marker_slot(key):
            return None
        try:
            fields = _stat_fields()
            start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50 and 51)
            block = ctypes.string_at(start, end - start)
        except (OSError, ValueError, IndexError):
            return None
        at = block.find(b"\0" + wanted + b"\0")
        at = at + 1 if at >= 0 else (0 if block.startswith(wanted + b"\0") else -1)
        if at < 0:
            return None
        return cls(start + at + len(wanted) - MARKER_DIGITS)

    def show(self, job_id: Optional[int]) -> None:
        text = "-" * MARKER_DIGITS if job_id is None else f"{job_id:0{MARKER_DIGITS}d}"
        if len(text) == MARKER_DIGITS:
            ctypes.memmove(self.address, text.encode(), MARKER_DIGITS)


def prctl(option: int, value: Any) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except Exception:
        pass

