"""Job records: every submission leaves a small JSON file that any process can load by backend and id.

A record says what was submitted (backend, scheduler ids, the files, the checked keywords, where and when)
and, once known, how it ended. It is what lets a second shell, a workflow engine or tomorrow's session
find a job again after the submitting process is gone and after the scheduler has forgotten it.

Layout: ``<root>/<backend>/<shard>/<id>.json``, one file per record, written to a temporary name and
renamed, so a reader never sees half a record and the directory is safe on NFS shared by several login
nodes (no SQLite, no locks: a rename is atomic there too). How the job ended goes beside it, once known,
into ``<id>.end`` (a symbolic link whose target is the outcome's JSON: one system call to write and to
read, atomic on NFS; a file when it is too long for a link), and a cancellation asked for into
``<id>.cancel``: a record is never read back to be changed, which keeps a submission and a finished job
to one small write each. ``<shard>`` is two hex digits of a hash of the id, so no directory grows past a
few hundred entries per 100 000 jobs and a lookup is one ``open``.
The tasks of a map submitted one job per task also get an alias each: a symbolic link named after the
task's id whose target text is ``<record id>#<index>`` (one system call to write, one to read, atomic).

The root is ``$CLUSTER_CORE_REGISTRY``, else the config's ``core.registry``, else
``<user state dir>/cluster-core/jobs``.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import time
import urllib.parse
from pathlib import Path
from types import TracebackType
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import attrs

from . import session
from .errors import ClusterError

log = logging.getLogger(__name__)

ENV_REGISTRY = "CLUSTER_CORE_REGISTRY"
FORMAT = 1

#: What a record's kind says about how it was submitted.
KINDS = ("job", "array", "tasks", "file")


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    """``tuple`` as an attrs converter whose type mypy can read (the builtin's constructor is overloaded)."""
    return tuple(items)


def _ints(items: Iterable[int]) -> tuple[int, ...]:
    """The same for indices."""
    return tuple(items)


@attrs.frozen
class Outcome:
    """How one job or task ended (or the latest that is known of it)."""

    state: str
    exitcode: Optional[int] = None
    reason: Optional[str] = None
    start_time: Optional[float] = None
    end_time: Optional[float] = None
    nodes: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    @property
    def runtime(self) -> Optional[float]:
        if self.start_time is None or self.end_time is None:
            return None
        return max(0.0, self.end_time - self.start_time)


@attrs.frozen
class JobRecord:
    """One submission, as any process can load it.

    kind: "job" (one script), "array" (one native array submission; tasks ``indices``), "tasks" (an array
    submitted one job per task on a backend without arrays; ``task_ids[i]`` is the scheduler's id of the
    task with index ``indices[i]``, and ``id`` is the core's name for the whole: "@<first task id>"),
    "file" (a user's own script, submitted as it is).
    outcome: how a job ended; task_outcomes: the same per task of an array, keyed by str(index).
    """

    backend: str
    id: str
    kind: str = attrs.field(validator=attrs.validators.in_(KINDS))
    name: str
    jobdir: str
    stem: str
    script: str
    outfile: str
    errfile: str
    function: bool = False
    suffix: str = "cluster"
    command: str = ""
    indices: tuple[int, ...] = attrs.field(default=(), converter=_ints)
    task_ids: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    depends: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    options: dict[str, Any] = attrs.field(factory=dict)
    host: str = ""
    user: str = ""
    cwd: str = ""
    submit_time: float = 0.0
    outcome: Optional[Outcome] = None
    task_outcomes: dict[str, Outcome] = attrs.field(factory=dict)
    cancel_requested: bool = False
    format: int = FORMAT



class RegistryError(ClusterError):
    """The job records cannot be read or written; the message names the directory."""


def root() -> Path:
    """The directory holding every backend's records (not created here)."""
    env = os.environ.get(ENV_REGISTRY)
    if env:
        return _expanded(env, os.environ.get("HOME"))
    from . import config
    configured = config.get_option("core.registry")
    if configured:
        return _expanded(configured, os.environ.get("HOME"))
    return _default_root(os.environ.get("XDG_STATE_HOME"), os.environ.get("HOME"))


@functools.lru_cache(maxsize=16)
def _expanded(text: str, home: Optional[str]) -> Path:
    """A configured root as a path (asked on every submission: built once per value and $HOME)."""
    return Path(text).expanduser()


@functools.lru_cache(maxsize=8)
def _default_root(xdg_state_home: Optional[str], home: Optional[str]) -> Path:
    import platformdirs
    return Path(platformdirs.user_state_dir("cluster-core", appauthor=False)) / "jobs"


def _file_name(job_id: str) -> str:
    # ids are short and mostly plain ("12", "12.server", "274[].srv"); anything a file name cannot hold
    # is %-escaped, and a leading dot (hidden, or "..") too
    name = urllib.parse.quote(job_id, safe="@[]_+-=,")
    return ("%2E" + name[1:] if name.startswith(".") else name) + ".json"


def _shard(job_id: str) -> str:
    import hashlib  # cached in sys.modules after the first record
    return hashlib.blake2b(job_id.encode(), digest_size=1).hexdigest()


def path_of(backend: str, job_id: str, base: Optional[Path] = None) -> Path:
    """Where the record (or alias) of ``job_id`` on ``backend`` lives."""
    return _backend_dir(base or root(), backend) / f"{_shard(job_id)}/{_file_name(job_id)}"


@functools.lru_cache(maxsize=64)
def _backend_dir(base: Path, backend: str) -> Path:
    return base / _file_name(backend)[:-5]


def __getattr__(name: str) -> set[str]:
    if name == "_made_dirs":  # the set tests clear, now the session's
        return session.current().made_dirs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _ensure_dir(path: os.PathLike[str] | str) -> None:
    key = os.fspath(path)
    made_dirs = session.current().made_dirs
    if key in made_dirs:
        return
    try:
        Path(key).mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise RegistryError(f"cannot create the job-record directory {path}: {exc.strerror}; set "
                            f"`cluster config set core.registry DIR` (or ${ENV_REGISTRY}) to a writable "
                            "directory") from None
    made_dirs.add(key)


# --- writing ----------------------------------------------------------------------------------------

_FIELDS = tuple(a.name for a in attrs.fields(JobRecord) if a.name not in ("outcome", "task_outcomes",
                                                                          "cancel_requested"))
_OUTCOME_FIELDS = tuple(a.name for a in attrs.fields(Outcome))


def _outcome_dict(outcome: Outcome) -> dict[str, Any]:
    return {name: getattr(outcome, name) for name in _OUTCOME_FIELDS}


def _to_dict(record: JobRecord) -> dict[str, Any]:
    """The whole record as plain data (what a pickled Job carries)."""
    data = {name: getattr(record, name) for name in _FIELDS}
    data["outcome"] = _outcome_dict(record.outcome) if record.outcome else None
    data["task_outcomes"] = {k: _outcome_dict(v) for k, v in record.task_outcomes.items()}
    data["cancel_requested"] = record.cancel_requested
    return data


def _from_dict(data: dict[str, Any]) -> JobRecord:
    data = dict(data)
    outcome = data.get("outcome")
    data["outcome"] = Outcome(**outcome) if outcome else None
    data["task_outcomes"] = {str(k): Outcome(**v) for k, v in (data.get("task_outcomes") or {}).items()}
    known = {a.name for a in attrs.fields(JobRecord)}
    return JobRecord(**{k: v for k, v in data.items() if k in known})


def _write(path: os.PathLike[str] | str, text: str) -> None:
    """``text`` into ``path`` by a temporary name in the same directory and a rename (atomic, NFS too)."""
    folder, name = os.path.split(os.fspath(path))
    _ensure_dir(folder)
    tmp = _tmp_name(folder, name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with _suppress():
            os.unlink(tmp)
        raise RegistryError(f"cannot write the job record {path}: {exc.strerror or exc}") from None


def _tmp_name(folder: str, name: str) -> str:
    """A temporary name beside ``name``, unique to this process and moment (hidden: no listing shows it)."""
    return os.path.join(folder, f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp")


def save(record: JobRecord, new: bool = True) -> Path:
    """Write (or replace) what was submitted; returns the record's path. How it ended and whether its
    cancellation was asked are kept beside it (:func:`record_outcomes`, :func:`mark_cancel_requested`),
    so that the record itself is written once per submission and never read back to be changed.

    ``new``: a new submission (not the same one's record written again as more of it went in). What is
    kept beside an earlier job under the same id (a scheduler that hands out ids again: a new local state
    dir, a reinstalled cluster) goes first, so that it never reads as this job's end."""
    path = path_of(record.backend, record.id)
    if new:
        for kind in ("end", "cancel"):
            try:
                os.unlink(_side_name(path, kind))
            except (FileNotFoundError, NotADirectoryError):  # none (or no directory: said below)
                pass
            except OSError as exc:
                raise RegistryError(f"cannot remove the outcome of an earlier job {record.id} beside "
                                    f"{path}: {exc.strerror or exc}") from None
    _write(path, json.dumps({name: getattr(record, name) for name in _FIELDS}, separators=(",", ":"),
                            default=str))
    return path


def _side(path: Path, kind: str) -> Path:
    """The file beside a record that keeps its outcome ("end") or its cancellation ("cancel")."""
    return path.with_name(path.name[:-len(".json")] + "." + kind)


def _side_name(path: os.PathLike[str] | str, kind: str) -> str:
    """:func:`_side` as a string (no Path object where only system calls need it)."""
    return os.fspath(path)[:-len(".json")] + "." + kind


def add_alias(backend: str, task_id: str, record_id: str, index: int) -> None:
    """Let task ``index`` of the record ``record_id`` be found by its own id ``task_id``."""
    _alias(path_of(backend, task_id), record_id, index)


def add_aliases(backend: str, aliases: Sequence[tuple[str, str, int]]) -> None:
    """:func:`add_alias` for several tasks, each ``(task id, record id, index)``; the root is looked up once.
    An alias that cannot be written is logged and the others are still written."""
    base = root()
    for task_id, record_id, index in aliases:
        try:
            _alias(path_of(backend, task_id, base), record_id, index)
        except RegistryError as exc:
            log.warning("%s", exc)


def _alias(path: Path, record_id: str, index: int) -> None:
    _ensure_dir(os.path.dirname(path))
    target = f"{record_id}#{index}"
    try:
        os.symlink(target, path)
    except FileExistsError:  # an older alias of a reused id (a scheduler that restarted its count)
        with _suppress():
            os.unlink(path)
        with _suppress():
            os.symlink(target, path)
    except OSError as exc:
        raise RegistryError(f"cannot write the job record alias {path}: {exc.strerror or exc}") from None


class _suppress:
    def __enter__(self) -> _suppress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        return kind is not None and issubclass(kind, OSError)


# --- reading ----------------------------------------------------------------------------------------

def load(backend: str, job_id: str) -> Optional[JobRecord]:
    """The record of ``job_id`` on ``backend`` (an alias is not followed), None when there is none."""
    return _read(path_of(backend, job_id))


def _read(path: Path) -> Optional[JobRecord]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        log.warning("job record %s cannot be read (%s); ignored", path, exc)
        return None
    ends = _read_end(_side(path, "end"))
    if ends:
        data["outcome"] = ends.pop("", None)
        data["task_outcomes"] = ends
    data["cancel_requested"] = os.path.exists(_side(path, "cancel"))
    try:
        return _from_dict(data)
    except (TypeError, ValueError) as exc:
        log.warning("job record %s is not a record of this version (%s); ignored", path, exc)
        return None


def _read_end(path: os.PathLike[str] | str) -> dict[str, Any]:
    """The outcomes kept beside a record: "" for the job, str(index) for each task (a symbolic link whose
    target is their JSON, or a file when they are too long for one)."""
    try:
        try:
            data = json.loads(os.readlink(path))
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not a link but a file
                raise
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        log.warning("job outcome file %s cannot be read (%s); ignored", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def resolve(backend: str, job_id: str) -> Optional[tuple[JobRecord, Optional[int]]]:
    """The record a job id belongs to and, for one task of an array, its index.

    Looks for the id's own record, then for an alias (a task of a map submitted one job per task).
    """
    path = path_of(backend, job_id)
    try:
        target = os.readlink(path)
    except FileNotFoundError:
        return None
    except OSError:  # not a link: a record of its own
        record = _read(path)
        return (record, None) if record is not None else None
    record_id, _, index = target.rpartition("#")
    record = load(backend, record_id)
    if record is None or not index.isdigit():
        return None
    return record, int(index)


def backends_with_records(base: Optional[Path] = None) -> list[str]:
    """The backends that have a records directory."""
    base = base or root()
    try:
        return sorted(urllib.parse.unquote(p.name) for p in base.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []


def records(backend: Optional[str] = None, since: Optional[float] = None) -> Iterator[JobRecord]:
    """Every record (of one backend), newest first; with ``since`` (seconds since the epoch) only those
    written after it (the file's time says, before it is read)."""
    base = root()
    found: list[tuple[float, str]] = []
    for name in ([backend] if backend else backends_with_records(base)):
        top = base / _file_name(name)[:-5]
        try:
            shards = list(os.scandir(top))
        except FileNotFoundError:
            continue
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(shard.path):
                if not entry.name.endswith(".json") or entry.is_symlink():
                    continue  # an alias, an outcome or a cancellation beside a record
                try:
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue
                if since is None or mtime >= since:  # written at its submission: older cannot match
                    found.append((mtime, entry.path))
    read = [r for r in (_read(Path(path)) for _, path in found)
            if r is not None and (since is None or r.submit_time >= since)]
    read.sort(key=lambda r: r.submit_time, reverse=True)
    yield from read


def prune(older_than: float, now: Optional[float] = None) -> int:
    """Delete the records of jobs submitted more than ``older_than`` seconds ago (with their outcome and
    cancellation files), and aliases left pointing at nothing; returns how many records."""
    now = time.time() if now is None else now
    removed = 0
    base = root()
    for name in backends_with_records(base):
        top = base / _file_name(name)[:-5]
        for shard in os.scandir(top):
            if not shard.is_dir(follow_symlinks=False):
                continue
            for entry in list(os.scandir(shard.path)):
                if entry.is_symlink():
                    continue
                record = _read(Path(entry.path))
                if record is None or now - record.submit_time <= older_than:
                    continue
                with _suppress():
                    os.unlink(entry.path)
                    removed += 1
                for kind in ("end", "cancel"):
                    with _suppress():
                        os.unlink(_side(Path(entry.path), kind))
            for entry in list(os.scandir(shard.path)):
                if entry.is_symlink() and entry.name.endswith(".json"):  # an alias whose record is gone
                    record_id = os.readlink(entry.path).rpartition("#")[0]
                    if not path_of(name, record_id, base).exists():
                        with _suppress():
                            os.unlink(entry.path)
    return removed


# --- outcomes ---------------------------------------------------------------------------------------

def record_outcomes(backend: str, record_id: str, outcomes: dict[Optional[int], Outcome]) -> None:
    """Keep what is now known of how a job (key None) or its tasks (key: index) ended: one small file
    beside the record, merged with what it held (a job's outcome is written once; an array's grows)."""
    _record_outcomes(path_of(backend, record_id), outcomes)


def record_outcomes_many(backend: str, by_record: Mapping[str, dict[Optional[int], Outcome]]) -> None:
    """:func:`record_outcomes` for several records (the root looked up once); a record that cannot be
    written is logged and the others are still written."""
    folder = os.fspath(_backend_dir(root(), backend))
    for record_id, outcomes in by_record.items():
        try:  # a string path: no Path object for each of thousands of jobs ended in one poll
            _record_outcomes(os.path.join(folder, _shard(record_id), _file_name(record_id)), outcomes)
        except RegistryError as exc:
            log.warning("%s", exc)


#: The longest outcome text kept as a link's target (POSIX guarantees targets of 255 bytes; Linux and
#: NFS take 1023 and more): a longer one (an array's many tasks) goes into a file.
_LINK_MAX = 1000


def _record_outcomes(record: os.PathLike[str] | str, outcomes: dict[Optional[int], Outcome]) -> None:
    new = {("" if i is None else str(i)): _outcome_dict(o) for i, o in outcomes.items()}
    if not new:
        return
    path = _side_name(record, "end")
    if not os.path.exists(record):  # a job known by its id only: no record to add to
        return
    text = json.dumps(new, separators=(",", ":"), default=str)
    if len(text) <= _LINK_MAX:
        try:  # the first outcome (a job's only one): one system call, atomic on NFS too
            os.symlink(text, path)
            return
        except FileExistsError:
            pass  # merged below with what is there
        except OSError as exc:
            raise RegistryError(f"cannot write the job outcome {path}: {exc.strerror or exc}") from None
    ends = _read_end(path)
    if ends and all(ends.get(k) == v for k, v in new.items()):
        return
    ends.update(new)
    text = json.dumps(ends, separators=(",", ":"), default=str)
    if len(text) > _LINK_MAX:
        _write(path, text)
        return
    tmp = _tmp_name(*os.path.split(path))
    try:
        os.symlink(text, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with _suppress():
            os.unlink(tmp)
        raise RegistryError(f"cannot write the job outcome {path}: {exc.strerror or exc}") from None


def mark_cancel_requested(backend: str, record_ids: Sequence[str]) -> None:
    """Note that the user asked to cancel these jobs: one that then leaves the scheduler without a word
    (no exit file, no accounting) was cancelled, not lost."""
    for record_id in dict.fromkeys(record_ids):
        path = path_of(backend, record_id)
        if path.exists():
            _write(_side(path, "cancel"), "")
