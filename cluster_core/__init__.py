"""cluster-core: submit shell commands and Python functions to any batch scheduler with one API."""

from .hookspecs import hookimpl
from .errors import (ClusterError, OptionError, ConfigError, BackendError, SchedulerError, SubmitError,
                     JobError, JobFailedError, WaitTimeout, RemoteTraceback)
from .records import State, QueueJob, BackendInfo, Detection

__version__ = "0.1.0"
