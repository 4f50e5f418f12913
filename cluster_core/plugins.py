"""Backend discovery and dispatch: entry points, pluggy, and the choice of one backend.

Entry points in the group ``cluster_core.backends`` are scanned on first use, never at import. Each
backend is registered under its entry-point name; a :class:`Backend` calls that one plugin's hooks only,
through a cached ``subset_hook_caller``, so no hook implementation has to ask whether it is active.
"""

from __future__ import annotations

import logging
import os
import threading
from importlib import metadata
from typing import Any, Optional, Sequence

import attrs
import pluggy

from . import hookspecs
from .errors import BackendError
from .records import BackendInfo, Detection

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "cluster_core.backends"
ENV_BACKEND = "CLUSTER_BACKEND"
DEFAULT_BACKEND = "local"

_lock = threading.RLock()
_pm: Optional[pluggy.PluginManager] = None
_load_errors: dict[str, str] = {}
_backends: dict[str, "Backend"] = {}


def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, with every installed backend loaded (once)."""
    global _pm
    with _lock:
        if _pm is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            for ep in _entry_points():
                if pm.has_plugin(ep.name):
                    continue
                try:
                    pm.register(ep.load(), name=ep.name)
                except Exception as exc:  # a broken third-party plugin must not break the others
                    _load_errors[ep.name] = f"{type(exc).__name__}: {exc}"
                    log.warning("backend plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)
            _pm = pm
        return _pm


def _entry_points():
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def register(plugin: Any, name: str) -> None:
    """Register a backend object or module by hand (tests, or a backend that is not installed)."""
    with _lock:
        pm = plugin_manager()
        if pm.has_plugin(name):
            raise BackendError(f"a backend named {name!r} is already registered")
        pm.register(plugin, name=name)
        _backends.pop(name, None)


def unregister(name: str) -> None:
    with _lock:
        pm = plugin_manager()
        plugin = pm.get_plugin(name)
        if plugin is not None:
            pm.unregister(plugin, name=name)
        _backends.pop(name, None)


def backend_names() -> list[str]:
    """Names of every registered backend, in registration order."""
    return [name for name, _ in plugin_manager().list_name_plugin()]


class Backend:
    """One backend's hooks, each call answered by that backend alone."""

    def __init__(self, name: str):
        pm = plugin_manager()
        plugin = pm.get_plugin(name)
        if plugin is None:
            raise BackendError(f"no backend named {name!r}; installed: {', '.join(backend_names()) or 'none'}")
        self.name = name
        others = [p for n, p in pm.list_name_plugin() if n != name]
        self._callers = {spec: pm.subset_hook_caller(spec, remove_plugins=others)
                         for spec in ("backend_info", "detect", "render_options", "submit",
                                      "parse_queue", "cancel", "max_array_size",
                                      "refine_failure", "task_id", "parse_task_id", "parse_directives",
                                      "settings")}
        self._info: Optional[BackendInfo] = None
        self._max_array: Optional[tuple] = None

    def _call(self, hook: str, **kwargs):
        caller = self._callers[hook]
        if not caller.get_hookimpls():
            raise BackendError(f"backend {self.name!r} does not implement the {hook!r} hook")
        return caller(**kwargs)

    @property
    def info(self) -> BackendInfo:
        if self._info is None:
            info = self._call("backend_info")
            if not isinstance(info, BackendInfo):
                raise BackendError(f"backend {self.name!r}: backend_info returned {info!r}, not a BackendInfo")
            self._info = attrs.evolve(info, name=self.name)
        return self._info

    def detect(self) -> Detection:
        try:
            result = self._call("detect")
        except Exception as exc:  # the contract says never raise; a buggy plugin still must not stop detection
            return Detection(False, f"detect raised {type(exc).__name__}: {exc}")
        if not isinstance(result, Detection):
            return Detection(bool(result), "")
        return result

    def max_array_size(self) -> Optional[int]:
        """The backend's array size limit (asked once), None for no limit or no arrays."""
        if self._max_array is None:
            size = None
            if self.info.supports_arrays and self._callers["max_array_size"].get_hookimpls():
                size = self._call("max_array_size")
            self._max_array = (int(size) if size else None,)
        return self._max_array[0]

    def render_options(self, options) -> list[tuple[str, ...]]:
        return list(self._call("render_options", options=options) or [])

    def submit(self, script, options, directives_in_script: bool = True, call=None) -> str:
        job_id = self._call("submit", script=script, options=options, directives_in_script=directives_in_script,
                            call=call)
        if job_id is None or not str(job_id).strip():
            raise BackendError(f"backend {self.name!r} returned no job id for {script}")
        return str(job_id).strip()

    def parse_queue(self, job_ids: Optional[Sequence[str]] = None, user: Optional[str] = None,
                    partition: Optional[str] = None):
        ids = list(job_ids) if job_ids is not None else None
        return list(self._call("parse_queue", job_ids=ids, user=user, partition=partition) or [])

    def refine_failure(self, record, stderr: str):
        """The backend's reading of a failed job's stderr; the record unchanged without the hook."""
        if not self._callers["refine_failure"].get_hookimpls():
            return record
        return self._call("refine_failure", record=record, stderr=stderr) or record

    def settings(self) -> Optional[dict[str, str]]:
        """The backend's own settings (name -> help), None when it does not say."""
        if not self._callers["settings"].get_hookimpls():
            return None
        return {"bin_dir": "the directory of the scheduler's commands", **dict(self._call("settings") or {})}

    @property
    def reads_directives(self) -> bool:
        """True when the backend reads a user's script's own directives (its parse_directives hook)."""
        return bool(self._callers["parse_directives"].get_hookimpls())

    def parse_directives(self, text: str) -> dict[str, Any]:
        """The keywords a user's script asks for in this scheduler's directives ({} without the hook)."""
        if not self._callers["parse_directives"].get_hookimpls():
            return {}
        return dict(self._call("parse_directives", text=text) or {})

    def task_id(self, array_id: str, index: int) -> str:
        """The scheduler's id of one task of a native array (``<array_id>[<index>]`` without the hook)."""
        if self._callers["task_id"].get_hookimpls():
            found = self._call("task_id", array_id=array_id, index=index)
            if found:
                return str(found)
        return f"{array_id}[{index}]"

    def parse_task_id(self, job_id: str) -> Optional[tuple[str, int]]:
        """(array id, index) when ``job_id`` is one task of a native array in the scheduler's spelling."""
        if not self._callers["parse_task_id"].get_hookimpls():
            return None
        found = self._call("parse_task_id", job_id=job_id)
        return (str(found[0]), int(found[1])) if found else None

    def cancel(self, job_ids: Sequence[str]) -> bool:
        if not job_ids:
            return True
        return bool(self._call("cancel", job_ids=list(job_ids)))

    def __repr__(self) -> str:
        return f"<Backend {self.name}>"


