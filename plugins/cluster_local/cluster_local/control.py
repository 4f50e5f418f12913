"""The client side of the local scheduler: what submitters, ``cluster queue`` and ``cluster cancel`` do.

A submitter commits the job row, then pokes the runner over its Unix socket ("wake"); a runner that
answers "ok" has seen the job. When nothing answers, the submitter takes ``spawn.lock`` (so two submitters
never start two runners), asks once more, and else starts a runner and waits until it listens. The runner
holds ``runner.lock`` for its whole life, so "is a runner alive?" is one non-blocking flock, and a client
that must act without a runner (cancel, shutdown) holds that lock meanwhile so none can start under it.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import logging
import os
import select
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

from cluster_core.errors import SchedulerError, SubmitError
from cluster_core.options import dependency_items, to_dependencies
from cluster_core.script import is_job_file, read_exit_file

from . import proctools
from .store import (CANCELLED, COMPLETED, ENV_THREADS, FAILED, HELD, MARKER, PENDING, RUNNING, UNKNOWN, chunks,
                    job_environment, kill_grace, marker_slot, memory_limit, placeholders, reserve_id,
                    state_dir, state_key, threads_limit, to_json, transaction, using)

log = logging.getLogger("cluster_core.local")

SOCKET_NAME = "runner.sock"
MAX_SOCKET_PATH = 100  # AF_UNIX paths are at most 107 bytes on Linux (104 on macOS)
START_TIMEOUT = 30.0
LOST_REASON = "runner lost the job"


# --- paths and locks --------------------------------------------------------------------------------

def socket_path(sdir: Path) -> Path:
    """The runner's socket: in the state dir, or under /tmp when that path is too long for AF_UNIX."""
    path = sdir / SOCKET_NAME
    if len(os.fsencode(str(path))) <= MAX_SOCKET_PATH:
        return path
    return Path("/tmp") / f"cluster-local-{os.getuid()}-{state_key(sdir)}" / "sock"


