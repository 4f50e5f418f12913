"""Job files: one naming convention, and the bash script every backend runs.

Every file of a job sits in its job directory as ``<name>.<token>.<suffix>.<kind>`` (the suffix is
"cluster" unless the job's ``suffix`` keyword says otherwise); :data:`FILE_RE` recognises them for
``clean_dir``. The script always records the command's exit status and times in
the ``exit`` file as one short line ending in "end" (one write, no extra process; a reader that sees the
line without its "end" has caught it half-written and waits), so the core knows how a job ended even when
the scheduler has forgotten it.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import attrs

KINDS = ("sh", "out", "err", "exit", "in.pkl", "out.pkl", "ckpt.pkl")
FILE_RE = re.compile(r"^(?P<name>.+)\.(?P<token>[0-9a-f]{8})\.(?P<suffix>[A-Za-z0-9_]{1,32})\.(?:(?P<task>\d+)\.)?"
                     r"(?P<kind>sh|out|err|exit|in\.pkl|out\.pkl|ckpt\.pkl)$")


def safe_name(name: str, limit: int = 48) -> str:
    """A job name reduced to characters safe in a file name and every scheduler's job-name field."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "job"
    if not cleaned[0].isalpha():
        cleaned = "j" + cleaned
    return cleaned[:limit]


def new_token() -> str:
    return os.urandom(4).hex()  # what secrets.token_hex(4) does


@attrs.frozen
class JobFiles:
    """The paths of one job's files."""

    jobdir: Path
    stem: str  # "<name>.<token>"
    task: Optional[int] = None  # an array task's files carry its index: <stem>.<suffix>.<task>.<kind>
    suffix: str = "cluster"
    # each path built once (a job asks for its script, exit and output paths several times per submission)
    _paths: dict[str, Path] = attrs.field(factory=dict, init=False, eq=False, repr=False)
    _tasks: dict[int, JobFiles] = attrs.field(factory=dict, init=False, eq=False, repr=False)  # for_task's answers

    def path(self, kind: str) -> Path:
        found = self._paths.get(kind)
        if found is None:
            found = self._paths[kind] = self.jobdir / f"{self.prefix}{kind}"
        return found

    @property
    def prefix(self) -> str:
        """The file name up to the kind, e.g. "name.0a1b2c3d.cluster." or "name.0a1b2c3d.cluster.7."."""
        return f"{self.stem}.{self.suffix}." + ("" if self.task is None else f"{self.task}.")

    def for_task(self, task: int) -> "JobFiles":
        found = self._tasks.get(task)
        if found is None:
            found = self._tasks[task] = attrs.evolve(self, task=task)
        return found

    @property
    def script(self) -> Path:
        return self.path("sh")

    @property
    def out(self) -> Path:
        return self.path("out")

    @property
    def err(self) -> Path:
        return self.path("err")

    @property
    def exit(self) -> Path:
        return self.path("exit")

    @property
    def pickle_in(self) -> Path:
        return self.path("in.pkl")

    @property
    def pickle_out(self) -> Path:
        return self.path("out.pkl")

    @property
    def checkpoint(self) -> Path:
        """Where a checkpointing function job saves itself between runs (see cluster_core.checkpoint)."""
        return self.path("ckpt.pkl")

    def all(self) -> list[Path]:
        return [self.path(k) for k in KINDS]


# --- a user's own script ----------------------------------------------------------------------------

DirectiveRule = Union[str, Callable[[str], Mapping[str, Any]]]


def read_directives(text: str, prefix: str, flags: Mapping[str, DirectiveRule],
                    switches: Mapping[str, DirectiveRule] = {}) -> dict[str, Any]:
    """The keywords a script's directive lines ask for, for a backend's ``parse_directives`` hook.

    Lines starting with ``prefix`` (``#SBATCH``) are read up to the script's first command, as schedulers
    do. ``flags`` maps a flag that takes a value (``-c``, ``--cpus-per-task``) to a keyword or to a function
    of the value returning keywords (``-l walltime=1:00:00,mem=4gb``); ``switches`` those that take none.
    ``--flag=value``, ``--flag value``, ``-c2`` and ``-c 2`` are read; unknown flags are skipped (the
    scheduler reads them anyway). Values are kept as written; a later directive wins.
    """
    out: dict[str, Any] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not stripped.startswith(prefix)):
            continue
        if not stripped.startswith(prefix):
            break  # the first command: the scheduler reads no directive past it
        try:
            words = shlex.split(stripped[len(prefix):], comments=True)
        except ValueError:
            continue
        i = 0
        while i < len(words):
            word = words[i]
            flag, value = word, None
            if word.startswith("--") and "=" in word:
                flag, value = word.split("=", 1)
            elif not word.startswith("--") and len(word) > 2 and word[:2] in flags:
                flag, value = word[:2], word[2:]
            if flag in switches:
                _apply(out, switches[flag], "")
            elif flag in flags:
                if value is None and i + 1 < len(words):
                    i += 1
                    value = words[i]
                if value is not None:
                    _apply(out, flags[flag], value)
            i += 1
    return out


