"""Submitting to the local scheduler: check a job against this machine, record it, poke the runner.

A job is one row of the jobs table (store.py), written with everything the runner needs to start it: the
script, its directory and output files, cores and memory, dependencies, and the environment it runs in
(the submitter's, filtered as ``sbatch --export`` does). Several jobs submitted together take one
transaction and one poke (:func:`submit_jobs`).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence, Union, cast

from cluster_core.backend import SchedulerError, SubmitError, dependency_items, export_items, to_dependencies

from .client import ensure_runner
from .settings import MARKER, memory_limit, state_dir, threads_limit
from .store import HELD, PENDING, placeholders, reserve_id, to_json, transaction, using

if TYPE_CHECKING:
    import sqlite3

_users: dict[int, str] = {}


def user_name() -> str:
    uid = os.getuid()
    name = _users.get(uid)
    if name is None:
        try:
            name = getpass.getuser()
        except Exception:  # no name for this uid (containers)
            name = str(uid)
        _users[uid] = name
    return name



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
    return export_items(env, items, base)


_env_cache: dict[Any, tuple[Any, str]] = {}


def _environment_json(export: Any) -> str:
    """The job's environment as JSON: computed once for as long as os.environ does not change."""
    key = tuple(export) if isinstance(export, (list, tuple)) else export
    raw = getattr(os.environ, "_data", None)  # the bytes behind os.environ (CPython): cheap to compare
    cached = _env_cache.get(key)
    if raw is not None and cached is not None and cached[0] == raw:
        return cached[1]
    text = to_json(job_environment(os.environ, export))
    if raw is not None:
        if len(_env_cache) > 16:
            _env_cache.clear()
        _env_cache[key] = (dict(raw), text)
    return text


def _call_json(call: Any) -> Optional[str]:
    """The function call the runner may run in a warm worker instead of the script (None: the script; the
    core gives none for a job whose script must run, e.g. for environment modules). The interpreter is the
    runner's to check."""
    if call is None:
        return None
    return to_json({"in": str(call.pickle_in), "out": str(call.pickle_out), "exit": str(call.exit_file),
                    "python": str(call.python), "task": call.task})


def _dependencies(value: Any) -> tuple[list[int], list[Union[int, str, list[Union[str, int]]]]]:
    """The job ids a ``depends`` value names, and the value as the jobs table stores it: afterok as the bare
    id (as before there were types), every other type as [type, id], singleton as "singleton"."""
    if not value:
        return [], []
    try:
        checked = to_dependencies(dependency_items(value))
    except ValueError as exc:
        raise SubmitError(f"depends: {exc}", keyword="depends") from None
    ids: list[int] = []
    stored: list[Union[int, str, list[Union[str, int]]]] = []
    for dep in checked:
        if dep.kind == "singleton":
            stored.append("singleton")
            continue
        job_id = cast(str, dep.job_id)  # every kind but singleton names a job
        if not job_id.isdigit():
            raise SubmitError(f"depends: {job_id!r} is not a local job id", keyword="depends")
        ids.append(int(job_id))
        stored.append(ids[-1] if dep.kind == "afterok" else [dep.kind, ids[-1]])
    return list(dict.fromkeys(ids)), stored



def submit_job(script: os.PathLike[str] | str, options: Mapping[str, Any], sdir: Optional[Path] = None,
               call: Any = None) -> int:
    """Record a job and make sure a runner will run it; return its id. Raises SubmitError naming the
    keyword for a request this machine cannot satisfy. ``call`` (a FunctionCall) lets the runner run a
    function job in a warm worker."""
    return submit_jobs([(script, options, call)], sdir)[0]


