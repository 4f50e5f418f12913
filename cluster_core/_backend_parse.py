"""Pure helpers for backends, re-exported by :mod:`cluster_core.backend`: reading what scheduler commands
print and turning job options into scheduler values.

Every batch scheduler's plugin needs these and would otherwise write them again. They know no scheduler:
a plugin passes its own patterns and tables as data. Nothing here runs a command.
"""

from __future__ import annotations

import datetime
import re
import time
from typing import Iterable, Iterator, Mapping, Optional, Pattern, Sequence, TypeVar, Union

import attrs

from .errors import OptionError, SubmitError
from .casts import array_indices, describe
from .records import QueueJob, State

T = TypeVar("T")
Patterns = Iterable[Union[str, Pattern[str]]]

# --- small text helpers -----------------------------------------------------------------------------


def first_line(text: object, default: str = "") -> str:
    """The first line of a message (``str(exc)`` of a command's error can run to many lines)."""
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else default


def _search(pattern: Union[str, Pattern[str]], text: Optional[str]) -> Optional[re.Match[str]]:
    """``pattern`` in ``text``: a string case-insensitive, a compiled pattern with its own flags."""
    if isinstance(pattern, str):
        return re.search(pattern, text or "", re.IGNORECASE)
    return pattern.search(text or "")


def matches_any(text: Optional[str], patterns: Patterns) -> bool:
    """Whether any of ``patterns`` (regular expressions; strings case-insensitive) occurs in ``text``."""
    return any(_search(p, text) for p in patterns)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``: a fixed few ids per query keeps any command line short."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def argv_words(directives: Iterable[Sequence[str]]) -> list[str]:
    """Directives (tuples of words, as ``render_options`` gives them) flattened into command-line words."""
    return [str(word) for directive in directives for word in directive]


def job_id_from_output(stdout: str, pattern: Union[str, Pattern[str]], program: str = "the scheduler") -> str:
    """The job id a submit command printed: the last line that matches ``pattern`` as a whole (warnings
    may come first). The id is the pattern's group named ``id``, else the whole line. SubmitError when no
    line does."""
    regex = re.compile(pattern)
    for line in reversed((stdout or "").strip().splitlines()):
        m = regex.fullmatch(line.strip())
        if m:
            return m.group("id") if "id" in regex.groupindex else m.group(0)
    raise SubmitError(f"{program} printed no job id: {(stdout or '').strip()[:300]!r}", output=stdout or "")


# --- times ------------------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_CTIME_RE = re.compile(r"^(?:[A-Za-z]{3}\s+)?([A-Za-z]{3})\s+(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})\s+(\d{4})$")


def parse_timestamp(value: object) -> Optional[float]:
    """A scheduler's time as a POSIX timestamp; None for anything else ("N/A", "Unknown", "-/-", "", 0).

    Reads epoch seconds (a number, or digits), ISO local time ("2026-11-25T13:47:44", sbatch and Grid
    Engine's qstat) and ctime()-style local time with or without the weekday ("Wed Nov 25 13:10:11 2026",
    PBS and qacct), whatever the locale."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value > 0 else None
    text = " ".join(str(value).split())
    if re.fullmatch(r"\d+(\.\d+)?", text):
        number = float(text)
        return number if number > 0 else None
    m = _CTIME_RE.match(text)
    if m:
        mon, day, hh, mm, ss, year = m.groups()
        if mon.lower() not in _MONTHS:
            return None
        return time.mktime((int(year), _MONTHS[mon.lower()], int(day), int(hh), int(mm), int(ss), 0, 0, -1))
    if not re.match(r"\d{4}-\d\d-\d\d", text):
        return None
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def format_hms(seconds: int, hour_digits: int = 1) -> str:
    """Seconds as H:MM:SS with hours past a day (``26:03:04``): what schedulers that read no days take.
    ``hour_digits`` pads the hours (2: ``01:30:00``)."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h:0{hour_digits}d}:{m:02d}:{s:02d}"


# --- option values ----------------------------------------------------------------------------------

def priority_from_nice(nice: int, low: int, high: int, scheduler: str) -> int:
    """The scheduler priority (higher runs sooner, ``low..high``) for the core's ``priority`` keyword, a
    nice value (higher runs later). OptionError naming the keyword and the nice range when out of range."""
    value = -int(nice)
    if not low <= value <= high:
        raise OptionError(f"priority={describe(nice)}: {scheduler} takes priorities {low}..{high} (higher runs "
                          f"sooner); the priority keyword is a nice value, so use {-high}..{-low}",
                          keyword="priority", value=nice)
    return value


def mail_letters(words: Iterable[str], letters: Mapping[str, str], order: Optional[str] = None,
                 none: str = "n") -> str:
    """The mail option's letters for the ``notify`` words (``letters``: word -> its letters, e.g. begin b,
    end e, fail a, all abe, none n): each letter once, in ``order`` when given, else as they come. A word
    giving the ``none`` letter wins over the others."""
    found = "".join(dict.fromkeys("".join(letters[w] for w in words)))
    if none in found:
        return none
    return "".join(sorted(found, key=order.index)) if order else found


