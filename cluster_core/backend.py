"""The one module a backend imports (with :mod:`cluster_core.hookspecs` for the contract).

Everything a scheduler plugin needs from the core is here and nowhere else: the records it returns, the
errors it raises, ``hookimpl``, running scheduler commands (argument lists, timeouts, retries, bin_dir),
reading its settings, and the helpers every batch scheduler's plugin would otherwise write again (times,
memory, arrays, dependencies, directives in user scripts, job ids out of submit output, merging live and
accounting records, exit files). A name here is public and kept stable; anything else in the core may
change without notice, and a test fails when a bundled plugin imports it.
"""

from __future__ import annotations

import os
import time as _time
from typing import Optional

from .commands import Result, run, which
from .errors import ClusterError, ConfigError, OptionError, SchedulerError, SubmitError
from .hookspecs import hookimpl
from .casts import array_indices, describe, format_time, parse_memory
from .dependencies import dependency_items, to_dependencies
from .rendering import Renderer, dependency_groups, render_with
from .records import BackendInfo, Dependency, Detection, FunctionCall, QueueJob, State
from .script import DirectiveRule, ExitRecord, is_job_file, read_directives, read_exit_file, requeued
from ._backend_calls import (Commands, ask_patiently, bin_dir_setting, files_existing, output_appeared, state_dir,
                             submit_retrying)
from ._backend_parse import (argv_words, array_range, chunks, error_summary, first_line, format_hms, harmless_failure,
                             export_items, index_list, job_id_from_output, keyword_for_error, known_ids, mail_letters,
                             matches_any, merge_records, parse_timestamp, priority_from_nice, refine_oom)

__all__ = [
    # contract
    "hookimpl", "BackendInfo", "Detection", "FunctionCall", "QueueJob", "State", "Dependency",
    # errors
    "ClusterError", "ConfigError", "OptionError", "SchedulerError", "SubmitError",
    # commands and settings
    "run", "which", "Result", "setting", "Commands", "bin_dir_setting", "state_dir",
    # submitting and cancelling safely
    "submit_retrying", "ask_patiently", "files_existing", "output_appeared", "harmless_failure",
    # reading scheduler output
    "job_id_from_output", "parse_timestamp", "error_summary", "keyword_for_error", "matches_any", "first_line",
    "chunks", "known_ids", "merge_records", "refine_oom",
    # option values
    "format_hms", "priority_from_nice", "mail_letters", "array_range", "index_list", "export_items",
    # options
    "render_with", "argv_words", "describe", "format_time", "parse_memory", "array_indices", "dependency_groups",
    "dependency_items", "to_dependencies",
    # scripts and exit files
    "read_directives", "DirectiveRule", "ExitRecord", "read_exit_file", "write_exit_record", "is_job_file",
    "run_call", "requeued",
    # the type of a backend's renderers, for its annotations
    "Renderer",
]


def setting(key: str) -> Optional[str]:
    """The config value of ``key`` (``"<backend>.<name>"``, a key the backend's ``settings`` hook lists),
    or None when unset. A broken config file raises :class:`ConfigError`."""
    from . import config
    value: Optional[str] = config.get_option(key)
    return value


def write_exit_record(path: os.PathLike[str] | str, returncode: int, start: float,
                      end: Optional[float] = None) -> None:
    """Write the exit file exactly as the job script does, so :func:`read_exit_file` (and every process that
    reads the job later) finds how it ended. One write of one short line: a reader never sees it half done."""
    line = f"{int(returncode)} {start:.6f} {(_time.time() if end is None else end):.6f} end\n"
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def run_call(infile: os.PathLike[str] | str, outfile: os.PathLike[str] | str, task: Optional[int] = None) -> int:
    """Run a :class:`FunctionCall`'s pickled function in this process, as the job script would on a node:
    the result (value or exception with its traceback) goes to ``outfile``; returns the exit code (0 or 1).
    For backends that keep warm Python workers instead of starting the script."""
    from . import runner
    args = [os.fspath(infile), os.fspath(outfile)]
    if task is not None:
        args += ["--task", str(task)]
    return runner.main(args)


# --- warm workers: loading run_call ahead (appended for the local backend's warm pool, issue 17) -------

def prepare_run_call() -> str:
    """Import what :func:`run_call` runs, now, and return the ``sys.argv[0]`` the job script's interpreter
    shows while it runs the call. A backend that forks warm workers calls it before forking, so every
    worker shares that code (a job then imports nothing of the core) and gives the job the script's argv."""
    from . import runner
    return runner.__file__


__all__ += ["prepare_run_call"]
