"""The local scheduler's state: one SQLite database per state directory, and the settings it runs by.

Every process (submitters, the runner, ``cluster queue``) opens the same database in WAL mode; each change
is one short ``BEGIN IMMEDIATE`` transaction, so readers never wait and a killed process loses nothing it
committed. ``synchronous=NORMAL`` is safe against a crashed or killed process (only a power cut can drop
the last transactions), and keeps a commit well under a millisecond. A damaged database is set aside and
replaced by a new one (see :func:`using`); job ids go on after a high-water mark kept beside it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, TypeVar

from cluster_core.errors import ConfigError, SchedulerError

log = logging.getLogger("cluster_core.local")
T = TypeVar("T")

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
SCHEMA_VERSION = 2  # 2: the call column

# Raw states as stored; the plugin maps them onto cluster_core.records.State.
PENDING, HELD, RUNNING = "PENDING", "HELD", "RUNNING"
COMPLETED, FAILED, CANCELLED, TIMEOUT, UNKNOWN = "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "UNKNOWN"
OUT_OF_MEMORY = "OUT_OF_MEMORY"
ACTIVE = (PENDING, HELD, RUNNING)
FINISHED = (COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, UNKNOWN)

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
    depends TEXT NOT NULL,          -- JSON list: an id (afterok), [type, id], or "singleton"
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
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    call TEXT                       -- a function job's FunctionCall, JSON: the runner may run it warm
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
    from cluster_core import config
    value = (config.get_option(key) or "").strip()
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
    from cluster_core.options import parse_memory
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


# --- the database -----------------------------------------------------------------------------------

DB_NAME = "jobs.db"
# Every job id up to the number in this file may have been handed out: a database made anew (the old
# one damaged, emptied or lost) starts after it, so an id never names two jobs. Raised in blocks, so a
# submission rarely writes it.
IDS_NAME = "ids"
ID_BLOCK = 1000
LOW_SPACE = 1 << 20  # bytes: less free than this on a file system that failed a write: it is full

_local = threading.local()


def connect(sdir: Path) -> sqlite3.Connection:
    """This thread's connection to the state database (opened once per process and thread, and again
    when the file was replaced: a damaged database set aside by another process)."""
    conns = getattr(_local, "conns", None)
    pid = os.getpid()
    if conns is None or getattr(_local, "pid", None) != pid:
        conns = _local.conns = {}  # never reuse a connection across fork
        _local.pid = pid
    held = conns.get(sdir)
    if held is not None and held[1] == file_id(sdir / DB_NAME):
        return held[0]
    forget(sdir)
    conn = open_db(sdir)
    conns[sdir] = (conn, file_id(sdir / DB_NAME))
    return conn


def forget(sdir: Path) -> None:
    """Close this thread's connection to the state database, if it has one."""
    if getattr(_local, "pid", None) != os.getpid():
        return  # never touch a connection inherited across fork
    held = _local.conns.pop(sdir, None)
    if held is not None:
        with contextlib.suppress(sqlite3.Error):
            held[0].close()