def private_dir(path: Path, create: bool) -> bool:
    """True when ``path`` is a real directory owned by this user and closed to others (made if asked)."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        return False
    if st.st_mode & 0o077:
        if not create:
            return False
        os.chmod(path, 0o700)
    return True


def _open_lock(sdir: Path, name: str) -> int:
    return os.open(sdir / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@contextlib.contextmanager
def flocked(sdir: Path, name: str) -> Iterator[None]:
    fd = _open_lock(sdir, name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def runner_lock_if_free(sdir: Path) -> Iterator[bool]:
    """Hold runner.lock for the block when no runner holds it; yields whether it was free."""
    fd = _open_lock(sdir, "runner.lock")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def runner_alive(sdir: Path) -> bool:
    with runner_lock_if_free(sdir) as free:
        return not free


# --- talking to the runner --------------------------------------------------------------------------

def request(sdir: Path, message: str, timeout: float = 30.0) -> Optional[str]:
    """Send one line to the runner and return its one-line answer; None when no runner answers."""
    path = socket_path(sdir)
    if path.parent != sdir and not private_dir(path.parent, create=False):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(message.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        log.warning("the local runner of %s did not answer %r within %g s", sdir, message, timeout)
        return None
    except OSError:
        return None
    finally:
        sock.close()
    if not buf.endswith(b"\n"):
        return None
    return buf.decode(errors="replace").strip()


_pokers: dict[Path, tuple[int, socket.socket]] = {}
_pokers_lock = threading.Lock()


def poke(sdir: Path, message: str = "wake") -> bool:
    """Tell the runner to look at the database again, without waiting for it; False when none listens.

    No answer is needed: the job was committed before the poke, and a runner that closes its socket to
    leave first closes every connection, then reads the database once more, so a poke it never read
    loses nothing. The connection stays open for the next poke of this process (one ``send`` per
    submission); a runner that has closed it makes the send fail, and a new connection is tried."""
    line = message.encode() + b"\n"
    with _pokers_lock:
        held = _pokers.pop(sdir, None)
        if held is not None:
            pid, sock = held
            if pid == os.getpid():  # never a connection inherited across fork
                try:
                    if sock.send(line, socket.MSG_NOSIGNAL) == len(line):
                        _pokers[sdir] = held
                        return True
                except OSError:
                    pass
                sock.close()
        path = socket_path(sdir)
        if path.parent != sdir and not private_dir(path.parent, create=False):
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(30.0)
            sock.connect(str(path))
            sock.sendall(line, socket.MSG_NOSIGNAL)
        except OSError:
            sock.close()
            return False
        _pokers[sdir] = (os.getpid(), sock)
        return True


def ensure_runner(sdir: Optional[Path] = None, message: str = "wake", threads: Optional[int] = None) -> None:
    """Make sure a runner serves ``sdir`` and has seen the latest changes; start one if needed, with a
    limit of ``threads`` cores when given (a running runner keeps its limit: a warning says so)."""
    sdir = state_dir(sdir)
    if poke(sdir, message):
        _check_threads(sdir, threads)
        return
    with flocked(sdir, "spawn.lock"):
        if poke(sdir, message):
            _check_threads(sdir, threads)
            return
        start_runner(sdir, threads)


def _check_threads(sdir: Path, threads: Optional[int]) -> None:
    if threads is None:
        return
    running = (runner_status(sdir) or {}).get("threads")
    if running is not None and running != threads:
        log.warning("threads=%d: the local runner already runs with a limit of %d cores and keeps it; the new "
                    "limit applies when it next starts (it stops after a minute without jobs)", threads, running)


def start_runner(sdir: Path, threads: Optional[int] = None) -> None:
    """Start a detached runner for ``sdir`` (double fork, own session) and wait until it listens.

    A runner that is still on its way out holds runner.lock; the new one waits for it, then reads the
    whole database, so nothing committed before this call is missed."""
    logfile = sdir / "runner.log"
    with contextlib.suppress(OSError):
        if logfile.stat().st_size > 1 << 20:
            os.replace(logfile, sdir / "runner.log.1")
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    env["CLUSTER_LOCAL_DIR"] = str(sdir)
    if threads is not None:
        env[ENV_THREADS] = str(threads)
    # room in the runner's environment block where its warm workers write the marker of the job they run
    # (what /proc/<pid>/environ shows), so they are found like the processes of script jobs
    env[MARKER] = marker_slot(state_key(sdir))
    read_fd, write_fd = os.pipe()
    try:
        with open(logfile, "ab") as log_fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cluster_local.runner", "--ready-fd", str(write_fd), str(sdir)],
                stdin=subprocess.DEVNULL, stdout=log_fh, stderr=log_fh, pass_fds=(write_fd,), env=env,
                cwd="/", start_new_session=True)
        os.close(write_fd)
        write_fd = -1
        proc.wait()  # the first process forks the runner and leaves at once
        answer = b""
        deadline = time.monotonic() + START_TIMEOUT
        while b"\n" not in answer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_fd], [], [], left)[0]:
                raise SchedulerError(f"the local runner for {sdir} did not start within {START_TIMEOUT:g} s; "
                                     f"see {logfile}")
            chunk = os.read(read_fd, 64)
            if not chunk:
                break
            answer += chunk
        if not answer.startswith(b"ready"):
            raise SchedulerError(f"the local runner for {sdir} failed to start: {_log_tail(logfile)}",
                                 output=_log_tail(logfile))
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _runner_or_locked(sdir: Path, message: str, direct, timeout: float = 30.0) -> None:
    """Tell the runner ``message``; when no runner is alive, run ``direct()`` holding runner.lock."""
    deadline = time.monotonic() + timeout
    while True:
        if poke(sdir, message):
            return
        with runner_lock_if_free(sdir) as free:
            if free:
                direct()
                return
        if time.monotonic() > deadline:
            raise SchedulerError(f"the local runner for {sdir} holds its lock but does not answer")
        time.sleep(0.02)  # a runner is starting or leaving: it answers or lets go within moments


# --- submitting -------------------------------------------------------------------------------------

def _ints(job_ids: Sequence[Any]) -> list[int]:
    out = []
    for j in job_ids:
        text = str(getattr(j, "id", j)).strip()
        if text.isdigit():
            out.append(int(text))
    return sorted(set(out))


_users: dict[int, str] = {}


def _user() -> str:
    uid = os.getuid()
    name = _users.get(uid)
    if name is None:
        try:
            name = getpass.getuser()
        except Exception:  # no name for this uid (containers)
            name = str(uid)
        _users[uid] = name
    return name


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


def _call_json(call: Any, opts: Mapping[str, Any]) -> Optional[str]:
    """The function call the runner may run in a warm worker instead of the script (None: the script).
    Environment modules need the script; the interpreter is the runner's to check."""
    if call is None or opts.get("modules"):
        return None
    return to_json({"in": str(call.pickle_in), "out": str(call.pickle_out), "exit": str(call.exit_file),
                    "python": str(call.python), "task": call.task})


