"""Running scheduler commands: argument lists only, a timeout on every call, retries for transient errors.

Backends call :func:`run`. Where a command is found, most specific first: ``$CLUSTER_<COMMAND>`` or the
config's ``commands.<command>`` (one program); the backend's own directory, ``$CLUSTER_<BACKEND>_BIN`` or
the config's ``<backend>.bin_dir`` (several schedulers name their commands alike: Torque, OpenPBS and Grid
Engine all have a ``qsub``); then PATH; then the usual install directories.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from typing import Iterable, Mapping, Optional, Sequence, Union

import attrs

from .errors import SchedulerError

log = logging.getLogger(__name__)

# System directories a trimmed login PATH may lack. A scheduler's own install directory is the backend's
# business (<backend>.bin_dir, or its own defaults), never a guess of the core's.
EXTRA_DIRS = ("/usr/local/bin", "/usr/bin", "/usr/local/sbin", "/usr/sbin")


def _setting(key: str) -> Optional[str]:
    try:
        from . import config
        value: Optional[str] = config.get_option(key)
        return value
    except Exception:  # a broken config must not hide a command; config errors surface elsewhere
        return None


def which(command: str, backend: Optional[str] = None) -> Optional[str]:
    """The full path of a scheduler command (see the module docstring for the search order)."""
    env = os.environ.get("CLUSTER_" + re.sub(r"\W", "_", command).upper())
    if env:
        return env
    configured = _setting(f"commands.{command}")
    if configured:
        return configured
    if backend:
        bin_dir = os.environ.get("CLUSTER_" + re.sub(r"\W", "_", backend).upper() + "_BIN") or \
            _setting(f"{backend}.bin_dir")
        if bin_dir:
            return shutil.which(command, path=bin_dir)
    found = shutil.which(command)
    if found:
        return found
    return shutil.which(command, path=os.pathsep.join(EXTRA_DIRS))


@attrs.frozen
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run(args: Sequence[str], *, timeout: float = 30.0, retries: int = 0, backoff: float = 1.0,
        transient: Iterable[str] = (), input: Optional[str] = None, check: bool = True,
        retry_timeouts: bool = True, env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
        backend: Optional[str] = None) -> Result:
    """Run a command (argument list, no shell) and return its Result.

    The first word is resolved with :func:`which`. A non-zero exit whose output matches a ``transient``
    regex, and a timeout unless ``retry_timeouts`` is false (a submission that timed out may have been
    accepted), are retried up to ``retries`` times with exponential backoff. With ``check``, a non-zero
    exit raises SchedulerError carrying the command and what it printed; without, the last Result is
    returned.
    """
    args = [str(a) for a in args]
    exe = which(args[0], backend)
    if exe is None:
        where = f"{backend}.bin_dir" if backend else f"PATH or {', '.join(EXTRA_DIRS)}"
        raise SchedulerError(f"{args[0]}: command not found in {where}; set its path with "
                             f"`cluster config set commands.{args[0]} /path/to/{args[0]}`"
                             + (f" or its directory with `cluster config set {backend}.bin_dir DIR`"
                                if backend else ""), command=args)
    full = [exe, *args[1:]]
    patterns = [re.compile(p, re.IGNORECASE) for p in transient]
    attempt = 0
    while True:
        attempt += 1
        start = time.monotonic()
        try:
            proc = subprocess.run(full, input=input, capture_output=True, text=True, timeout=timeout,
                                  env=env, cwd=cwd)
        except subprocess.TimeoutExpired as exc:
            err = SchedulerError(f"{args[0]} did not answer within {timeout:g} s", command=args,
                                 output=_text(exc.stderr), transient=retry_timeouts)
        except OSError as exc:
            raise SchedulerError(f"{args[0]} could not be run: {exc}", command=args) from None
        else:
            res = Result(tuple(full), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
            log.debug("ran %s -> rc %s in %.3f s", full, proc.returncode, res.seconds)
            if proc.returncode == 0:
                return res
            output = (proc.stderr or "") + (proc.stdout or "")
            is_transient = any(p.search(output) for p in patterns)
            if not check and (not is_transient or attempt > retries):
                return res
            err = SchedulerError(f"{args[0]} failed (exit {proc.returncode}): {output.strip()[:2000]}",
                                 command=args, returncode=proc.returncode, output=output,
                                 transient=is_transient)
        if not err.transient or attempt > retries:
            raise err
        delay = backoff * 2 ** (attempt - 1)
        log.warning("%s; retrying in %.1f s (attempt %d of %d)", err, delay, attempt, retries + 1)
        time.sleep(delay)


def _text(data: Union[bytes, str, None]) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)
