"""The local scheduler's state: one SQLite database per state directory, and the settings it runs by.

Every process (submitters, the runner, ``cluster queue``) opens the same database in WAL mode; each change
is one short ``BEGIN IMMEDIATE`` transaction, so readers never wait and a killed process loses nothing it
committed. ``synchronous=NORMAL`` is safe against a crashed or killed process (only a power cut can drop
the last transactions), and keeps a commit well under a millisecond.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional

from cluster_core.errors import ConfigError

ENV_DIR = "CLUSTER_LOCAL_DIR"
ENV_THREADS = "CLUSTER_LOCAL_THREADS"
ENV_MEMORY = "CLUSTER_LOCAL_MEMORY"
ENV_IDLE = "CLUSTER_LOCAL_IDLE"
ENV_GRACE = "CLUSTER_LOCAL_KILL_GRACE"
# Set in every job's environment: "<state key>:<job id>". Lets a restarted runner find a job's processes.
MARKER = "CLUSTER_LOCAL_JOB"

DEFAULT_IDLE = 60.0
DEFAULT_GRACE = 3.0
SCHEMA_VERSION = 1

# Raw states as stored; the plugin maps them onto cluster_core.records.State.
PENDING, HELD, RUNNING = "PENDING", "HELD", "RUNNING"
COMPLETED, FAILED, CANCELLED, TIMEOUT, UNKNOWN = "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "UNKNOWN"
ACTIVE = (PENDING, HELD, RUNNING)
FINISHED = (COMPLETED, FAILED, CANCELLED, TIMEOUT, UNKNOWN)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    script TEXT NOT NULL,
    options TEXT NOT NULL,          -- the checked options, JSON
    env TEXT NOT NULL,              -- the job's environment (submitter's, filtered by `export`), JSON
    cores INTEGER NOT NULL,
    mem_mb INTEGER,
    time_limit INTEGER,             -- seconds
    depends TEXT NOT NULL,          -- JSON list of integer job ids
    workdir TEXT NOT NULL,
    outfile TEXT,
    errfile TEXT,
    state TEXT NOT NULL,
    exitcode INTEGER,
    reason TEXT,
    pid INTEGER,
    pid_ctime REAL,                 -- psutil create_time of pid: tells the job from a reused pid
    submit_time REAL NOT NULL,
    start_time REAL,
    end_time REAL,
    user TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_active ON jobs(state) WHERE state IN ('PENDING', 'HELD', 'RUNNING');
CREATE INDEX IF NOT EXISTS jobs_end ON jobs(end_time);
"""


# --- where ------------------------------------------------------------------------------------------

_dirs: dict[tuple, Path] = {}


def state_dir(path: Optional[os.PathLike | str] = None) -> Path:
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


# --- settings ---------------------------------------------------------------------------------------

def _setting(env: str, key: str) -> tuple[Optional[str], str]:
    value = os.environ.get(env, "").strip()
    if value:
        return value, f"${env}"
    from cluster_core import config
    value = (config.get_option(key) or "").strip()
    return (value or None), f"config {key}"


def threads_limit() -> int:
    """Cores the runner may hand out at once: $CLUSTER_LOCAL_THREADS, config local.threads, all CPUs."""
    value, where = _setting(ENV_THREADS, "local.threads")
    if value is None:
        return os.cpu_count() or 1
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
    from cluster_core.options import parse_memory
    try:
        return parse_memory(value)
    except ValueError as exc:
        raise ConfigError(f"{where}={value!r}: {exc}") from None


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


# --- the database -----------------------------------------------------------------------------------

_local = threading.local()


def connect(sdir: Path) -> sqlite3.Connection:
    """This thread's connection to the state database (opened once per process and thread)."""
    conns = getattr(_local, "conns", None)
    pid = os.getpid()
    if conns is None or getattr(_local, "pid", None) != pid:
        conns = _local.conns = {}  # never reuse a connection across fork
        _local.pid = pid
    conn = conns.get(sdir)
    if conn is None:
        conn = open_db(sdir)
        conns[sdir] = conn
    return conn


def open_db(sdir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(sdir / "jobs.db"), timeout=30.0, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA synchronous=NORMAL")
    if not _ready(conn):
        # First use: switching to WAL can fail at once with "database is locked" (no busy handler)
        # when two processes do it together, so one process at a time sets the database up.
        fd = os.open(sdir / "init.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            deadline = time.monotonic() + 30.0
            while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                except sqlite3.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                with transaction(conn):
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        finally:
            os.close(fd)
    return conn


def _ready(conn: sqlite3.Connection) -> bool:
    return (conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
            and conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken with the write lock up front (no deadlock between two writers)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def placeholders(items: Iterable[Any]) -> str:
    return ",".join("?" * len(list(items)))


def chunks(items: list, size: int = 500) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def to_json(value: Any) -> str:
    return json.dumps(value, default=_jsonable, separators=(",", ":"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


# --- the job's environment --------------------------------------------------------------------------

MINIMAL_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TZ")


def job_environment(base: Mapping[str, str], export: Optional[Iterable[str]]) -> dict[str, str]:
    """The environment a job gets, like ``sbatch --export``: ALL (default) passes the submitter's whole
    environment; NONE a minimal one (PATH, HOME, USER, ...); names pass those variables on top of the
    minimal one (on top of all of them when ALL is also given); NAME=value pairs set values."""
    items = list(export or ("ALL",))
    everything = any(i.upper() == "ALL" for i in items)
    base = {k: v for k, v in base.items() if k != MARKER}
    env = dict(base) if everything else {k: base[k] for k in MINIMAL_ENV if k in base}
    env.setdefault("PATH", os.defpath)
    for item in items:
        if item.upper() in ("ALL", "NONE"):
            continue
        name, eq, value = item.partition("=")
        if eq:
            env[name] = value
        elif name in base:
            env[name] = base[name]
    return env
