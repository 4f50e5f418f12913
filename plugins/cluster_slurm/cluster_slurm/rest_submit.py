"""sbatch's options as a slurmrestd job description (REST API v0.0.38), for submitting without sbatch.

slurmrestd 22.05 ignores the ``#SBATCH`` lines of a submitted script (measured: the job got no name
and wrote slurm-<id>.out), and it passes the job no environment of its own. So the script's directives
are read here as sbatch reads them, the command-line words the core gives go after them (they win, as
on sbatch's command line), and what sbatch itself adds (the environment, SLURM_SUBMIT_DIR, SLURM_UMASK,
the working directory, the script's name as the job's name) is added too. Pure: no HTTP, no commands.
An option this table lacks is an error naming it, never silently dropped.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Mapping, Optional, Sequence

from cluster_core.backend import SubmitError, export_items

PREFIX = "#SBATCH"


# --- reading #SBATCH lines as sbatch does ---------------------------------------------------------------

def split_directive(text: str) -> list[str]:
    """The words of one directive line after ``#SBATCH``, as sbatch splits them: blanks separate words,
    single and double quotes group (and are removed), a backslash takes the next character literally
    even inside quotes, and an unquoted ``#`` ends the line."""
    words: list[str] = []
    word: list[str] = []
    quote: Optional[str] = None
    started = False
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            word.append(next(chars, ""))
            started = True
        elif quote:
            if ch == quote:
                quote = None
            else:
                word.append(ch)
        elif ch in "'\"":
            quote, started = ch, True
        elif ch.isspace():
            if started:
                words.append("".join(word))
                word, started = [], False
        elif ch == "#" and not started:
            break
        else:
            word.append(ch)
            started = True
    if started:
        words.append("".join(word))
    return words


def directive_words(script: str) -> list[str]:
    """Every word of the script's ``#SBATCH`` lines, read up to its first command (as sbatch stops)."""
    words: list[str] = []
    for number, line in enumerate(script.splitlines()):
        stripped = line.strip()
        if number == 0 and stripped.startswith("#!"):
            continue
        if not stripped or (stripped.startswith("#") and not stripped.startswith(PREFIX)):
            continue
        if not stripped.startswith(PREFIX):
            break
        rest = stripped[len(PREFIX):]
        if rest and not rest[0].isspace():
            continue  # "#SBATCHX": not a directive
        words += split_directive(rest)
    return words


# --- values ---------------------------------------------------------------------------------------------

def minutes(text: str) -> Optional[int]:
    """sbatch's time forms (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) in whole minutes, rounded up as Slurm
    does; None for UNLIMITED/INFINITE."""
    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "-1"):
        return None
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        raise ValueError(f"not a Slurm time: {text!r}")
    days, a, b, c = m.groups()
    if days is not None:  # D-H, D-H:M, D-H:M:S
        seconds = int(days) * 86400 + int(a) * 3600 + int(b or 0) * 60 + int(c or 0)
    elif c is not None:   # H:M:S
        seconds = int(a) * 3600 + int(b) * 60 + int(c)
    elif b is not None:   # M:S
        seconds = int(a) * 60 + int(b)
    else:                 # M
        seconds = int(a) * 60
    return math.ceil(seconds / 60)


_MEM_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


