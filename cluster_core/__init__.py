"""cluster-core: submit shell commands and Python functions to any batch scheduler with one API.

Importing this package is cheap: names are loaded from their modules on first use (PEP 562), no backend
is loaded and no entry point is scanned until a backend is first needed.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "hookspecs": ["hookimpl"],
    "errors": ["ClusterError", "OptionError", "ConfigError", "BackendError", "SchedulerError", "SubmitError",
               "JobError", "JobFailedError", "UnknownJobError", "WaitTimeout", "RemoteTraceback"],
    "records": ["State", "QueueJob", "BackendInfo", "Detection", "Dependency"],
    "options": ["check_arguments", "option_help", "option_to_string", "options_to_string"],
    "config": ["Profile", "get_profile", "get_profiles", "set_profile", "del_profile", "get_option", "set_option"],
    "plugins": ["get_cluster_environment", "list_backends", "get_backend"],
    "job": ["Job", "Task", "make_job", "make_job_file", "submit", "submit_file", "wait", "get", "map", "clean",
            "clean_dir", "jobs", "cancel"],
    "queue": ["Queue", "check_queue"],
    "logme": ["setup_logging", "set_log_level"],
    "helpers": ["jobify", "parapply", "parapply_summary", "splitrun"],
    "futures": ["Executor", "FutureJob", "JobCancelledError", "as_completed", "gather", "wait_async", "awaitable"],
}
# The package's modules are attributes too, loaded on first use: cluster_core.options.check_arguments works
# right after ``import cluster_core``, as do the seed's module names (options, config_file, logme, run).
_SUBMODULES = frozenset({"options", "config", "config_file", "conf", "logme", "run", "helpers", "job", "queue", "errors",
                         "records", "plugins", "registry", "hookspecs", "script", "commands", "cli", "testing",
                         "futures", "session", "keywords", "casts", "dependencies", "rendering", "help"})
_ALIASES = {"setup_logging": "setup", "set_log_level": "set_level"}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        if name in _SUBMODULES:
            return importlib.import_module(f".{name}", __name__)
        raise AttributeError(f"module 'cluster_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), _ALIASES.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
