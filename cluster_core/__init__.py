"""cluster-core: submit shell commands and Python functions to any batch scheduler with one API.

Importing this package is cheap: names are loaded from their modules on first use (PEP 562), no backend
is loaded and no entry point is scanned until a backend is first needed.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

TYPE_CHECKING = False  # typing's, without importing typing (a few ms): type checkers take it as True
if TYPE_CHECKING:  # what __getattr__ loads on first use, for type checkers (``X as X``: re-exported)
    # the modules (not .testing: pytest's fixtures, for a backend's tests, imported by their full name)
    from . import casts as casts
    from . import checkpoint as checkpoint
    from . import cli as cli
    from . import commands as commands
    from . import conf as conf
    from . import config as config
    from . import config_file as config_file
    from . import dependencies as dependencies
    from . import errors as errors
    from . import futures as futures
    from . import help as help
    from . import helpers as helpers
    from . import hookspecs as hookspecs
    from . import job as job
    from . import keywords as keywords
    from . import logme as logme
    from . import options as options
    from . import plugins as plugins
    from . import queue as queue
    from . import records as records
    from . import registry as registry
    from . import rendering as rendering
    from . import run as run
    from . import script as script
    from . import session as session
    # the names
    from .checkpoint import Checkpointable as Checkpointable
    from .checkpoint import Resume as Resume
    from .checkpoint import checkpoint_state as checkpoint_state
    from .checkpoint import keep_state as keep_state
    from .checkpoint import requeues as requeues
    from .config import Profile as Profile
    from .config import del_profile as del_profile
    from .config import get_option as get_option
    from .config import get_profile as get_profile
    from .config import get_profiles as get_profiles
    from .config import set_option as set_option
    from .config import set_profile as set_profile
    from .errors import BackendError as BackendError
    from .errors import ClusterError as ClusterError
    from .errors import ConfigError as ConfigError
    from .errors import JobError as JobError
    from .errors import JobFailedError as JobFailedError
    from .errors import OptionError as OptionError
    from .errors import PartialSubmitError as PartialSubmitError
    from .errors import RemoteTraceback as RemoteTraceback
    from .errors import SchedulerError as SchedulerError
    from .errors import SubmitError as SubmitError
    from .errors import UnknownJobError as UnknownJobError
    from .errors import WaitTimeout as WaitTimeout
    from .futures import Executor as Executor
    from .futures import FutureJob as FutureJob
    from .futures import JobCancelledError as JobCancelledError
    from .futures import as_completed as as_completed
    from .futures import awaitable as awaitable
    from .futures import gather as gather
    from .futures import wait_async as wait_async
    from .help import option_help as option_help
    from .helpers import jobify as jobify
    from .helpers import parapply as parapply
    from .helpers import parapply_summary as parapply_summary
    from .helpers import splitrun as splitrun
    from .hookspecs import hookimpl as hookimpl
    from .job import Job as Job
    from .job import Task as Task
    from .job import cancel as cancel
    from .job import clean as clean
    from .job import clean_dir as clean_dir
    from .job import get as get
    from .job import jobs as jobs
    from .job import make_job as make_job
    from .job import make_job_file as make_job_file
    from .job import map as map
    from .job import release as release
    from .job import submit as submit
    from .job import submit_file as submit_file
    from .job import wait as wait
    from .keywords import check_arguments as check_arguments
    from .plugins import get_backend as get_backend
    from .plugins import get_cluster_environment as get_cluster_environment
    from .plugins import list_backends as list_backends
    from .queue import Queue as Queue
    from .queue import check_queue as check_queue
    from .records import BackendInfo as BackendInfo
    from .records import Dependency as Dependency
    from .records import Detection as Detection
    from .records import QueueJob as QueueJob
    from .records import State as State
    from .rendering import option_to_string as option_to_string
    from .rendering import options_to_string as options_to_string

    setup_logging = logme.setup  # the exported names of logme's setup and set_level
    set_log_level = logme.set_level

_EXPORTS = {
    "hookspecs": ["hookimpl"],
    "errors": ["ClusterError", "OptionError", "ConfigError", "BackendError", "SchedulerError", "SubmitError",
               "PartialSubmitError", "JobError", "JobFailedError", "UnknownJobError", "WaitTimeout", "RemoteTraceback"],
    "records": ["State", "QueueJob", "BackendInfo", "Detection", "Dependency"],
    "options": ["check_arguments", "option_help", "option_to_string", "options_to_string"],
    "config": ["Profile", "get_profile", "get_profiles", "set_profile", "del_profile", "get_option", "set_option"],
    "plugins": ["get_cluster_environment", "list_backends", "get_backend"],
    "job": ["Job", "Task", "make_job", "make_job_file", "submit", "submit_file", "wait", "get", "map", "clean",
            "clean_dir", "jobs", "cancel", "release"],
    "queue": ["Queue", "check_queue"],
    "logme": ["setup_logging", "set_log_level"],
    "helpers": ["jobify", "parapply", "parapply_summary", "splitrun"],
    "checkpoint": ["Checkpointable", "Resume", "checkpoint_state", "keep_state", "requeues"],
    "futures": ["Executor", "FutureJob", "JobCancelledError", "as_completed", "gather", "wait_async", "awaitable"],
}
# The package's modules are attributes too, loaded on first use: cluster_core.options.check_arguments works
# right after ``import cluster_core``, as do the seed's module names (options, config_file, logme, run).
_SUBMODULES = frozenset({"options", "config", "config_file", "conf", "logme", "run", "helpers", "job", "queue",
                         "errors", "records", "plugins", "registry", "hookspecs", "script", "commands", "cli",
                         "testing", "futures", "session", "keywords", "casts", "dependencies", "rendering", "help",
                         "checkpoint"})
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