def megabytes(text: str) -> int:
    """sbatch's memory (a number with an optional K/M/G/T suffix, M by default) in whole MB."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT])?B?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"not a Slurm memory size: {text!r}")
    return math.ceil(float(m.group(1)) * _MEM_UNITS[(m.group(2) or "M").upper()])


def _nodes(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return [int(lo), int(hi)] if hi else [int(lo), int(lo)]


def _yes(text: str) -> bool:
    return text.strip().lower() not in ("no", "0", "false")


# --- the option table -----------------------------------------------------------------------------------

Convert = Callable[[str], Any]
_same: Convert = str

#: sbatch option -> (short flag or None, job description field, converter of its value).
VALUED: dict[str, tuple[Optional[str], str, Convert]] = {
    "--job-name": ("-J", "name", _same),
    "--cpus-per-task": ("-c", "cpus_per_task", int),
    "--ntasks": ("-n", "tasks", int),
    "--nodes": ("-N", "nodes", _nodes),
    "--ntasks-per-node": (None, "tasks_per_node", int),
    "--mem": (None, "memory_per_node", megabytes),
    "--mem-per-cpu": (None, "memory_per_cpu", megabytes),
    "--mem-per-gpu": (None, "memory_per_gpu", megabytes),
    "--time": ("-t", "time_limit", minutes),
    "--time-min": (None, "time_minimum", minutes),
    "--partition": ("-p", "partition", _same),
    "--account": ("-A", "account", _same),
    "--qos": ("-q", "qos", _same),
    "--reservation": (None, "reservation", _same),
    "--wckey": (None, "wckey", _same),
    "--nice": (None, "nice", int),
    "--begin": ("-b", "begin_time", _same),  # slurmrestd parses sbatch's forms itself (not epoch numbers)
    "--output": ("-o", "standard_output", _same),
    "--error": ("-e", "standard_error", _same),
    "--input": ("-i", "standard_input", _same),
    "--chdir": ("-D", "current_working_directory", _same),
    "--dependency": ("-d", "dependency", _same),
    "--kill-on-invalid-dep": (None, "kill_on_invalid_dependency", _yes),
    "--array": ("-a", "array", _same),
    "--mail-user": (None, "mail_user", _same),
    "--mail-type": (None, "mail_type", _same),
    "--gpus": ("-G", "gpus", _same),
    "--gpus-per-node": (None, "gpus_per_node", _same),
    "--gpus-per-task": (None, "gpus_per_task", _same),
    "--cpus-per-gpu": (None, "cpus_per_gpu", int),
    "--gres": (None, "gres", _same),
    "--constraint": ("-C", "constraints", _same),
    "--licenses": ("-L", "licenses", _same),
    "--comment": (None, "comment", _same),
    "--signal": (None, "signal", _same),
    "--open-mode": (None, "open_mode", _same),
    "--export": (None, "*export", _same),  # handled by environment()
}
#: sbatch switches (no value) -> (short flag or None, field, value).
SWITCHES: dict[str, tuple[Optional[str], str, Any]] = {
    "--hold": ("-H", "hold", True),
    "--requeue": (None, "requeue", True),
    "--no-requeue": (None, "requeue", False),
    "--exclusive": (None, "exclusive", "true"),
    "--get-user-env": (None, "get_user_environment", True),
    "--parsable": (None, "*ignored", None),
    "--quiet": ("-Q", "*ignored", None),
}
_SHORT_VALUED = {short: flag for flag, (short, _f, _c) in VALUED.items() if short}
_SHORT_SWITCHES = {short: flag for flag, (short, _f, _v) in SWITCHES.items() if short}


def _refuse(flag: str, why: str) -> SubmitError:
    return SubmitError(f"sbatch option {flag} {why} (slurm.transport=rest; with slurm.transport=commands "
                       f"sbatch takes it)")


def options(words: Sequence[str]) -> dict[str, Any]:
    """sbatch words (``--mem=4096M``, ``-c 2``, ``-c2``, ``--hold``) as job description fields; a later
    word wins. The key ``*export`` keeps ``--export``'s value for :func:`environment`."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        flag, value = word, None
        if word.startswith("--"):
            flag, eq, rest = word.partition("=")
            value = rest if eq else None
        elif word.startswith("-") and len(word) > 2:
            flag, value = word[:2], word[2:]
        flag = _SHORT_VALUED.get(flag, _SHORT_SWITCHES.get(flag, flag))
        if flag == "--exclusive" and value is not None:  # --exclusive=user|mcs
            out["exclusive"] = value
        elif flag in SWITCHES:
            if value is not None and not word.startswith("--"):
                raise _refuse(word, "is not an option sbatch knows")
            field, fixed = SWITCHES[flag][1], SWITCHES[flag][2]
            if not field.startswith("*"):
                out[field] = fixed
        elif flag in VALUED:
            if value is None:
                i += 1
                if i >= len(words):
                    raise _refuse(flag, "needs a value")
                value = words[i]
            _short, field, convert = VALUED[flag]
            try:
                out[field] = convert(value)
            except ValueError as exc:
                raise _refuse(f"{flag}={value}", f"cannot be sent: {exc}") from None
            if field == "time_limit" and out[field] is None:
                del out[field]
        else:
            raise _refuse(flag, "cannot be passed to slurmrestd")
        i += 1
    return out


def environment(export: Optional[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The job's environment for ``--export`` as sbatch builds it: ALL (the default) passes every
    variable; NONE only SLURM_* ones; a list passes SLURM_* ones, its NAME=value pairs and the named
    variables (every variable too when it holds ALL)."""
    items = [w for w in (export or "ALL").split(",") if w]
    upper = [w.upper() for w in items]
    if "ALL" in upper:
        env = dict(environ)
    else:
        env = {k: v for k, v in environ.items() if k.startswith("SLURM_")}
    if "NONE" in upper:
        env["SLURM_EXPORT_ENV"] = "NONE"
    return export_items(env, items, environ)


def job_description(script: str, script_name: str, arguments: Sequence[str], *, cwd: str,
                    environ: Mapping[str, str], umask: int, host: str) -> dict[str, Any]:
    """The body of ``POST /slurm/v0.0.38/job/submit`` for a job script and sbatch's command-line words."""
    if not script.startswith("#!"):
        raise SubmitError(f"{script_name}: a batch script must start with #! (sbatch refuses it too)")
    job = options([*directive_words(script), *arguments])
    env = environment(job.pop("*export", None), environ)
    env.update({"SLURM_SUBMIT_DIR": cwd, "SLURM_SUBMIT_HOST": host})
    env.setdefault("SLURM_UMASK", f"{umask:04o}")  # sbatch keeps one it inherited (a job submitting jobs)
    job["environment"] = env
    job.setdefault("current_working_directory", cwd)
    job.setdefault("name", script_name)
    return {"script": script, "job": job}
