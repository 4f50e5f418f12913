"""The hooks a backend implements. Each docstring is the contract; the core relies on nothing else.

A backend is a module (or object) with functions marked ``@cluster_core.hookimpl``, published under the
entry-point group ``cluster_core.backends``; the entry point's name is the backend's name. The core calls
exactly one backend per call (the chosen one), so an implementation never checks whether it is "the
active one". Every hook is ``firstresult``: the single backend's answer is the answer.

Phases: who are you (backend_info, detect) -> write (render_options) -> run (submit, submit_many,
requeue_lines) -> watch
(parse_queue) -> stop (cancel). The contract is checked when a plugin loads: a hook name not defined here
(a typo such as ``parse_quee``), an argument a hook does not have, or a missing required hook
(:data:`REQUIRED_HOOKS`) makes the backend "failed to load", never available.
"""

# the hook functions below are specifications: their docstring is their whole body, never called for a value
# mypy: disable-error-code="empty-body"

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Optional, Sequence

import pluggy

if TYPE_CHECKING:  # for the annotations only
    from .records import BackendInfo, Detection, FunctionCall, QueueJob

PROJECT = "cluster_core"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Hooks every backend implements; a plugin without one of them (or with a hook name not defined here)
#: fails to load. The others are optional, as their docstrings say.
REQUIRED_HOOKS = ("backend_info", "detect", "render_options", "submit", "parse_queue", "cancel")


# --- who are you ------------------------------------------------------------------------------------

@hookspec(firstresult=True)
def backend_info() -> "BackendInfo":
    """Describe the backend: a :class:`cluster_core.records.BackendInfo`.

    Must be cheap and must not run a scheduler command: it is read to list backends and to write scripts.
    """


@hookspec(firstresult=True)
def detect() -> "Detection":
    """Tell whether this backend can be used on this machine now: a :class:`~cluster_core.records.Detection`.

    Quick (well under a second; use a short timeout on any command) and never raises: a missing command,
    an unreachable controller or an error all give ``Detection(False, reason)`` with a reason a user can act
    on ("sbatch not found on PATH", "slurmctld did not answer within 2 s").
    """


# --- write ------------------------------------------------------------------------------------------