def backend(name: str) -> Backend:
    """The named backend (cached)."""
    with _lock:
        if name not in _backends:
            _backends[name] = Backend(name)
        return _backends[name]


@attrs.frozen
class BackendStatus:
    """One installed backend and whether it can be used here, for listings."""

    name: str
    available: bool
    reason: str
    priority: int
    description: str
    selected: bool = False


def list_backends() -> list[BackendStatus]:
    """Every installed backend with its detection result, best first; plugins that failed to load too."""
    rows = []
    for name in backend_names():
        be = backend(name)
        try:
            info = be.info
        except Exception as exc:
            rows.append(BackendStatus(name, False, f"backend_info failed: {exc}", -1, ""))
            continue
        det = be.detect()
        rows.append(BackendStatus(name, det.available, det.reason, info.priority, info.description))
    rows += [BackendStatus(n, False, f"failed to load: {err}", -1, "") for n, err in _load_errors.items()]
    rows.sort(key=lambda r: (not r.available, -r.priority, r.name))
    chosen = None
    try:
        chosen = choose_backend_name()
    except BackendError:
        pass
    fallback = chosen == DEFAULT_BACKEND and any(not r.available and r.name != DEFAULT_BACKEND for r in rows) \
        and not (os.environ.get(ENV_BACKEND) or _configured_backend())
    return [attrs.evolve(r, selected=(r.name == chosen),
                         reason=(r.reason + "; chosen because no installed scheduler is usable here: jobs run on "
                                 "this machine" if fallback and r.name == chosen else r.reason)) for r in rows]


def _configured_backend() -> Optional[str]:
    from . import config
    value = config.get_option("core.backend")
    return value if value and value != "auto" else None


_detected: Optional[str] = None


def get_cluster_environment(refresh: bool = False) -> str:
    """The best backend that detects itself here (highest priority), else the local backend."""
    global _detected
    with _lock:
        if _detected is not None and not refresh:
            return _detected
        best: Optional[tuple[int, str]] = None
        missed: list[str] = []
        for name in backend_names():
            be = backend(name)
            try:
                prio = be.info.priority
            except Exception:
                continue
            det = be.detect()
            log.debug("backend %s: %s (%s)", name, "available" if det.available else "not available", det.reason)
            if det.available and (best is None or prio > best[0]):
                best = (prio, name)
            elif not det.available and name != DEFAULT_BACKEND:
                missed.append(f"{name}: {det.reason}")
        if best is None:
            if DEFAULT_BACKEND not in backend_names():
                raise BackendError("no backend is available and the local backend is not installed; "
                                   "pip install cluster-core[local]")
            best = (0, DEFAULT_BACKEND)
        if best[1] == DEFAULT_BACKEND and missed:
            # a scheduler plugin is installed but unusable (a module not loaded, a controller down): jobs
            # would run on this (login) machine; say so, loudly, once
            log.warning("no scheduler answers here, so jobs run on this machine with the local backend (%s). "
                        "Choose explicitly with `cluster config set core.backend NAME` or $%s.",
                        "; ".join(missed), ENV_BACKEND)
        _detected = best[1]
        return _detected


def choose_backend_name(name: Optional[str] = None) -> str:
    """An explicit name, else $CLUSTER_BACKEND, else the config's core.backend, else auto-detection."""
    if name:
        return name
    env = os.environ.get(ENV_BACKEND, "").strip()
    if env:
        return env
    from . import config
    configured = config.get_option("core.backend")
    if configured and configured != "auto":
        return configured
    return get_cluster_environment()


def get_backend(name: Optional[str] = None) -> Backend:
    """The backend to use for a call: see :func:`choose_backend_name`."""
    chosen = choose_backend_name(name)
    if chosen not in backend_names():
        hint = f"; it failed to load: {_load_errors[chosen]}" if chosen in _load_errors else \
            f"; installed: {', '.join(backend_names()) or 'none'} (pip install cluster-core[{chosen}]?)"
        raise BackendError(f"backend {chosen!r} is not installed{hint}")
    return backend(chosen)


def reset() -> None:
    """Forget loaded plugins and detection (tests)."""
    global _pm, _detected
    with _lock:
        _pm = None
        _detected = None
        _backends.clear()
        _load_errors.clear()