def _apply(out: dict[str, Any], rule: DirectiveRule, value: str) -> None:
    if isinstance(rule, str):
        out[rule] = value if value != "" else True
    else:
        out.update(rule(value) or {})


_PATTERN_RE = re.compile(r"%(%|[jxuAa])")


def has_patterns(path: str) -> bool:
    """True when an output path holds a placeholder the core fills in (%j, %x, %u, %A, %a)."""
    return any(m.group(1) != "%" for m in _PATTERN_RE.finditer(path))


def expand_path(pattern: str, job_id: str, name: str, user: str, array_id: Optional[str] = None,
                index: Optional[int] = None) -> str:
    """An output path with its placeholders filled in: ``%j`` the job's id, ``%x`` its name, ``%u`` the
    user, ``%A`` the array's id (the job's own outside an array), ``%a`` the task index, ``%%`` a ``%``."""
    values = {"%": "%", "j": job_id, "x": name, "u": user, "A": array_id or job_id,
              "a": "" if index is None else str(index)}
    return _PATTERN_RE.sub(lambda m: values[m.group(1)], pattern)


def runtime_path(pattern: str, name: str, user: str, job_var: Optional[str] = None,
                 array_var: Optional[str] = None, index: Optional[str] = None) -> str:
    """An output path with placeholders as one shell word that the job's script expands when it runs:
    ``%x`` and ``%u`` are filled in now, ``%j`` and ``%A`` from the scheduler's variables (``job_var``,
    ``array_var``), ``%a`` from ``index`` (a shell expression such as ``$CLUSTER_TASK_ID``). A placeholder
    with nothing to fill it is a ValueError naming it."""
    parts: list[str] = []
    pos = 0
    for m in _PATTERN_RE.finditer(pattern):
        parts.append(shlex.quote(pattern[pos:m.start()]) if m.start() > pos else "")
        key = m.group(1)
        known = {"%": "%", "x": name, "u": user}
        if key in known:
            parts.append(shlex.quote(known[key]))
        else:
            source = {"j": job_var, "A": array_var, "a": index}[key]
            if not source:
                raise ValueError(f"%{key} cannot be filled in here")
            parts.append(f'"${{{source}}}"' if re.fullmatch(r"\w+", source) else f'"{source}"')
        pos = m.end()
    if pos < len(pattern):
        parts.append(shlex.quote(pattern[pos:]))
    return "".join(parts) or "''"


@attrs.frozen
class Script:
    """A job's script file as the seed shows it (``job.submission``): its ``file``, its text ``script``
    and ``written``, whether the file exists."""

    file: Path

    @property
    def written(self) -> bool:
        return self.file.is_file()

    exists = written  # fyrd's name

    @property
    def file_name(self) -> str:  # fyrd's name
        return str(self.file)

    @property
    def script(self) -> Optional[str]:
        try:
            return self.file.read_text()
        except OSError:
            return None

    def clean(self) -> None:
        self.file.unlink(missing_ok=True)


def job_files(jobdir: os.PathLike[str] | str, name: str, token: Optional[str] = None,
              suffix: str = "cluster") -> JobFiles:
    folder = jobdir if isinstance(jobdir, Path) and jobdir.is_absolute() else Path(jobdir).absolute()
    return JobFiles(folder, f"{safe_name(name)}.{token or new_token()}", suffix=suffix)


# The exit file records how the command ended. Killed by a signal that ends a job (a cancel, a time limit,
# a hang-up), bash would leave through the EXIT trap with the status of the last command that finished
# (0, mostly): so these signals are trapped, the record says 128 + the signal's number, and the shell then
# dies by the signal itself as it would have. A trapped signal waits for the foreground command, which the
# scheduler signals too (every backend signals the job's processes, not the shell alone). One race is
# left: a command forked as the signal comes may miss it (bash's child still has the trap's handler) and
# run on until it ends or the scheduler's SIGKILL, which then leaves no exit file (as Grid Engine's qdel).
_PREAMBLE = """\
# Written by cluster-core: the command is below the marked line; the lines around it record how it ended.
{exit_line}
__cluster_start=${{EPOCHREALTIME:-$(date +%s)}}
__cluster_signal=
__cluster_on_exit() {{
    __cluster_rc=$?
    printf '%s %s %s end\\n' "$__cluster_rc" "$__cluster_start" "${{EPOCHREALTIME:-$(date +%s)}}" \\
        > "$__cluster_exit_file"
    if [ -n "$__cluster_signal" ]; then trap - "$__cluster_signal"; kill -s "$__cluster_signal" "$$"; fi
}}
trap __cluster_on_exit EXIT
trap '__cluster_signal=TERM; exit 143' TERM
trap '__cluster_signal=INT; exit 130' INT
trap '__cluster_signal=HUP; exit 129' HUP
"""


