"""Which PBS this is: Torque ("torque") or PBS Pro / OpenPBS ("pbspro").

Both ship commands named qsub, qstat and qdel with different options and outputs. The dialect comes from
``$CLUSTER_TORQUE_DIALECT``, else the config setting ``torque.dialect``, else ``qstat --version``, whose
first line is ``Version: 6.1.3`` on Torque and ``pbs_version = 23.06.06`` on OpenPBS and PBS Pro. The
detected answer is cached for the process (:func:`reset` forgets it).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Optional

import attrs

from cluster_core.errors import ConfigError, SchedulerError

log = logging.getLogger(__name__)

TORQUE = "torque"
PBSPRO = "pbspro"
DIALECTS = (TORQUE, PBSPRO)
ENV_DIALECT = "CLUSTER_TORQUE_DIALECT"
CONFIG_KEY = "torque.dialect"
VERSION_TIMEOUT = 3.0

_ALIASES = {
    "torque": TORQUE, "pbs_torque": TORQUE,
    "pbspro": PBSPRO, "pbs_pro": PBSPRO, "pbs-pro": PBSPRO, "pbs": PBSPRO, "openpbs": PBSPRO,
    "altair": PBSPRO,
}


@attrs.frozen
class Flavour:
    """A detected PBS: its dialect and version, or why it could not be told."""

    dialect: Optional[str]
    version: Optional[str] = None
    reason: str = ""


_TORQUE_RE = re.compile(r"^\s*Version:\s*(\S+)", re.MULTILINE)
_PBSPRO_RE = re.compile(r"^\s*pbs_version\s*=\s*(\S+)", re.MULTILINE)


def from_version_output(text: str) -> Flavour:
    """The dialect named by ``qstat --version`` output (stdout and stderr together)."""
    text = text or ""
    m = _PBSPRO_RE.search(text)
    if m:
        return Flavour(PBSPRO, m.group(1), f"OpenPBS/PBS Pro {m.group(1)}")
    m = _TORQUE_RE.search(text)
    if m:
        return Flavour(TORQUE, m.group(1), f"Torque {m.group(1)}")
    if re.search(r"slurm|Unknown option: version", text, re.IGNORECASE):
        return Flavour(None, None, "qstat is Slurm's Torque-compatibility wrapper (slurm-wlm-torque), not "
                                   "Torque or PBS: it has no `qstat -x`; use the slurm backend")
    first = text.strip().splitlines()[0][:200] if text.strip() else "nothing"
    return Flavour(None, None, f"`qstat --version` printed {first!r}, which names neither Torque nor PBS")


def normalise(value: str, source: str) -> str:
    """A configured dialect name as one of :data:`DIALECTS`; ConfigError naming ``source`` otherwise."""
    key = value.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    raise ConfigError(f"{source}={value!r}: expected one of torque, pbspro (or openpbs, pbs_pro), or auto")


def configured() -> Optional[str]:
    """The dialect forced by the environment or the config, or None for auto-detection."""
    env = os.environ.get(ENV_DIALECT, "").strip()
    if env and env.lower() != "auto":
        return normalise(env, ENV_DIALECT)
    from cluster_core import config
    value = (config.get_option(CONFIG_KEY) or "").strip()
    if value and value.lower() != "auto":
        return normalise(value, f"config setting {CONFIG_KEY}")
    return None


_lock = threading.Lock()
_cached: Optional[Flavour] = None


def probe(timeout: float = VERSION_TIMEOUT) -> Flavour:
    """Run ``qstat --version`` (never raises); not cached."""
    from cluster_core import commands
    exe = commands.which("qstat")
    if exe is None:
        return Flavour(None, None, "qstat not found on PATH (set `cluster config set commands.qstat /path`)")
    if _is_slurm_wrapper(exe):
        return Flavour(None, None, f"{exe} is Slurm's Torque-compatibility wrapper (slurm-wlm-torque), not "
                                   "Torque or PBS: it has no `qstat -x`; use the slurm backend")
    try:
        res = commands.run(["qstat", "--version"], timeout=timeout, check=False)
    except SchedulerError as exc:
        return Flavour(None, None, str(exc))
    return from_version_output((res.stdout or "") + "\n" + (res.stderr or ""))


def _is_slurm_wrapper(path: str) -> bool:
    """Slurm's qstat is a Perl script; real Torque and PBS ship a compiled qstat."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head.startswith(b"#!") and b"slurm" in head.lower()


def detected(refresh: bool = False) -> Flavour:
    """The cached result of :func:`probe`."""
    global _cached
    with _lock:
        if _cached is None or refresh:
            _cached = probe()
            log.debug("PBS dialect detection: %s", _cached)
        return _cached


def current() -> str:
    """The dialect to use now: configured, else detected, else "torque" (logged) so scripts can be written
    on a machine without a PBS client."""
    forced = configured()
    if forced:
        return forced
    flavour = detected()
    if flavour.dialect:
        return flavour.dialect
    log.debug("cannot tell Torque from PBS Pro (%s); writing Torque directives. Set %s or the config "
              "setting %s to choose", flavour.reason, ENV_DIALECT, CONFIG_KEY)
    return TORQUE


def reset() -> None:
    global _cached
    with _lock:
        _cached = None