def _dependencies(value: Any) -> tuple[list[int], list]:
    """The job ids a ``depends`` value names, and the value as the jobs table stores it: afterok as the bare
    id (as before there were types), every other type as [type, id], singleton as "singleton"."""
    if not value:
        return [], []
    try:
        checked = to_dependencies(dependency_items(value))
    except ValueError as exc:
        raise SubmitError(f"depends: {exc}", keyword="depends") from None
    ids, stored = [], []
    for dep in checked:
        if dep.kind == "singleton":
            stored.append("singleton")
            continue
        if not dep.job_id.isdigit():
            raise SubmitError(f"depends: {dep.job_id!r} is not a local job id", keyword="depends")
        ids.append(int(dep.job_id))
        stored.append(ids[-1] if dep.kind == "afterok" else [dep.kind, ids[-1]])
    return list(dict.fromkeys(ids)), stored


def submit_job(script: os.PathLike | str, options: Mapping[str, Any], sdir: Optional[Path] = None,
               call: Any = None) -> int:
    """Record a job and make sure a runner will run it; return its id. Raises SubmitError naming the
    keyword for a request this machine cannot satisfy. ``call`` (a FunctionCall) lets the runner run a
    function job in a warm worker."""
    sdir = state_dir(sdir)
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
    if not os.path.isdir(workdir):
        raise SubmitError(f"workdir={workdir}: no such directory", keyword="workdir")
    script_path = os.path.join(cwd, os.fspath(script))
    if not os.path.isfile(script_path):
        raise SubmitError(f"job script {script_path} does not exist")
    files = {}
    for key in ("outfile", "errfile"):
        value = opts.get(key)
        if value:
            value = os.path.join(workdir, os.path.expanduser(value))
            if not os.path.isdir(os.path.dirname(value)):
                raise SubmitError(f"{key}={value}: its directory does not exist", keyword=key)
        files[key] = value
    deps, stored = _dependencies(opts.get("depends"))
    env_json = _environment_json(opts.get("export"))
    name = str(opts.get("name") or os.path.basename(script_path))
    state = HELD if opts.get("hold") else PENDING

    row = (name, script_path, to_json(opts), env_json, cores, mem, opts.get("time"), to_json(stored), workdir,
           files["outfile"], files["errfile"], state, time.time(), _user(), _call_json(call, opts))

    def insert(conn) -> int:
        with transaction(conn):
            if deps:
                found = {r[0] for r in conn.execute(f"SELECT id FROM jobs WHERE id IN ({placeholders(deps)})",
                                                    deps)}
                missing = [str(d) for d in deps if d not in found]
                if missing:
                    raise SubmitError(f"depends: no local job {', '.join(missing)} (in {sdir})",
                                      keyword="depends")
            job_id = conn.execute(
                "INSERT INTO jobs (name, script, options, env, cores, mem_mb, time_limit, depends, workdir,"
                " outfile, errfile, state, submit_time, user, call) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                row).lastrowid
            reserve_id(sdir, job_id)
            return job_id
    job_id = using(sdir, insert, SubmitError)
    if state == PENDING:
        try:
            ensure_runner(sdir, threads=wanted)
        except SchedulerError as exc:
            reason = f"the runner did not start: {exc}"

            def fail(conn) -> None:
                with transaction(conn):
                    conn.execute("UPDATE jobs SET state='FAILED', reason=?, end_time=? WHERE id=? AND state=?",
                                 (reason, time.time(), job_id, PENDING))
            with contextlib.suppress(SchedulerError):
                using(sdir, fail)
            raise SubmitError(str(exc), output=exc.output) from None
    return job_id


# --- watching ---------------------------------------------------------------------------------------

_COLUMNS = "id, name, state, exitcode, reason, cores, submit_time, start_time, end_time, user"
RECENT = 300.0  # finished jobs stay in an unfiltered listing this long, like Slurm's MinJobAge


def job_rows(job_ids: Optional[Sequence[Any]] = None, user: Optional[str] = None,
             sdir: Optional[Path] = None) -> list[Mapping[str, Any]]:
    """Rows of the given jobs (those known), or of every active or recently finished job."""
    sdir = state_dir(sdir)

    def read(conn) -> list:
        if job_ids is None:
            return list(conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state IN ('PENDING', 'HELD', 'RUNNING') OR end_time > ? "
                f"ORDER BY id", (time.time() - RECENT,)))
        rows: list = []
        for part in chunks(_ints(job_ids)):
            rows += conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id IN ({placeholders(part)})", part)
        return rows
    rows = using(sdir, read)
    if user:
        rows = [r for r in rows if r["user"] == user]
    if any(r["state"] in (PENDING, RUNNING) for r in rows) and not runner_alive(sdir):
        # the runner left or died: start one, which adopts or settles what it finds
        try:
            ensure_runner(sdir)
        except SchedulerError as exc:
            log.warning("%s", exc)
    return rows


