"""Which PBS this is: Torque ("torque") or PBS Pro / OpenPBS ("pbspro").

Both ship commands named qsub, qstat and qdel with different options and outputs (and so do Grid Engine
and Slurm's Torque wrappers). The dialect comes from ``$CLUSTER_TORQUE_DIALECT``, else the config setting
``torque.dialect``, else ``qstat --version``, whose first line is ``Version: 6.1.3`` on Torque and
``pbs_version = 23.06.06`` on OpenPBS and PBS Pro. The qstat asked is the one the core finds for this
backend: in ``$CLUSTER_TORQUE_BIN`` or ``torque.bin_dir`` first, then on PATH. The detected answer is cached
for the process (:func:`reset` forgets it).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Optional

import attrs

from cluster_core.backend import Commands, ConfigError, SchedulerError, bin_dir_setting, setting

log = logging.getLogger("cluster_core.torque")  # shown by `cluster -v`, with the core's

TORQUE = "torque"
PBSPRO = "pbspro"
DIALECTS = (TORQUE, PBSPRO)
BACKEND = "torque"
ENV_DIALECT = "CLUSTER_TORQUE_DIALECT"
CONFIG_KEY = "torque.dialect"
VERSION_TIMEOUT = 3.0
COMMANDS = Commands(BACKEND)

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
# Grid Engine's qstat answers --version with its usage, headed "SGE 8.1.9" (Son of Grid Engine; Open/
# Univa Grid Engine print OGS/GE/UGE and a version the same way)
_GRIDENGINE_RE = re.compile(r"^\s*(?:SGE|OGS|OGE|UGE|GE)\s+\d+\.\d", re.MULTILINE)
SLURM_WRAPPER = ("Slurm's Torque-compatibility wrapper (slurm-wlm-torque), not Torque or PBS: it has no "
                 "`qstat -x`; use the slurm backend")
GRID_ENGINE = "Grid Engine's, not Torque's or PBS's: use the sge backend for it"


def from_version_output(text: str) -> Flavour:
    """The dialect named by ``qstat --version`` output (stdout and stderr together)."""
    text = text or ""
    m = _PBSPRO_RE.search(text)
    if m:
        return Flavour(PBSPRO, m.group(1), f"OpenPBS/PBS Pro {m.group(1)}")
    if _GRIDENGINE_RE.search(text):
        return Flavour(None, None, f"qstat is {GRID_ENGINE}")
    m = _TORQUE_RE.search(text)
    if m:
        return Flavour(TORQUE, m.group(1), f"Torque {m.group(1)}")
    if re.search(r"slurm|Unknown option: version", text, re.IGNORECASE):
        return Flavour(None, None, f"qstat is {SLURM_WRAPPER}")
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
    value = (setting(CONFIG_KEY) or "").strip()
    if value and value.lower() != "auto":
        return normalise(value, f"config setting {CONFIG_KEY}")
    return None


_lock = threading.Lock()
_cached: Optional[Flavour] = None


# Where Torque and OpenPBS/PBS Pro install their commands when not on PATH; named in hints only.
USUAL_BIN_DIRS = ("/opt/torque/bin", "/usr/local/torque/bin", "/opt/pbs/bin", "/opt/pbspro/bin")


def _hint() -> str:
    """How to point the backend at the right qstat, naming the PBS installations seen on this machine."""
    found = [d for d in USUAL_BIN_DIRS if os.access(os.path.join(d, "qstat"), os.X_OK)]
    seen = f" (found: {', '.join(found)})" if found else ""
    return (f"; point the torque backend at Torque's or PBS's commands with `cluster config set "
            f"torque.bin_dir DIR` or $CLUSTER_TORQUE_BIN{seen}")


def probe(timeout: float = VERSION_TIMEOUT) -> Flavour:
    """Run ``qstat --version`` (never raises); not cached. The qstat is the backend's: from
    $CLUSTER_TORQUE_BIN or torque.bin_dir when set, else PATH, since Grid Engine and Slurm's wrappers
    also install a qstat."""
    exe = COMMANDS.which("qstat")
    if exe is None:
        where = bin_dir_setting(BACKEND)
        if where:
            return Flavour(None, None, f"no qstat in {where}")
        return Flavour(None, None, "qstat not found on PATH" + _hint())
    foreign = _foreign_script(exe)
    if foreign:
        return Flavour(None, None, f"{exe} is {foreign}" + _hint())
    try:
        res = COMMANDS.run(["qstat", "--version"], timeout=timeout, check=False)
    except SchedulerError as exc:
        return Flavour(None, None, str(exc))
    flavour = from_version_output((res.stdout or "") + "\n" + (res.stderr or ""))
    if flavour.dialect is None:
        reason = flavour.reason.replace("qstat is", f"{exe} is", 1) if flavour.reason.startswith("qstat is") \
            else f"{exe}: {flavour.reason}"
        return attrs.evolve(flavour, reason=reason + _hint())
    return flavour


def _foreign_script(path: str) -> Optional[str]:
    """Whose qstat a script is when it is not Torque's or PBS's: Slurm's wrappers are Perl scripts and
    Debian's Grid Engine commands a shell wrapper; real Torque and PBS ship a compiled qstat."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    lower = head.lower()
    if b"slurm" in lower:
        return SLURM_WRAPPER
    if b"gridengine" in lower or b"sge_root" in lower:
        return GRID_ENGINE
    return None


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
