"""Finding and killing a job's processes: by pid plus create time (never a reused pid), its process
group and every descendant, and by the marker variable every job process inherits."""

from __future__ import annotations

import os
import signal
from typing import Iterable, Mapping, Optional

import psutil

from .settings import MARKER, marker_job

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, ProcessLookupError)


def create_time(pid: int) -> Optional[float]:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def find(pid: Optional[int], ctime: Optional[float] = None, marker: Optional[str] = None
         ) -> Optional[psutil.Process]:
    """The live (not zombie) process with this pid, else None; with ``ctime`` or ``marker`` only if it
    has that create time or carries that job marker in its environment (so never a reused pid)."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if ctime is not None and abs(proc.create_time() - ctime) > 0.01:
            return None
        if marker is not None and not same_marker(proc.environ().get(MARKER), marker):
            return None
        return proc
    except (psutil.Error, OSError):
        return None


def same_marker(value: Optional[str], marker: str) -> bool:
    """Whether a process's marker names the same job ("<key>:42", or zero-padded by a warm worker)."""
    if value == marker:
        return True
    key, _, job = marker.partition(":")
    return job.isdigit() and marker_job(value, key) == int(job)


def tree(root: Optional[psutil.Process]) -> list[psutil.Process]:
    """The process and all its descendants (live ones)."""
    if root is None:
        return []
    try:
        return [root, *root.children(recursive=True)]
    except (psutil.Error, OSError):
        return [root]


def send(procs: Iterable[psutil.Process], sig: int, pgid: Optional[int] = None) -> None:
    """Signal each process (psutil checks it is still the same process) and the process group."""
    if pgid:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for proc in procs:
        try:
            proc.send_signal(sig)
        except (psutil.Error, OSError):
            pass


def alive(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except (psutil.Error, OSError):
            pass
    return out


def terminate(procs: list[psutil.Process], pgid: Optional[int], grace: float) -> None:
    """SIGTERM the processes and group, wait up to ``grace`` s, SIGKILL what is left (blocking)."""
    send(procs, signal.SIGTERM, pgid)
    _, left = psutil.wait_procs(procs, timeout=grace)
    left = alive(left)
    send(left, signal.SIGKILL, pgid if left else None)
    if left:
        psutil.wait_procs(left, timeout=2.0)


def marked(key: str, sessions: Optional[Mapping[int, int]] = None) -> dict[int, list[psutil.Process]]:
    """This user's live processes whose environment carries this state dir's job marker, by job id; with
    ``sessions`` (session id -> job id) also those in a job's session that dropped the marker."""
    uid = os.getuid()
    me = os.getpid()
    found: dict[int, list[psutil.Process]] = {}
    for proc in psutil.process_iter(["uids"]):
        try:
            if proc.pid == me or proc.info["uids"] is None or proc.info["uids"].real != uid:
                continue
            job = marker_job(proc.environ().get(MARKER), key)
            if job is None and sessions:
                job = sessions.get(os.getsid(proc.pid))
            if job is None or proc.status() == psutil.STATUS_ZOMBIE:
                continue  # not a job of this state dir (an idle warm worker shows no job)
            found.setdefault(job, []).append(proc)
        except (psutil.Error, OSError, ValueError):
            continue
    return found


def children(pid: int) -> list[int]:
    """The pids of the children of a process's main thread (where it forks, and where the kernel hands
    orphans to a subreaper), from /proc/<pid>/task/<pid>/children: no look at every process; psutil's
    scan where the kernel lacks that file."""
    try:
        fd = os.open(f"/proc/{pid}/task/{pid}/children", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        try:
            return [p.pid for p in psutil.Process(pid).children()]
        except (psutil.Error, OSError):
            return []
    except OSError:
        return []
    try:
        data = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return [int(p) for p in data.split()]
            data += chunk
    except OSError:
        return []
    finally:
        os.close(fd)


def job_of(pid: int, key: str) -> Optional[int]:
    """The job of this state dir whose marker a live process carries, else None."""
    proc = find(pid)
    try:
        return marker_job(proc.environ().get(MARKER), key) if proc is not None else None
    except (psutil.Error, OSError):
        return None


def resident(procs: Iterable[psutil.Process]) -> int:
    """Bytes of resident memory the processes hold together (those gone meanwhile count nothing)."""
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return total


def unique(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    return list({p.pid: p for p in procs}.values())


def is_session_leader(proc: psutil.Process) -> bool:
    try:
        return os.getsid(proc.pid) == proc.pid
    except OSError:
        return False


def close_on_exec() -> None:
    """Make every descriptor above 2 close-on-exec (what Python and SQLite open is already): a job
    started by posix_spawn inherits only its 0, 1 and 2."""
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass
