"""The peers' own virtual environment (benchmarks/.venv-peers): made and filled by the benchmark, never a
dependency of the project.

Each peer is installed by a separate pip call, so one that fails to install leaves the others usable;
each is then imported in a fresh interpreter, and what failed is recorded with its message. Nothing here
raises: a peer that cannot be had gets a "did not finish" cell, not a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv-peers"

#: name -> (pip requirements, import name, why pinned). One pip call per peer.
PEERS = {
    "submitit": (["submitit==1.5.4"], "submitit", "the latest release"),
    # fyrd 0.6.2b1 (2018) predates SQLAlchemy 1.4: with 2.x its local server cannot send query rows
    # over Pyro4 ("unsupported serialized class: sqlalchemy.engine.row.Row"), so it gets the 1.3 line.
    "fyrd": (["fyrd==0.6.2b1", "sqlalchemy<1.4"], "fyrd", "the last release; SQLAlchemy 1.3 as in its day"),
    "matplotlib": (["matplotlib>=3.7"], "matplotlib", "draws the plot"),
}


def python() -> Path:
    return VENV / "bin" / "python"


def _tail(text: str, lines: int = 6) -> str:
    kept = [line for line in (text or "").strip().splitlines() if not line.startswith("WARNING: Location")]
    return "\n".join(kept[-lines:])


def _run(args: list[str], timeout: float) -> tuple[bool, str]:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:g} s"
    except OSError as exc:
        return False, str(exc)
    return proc.returncode == 0, _tail(proc.stdout + "\n" + proc.stderr)


def _stamp(reqs: list[str]) -> Path:
    digest = hashlib.sha1(json.dumps(reqs).encode()).hexdigest()[:12]
    return VENV / f".installed-{digest}"


def ensure(names: Optional[list[str]] = None, timeout: float = 600.0, log=print) -> dict[str, dict]:
    """Make the venv and install the peers (skipped when already installed); return, for each peer,
    {"ok", "version", "error", "install_seconds", "python"}."""
    names = list(PEERS) if names is None else names
    status: dict[str, dict] = {}
    if not python().exists():
        log(f"peers: creating {VENV}")
        ok, out = _run([sys.executable, "-m", "venv", str(VENV)], timeout=120)
        if not ok:
            return {n: {"ok": False, "version": None, "error": f"cannot create the peers' venv: {out}",
                        "python": None} for n in names}
    for name in names:
        reqs, module, _why = PEERS[name]
        started = time.monotonic()
        stamp = _stamp(reqs)
        error = None
        if not stamp.exists():
            log(f"peers: pip install {' '.join(reqs)}")
            ok, out = _run([str(python()), "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs],
                           timeout=timeout)
            if ok:
                stamp.touch()
            else:
                error = f"pip install {' '.join(reqs)} failed: {out}"
        version = None
        if error is None:
            code = f"import {module}; print(getattr({module}, '__version__', '?'))"
            env = dict(os.environ, HOME=str(VENV))  # fyrd writes ~/.fyrd when imported
            try:
                proc = subprocess.run([str(python()), "-c", code], capture_output=True, text=True, timeout=120,
                                      env=env, cwd=str(VENV), stdin=subprocess.DEVNULL)
                if proc.returncode == 0:
                    version = proc.stdout.strip().splitlines()[-1]
                else:
                    error = f"import {module} failed: {_tail(proc.stderr, 3)}"
            except subprocess.TimeoutExpired:
                error = f"import {module} did not finish within 120 s"
        status[name] = {"ok": error is None, "version": version, "error": error, "requirements": reqs,
                        "install_seconds": round(time.monotonic() - started, 2), "python": str(python())}
    return status


if __name__ == "__main__":
    print(json.dumps(ensure(), indent=2))