# --- cancelling and releasing -----------------------------------------------------------------------

def cancel(job_ids: Sequence[Any], sdir: Optional[Path] = None, reason: str = "cancelled by user") -> None:
    """Cancel jobs: queued ones at once, running ones by the runner (or here, when none is alive)."""
    sdir = state_dir(sdir)
    ids = _ints(job_ids)
    if not ids:
        return

    def ask(conn) -> int:
        changed = 0
        with transaction(conn):
            for part in chunks(ids):
                qs = placeholders(part)
                changed += conn.execute(
                    f"UPDATE jobs SET state=?, reason=?, end_time=?, env='{{}}' WHERE id IN ({qs}) AND state IN (?, ?)",
                    (CANCELLED, reason, time.time(), *part, PENDING, HELD)).rowcount
                changed += conn.execute(
                    f"UPDATE jobs SET cancel_requested=1 WHERE id IN ({qs}) AND state=?",
                    (*part, RUNNING)).rowcount
        return changed
    if using(sdir, ask):
        _runner_or_locked(sdir, "sync", lambda: settle_without_runner(sdir, reason))


def settle_without_runner(sdir: Path, reason: str = "cancelled by user", everything: bool = False) -> None:
    """With runner.lock held and no runner: kill running jobs asked to be cancelled (all of them with
    ``everything``: their process trees, sessions and whatever carries their marker), settle those of
    their kind already gone by their exit files, and kill stray processes of finished jobs."""
    key = state_key(sdir)
    where = "state='RUNNING'" if everything else "state='RUNNING' AND cancel_requested=1"
    rows = using(sdir, lambda conn: list(conn.execute(f"SELECT id, pid, pid_ctime, script, call FROM jobs "
                                                      f"WHERE {where}")))
    roots = {row["id"]: proctools.find(row["pid"], row["pid_ctime"], f"{key}:{row['id']}") for row in rows}
    marks = proctools.marked(key, {row["pid"]: row["id"] for row in rows if roots[row["id"]]}) \
        if (rows or everything) else {}
    grace = kill_grace()
    outcome = []
    for row in rows:
        root = roots[row["id"]]
        procs = proctools.tree(root) + marks.pop(row["id"], [])
        if root is not None:
            proctools.terminate(procs, row["pid"], grace)
            outcome.append((CANCELLED, None, reason, time.time(), row["id"]))
        else:
            proctools.terminate(procs, None, 0)
            ended = ended_by_exit_file(row["script"], row["call"])
            outcome.append((*ended, row["id"]) if ended else (UNKNOWN, None, LOST_REASON, time.time(), row["id"]))
    if everything:
        for procs in marks.values():
            proctools.terminate(procs, None, 0)

    def record(conn) -> None:
        with transaction(conn):
            if everything:
                conn.execute("UPDATE jobs SET state=?, reason=?, end_time=? WHERE state IN (?, ?)",
                             (CANCELLED, reason, time.time(), PENDING, HELD))
            for state, code, why, end, job_id in outcome:
                conn.execute("UPDATE jobs SET state=?, exitcode=?, reason=?, end_time=?, env='{}' "
                             "WHERE id=? AND state=?", (state, code, why, end, job_id, RUNNING))
    if everything or outcome:
        using(sdir, record)