_REQUIRES = """\
for __cluster_dep in {files}; do
    __cluster_dep_rc=; read -r __cluster_dep_rc __cluster_rest < "$__cluster_dep" 2>/dev/null
    if [ "$__cluster_dep_rc" != 0 ]; then
        echo "cluster-core: not run: $__cluster_dep says ${{__cluster_dep_rc:-nothing}}" >&2
        trap - EXIT
        printf 'not-run %s end\\n' "${{__cluster_dep##*/}}" > "$__cluster_exit_file"
        exit 0
    fi
done"""

# afternotok: the dependency (its exit files: one per task of an array) must have failed somewhere; an
# exit file that is missing or says "not-run" is a job that did not succeed
_REQUIRES_FAILED = """\
__cluster_failed=
for __cluster_dep in {files}; do
    __cluster_dep_rc=; read -r __cluster_dep_rc __cluster_rest < "$__cluster_dep" 2>/dev/null
    [ "$__cluster_dep_rc" = 0 ] || __cluster_failed=1
done
if [ -z "$__cluster_failed" ]; then
    printf 'cluster-core: not run: %s succeeded (this job runs only after it failed)\\n' {name} >&2
    trap - EXIT
    printf 'not-run %s end\\n' {reason} > "$__cluster_exit_file"
    exit 0
fi"""


#: What a job's script checks before its command runs (see :func:`render_script`): an exit file that must
#: say 0, or ("afterok" | "afternotok", exit files).
Requirement = Union[str, "os.PathLike[str]", "tuple[str, Sequence[Union[str, os.PathLike[str]]]]"]


@attrs.frozen
class TaskSpec:
    """How an array script finds its task index: from the scheduler's variable(s) plus an offset (one
    chunk of a larger map), or a fixed index (one submission per task, for backends without arrays).
    Each task writes its own out, err and exit files in ``files.jobdir``."""

    files: JobFiles
    variables: tuple[str, ...] = ()
    offset: int = 0
    fixed: Optional[int] = None

    def lines(self) -> list[str]:
        if self.fixed is not None:
            index = str(int(self.fixed))
        else:
            if not self.variables:
                raise ValueError("an array task needs the scheduler's task-index variable")
            expr = ""
            for var in reversed(self.variables):
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
                    raise ValueError(f"{var!r} is not a variable name")
                expr = f"${{{var}:-{expr}}}" if expr else f"${{{var}}}"
            index = f"$(( {expr} + {int(self.offset)} ))"
        prefix = shlex.quote(str(self.files.jobdir / f"{self.files.stem}.{self.files.suffix}."))
        return [f"__cluster_task={index}",
                "export CLUSTER_TASK_ID=$__cluster_task",
                f"__cluster_files={prefix}$__cluster_task.",
                'exec >"${__cluster_files}out" 2>"${__cluster_files}err"',
                '__cluster_exit_file="${__cluster_files}exit"']


