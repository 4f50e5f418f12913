"""Where the local scheduler keeps its state, and the settings it runs by (environment, then config).

The state directory holds the database, the runner's socket, locks and log; every process of one user on
one host finds the same one. The job marker (``$CLUSTER_LOCAL_JOB``) in every job's environment names the
state directory and the job, so a restarted runner finds a job's processes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

from cluster_core.backend import ConfigError, parse_memory, setting

ENV_DIR = "CLUSTER_LOCAL_DIR"
ENV_THREADS = "CLUSTER_LOCAL_THREADS"
ENV_MEMORY = "CLUSTER_LOCAL_MEMORY"
ENV_IDLE = "CLUSTER_LOCAL_IDLE"
ENV_GRACE = "CLUSTER_LOCAL_KILL_GRACE"
ENV_WORKER_JOBS = "CLUSTER_LOCAL_WORKER_JOBS"
# Set in every job's environment: "<state key>:<job id>". Lets a restarted runner find a job's processes.
MARKER = "CLUSTER_LOCAL_JOB"
# A warm worker shows the job it runs in place of this many characters after "<state key>:" (zero-padded).
MARKER_DIGITS = 12

DEFAULT_IDLE = 60.0
DEFAULT_GRACE = 3.0
DEFAULT_WORKER_JOBS = 200

# --- where ------------------------------------------------------------------------------------------

_dirs: dict[tuple[Optional[str], Optional[str]], Path] = {}


def state_dir(path: Optional[os.PathLike[str] | str] = None) -> Path:
    """The state directory (created): ``path``, else $CLUSTER_LOCAL_DIR, else the user's state dir +
    ``local/<host name>`` (a home directory shared by several hosts must not share one runner or one
    SQLite database across them). Resolved once per process for each setting: it is asked on every call."""
    if isinstance(path, Path) and path in _dirs.values():
        return path
    key = (os.fspath(path) if path is not None else None, os.environ.get(ENV_DIR) or None)
    found = _dirs.get(key)
    if found is not None and found.is_dir():
        return found
    if path is None:
        path = key[1]
    if path is None:
        import platformdirs
        import socket
        path = Path(platformdirs.user_state_dir("cluster-core", appauthor=False)) / "local" / socket.gethostname()
    p = Path(path).expanduser()
    p.mkdir(parents=True, exist_ok=True, mode=0o700)
    _dirs[key] = p = p.resolve()
    return p


def state_key(sdir: Path) -> str:
    """A short stable name for a state directory (in socket paths and the job marker)."""
    return hashlib.sha1(os.fsencode(str(sdir))).hexdigest()[:12]


def marker_slot(key: str) -> str:
    """The marker value a runner starts with: no job yet, room for a job id (see worker.MarkerSlot)."""
    return f"{key}:" + "-" * MARKER_DIGITS


def marker_job(value: Optional[str], key: str) -> Optional[int]:
    """The job id in a marker value of this state dir ("<key>:42" or zero-padded), else None."""
    if not value or not value.startswith(key + ":"):
        return None
    digits = value[len(key) + 1:]
    return int(digits) if digits.isdigit() else None


# --- settings ---------------------------------------------------------------------------------------

def _setting(env: str, key: str) -> tuple[Optional[str], str]:
    value = os.environ.get(env, "").strip()
    if value:
        return value, f"${env}"
    value = (setting(key) or "").strip()
    return (value or None), f"config {key}"


_cpus: list[int] = []


def _cpu_count() -> int:
    if not _cpus:  # asked at every submission; reading it costs tens of microseconds
        _cpus.append(os.cpu_count() or 1)
    return _cpus[0]


def threads_limit() -> int:
    """Cores the runner may hand out at once: $CLUSTER_LOCAL_THREADS, config local.threads, all CPUs."""
    value, where = _setting(ENV_THREADS, "local.threads")
    if value is None:
        return _cpu_count()
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{where}={value!r}: expected a whole number of cores, 1 or more")
    return n


def memory_limit() -> int:
    """MB the runner may hand out at once: $CLUSTER_LOCAL_MEMORY, config local.memory, the RAM."""
    value, where = _setting(ENV_MEMORY, "local.memory")
    if value is None:
        import psutil
        return max(1, psutil.virtual_memory().total // 2 ** 20)
    try:
        return parse_memory(value)
    except ValueError as exc:
        raise ConfigError(f"{where}={value!r}: {exc}") from None


def worker_jobs() -> int:
    """How many function jobs one warm worker runs before a fresh one is forked
    ($CLUSTER_LOCAL_WORKER_JOBS, config local.worker_jobs; 0: none, every function job runs its script)."""
    value, where = _setting(ENV_WORKER_JOBS, "local.worker_jobs")
    if value is None:
        return DEFAULT_WORKER_JOBS
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise ConfigError(f"{where}={value!r}: expected a whole number of jobs, 0 or more")
    return n


def _seconds(env: str, default: float) -> float:
    value = os.environ.get(env, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"${env}={value!r}: expected a number of seconds") from None
    if seconds < 0:
        raise ConfigError(f"${env}={value!r}: must not be negative")
    return seconds


def idle_timeout() -> float:
    """Seconds the runner stays up with nothing running ($CLUSTER_LOCAL_IDLE, default 60)."""
    return _seconds(ENV_IDLE, DEFAULT_IDLE)


def kill_grace() -> float:
    """Seconds between SIGTERM and SIGKILL when a job is cancelled or times out."""
    return _seconds(ENV_GRACE, DEFAULT_GRACE)

