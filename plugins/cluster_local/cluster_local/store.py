"""The local scheduler's state: one SQLite database per state directory, the jobs table in it.

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
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, TypeVar, Union, cast

from cluster_core.backend import SchedulerError

from .settings import ENV_DIR

log = logging.getLogger("cluster_core.local")
T = TypeVar("T")

SCHEMA_VERSION = 2  # 2: the call column

# Raw states as stored; the plugin maps them onto cluster_core.records.State.
PENDING, HELD, RUNNING = "PENDING", "HELD", "RUNNING"
COMPLETED, FAILED, CANCELLED, TIMEOUT, UNKNOWN = "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "UNKNOWN"
OUT_OF_MEMORY = "OUT_OF_MEMORY"
ACTIVE = (PENDING, HELD, RUNNING)
FINISHED = (COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, UNKNOWN)

# a row of the jobs table as read, or one made up alike (a job whose row was lost: recovery.py)
JobRow = Union[sqlite3.Row, Mapping[str, Any]]

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
    conns: Optional[dict[Path, tuple[sqlite3.Connection, Optional[tuple[int, int]]]]] = getattr(_local, "conns", None)
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


def _setup(conn: sqlite3.Connection, sdir: Path, rows: Optional[list[sqlite3.Row]] = None) -> None:
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
    return (cast(str, conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
            and cast(int, conn.execute("PRAGMA user_version").fetchone()[0]) == SCHEMA_VERSION)


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
    name: Optional[str] = getattr(exc, "sqlite_errorname", None)
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
        result: str = conn.execute("PRAGMA integrity_check(1)").fetchone()[0]
        return result == "ok"
    except sqlite3.DatabaseError as exc:
        if damaged(exc):
            return False
        raise
    finally:
        conn.close()


def _readable_rows(path: Path) -> list[sqlite3.Row]:
    """The job rows a damaged database still gives, up to the first that it cannot."""
    rows: list[sqlite3.Row] = []
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


def chunks(items: list[T], size: int = 500) -> Iterator[list[T]]:
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