@hookspec(firstresult=True)
def render_options(options: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Turn checked job options into the scheduler's arguments, one tuple of argv words per directive.

    ``options`` maps canonical keyword names (see :mod:`cluster_core.options`) to values already cast and
    validated (memory in MB, time in seconds, depends as a tuple of :class:`~cluster_core.records.Dependency`
    of the kinds ``backend_info().dependency_kinds`` lists: ``options.dependency_groups`` groups them by
    kind). Return e.g.
    ``[("--cpus-per-task=4",), ("--mem=4096M",)]`` or ``[("-l", "nodes=1:ppn=4")]``. The words are
    command-line arguments: the core quotes them when it writes them after ``directive_prefix`` in a
    script, or passes them as they are in an argument list. Keywords the scheduler does not have are
    skipped and logged at debug level (:func:`cluster_core.options.render_with` does both).
    """


# --- run --------------------------------------------------------------------------------------------

@hookspec(firstresult=True)
def submit(script: Path, options: Mapping[str, Any], directives_in_script: bool,
           call: Optional["FunctionCall"], arguments: Sequence[str]) -> str:
    """Submit the job script ``script`` and return the new job's id as a string.

    ``options`` are the checked job options, without the keywords the core's script carries out itself
    (``modules``, ``jobdir``; ``render_options`` never sees them either). When ``directives_in_script``
    is true the script already carries ``render_options(options)`` as directive lines (a backend that
    reads directives need not pass them again) and ``arguments`` is empty; when false (``submit_file`` on
    a user's own script) the backend must pass them itself: ``arguments`` holds them as command-line words
    (``render_options`` flattened), ready to go before the script. Like every argument, ``arguments`` may
    be left out of the implementation's signature. Always an argument list, never a shell string. Retry transient
    scheduler failures; raise :class:`cluster_core.errors.SubmitError` for permanent ones, with the
    scheduler's message and, where it can be told, the keyword it concerns. The job's stdout and stderr
    go to ``options["outfile"]`` and ``options["errfile"]``, which the core always sets.

    ``call`` is set for a Python function job, and for each task of a ``map`` that the core submits one
    job per task (``call.task`` is then the task's index): a backend may run that call in a warm
    interpreter instead of the script, as :class:`~cluster_core.records.FunctionCall` describes; a
    backend that takes no ``call`` argument always runs the script. Native array submissions, and jobs
    whose script must run (``modules``), carry none.
    """


class Submission(NamedTuple):
    """One job of a :func:`submit_many` batch: the arguments :func:`submit` would get, in its order."""

    script: Path
    options: Mapping[str, Any]
    directives_in_script: bool
    call: Optional["FunctionCall"]
    arguments: Sequence[str]


@hookspec(firstresult=True)
def submit_many(submissions: Sequence[Submission]) -> list[str]:
    """Optional: submit several jobs at once (one scheduler transaction, one round trip) and return their
    ids as strings, one per submission, in the order given.

    Each submission is a :class:`Submission` (a tuple ``(script, options, directives_in_script, call,
    arguments)``), each field meaning what it means for :func:`submit`. All or nothing: either every job
    is submitted and every id returned, or none is and an exception is raised (a
    :class:`cluster_core.errors.SubmitError` naming the job and keyword at fault, as ``submit`` does). A
    backend that cannot take back the jobs it already submitted when a later one fails must leave this
    hook out: the core then calls ``submit`` once per job, and itself keeps the ids of those that went
    through when one fails. The core uses it where it submits several jobs together (the tasks of a
    ``map`` on a backend without arrays), in batches it sizes itself.
    """


@hookspec(firstresult=True)
def max_array_size() -> Optional[int]:
    """The largest number of tasks one array submission may hold (indices 0..N-1), or None for no limit.

    Only for backends whose ``backend_info`` says ``supports_arrays``. Asked at most once per process; the
    core splits a larger ``map`` into several array submissions. Optional: no answer means no limit.
    """


@hookspec(firstresult=True)
def requeue_lines() -> Optional[Sequence[str]]:
    """Optional: how a running job puts itself back in the queue under its own id, for checkpointing.

    A function job submitted with ``max_requeue`` > 0 runs under a script that, when the function has
    saved a checkpoint (warned before its time limit, or preempted), writes ``requeue ... end`` to the job's
    exit file (:func:`cluster_core.backend.read_exit_file` reads that as "not ended") and then runs these
    shell lines: ``scontrol requeue "$SLURM_JOB_ID"`` for Slurm. Constant text, no user value in it. An
    empty list: the backend requeues on its own a job that ended with such an exit record (the local
    runner does). No answer, or no hook: the backend cannot requeue a job in place, and the core refuses
    checkpointing jobs with an OptionError naming ``max_requeue`` and the backend.

    A backend that answers also renders the ``checkpoint_before`` keyword (seconds) as the scheduler's
    warning: SIGUSR1 to the job script that many seconds before the time limit (Slurm:
    ``--signal=B:USR1@<seconds>`` and ``--requeue``); the script passes SIGUSR1 and SIGTERM on to the
    function. Preemption needs nothing more: the scheduler's SIGTERM makes the function save itself too.
    """


# --- watch ------------------------------------------------------------------------------------------

@hookspec(firstresult=True)
def parse_queue(job_ids: Optional[Sequence[str]], user: Optional[str],
                partition: Optional[str]) -> list["QueueJob"]:
    """Query the scheduler once and return :class:`~cluster_core.records.QueueJob` records.

    With ``job_ids``, report those jobs (in one batched query, or a fixed few, never one per job),
    including ones that already finished when the scheduler still knows them; leave out ids it no longer
    knows at all (the core then falls back to the exit-code file the job script writes). For the id of
    an array submission, report one record per task the scheduler shows (``array_id`` = that id,
    ``task_id`` = the index, ``id`` = the scheduler's name for the task, e.g. ``12_3`` or ``12[3].srv``);
    tasks it shows only collapsed (pending) may come as one record with ``id`` = the array's id and no
    ``task_id``, which the core applies to every task not reported on its own. Without
    ``job_ids``, list every job of ``user`` (and ``partition``) the scheduler shows. States are
    normalised to :class:`~cluster_core.records.State`; ``raw_state`` keeps the scheduler's own code.
    Raise :class:`~cluster_core.errors.SchedulerError` when the scheduler cannot be asked at all.
    """


@hookspec(firstresult=True)
def refine_failure(record: "QueueJob", stderr: str) -> Optional["QueueJob"]:
    """Optional: a more precise record for a job reported FAILED, from the end of its stderr file.

    Schedulers write their own kill messages there; a job killed for its memory may be reported only as
    FAILED (Slurm's OverMemoryKill without cgroups). Return the corrected record (say with state
    OUT_OF_MEMORY), or None to keep it. Called once per failed job, never for others.
    """


@hookspec(firstresult=True)
def task_id(array_id: str, index: int) -> str:
    """Optional: the scheduler's own id of task ``index`` (the core's numbering, from 0) of the native
    array ``array_id``, as its commands take it and print it (``12_3``, ``12[3].server``, ``12.4``).

    Pure (no scheduler call). Without it the core writes ``<array_id>[<index>]``.
    """


@hookspec(firstresult=True)
def parse_task_id(job_id: str) -> Optional[tuple[str, int]]:
    """Optional: when ``job_id`` names one task of a native array in the scheduler's own spelling,
    ``(array id, index)`` with the index in the core's numbering (the inverse of :func:`task_id`); None for
    any other id. Pure: lets a user hand the core a task's id as the scheduler printed it.
    """


@hookspec(firstresult=True)
def settings() -> Mapping[str, str]:
    """Optional: the backend's own config settings, ``name -> what it does``, in the section named after the
    backend (``local.threads``). ``<backend>.bin_dir`` is always known. With it, ``cluster config set`` refuses
    a name the backend does not have and suggests the closest; without it, any name is taken."""


@hookspec(firstresult=True)
def parse_directives(text: str) -> Optional[Mapping[str, Any]]:
    """Optional: the job keywords a user's own script asks for in this scheduler's directives (``#SBATCH
    -c 2 -o logs/%x-%j.out`` gives ``{"cores": "2", "outfile": "logs/%x-%j.out"}``), values as written.

    Pure (reads ``text`` only). The core submits such a script as it is, adding only the keywords the caller
    gave, and uses these to know the job's name, resources and output files. An output path keeps the
    scheduler's own placeholders translated to the core's (``%j`` job id, ``%x`` name, ``%u`` user, ``%A``
    and ``%a`` array id and task index); :func:`cluster_core.script.read_directives` does the parsing.
    """


# --- stop -------------------------------------------------------------------------------------------

@hookspec(firstresult=True)
def cancel(job_ids: Sequence[str]) -> bool:
    """Cancel these jobs (queued or running, killing every process of a running one); return True.

    Ids that already finished are not an error. One scheduler call for all ids where the scheduler allows.
    """


@hookspec(firstresult=True)
def release(job_ids: Sequence[str]) -> bool:
    """Optional: let these held jobs (submitted with ``hold``) be scheduled; return True.

    Ids of jobs that are not held (queued, running, ended or forgotten by the scheduler) are not an error:
    what is held among them is released. One scheduler call for all ids where the scheduler allows; an
    array's id releases every task. Without this hook ``cluster_core.release`` names the backend and says
    it cannot, and the conformance kit needs ``hold_test = False``.
    """