def render_script(command: str, *, exit_file: Optional[Path] = None, directives: Sequence[str] = (),
                  workdir: Optional[str] = None, modules: Sequence[str] = (),
                  env: Optional[Mapping[str, str]] = None, task: Optional[TaskSpec] = None,
                  outputs: Optional[tuple[str, str]] = None,
                  requires: Sequence[Requirement] = (), umask: Optional[int] = None) -> str:
    """The text of a job script: shebang, scheduler directives, the exit-file preamble, then the user's
    command verbatim. Every value the library adds is quoted. With ``task``, an array task's script;
    with ``requires``, the outcomes the dependencies must have had before the command runs (else "not
    run"): ("afterok", exit files that must all say 0) or ("afternotok", exit files one of which at least
    must not), or a bare exit file that must say 0;
    ``umask`` (the submitter's) is set before the command, as ``workdir`` is entered, so that a job
    starts alike on every scheduler."""
    if task is not None:
        exit_line = "\n".join(task.lines())
    elif exit_file is not None:
        exit_line = f"__cluster_exit_file={shlex.quote(str(exit_file))}"
    else:
        raise ValueError("render_script needs exit_file or task")
    lines = ["#!/bin/bash", *directives, _PREAMBLE.format(exit_line=exit_line)]
    if outputs is not None:  # output paths with placeholders, as shell words expanded when the job runs
        lines.append(f"exec >{outputs[0]} 2>{outputs[1]}")
    # the scheduler starts this job once these ended, however they ended
    must_succeed = [f for r in requires for f in ([r] if isinstance(r, (str, os.PathLike)) else
                                                    r[1] if r[0] == "afterok" else [])]
    if must_succeed:
        lines.append(_REQUIRES.format(files=" ".join(shlex.quote(str(p)) for p in must_succeed)))
    for req in requires:
        if not isinstance(req, (str, os.PathLike)) and req[0] == "afternotok" and req[1]:
            name = Path(req[1][0]).name
            lines.append(_REQUIRES_FAILED.format(files=" ".join(shlex.quote(str(p)) for p in req[1]),
                                                 name=shlex.quote(name),
                                                 reason=shlex.quote(f"{name} succeeded")))
    for key, value in (env or {}).items():
        lines.append(f"export {key}={shlex.quote(str(value))}")
    if umask is not None:
        lines.append(f"umask {int(umask):04o}")
    if workdir:
        lines.append(f"cd {shlex.quote(str(workdir))} || exit 1")
    for module in modules:
        lines.append(f"module load {shlex.quote(module)} || exit 1")
    lines.append("# ---- command ----")
    lines.append(command.rstrip("\n"))
    return "\n".join(lines) + "\n"


def function_command(files: JobFiles, python: Optional[str] = None, array: bool = False,
                     max_requeue: int = 0) -> str:
    """The shell line that runs a pickled function job on the node; for an array, the task's call. With
    ``max_requeue``, the function may save a checkpoint when warned (see :func:`checkpointed`)."""
    exe = python or sys.executable
    words = [shlex.quote(w) for w in (exe, "-m", "cluster_core.runner", str(files.pickle_in))]
    if array:  # the script's preamble set $__cluster_task and $__cluster_files
        words += ['"${__cluster_files}out.pkl"', '--task', '"$__cluster_task"']
        checkpoint = '"${__cluster_files}ckpt.pkl"'
    else:
        words.append(shlex.quote(str(files.pickle_out)))
        checkpoint = shlex.quote(str(files.checkpoint))
    if max_requeue:
        words += ["--checkpoint", checkpoint, str(int(max_requeue))]
    return " ".join(words)


_CHECKPOINTED = """\
# a checkpointing job: the command runs in the background, so that this shell can pass the scheduler's
# warning (SIGUSR1 before the time limit) and SIGTERM (preemption) on to it
trap 'kill -USR1 "$__cluster_child" 2>/dev/null' USR1
trap 'kill -TERM "$__cluster_child" 2>/dev/null' TERM
{command} &
__cluster_child=$!
while wait "$__cluster_child"; __cluster_rc=$?; [ "$__cluster_rc" -gt 128 ]; do
    # cut short by a signal this shell traps; once the command has ended, wait gives its own status
    kill -0 "$__cluster_child" 2>/dev/null || {{ wait "$__cluster_child"; __cluster_rc=$?; break; }}
done
if [ "$__cluster_rc" = {requeue_exit} ] || [ "$__cluster_rc" = {saved_exit} ]; then  # it saved a checkpoint
    trap - EXIT TERM
    trap '' USR1  # a late copy of the warning (the local runner signals the group and each process) is moot
    printf 'requeue %s end\\n' "${{EPOCHREALTIME:-$(date +%s)}}" > "$__cluster_exit_file"
    # warned ahead of its time limit: run again under the same id. On SIGTERM the scheduler decides: it
    # requeues a preempted job itself, and a cancelled one stays cancelled
    if [ "$__cluster_rc" = {saved_exit} ]; then exit 143; fi
{requeue}
    exit 0
fi
exit "$__cluster_rc"
"""


