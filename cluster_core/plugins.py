"""Backend discovery and dispatch: entry points, pluggy, and the choice of one backend.

Entry points in the group ``cluster_core.backends`` are scanned on first use, never at import. A backend
named by the caller (argument, $CLUSTER_BACKEND, core.backend) is loaded alone; the others only when all
are needed (a listing, auto-detection, a hand registration). Each backend is registered under its
entry-point name; a :class:`Backend` calls that one plugin's hooks only, through cached
``subset_hook_caller``s made again when the registered plugins change, so no hook implementation has to
ask whether it is active.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence, Tuple, Union

import attrs

from . import session
from .errors import BackendError, OptionError, PartialSubmitError, SubmitError
from .records import BackendInfo, Detection

if TYPE_CHECKING:  # pluggy and the hookspecs load with the first backend, not before
    from pathlib import Path

    import pluggy

    from . import hookspecs
    from .entrypoints import EntryPoint
    from .records import FunctionCall, QueueJob

    #: One job of :meth:`Backend.submit_many`: ``(script, options[, directives_in_script[, call]])``.
    JobSpec = Union[Tuple[Path, Mapping[str, Any]], Tuple[Path, Mapping[str, Any], bool],
                    Tuple[Path, Mapping[str, Any], bool, Optional[FunctionCall]]]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "cluster_core.backends"
#: Keywords the core's job script carries out itself: no backend hook sees them.
CORE_ONLY_KEYWORDS = frozenset({"modules", "jobdir"})
ENV_BACKEND = "CLUSTER_BACKEND"
DEFAULT_BACKEND = "local"


def plugin_manager() -> pluggy.PluginManager:
    """The session's plugin manager, with every installed backend that keeps the contract loaded (once)."""
    state = session.current()
    with state.plugin_lock:
        pm = _manager(state)
        if not state.all_loaded:
            for ep in _installed(state):
                _load(pm, state, ep)
            state.all_loaded = True
        return pm


def _manager_with(name: str) -> pluggy.PluginManager:
    """The session's plugin manager with the backend ``name`` loaded, if it is installed; the other
    installed backends are loaded only when something asks for them all (a listing, auto-detection).
    Naming a backend so costs the import of that plugin alone (~40 ms of CPU less for the local backend
    here)."""
    state = session.current()
    with state.plugin_lock:
        pm = _manager(state)
        if not state.all_loaded and not pm.has_plugin(name) and name not in state.load_errors:
            for ep in _installed(state):
                if ep.name == name:  # the first of a name, as when all are loaded
                    _load(pm, state, ep)
                    break
        return pm


def _manager(state: session.Session) -> pluggy.PluginManager:
    if state.plugin_manager is None:
        import pluggy

        from . import hookspecs
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        state.plugin_manager = pm
    return state.plugin_manager


def _installed(state: session.Session) -> list[EntryPoint]:
    if state.entry_points is None:
        state.entry_points = list(_entry_points())
    return state.entry_points


def _load(pm: pluggy.PluginManager, state: session.Session, ep: EntryPoint) -> None:
    """Load and register one entry point; a plugin that fails to load or breaks the contract is kept in
    ``load_errors`` with the reason (it must not break the others)."""
    if pm.has_plugin(ep.name) or ep.name in state.load_errors:
        return
    dist = getattr(ep, "dist", None)
    if dist is not None:
        state.distributions[ep.name] = f"{dist.name} {dist.version}"
    try:
        _register_checked(pm, ep.load(), ep.name)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, BackendError) else f"{type(exc).__name__}: {exc}"
        state.load_errors[ep.name] = reason
        log.warning("backend plugin %r (%s) failed to load: %s", ep.name, ep.value, reason)


def _entry_points() -> Iterable[EntryPoint]:
    from .entrypoints import entry_points  # not importlib.metadata: ~30 ms less on every first call
    return entry_points(ENTRY_POINT_GROUP)


