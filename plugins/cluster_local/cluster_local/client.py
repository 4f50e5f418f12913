"""Reaching the local runner: its socket and locks, one-line requests, pokes, and starting it on demand.

A submitter commits the job row, then pokes the runner over its Unix socket ("wake"); a runner that
answers "ok" has seen the job. When nothing answers, the submitter takes ``spawn.lock`` (so two submitters
never start two runners), asks once more, and else starts a runner and waits until it listens. The runner
holds ``runner.lock`` for its whole life, so "is a runner alive?" is one non-blocking flock, and a client
that must act without a runner (cancel, shutdown) holds that lock meanwhile so none can start under it.
"""

from __future__ import annotations

import contextlib
import fcntl
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
from typing import Any, Callable, Iterator, Optional, cast

from cluster_core.backend import SchedulerError

from .settings import ENV_DIR, ENV_THREADS, MARKER, marker_slot, state_dir, state_key

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
    env[ENV_DIR] = str(sdir)
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


def runner_or_locked(sdir: Path, message: str, direct: Callable[[], None], timeout: float = 30.0) -> None:
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



def runner_status(sdir: Optional[Path] = None) -> Optional[dict[str, Any]]:
    """What the runner of a state dir reports about itself (pid, limits, jobs), or None if none runs."""
    sdir = state_dir(sdir)
    answer = request(sdir, "status", timeout=10.0)
    if not answer:
        return None
    try:
        return cast("dict[str, Any]", json.loads(answer))  # the runner's status(), as JSON
    except ValueError:
        return None