def checkpointed(command: str, requeue: Sequence[str]) -> str:
    """The script lines that run ``command`` (a :func:`function_command` with ``max_requeue``) so that it
    can save itself and be requeued: the exit file then says ``requeue ... end`` (not an end: see
    :func:`read_exit_file`) and the backend's ``requeue`` lines put the job back in the queue."""
    from .checkpoint import REQUEUE_EXIT, SAVED_EXIT
    lines = "\n".join(f"    {line}" for line in requeue) or "    :  # the backend requeues the job itself"
    return _CHECKPOINTED.format(command=command, requeue_exit=REQUEUE_EXIT, saved_exit=SAVED_EXIT, requeue=lines)


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write to a temporary name in the same directory, then rename: readers never see half a file."""
    path = Path(path)
    import tempfile  # loaded with the first file written, not at import
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_script(path: Path, text: str) -> bool:
    """A job script, executable; True when it is new. A new one is created in place (nothing reads it
    before the backend is handed it, and its name carries a random token); one that exists already, which
    a job of an earlier submission may still be reading, is replaced whole by ``atomic_write``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o755)
    except FileExistsError:
        atomic_write(path, text, mode=0o755)
        return False
    try:
        os.fchmod(fd, 0o755)  # whatever the umask
        data = text.encode()
        while data:
            data = data[os.write(fd, data):]
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    return True


@attrs.frozen
class ExitRecord:
    """What the script wrote when the command ended."""

    returncode: Optional[int]
    start: Optional[float]
    end: Optional[float]
    not_run: Optional[str] = None  # why the command never ran (a dependency did not succeed)

    @property
    def runtime(self) -> Optional[float]:
        if self.start is None or self.end is None:
            return None
        return max(0.0, self.end - self.start)


def _exit_words(path: Path) -> Optional[list[str]]:
    """The words of a whole exit record without its closing "end"; None when there is none (yet)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            parts = fh.read().split()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if len(parts) < 2 or parts[-1] != "end":  # not written yet, or caught half-written
        return None
    return parts[:-1]


def read_exit_file(path: Path) -> Optional[ExitRecord]:
    """The exit record, or None when the job has not written one (yet)."""
    parts = _exit_words(path)
    if parts is None:
        return None
    if parts[0] == "requeue":  # a checkpointing job saved itself and was requeued: it has not ended
        return None
    if parts[0] == "not-run":
        return ExitRecord(None, None, None, not_run=" ".join(parts[1:]) or "a dependency")
    try:
        rc = int(parts[0])
    except ValueError:
        return None

    def num(i: int) -> Optional[float]:
        try:
            return float(parts[i].replace(",", "."))
        except (IndexError, ValueError):
            return None
    return ExitRecord(rc, num(1), num(2))


def requeued(path: Path) -> bool:
    """True when the exit file says the job saved a checkpoint to be requeued (it did not end)."""
    parts = _exit_words(path)
    return parts is not None and parts[0] == "requeue"


def is_job_file(path: Path) -> bool:
    return bool(FILE_RE.match(Path(path).name))


def payload_for(function: Any, args: Sequence[Any] = (), kwargs: Optional[Mapping[str, Any]] = None,
                calls: Optional[Sequence[tuple[Sequence[Any], Mapping[str, Any]]]] = None, imports: Sequence[str] = (),
                syspaths: Sequence[str] = ()) -> bytes:
    """Two pickles in a row: the submitter's sys.path (plain) with the job's ``syspaths`` first and its
    ``imports`` (statements), then the call (cloudpickle: closures and functions defined in __main__ go by
    value). The runner restores sys.path and runs the imports before it unpickles the call, so functions
    from the user's own modules import on the node as they did at submission.

    An array's calls (one ``(args, kwargs)`` per task index, ``calls``) follow as one pickle each, then a
    table of their offsets (8 bytes each, little-endian) and the table's own offset as the last 8 bytes:
    a task reads its own call alone (:func:`cluster_core.runner.task_call`), so neither its time nor its
    memory grows with the number of tasks or the size of the others' arguments."""
    import io
    import pickle

    import cloudpickle
    paths = list(dict.fromkeys([*syspaths, *(p for p in sys.path if p)]))
    head = pickle.dumps({"sys_path": paths, "cwd": os.getcwd(), "imports": list(imports)})
    body: dict[str, Any] = {"function": function, "args": tuple(args), "kwargs": dict(kwargs or {})}
    if calls is None:
        pickled: bytes = cloudpickle.dumps(body)
        return head + pickled
    body["tasks"] = len(calls)
    out = io.BytesIO()
    out.write(head)
    out.write(cloudpickle.dumps(body))
    pickler = cloudpickle.CloudPickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    offsets = []
    for a, k in calls:
        offsets.append(out.tell())
        pickler.clear_memo()  # each call stands alone: it is read without the others
        pickler.dump((tuple(a), dict(k)))
    table = out.tell()
    out.write(b"".join(o.to_bytes(8, "little") for o in offsets))
    out.write(table.to_bytes(8, "little"))
    return out.getvalue()