def file_id(path: Path) -> Optional[tuple[int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def open_db(sdir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(sdir / DB_NAME), timeout=30.0, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")
        if not _ready(conn):
            # First use: switching to WAL can fail at once with "database is locked" (no busy handler)
            # when two processes do it together, so one process at a time sets the database up.
            with _init_lock(sdir):
                _setup(conn, sdir)
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def _init_lock(sdir: Path) -> Iterator[None]:
    fd = os.open(sdir / "init.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _setup(conn: sqlite3.Connection, sdir: Path, rows: Optional[list] = None) -> None:
    """WAL mode and the schema (with init.lock held); a new database starts its ids after the
    high-water mark and takes ``rows`` (those saved from a damaged one)."""
    deadline = time.monotonic() + 30.0
    while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION and rows is None:
        return
    with transaction(conn):
        fresh = conn.execute("SELECT 1 FROM sqlite_master WHERE name='jobs'").fetchone() is None
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        # a database of version 1 lacks the later columns (checked by name, not by version:
        # an older runner still running may have set the version back)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        if "call" not in columns:
            conn.execute("ALTER TABLE jobs ADD COLUMN call TEXT")
        if fresh:
            mark = high_water(sdir)
            if mark:
                conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('jobs', ?)", (mark,))
                if rows is None:
                    log.warning("the local state database %s was empty although job ids up to %d may have "
                                "been handed out; new jobs get ids after %d", sdir / DB_NAME, mark, mark)
        for row in rows or ():
            names = ",".join(row.keys())
            conn.execute(f"INSERT OR IGNORE INTO jobs ({names}) VALUES ({placeholders(row)})", tuple(row))
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _ready(conn: sqlite3.Connection) -> bool:
    return (conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
            and conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION)


# --- ids never repeat -------------------------------------------------------------------------------

_reserved: dict[Path, int] = {}


def high_water(sdir: Path) -> int:
    """The highest job id that may have been handed out in this state dir (0: none recorded)."""
    try:
        return int((sdir / IDS_NAME).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def reserve_id(sdir: Path, job_id: int) -> None:
    """Keep the high-water mark at or above ``job_id``; called in the transaction that inserts the job
    (one writer at a time), raising the mark a block ahead and writing it atomically."""
    if job_id <= _reserved.get(sdir, 0):
        return
    mark = high_water(sdir)
    if job_id > mark:
        mark = job_id + ID_BLOCK - 1
        tmp = sdir / f".{IDS_NAME}.{os.getpid()}"
        try:
            with open(tmp, "w") as fh:
                fh.write(f"{mark}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, sdir / IDS_NAME)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    _reserved[sdir] = mark


# --- when the database fails ------------------------------------------------------------------------

def damaged(exc: BaseException) -> bool:
    """Whether SQLite says the database file is damaged (not full, locked or unreadable)."""
    name = getattr(exc, "sqlite_errorname", None)
    if name:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    text = str(exc)
    return isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text)


def set_aside(sdir: Path) -> None:
    """Rename a damaged state database aside (``jobs.db.corrupt-<time>``) and make a new one holding the
    rows that can still be read from it, with ids going on after the high-water mark. Does nothing
    when another process has done so already (the file there now is sound)."""
    path = sdir / DB_NAME
    with _init_lock(sdir):
        if _sound(path):
            return
        aside = sdir / f"{DB_NAME}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
        n = 1
        while aside.exists():
            n += 1
            aside = aside.with_name(f"{DB_NAME}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.rename(f"{path}{suffix}", f"{aside}{suffix}")
        rows = _readable_rows(aside)
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
        try:
            _setup(conn, sdir, rows)
        finally:
            conn.close()
    log.warning("the local state database %s was damaged; moved it to %s and started a new one with the "
                "%d jobs that could still be read from it", path, aside, len(rows))


def _sound(path: Path) -> bool:
    try:
        conn = sqlite3.connect(str(path), timeout=30.0)
    except sqlite3.Error:
        return False
    try:
        return conn.execute("PRAGMA integrity_check(1)").fetchone()[0] == "ok"
    except sqlite3.DatabaseError as exc:
        if damaged(exc):
            return False
        raise
    finally:
        conn.close()


def _readable_rows(path: Path) -> list:
    """The job rows a damaged database still gives, up to the first that it cannot."""
    rows: list = []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return rows
    conn.row_factory = sqlite3.Row
    try:
        for row in conn.execute("SELECT * FROM jobs"):
            rows.append(row)
    except sqlite3.Error:
        pass
    finally:
        conn.close()
    return rows


def problem(sdir: Path, exc: BaseException) -> str:
    """What went wrong with the state database, for a user: the file, the cause and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name == "SQLITE_FULL" or getattr(exc, "errno", None) == errno.ENOSPC or (
            isinstance(exc, sqlite3.Error) and not damaged(exc) and free_space(sdir) < LOW_SPACE):
        return (f"the local backend's state directory {sdir} is full ({exc}): free some space there, or "
                f"set ${ENV_DIR} to a directory on another file system")
    if damaged(exc):
        return (f"the local state database {sdir / DB_NAME} is damaged ({exc}) and could not be set aside; "
                f"move it out of the way and try again")
    return (f"cannot use the local state database {sdir / DB_NAME} ({exc}); check that {sdir} is a "
            f"writable directory (or set ${ENV_DIR} to another one)")


def free_space(path: Path) -> float:
    """Bytes an unprivileged user may still write on the file system of ``path`` (inf when unknown)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return float("inf")
    return st.f_bavail * st.f_frsize


def using(sdir: Path, action: Callable[[sqlite3.Connection], T], error: type = SchedulerError) -> T:
    """``action(connection)``; a damaged database is set aside and the action tried once more on the
    new one. Any other failure of the database raises ``error`` (SchedulerError or SubmitError) saying
    which file and what to do."""
    for last in (False, True):
        try:
            return action(connect(sdir))
        except (sqlite3.Error, OSError) as exc:
            failure = exc
            if last or not damaged(exc):
                break
        forget(sdir)
        try:
            set_aside(sdir)
        except (sqlite3.Error, OSError) as exc:
            failure = exc
            break
    forget(sdir)
    raise error(problem(sdir, failure)) from None


BUSY_TIMEOUT = 30.0


def _begin(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for another writer in steps of tens of microseconds: SQLite's own busy
    handler sleeps a whole millisecond at its first retry, while a writer here holds the lock for well
    under that (a submitter and the runner take turns all the time)."""
    try:
        conn.execute("BEGIN IMMEDIATE")  # with busy_timeout 0: fails at once when another writes
        return
    except sqlite3.OperationalError as exc:
        if not _busy(exc):
            raise
    deadline = time.monotonic() + BUSY_TIMEOUT
    delay = 0.00002
    while True:
        time.sleep(delay)
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() > deadline:
                raise
        delay = min(delay * 2, 0.001)


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken with the write lock up front (no deadlock between two writers)."""
    conn.execute("PRAGMA busy_timeout=0")
    try:
        _begin(conn)
    finally:
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT (disk full) may leave it open
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


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