def export_items(env: dict[str, str], items: Iterable[str], source: Mapping[str, str]) -> dict[str, str]:
    """Apply the ``export`` keyword's words to ``env``: ``NAME=value`` sets a value, ``NAME`` copies the
    variable from ``source`` when it has it; ``ALL`` and ``NONE`` (which choose the base ``env``) are skipped."""
    for item in items:
        if item.upper() in ("ALL", "NONE"):
            continue
        name, eq, value = item.partition("=")
        if eq:
            env[name] = value
        elif name in source:
            env[name] = source[name]
    return env


def array_range(spec: str, scheduler: str, offset: int = 0, min_tasks: int = 1) -> tuple[int, int, int, Optional[int]]:
    """``(first, last, step, limit)`` of the core's array spec for a scheduler that takes one evenly
    stepped range, its indices shifted by ``offset`` (1 where tasks count from 1). OptionError naming
    ``array`` when the indices are not evenly spaced or fewer than ``min_tasks``."""
    indices, limit = array_indices(spec)
    steps = {b - a for a, b in zip(indices, indices[1:])}
    if len(steps) > 1:
        raise OptionError(f"array={describe(spec)}: {scheduler} takes one evenly stepped range (first-last:step), "
                          "and these indices are not evenly spaced; split the job or use one range",
                          keyword="array", value=spec)
    if len(indices) < min_tasks:
        raise OptionError(f"array={describe(spec)}: {scheduler} arrays need at least {min_tasks} indices",
                          keyword="array", value=spec)
    return indices[0] + offset, indices[-1] + offset, (steps.pop() if steps else 1), limit


def index_list(spec: str) -> str:
    """The core's array spec as a plain list of indices and ranges ("0-3,7,9-10"), steps written out: for
    a scheduler that reads lists but no steps. The ``%limit`` is left to the caller."""
    indices, _ = array_indices(spec)
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(f"{a}-{b}" if b != a else str(a) for a, b in runs)


# --- scheduler errors -------------------------------------------------------------------------------

ErrorTable = Iterable[tuple[Union[str, Pattern[str]], Union[str, Sequence[str]]]]


def keyword_for_error(message: str, table: ErrorTable, options: Optional[Mapping[str, object]] = None
                      ) -> Optional[str]:
    """The job keyword a submit error concerns: the first ``(pattern, keywords)`` row of ``table`` whose
    pattern occurs in ``message`` (case-insensitive) names it; of several keywords, the first the job set
    wins ("More processors requested" is cores, tasks or nodes). None when no row matches."""
    options = options or {}
    for pattern, keywords in table:
        if _search(pattern, message):
            keywords = (keywords,) if isinstance(keywords, str) else tuple(keywords)
            given = [k for k in keywords if k in options]
            return given[0] if given else keywords[0]
    return None


def error_summary(output: str, strip: Patterns = (), drop: Patterns = ()) -> str:
    """A command's error lines as one message for a user: each line without the prefixes ``strip`` matches
    (applied in order at the line's start), lines matching ``drop`` as a whole left out, repeats once,
    joined by "; "."""
    lines = []
    for line in (output or "").strip().splitlines():
        line = line.strip()
        for pattern in strip:
            line = re.sub(pattern, "", line).strip()
        if line and not any(re.fullmatch(p, line) for p in drop):
            lines.append(line)
    return "; ".join(dict.fromkeys(lines)) or "no message"


def harmless_failure(output: str, harmless: Patterns, relevant: Optional[Union[str, Pattern[str]]] = None) -> bool:
    """Whether a failed command (a cancel of jobs that already ended) said only harmless things: it printed
    at least one line (of those matching ``relevant``, when given), and each matches a ``harmless`` pattern."""
    lines = [line for line in (output or "").splitlines()
             if line.strip() and (relevant is None or _search(relevant, line))]
    return bool(lines) and all(matches_any(line, harmless) for line in lines)


# --- records ----------------------------------------------------------------------------------------

def known_ids(jobs: Iterable[QueueJob]) -> set[str]:
    """Every id a list of records answers for: each job's id and, for array tasks, the array's id."""
    out: set[str] = set()
    for job in jobs:
        out.add(job.id)
        if job.array_id:
            out.add(job.array_id)
    return out


def merge_records(live: Sequence[QueueJob], accounting: Iterable[QueueJob]) -> list[QueueJob]:
    """The live query's records, plus the accounting's for what the live query no longer shows.

    The live answer wins. For an array it still shows, accounting adds only finished tasks: accounting
    lags behind, and just after an array ends it may still hold one summary row for the whole array,
    which the core would apply to every task."""
    seen = {j.id for j in live}
    live_arrays = {j.array_id for j in live if j.array_id}
    out = list(live)
    for job in accounting:
        if job.id in seen:
            continue
        if (job.array_id or job.id) in live_arrays and (job.task_id is None or not job.state.finished):
            continue
        seen.add(job.id)
        out.append(job)
    return out


def refine_oom(record: QueueJob, stderr: str, pattern: Union[str, Pattern[str]], reason: str,
               tail_lines: Optional[int] = None) -> Optional[QueueJob]:
    """OUT_OF_MEMORY (with ``reason``) for a FAILED record whose stderr (its last ``tail_lines``, when
    given) matches ``pattern``, case-insensitive; None otherwise. For the ``refine_failure`` hook."""
    text = stderr or ""
    if tail_lines:
        text = "\n".join(text.strip().splitlines()[-tail_lines:])
    if record.state is State.FAILED and _search(pattern, text):
        return attrs.evolve(record, state=State.OUT_OF_MEMORY, reason=reason)
    return None