def _register_checked(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """Register ``plugin`` as ``name`` if it keeps the contract; else leave nothing of it behind and raise a
    BackendError saying what is wrong (a hook argument the spec lacks, an unknown or a missing hook)."""
    try:
        pm.register(plugin, name=name)
    except Exception as exc:
        if pm.has_plugin(name):  # pluggy leaves the hooks it took before the bad one
            pm.unregister(name=name)
        text = " ".join(str(exc).split())
        import pluggy
        raise BackendError(f"breaks the contract: {text}" if isinstance(exc, pluggy.PluginValidationError)
                           else f"{type(exc).__name__}: {text}") from exc
    problems = contract_problems(pm, plugin)
    if problems:
        pm.unregister(name=name)
        raise BackendError("; ".join(problems))


def contract_problems(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    """What a registered plugin does wrong against :mod:`.hookspecs`: hooks the spec does not know (a typo
    such as ``parse_quee``) and required hooks it does not implement. Empty when it keeps the contract."""
    callers = pm.get_hookcallers(plugin) or []
    implemented = {caller.name for caller in callers}
    known = hook_names(pm)
    problems = []
    for name in sorted(implemented - set(known)):
        import difflib
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (the hooks are: {', '.join(known)})"
        problems.append(f"hook {name!r} is not in the contract{hint}")
    from .hookspecs import REQUIRED_HOOKS
    missing = [hook for hook in REQUIRED_HOOKS if hook not in implemented]
    if missing:
        problems.append(f"required hook{'s' if len(missing) > 1 else ''} {', '.join(missing)} not implemented")
    return problems


def hook_names(pm: pluggy.PluginManager) -> list[str]:
    """Every hook the contract defines, required or optional."""
    import pluggy
    return sorted(name for name, caller in vars(pm.hook).items()
                  if isinstance(caller, pluggy.HookCaller) and caller.spec is not None)


def register(plugin: Any, name: str) -> None:
    """Register a backend object or module by hand (tests, or a backend that is not installed); a plugin
    that breaks the contract is refused with a BackendError naming the problem."""
    state = session.current()
    with state.plugin_lock:
        pm = plugin_manager()
        if pm.has_plugin(name):
            raise BackendError(f"a backend named {name!r} is already registered")
        try:
            _register_checked(pm, plugin, name)
        except BackendError as exc:
            raise BackendError(f"backend {name!r} cannot be registered: {exc}") from None
        state.backends.pop(name, None)
        state.load_errors.pop(name, None)


def unregister(name: str) -> None:
    state = session.current()
    with state.plugin_lock:
        pm = plugin_manager()
        plugin = pm.get_plugin(name)
        if plugin is not None:
            pm.unregister(plugin, name=name)
        state.backends.pop(name, None)


def backend_names() -> list[str]:
    """Names of every registered backend, in registration order."""
    return [name for name, _ in plugin_manager().list_name_plugin()]


class Backend:
    """One backend's hooks, each call answered by that backend alone."""

    def __init__(self, name: str):
        pm = _manager_with(name)
        plugin = pm.get_plugin(name)
        if plugin is None:
            raise BackendError(f"no backend named {name!r}; installed: {', '.join(backend_names()) or 'none'}")
        self.name = name
        self._pm = pm
        self._callers: dict[str, Any] = {}
        self._callers_for: tuple[int, ...] = ()  # the plugins registered when the callers were made
        self._info: Optional[BackendInfo] = None
        self._max_array: Optional[tuple[Optional[int]]] = None

    @property
    def _hooks(self) -> dict[str, Any]:
        """Each hook's caller reaching this backend's plugin alone; made again when plugins were loaded or
        registered since (a subset caller leaves out only the plugins it was told of)."""
        plugins = self._pm.list_name_plugin()
        registered = tuple(id(p) for _, p in plugins)
        if registered != self._callers_for:
            others = [p for n, p in plugins if n != self.name]
            self._callers = {spec: self._pm.subset_hook_caller(spec, remove_plugins=others)
                             for spec in hook_names(self._pm)}
            self._callers_for = registered
        return self._callers

    def _call(self, hook: str, **kwargs: Any) -> Any:
        caller = self._hooks[hook]
        if not caller.get_hookimpls():
            raise BackendError(f"backend {self.name!r} does not implement the {hook!r} hook")
        return caller(**kwargs)

    @property
    def info(self) -> BackendInfo:
        if self._info is None:
            info = self._call("backend_info")
            if not isinstance(info, BackendInfo):
                raise BackendError(f"backend {self.name!r}: backend_info returned {info!r}, not a BackendInfo")
            if info.name is not None and info.name != self.name:
                # the entry point's name is the backend's name (records and config sections use it); a
                # different name in backend_info would show one name and answer to another
                raise BackendError(f"backend {self.name!r}: backend_info names it {info.name!r}; leave the "
                                   f"name out (the entry point's name is used) or make it {self.name!r}")
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
            if self.info.supports_arrays and self._hooks["max_array_size"].get_hookimpls():
                size = self._call("max_array_size")
            self._max_array = (int(size) if size else None,)
        return self._max_array[0]

    def render_options(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        return list(self._call("render_options", options=_for_backend(options)) or [])

    def submit(self, script: Path, options: Mapping[str, Any], directives_in_script: bool = True,
               call: Optional[FunctionCall] = None) -> str:
        return self._submit_one(self._submission(script, options, directives_in_script, call))

    def _submission(self, script: Path, options: Mapping[str, Any], directives_in_script: bool = True,
                    call: Optional[FunctionCall] = None) -> hookspecs.Submission:
        """What ``submit`` and ``submit_many`` hand the backend for one job (core-only keywords removed)."""
        if call is not None and dict(options).get("modules"):
            call = None  # only the script loads environment modules: no warm interpreter may run the call
        options = _for_backend(options)
        # the rendered words, for a backend that puts the options on its submit command line
        arguments = [] if directives_in_script else [w for d in self.render_options(options) for w in d]
        from .hookspecs import Submission
        return Submission(script, options, directives_in_script, call, arguments)

    def submit_many(self, jobs: Sequence[JobSpec]) -> list[str]:
        """Submit several jobs, each ``(script, options[, directives_in_script[, call]])`` as :meth:`submit`
        takes them; their ids, in order. One batch through the backend's ``submit_many`` hook (all or
        nothing); without it one ``submit`` per job, and a failure part-way raises
        :class:`PartialSubmitError` carrying the ids of the jobs that were submitted before it."""
        if not jobs:
            return []
        submissions = [self._submission(*job) for job in jobs]
        if self._hooks["submit_many"].get_hookimpls():
            ids = self._call("submit_many", submissions=submissions)
            ids = [str(i).strip() for i in (ids or [])]
            if len(ids) != len(submissions) or not all(ids):
                raise BackendError(f"backend {self.name!r}: submit_many returned {len(ids)} ids for "
                                   f"{len(submissions)} jobs (or an empty one); it must return one id per job")
            return ids
        ids = []
        for sub in submissions:
            try:
                ids.append(self._submit_one(sub))
            except Exception as exc:
                if not ids:
                    raise
                raise PartialSubmitError.part_way(exc, len(ids), len(submissions), ids, what="jobs") from exc
        return ids

    def _submit_one(self, sub: hookspecs.Submission) -> str:
        job_id = self._call("submit", **sub._asdict())
        if job_id is None or not str(job_id).strip():
            raise BackendError(f"backend {self.name!r} returned no job id for {sub.script}")
        return str(job_id).strip()

    def parse_queue(self, job_ids: Optional[Sequence[str]] = None, user: Optional[str] = None,
                    partition: Optional[str] = None) -> list[QueueJob]:
        ids = list(job_ids) if job_ids is not None else None
        return list(self._call("parse_queue", job_ids=ids, user=user, partition=partition) or [])

    def refine_failure(self, record: QueueJob, stderr: str) -> QueueJob:
        """The backend's reading of a failed job's stderr; the record unchanged without the hook."""
        if not self._hooks["refine_failure"].get_hookimpls():
            return record
        return self._call("refine_failure", record=record, stderr=stderr) or record

    def requeue_lines(self) -> Optional[list[str]]:
        """The shell lines with which a checkpointing job requeues itself ([] : the backend does it on its
        own); None when the backend cannot requeue a job in place."""
        if not self._hooks["requeue_lines"].get_hookimpls():
            return None
        found = self._call("requeue_lines")
        return None if found is None else [str(line) for line in found]

    def settings(self) -> Optional[dict[str, str]]:
        """The backend's own settings (name -> help), None when it does not say."""
        if not self._hooks["settings"].get_hookimpls():
            return None
        return {"bin_dir": "the directory of the scheduler's commands", **dict(self._call("settings") or {})}

    @property
    def reads_directives(self) -> bool:
        """True when the backend reads a user's script's own directives (its parse_directives hook)."""
        return bool(self._hooks["parse_directives"].get_hookimpls())

    def parse_directives(self, text: str) -> dict[str, Any]:
        """The keywords a user's script asks for in this scheduler's directives ({} without the hook)."""
        if not self._hooks["parse_directives"].get_hookimpls():
            return {}
        return dict(self._call("parse_directives", text=text) or {})

    def task_id(self, array_id: str, index: int) -> str:
        """The scheduler's id of one task of a native array (``<array_id>[<index>]`` without the hook)."""
        if self._hooks["task_id"].get_hookimpls():
            found = self._call("task_id", array_id=array_id, index=index)
            if found:
                return str(found)
        return f"{array_id}[{index}]"

    def parse_task_id(self, job_id: str) -> Optional[tuple[str, int]]:
        """(array id, index) when ``job_id`` is one task of a native array in the scheduler's spelling."""
        if not self._hooks["parse_task_id"].get_hookimpls():
            return None
        found = self._call("parse_task_id", job_id=job_id)
        return (str(found[0]), int(found[1])) if found else None

    def cancel(self, job_ids: Sequence[str]) -> bool:
        if not job_ids:
            return True
        return bool(self._call("cancel", job_ids=list(job_ids)))

    def release(self, job_ids: Sequence[str]) -> bool:
        """Let held jobs be scheduled; BackendError when the backend cannot release jobs."""
        if not self._hooks["release"].get_hookimpls():
            raise BackendError(f"backend {self.name!r} cannot release held jobs (it has no release hook); use "
                               "the scheduler's own command")
        if not job_ids:
            return True
        return bool(self._call("release", job_ids=list(job_ids)))

    def __repr__(self) -> str:
        return f"<Backend {self.name}>"


def _for_backend(options: Any) -> dict[str, Any]:
    """The job options a backend hook receives: without the keywords only the core's script acts on."""
    return {k: v for k, v in dict(options).items() if k not in CORE_ONLY_KEYWORDS}


def backend(name: str) -> Backend:
    """The named backend (cached)."""
    state = session.current()
    with state.plugin_lock:
        if name not in state.backends:
            state.backends[name] = Backend(name)
        return state.backends[name]


@attrs.frozen
class BackendStatus:
    """One installed backend and whether it can be used here, for listings."""

    name: str
    available: bool
    reason: str
    priority: int
    description: str
    selected: bool = False
    distribution: str = ""  # the installed distribution and version providing it ("cluster-slurm 0.1.0")


def list_backends() -> list[BackendStatus]:
    """Every installed backend with its detection result, best first; plugins that failed to load too."""
    rows = []
    state = session.current()
    names = backend_names()
    for name in names:
        be = backend(name)
        dist = state.distributions.get(name, "")
        try:
            info = be.info
        except Exception as exc:
            rows.append(BackendStatus(name, False, f"backend_info failed: {exc}", -1, "", distribution=dist))
            continue
        det = be.detect()
        rows.append(BackendStatus(name, det.available, det.reason, info.priority, info.description,
                                  distribution=dist or info.distribution or ""))
    rows += [BackendStatus(n, False, f"failed to load: {err}", -1, "", distribution=state.distributions.get(n, ""))
             for n, err in state.load_errors.items() if n not in names]
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


def get_cluster_environment(refresh: bool = False) -> str:
    """The best backend that detects itself here (highest priority), else the local backend."""
    state = session.current()
    with state.plugin_lock:
        if state.detected is not None and not refresh:
            return state.detected
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
        state.detected = best[1]
        return state.detected


def choose_backend_name(name: Optional[str] = None) -> str:
    """An explicit name, else $CLUSTER_BACKEND, else the config's core.backend, else auto-detection."""
    if name:
        return name
    env = os.environ.get(ENV_BACKEND, "").strip()
    if env:
        return env
    from . import config
    configured: Optional[str] = config.get_option("core.backend")
    if configured and configured != "auto":
        return configured
    return get_cluster_environment()


def backend_of(backend: Optional[str], qtype: Optional[str]) -> Optional[str]:
    """The backend named by ``backend`` or the seed's ``qtype`` ('normal' is the seed's local mode)."""
    if qtype is None:
        return backend
    if not isinstance(qtype, str) or not qtype.strip():
        raise OptionError(f"qtype={qtype!r}: expected a backend name such as 'local' or 'slurm'", keyword="qtype")
    named = "local" if qtype.strip().lower() in ("normal", "local") else qtype.strip().lower()
    if backend is not None and backend != named:
        raise OptionError(f"backend={backend!r} and qtype={qtype!r} disagree; give one", keyword="qtype")
    return named


def get_backend(name: Optional[str] = None) -> Backend:
    """The backend to use for a call: see :func:`choose_backend_name`."""
    chosen = choose_backend_name(name)
    if not _manager_with(chosen).has_plugin(chosen):
        errors = session.current().load_errors
        if chosen in errors:
            raise BackendError(f"backend {chosen!r} is installed but failed to load: {errors[chosen]}")
        raise BackendError(f"backend {chosen!r} is not installed; installed: {', '.join(backend_names()) or 'none'} "
                           f"(pip install cluster-core[{chosen}]?)")
    return backend(chosen)


def reset() -> None:
    """Forget loaded plugins and detection (tests): the session's plugin state starts again empty."""
    state = session.current()
    with state.plugin_lock:
        state.plugin_manager = None
        state.entry_points = None
        state.all_loaded = False
        state.detected = None
        state.backends.clear()
        state.load_errors.clear()
        state.distributions.clear()