def submit_jobs(jobs: Sequence[tuple[os.PathLike[str] | str, Mapping[str, Any], Any]],
                sdir: Optional[Path] = None) -> list[int]:
    """Record several jobs ((script, options, call) each) in one transaction and poke the runner once;
    return their ids, in order. Every job is checked first: one that cannot run submits none of them."""
    sdir = state_dir(sdir)
    rows: list[tuple[Any, ...]] = []
    deps: list[int] = []
    wanted: Optional[int] = None
    dirs: set[str] = set()  # directories seen to exist in this batch: checked once each
    for script, options, call in jobs:
        row, needs, threads = _row(script, options, call, dirs)
        rows.append(row)
        deps += needs
        wanted = wanted or threads
    deps = list(dict.fromkeys(deps))

    def insert(conn: sqlite3.Connection) -> list[int]:
        with transaction(conn):
            for i in range(0, len(deps), 500):
                part = deps[i:i + 500]
                found = {r[0] for r in conn.execute(f"SELECT id FROM jobs WHERE id IN ({placeholders(part)})", part)}
                missing = [str(d) for d in part if d not in found]
                if missing:
                    raise SubmitError(f"depends: no local job {', '.join(missing)} (in {sdir})", keyword="depends")
            ids = [cast(int, conn.execute(_INSERT, row).lastrowid) for row in rows]  # an INSERT's
            reserve_id(sdir, max(ids, default=0))
            return ids
    ids = using(sdir, insert, SubmitError)
    queued = [job_id for job_id, row in zip(ids, rows) if row[_STATE] == PENDING]
    if queued:
        try:
            ensure_runner(sdir, threads=wanted)
        except SchedulerError as exc:
            reason = f"the runner did not start: {exc}"

            def fail(conn: sqlite3.Connection) -> None:
                with transaction(conn):
                    for job_id in queued:
                        conn.execute("UPDATE jobs SET state='FAILED', reason=?, end_time=? WHERE id=? AND state=?",
                                     (reason, time.time(), job_id, PENDING))
            with contextlib.suppress(SchedulerError):
                using(sdir, fail)
            raise SubmitError(str(exc), output=exc.output) from None
    return ids


_INSERT = ("INSERT INTO jobs (name, script, options, env, cores, mem_mb, time_limit, depends, workdir, outfile, "
           "errfile, state, submit_time, user, call) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
_STATE = 11  # the state's place in a row


def _row(script: os.PathLike[str] | str, options: Mapping[str, Any], call: Any,
         dirs: Optional[set[str]] = None) -> tuple[tuple[Any, ...], list[int], Optional[int]]:
    """One job's row of the jobs table, the ids it depends on, and the runner limit it asks (threads=).
    ``dirs`` holds directories already known to exist (added to as they are checked)."""
    dirs = set() if dirs is None else dirs

    def is_dir(path: str) -> bool:
        if path in dirs:
            return True
        found = os.path.isdir(path)
        if found:
            dirs.add(path)
        return found

    opts = dict(options)
    if opts.get("array"):
        raise SubmitError("array: the local backend does not run job arrays; submit one job per task",
                          keyword="array")
    if (opts.get("nodes") or 1) > 1:
        raise SubmitError(f"nodes={opts['nodes']}: the local backend has one node", keyword="nodes")
    cores = int(opts.get("cores") or 1) * int(opts.get("tasks") or 1)
    wanted = opts.get("threads")  # the seed's threads keyword: this runner's limit when it starts
    threads = wanted or threads_limit()
    if cores > threads:
        raise SubmitError(f"cores={cores}: more than the local limit of {threads} cores "
                          + ("(threads=)" if wanted else "($CLUSTER_LOCAL_THREADS or config local.threads)"),
                          keyword="cores")
    mem = opts.get("mem") or (opts["mem_per_cpu"] * cores if opts.get("mem_per_cpu") else None)
    if mem:
        limit = memory_limit()
        if mem > limit:
            raise SubmitError(f"mem={mem} MB: more than the local limit of {limit} MB "
                              f"($CLUSTER_LOCAL_MEMORY or config local.memory)", keyword="mem")
    cwd = os.getcwd()
    workdir = os.path.join(cwd, os.path.expanduser(opts.get("workdir") or cwd))
    if not is_dir(workdir):
        raise SubmitError(f"workdir={workdir}: no such directory", keyword="workdir")
    script_path = os.path.join(cwd, os.fspath(script))
    if not os.path.isfile(script_path):
        raise SubmitError(f"job script {script_path} does not exist")
    files = {}
    for key in ("outfile", "errfile"):
        value = opts.get(key)
        if value:
            value = os.path.join(workdir, os.path.expanduser(value))
            if not is_dir(os.path.dirname(value)):
                raise SubmitError(f"{key}={value}: its directory does not exist", keyword=key)
        files[key] = value
    deps, stored = _dependencies(opts.get("depends"))
    env_json = _environment_json(opts.get("export"))
    name = str(opts.get("name") or os.path.basename(script_path))
    state = HELD if opts.get("hold") else PENDING

    row = (name, script_path, to_json(opts), env_json, cores, mem, opts.get("time"), to_json(stored), workdir,
           files["outfile"], files["errfile"], state, time.time(), user_name(), _call_json(call))

    return row, deps, wanted
