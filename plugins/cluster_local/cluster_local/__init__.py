"""The local backend of cluster-core: a per-user scheduler for this machine.

Jobs live in a SQLite database in the state directory ($CLUSTER_LOCAL_DIR, else the user's state dir
+ ``cluster-core/local``); a runner daemon, started on demand and gone after a minute of idleness, runs
them within a core and memory limit ($CLUSTER_LOCAL_THREADS / config ``local.threads``,
$CLUSTER_LOCAL_MEMORY / ``local.memory``). Any process can submit, list, wait for and cancel jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence


def state_dir(path: Optional[Path] = None) -> Path:
    """The state directory in use (created if missing)."""
    from .settings import state_dir as _state_dir
    return _state_dir(path)


def runner_status(path: Optional[Path] = None) -> Optional[dict[str, Any]]:
    """The runner's own report (pid, limits, running and pending job ids), or None when none runs."""
    from .client import runner_status as _status
    return _status(path)


def ensure_runner(path: Optional[Path] = None) -> None:
    """Start the runner of a state dir unless one is running."""
    from .client import ensure_runner as _ensure
    _ensure(path)


def shutdown_runner(path: Optional[Path] = None, timeout: float = 30.0) -> bool:
    """Stop the runner, cancelling every queued and running job; True when one was running."""
    from .control import shutdown_runner as _shutdown
    return _shutdown(path, timeout)


def release(job_ids: Sequence[Any], path: Optional[Path] = None) -> int:
    """Let held jobs (submitted with hold=True) run; returns how many were released."""
    from .control import release as _release
    return _release(job_ids, path)


def purge(older_than: float = 7 * 86400, path: Optional[Path] = None) -> int:
    """Forget jobs that finished more than ``older_than`` seconds ago; returns how many."""
    from .control import purge as _purge
    return _purge(older_than, path)


__all__ = ["state_dir", "runner_status", "ensure_runner", "shutdown_runner", "release", "purge"]