def ended_by_exit_file(script: Optional[str], call: Optional[str]
                       ) -> Optional[tuple[str, int, Optional[str], float]]:
    """How a job ended by the exit record its cluster-core script (or warm worker) wrote: state, exit
    code, reason and end time; None without one (not a cluster-core job, or killed before it wrote)."""
    path = json.loads(call).get("exit") if call else None
    if path is None and script and script.endswith(".sh") and is_job_file(Path(script)):
        path = script[:-len("sh")] + "exit"
    ended = read_exit_file(Path(path)) if path else None
    if ended is None:
        return None
    end = ended.end or time.time()
    code = 0 if ended.not_run else ended.returncode  # "not run": the script left at once, with 0
    return (COMPLETED, 0, None, end) if code == 0 else (FAILED, code, f"exit code {code}", end)


def release(job_ids: Sequence[Any], sdir: Optional[Path] = None) -> int:
    """Let held jobs run; returns how many were released."""
    sdir = state_dir(sdir)
    ids = _ints(job_ids)

    def free(conn) -> int:
        changed = 0
        with transaction(conn):
            for part in chunks(ids):
                changed += conn.execute(f"UPDATE jobs SET state=? WHERE id IN ({placeholders(part)}) AND state=?",
                                        (PENDING, *part, HELD)).rowcount
        return changed
    changed = using(sdir, free)
    if changed:
        ensure_runner(sdir, "sync")
    return changed


# --- the runner as a whole --------------------------------------------------------------------------

def runner_status(sdir: Optional[Path] = None) -> Optional[dict]:
    """What the runner of a state dir reports about itself (pid, limits, jobs), or None if none runs."""
    sdir = state_dir(sdir)
    answer = request(sdir, "status", timeout=10.0)
    if not answer:
        return None
    try:
        return json.loads(answer)
    except ValueError:
        return None


def shutdown_runner(sdir: Optional[Path] = None, timeout: float = 30.0) -> bool:
    """Stop the runner of a state dir, cancelling every queued and running job (their processes are
    killed), and kill stray processes of earlier jobs. True when a runner was running."""
    sdir = state_dir(sdir)
    status = runner_status(sdir)
    if status is not None:
        request(sdir, "shutdown", timeout=timeout)  # answered as the runner leaves
    deadline = time.monotonic() + timeout
    while True:
        # the lock goes with the runner's process (even while it is a zombie nobody has reaped)
        with runner_lock_if_free(sdir) as free:
            if free:
                try:
                    settle_without_runner(sdir, "runner shut down", everything=True)
                except SchedulerError as exc:  # the jobs' processes are gone; their states wait for a runner
                    log.warning("the local runner for %s stopped, but its jobs could not be marked "
                                "cancelled: %s", sdir, exc)
                return status is not None
        if time.monotonic() > deadline:
            raise SchedulerError(f"the local runner for {sdir} did not stop within {timeout:g} s")
        request(sdir, "shutdown", timeout=timeout)
        time.sleep(0.01)


def purge(older_than: float = 7 * 86400, sdir: Optional[Path] = None) -> int:
    """Forget jobs that finished more than ``older_than`` seconds ago; returns how many."""
    def forget(conn) -> int:
        with transaction(conn):
            return conn.execute(
                "DELETE FROM jobs WHERE end_time < ? AND state NOT IN ('PENDING', 'HELD', 'RUNNING')",
                (time.time() - older_than,)).rowcount
    return using(state_dir(sdir), forget)


