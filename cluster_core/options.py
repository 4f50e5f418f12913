"""The job keyword table: every option a job takes, with its type, aliases, default and checks.

The table says what a keyword means; each backend says how its scheduler spells it (its
``render_options`` hook, usually through :func:`render_with`). ``check_arguments`` is the single place
where user values are cast and validated, so every backend receives the same clean values.
"""

from __future__ import annotations

import difflib
import logging
import math
import operator
import os
import re
import shlex
from typing import Any, Callable, Iterable, Mapping, Optional

import attrs

from .errors import OptionError
from .records import DEPENDENCY_KINDS, Dependency

log = logging.getLogger(__name__)


# --- bounds and safe text ---------------------------------------------------------------------------

#: Upper bounds on what a job may ask for: far above any real cluster, and low enough that every value
#: renders (``str()`` of an int past 4300 digits raises) and no list of array indices exhausts memory.
MAX_COUNT = 2 ** 31 - 1  # cores, nodes, tasks, GPUs; and the size of a priority either way
MAX_MEMORY_MB = 1024 ** 4  # 1 EiB
MAX_TIME_SECONDS = 2 ** 31 - 1  # about 68 years
MAX_ARRAY_INDEX = 10 ** 7 - 1  # array indices are below 10**7
MAX_ARRAY_TASKS = 10 ** 6  # tasks in one array
MAX_TEXT = 4096  # characters in one text value (PATH_MAX)
_MAX_NUMBER_TEXT = 64  # characters in a number, size or time given as text

_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def describe(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for an error message: shortened, and never raising (``repr`` of an int with more than
    4300 digits raises, and so may a user object's ``__repr__``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"<{'a negative' if value < 0 else 'an'} integer of {digits} digits>"
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    if not isinstance(text, str):  # pragma: no cover - repr() already refuses a non-str
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[:limit - 4] + "..." + text[-1:]


def _str_of(value: Any) -> str:
    """Text of any value a user may pass where text is read, as a ValueError when there is none."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        raise ValueError("a number this large is not allowed here")
    if isinstance(value, (bytes, bytearray)):
        raise ValueError("expected text, not bytes (decode them first)")
    try:
        text = str(value)
    except Exception as exc:
        raise ValueError(f"cannot be read as text: str() raised {type(exc).__name__}") from None
    return text


def _items(value: Any) -> list:
    """The items of a user's iterable, as a ValueError if iterating it fails."""
    try:
        return list(value)
    except Exception as exc:
        raise ValueError(f"cannot be read as a list: iterating it raised {type(exc).__name__}") from None


# --- casts ------------------------------------------------------------------------------------------

_MEM_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgtp])(i?b?)|(b|bytes?))?\s*$", re.IGNORECASE)
_MEM_FACTOR = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024 ** 2, "p": 1024 ** 3}


def parse_memory(value: Any) -> int:
    """Memory in whole MB (MiB, as schedulers count them), rounded up.

    Numbers are MB. Strings take K, M, G, T, P with an optional B or iB, in either case: "4GB", "4g" and
    "4GiB" are all 4096 MB, as Slurm and PBS read them; "1.5T" is 1572864; "500M" is 500; "512K" rounds up
    to 1. A bare "B" (or "bytes") means bytes: "4000b" is 1 MB, "8388608B" is 8.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount of memory")
    if isinstance(value, (int, float)):
        mb = value
    else:
        text = _str_of(value)
        m = _MEM_RE.match(text) if len(text) <= _MAX_NUMBER_TEXT else None
        if not m:
            raise ValueError("expected a number of MB or a size such as 500M, 4GB, 1.5T")
        mb = float(m.group(1)) / 1024 ** 2 if m.group(4) else float(m.group(1)) * _MEM_FACTOR[(m.group(2) or "").lower()]
    if isinstance(mb, float) and not math.isfinite(mb):
        raise ValueError("expected a finite amount of memory")
    if mb <= 0:
        raise ValueError("memory must be more than zero")
    mb = int(math.ceil(mb))
    if mb > MAX_MEMORY_MB:
        raise ValueError(f"memory must be at most {MAX_MEMORY_MB} MB (1 EiB)")
    return mb


_TIME_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_TIME_UNIT_RE = re.compile(r"(\d+(?:\.\d*)?)\s*(w|d|h|m|s)", re.IGNORECASE)


def parse_time(value: Any) -> int:
    """Time in whole seconds.

    Accepts "D-HH:MM:SS", "D-HH:MM", "D-HH", "HH:MM:SS", "MM:SS" ("90:00" is 90 minutes), unit strings
    ("2h", "1h30m", "1d12h", "45s") and bare numbers, which are minutes as in ``sbatch --time``.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, (int, float)):
        seconds = value * 60
    else:
        text = _str_of(value).strip().lower()
        if len(text) > _MAX_NUMBER_TEXT:
            raise ValueError(f"too long for a time (at most {_MAX_NUMBER_TEXT} characters): expected D-HH:MM:SS, "
                             "HH:MM:SS, MM:SS, a number of minutes, or units like 2h30m")
        seconds = _parse_time_text(text)
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError("expected a finite time")
    if seconds <= 0:
        raise ValueError("time must be more than zero")
    seconds = int(math.ceil(seconds))
    if seconds > MAX_TIME_SECONDS:
        raise ValueError(f"time must be at most {MAX_TIME_SECONDS} seconds (about 68 years)")
    return seconds


def _parse_time_text(text: str) -> float:
    if not text:
        raise ValueError("empty time")
    if re.fullmatch(r"\d+(\.\d*)?", text):
        return float(text) * 60
    if _TIME_UNIT_RE.fullmatch(text.replace(" ", "")) or re.fullmatch(r"(\d+(\.\d*)?\s*[wdhms]\s*)+", text):
        parts = _TIME_UNIT_RE.findall(text)
        return sum(float(n) * _TIME_UNITS[u] for n, u in parts)
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        raise ValueError("expected D-HH:MM:SS, HH:MM:SS, MM:SS, a number of minutes, or units like 2h30m")
    days, a, b, c = m.groups()
    nums = [int(x) for x in (a, b, c) if x is not None]
    if days is not None:  # D-HH, D-HH:MM, D-HH:MM:SS
        h, mi, s = (nums + [0, 0])[:3]
        total = int(days) * 86400 + h * 3600 + mi * 60 + s
    elif len(nums) == 3:
        total = nums[0] * 3600 + nums[1] * 60 + nums[2]
    elif len(nums) == 2:
        total = nums[0] * 60 + nums[1]
    else:  # pragma: no cover - a single number is handled above
        total = nums[0] * 60
    if (b is not None and int(b) >= 60 and (c is not None or days is not None)) or (c is not None and int(c) >= 60):
        raise ValueError("minutes and seconds must be below 60")
    return float(total)


def format_time(seconds: int) -> str:
    """Seconds as D-HH:MM:SS (or HH:MM:SS below a day), the form Slurm reads (PBS wants H:MM:SS)."""
    days, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{days}-{h:02d}:{m:02d}:{s:02d}" if days else f"{h:02d}:{m:02d}:{s:02d}"


def _whole(value: Any) -> int:
    """A whole number from an int, an integral float, or text such as " 4 "."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not a boolean")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not value.is_integer():  # also NaN and infinity
            raise ValueError("expected a whole number")
        return int(value)
    if not isinstance(value, str) and hasattr(type(value), "__index__"):  # numpy integers and the like
        return operator.index(value)
    try:
        text = _str_of(value).strip()
    except ValueError:
        raise ValueError(f"expected a whole number, not {type(value).__name__}") from None
    if len(text) > _MAX_NUMBER_TEXT:
        raise ValueError("expected a whole number")
    try:
        return int(text)
    except ValueError:
        raise ValueError("expected a whole number") from None


def _positive_int(value: Any) -> int:
    n = _whole(value)
    if n < 1:
        raise ValueError("must be 1 or more")
    if n > MAX_COUNT:
        raise ValueError(f"must be at most {MAX_COUNT}")
    return n


def _int(value: Any) -> int:
    n = _whole(value)
    if abs(n) > MAX_COUNT:
        raise ValueError(f"expected a whole number from {-MAX_COUNT} to {MAX_COUNT}")
    return n


_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    try:
        text = _str_of(value).strip().lower()
    except ValueError:
        raise ValueError("expected true or false") from None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def _check_text(text: str) -> str:
    """Text that can go into a job script and a scheduler's directive: one line, no control characters
    (a tab is allowed), encodable as UTF-8, not blank, at most MAX_TEXT characters."""
    if not text.strip():
        raise ValueError("must not be empty")
    if len(text) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT} characters (this has {len(text)})")
    bad = _CONTROL_RE.search(text)
    if bad:
        raise ValueError(f"must not contain a newline, NUL or other control character (found {bad.group()!r})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"must be valid Unicode text: {text[exc.start]!r} at position {exc.start} is a lone "
                         "surrogate (a file name that is not UTF-8?)") from None
    return text


def _text(value: Any, path: bool = False) -> str:
    """A string (an int is taken as its digits; for a path, also an os.PathLike), checked as text."""
    if isinstance(value, str):
        text = str.__str__(value)
    elif path and isinstance(value, os.PathLike):
        try:
            text = os.fspath(value)
        except Exception as exc:
            raise ValueError(f"expected a path: os.fspath() raised {type(exc).__name__}") from None
        if not isinstance(text, str):
            raise ValueError("expected a path as text, not bytes (decode it first)")
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 64:
        text = str(value)
    else:
        kind = "bytes (decode them first)" if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise ValueError(f"expected {'a path' if path else 'a string'}, not {kind}")
    return _check_text(text)


def _path(value: Any) -> str:
    return _text(value, path=True)


def _text_items(value: Any, what: str) -> list[str]:
    """The items of a list given for a list-valued keyword, each checked as text."""
    if isinstance(value, (bytes, bytearray)) or isinstance(value, Mapping) or not isinstance(value, Iterable):
        kind = "bytes" if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise ValueError(f"expected {what}, not {kind}")
    out = []
    for item in _items(value):
        try:
            out.append(_text(item))
        except ValueError as exc:
            raise ValueError(f"item {describe(item, 40)}: {exc}") from None
    return out


def _args(value: Any) -> tuple[str, ...]:
    """Raw command-line arguments: a string is split as a shell would (quotes respected, no expansion),
    so "-l nodes=1:ppn=4,mem=4gb" stays two words; a list is taken as it is."""
    if isinstance(value, str):
        try:
            items = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split into arguments: {exc}") from None
        items = _text_items(items, "a string or a list of arguments")
    else:
        items = _text_items(value, "a string or a list of arguments")
    if not items:
        raise ValueError("must hold at least one argument")
    return tuple(items)


def _words(value: Any) -> tuple[str, ...]:
    """A list of strings; a single string is split on commas and whitespace."""
    if isinstance(value, str):
        items = _text_items([w for w in re.split(r"[,\s]+", value) if w], "a string or a list of strings")
    else:
        items = _text_items(value, "a string or a list of strings")
    if not items:
        raise ValueError("must name at least one item")
    return tuple(items)


_JOB_ID_RE = re.compile(r"[\w.\[\]@:-]+", re.ASCII)
_JOB_ID_WANTED = "expected job ids (strings or whole numbers) or Jobs"
_KIND_WORD = re.compile(r"[A-Za-z]+", re.ASCII)
_KINDS_TEXT = ", ".join(DEPENDENCY_KINDS)


def _job_id_of(item: Any) -> str:
    """The id of one dependency: a job id (text or a whole number) or a Job (any object with ``.id``)."""
    job_id = item
    if not isinstance(item, (str, int)):
        try:
            job_id = item.id  # a Job, a Task, or any object with .id
        except AttributeError:
            raise ValueError(f"{_JOB_ID_WANTED}, not {type(item).__name__}") from None
        except Exception as exc:
            raise ValueError(f"the id of {type(item).__name__} cannot be read: {type(exc).__name__}") from None
        if job_id is None:
            raise ValueError(f"{describe(item, 40)} has no job id yet: submit it before the jobs that depend on it")
    if isinstance(job_id, bool) or not isinstance(job_id, (str, int)):
        raise ValueError(f"{_JOB_ID_WANTED}, not {type(job_id).__name__}")
    if isinstance(job_id, int):
        if job_id < 0 or job_id.bit_length() > 64:
            raise ValueError(f"{describe(job_id, 40)} is not a job id")
        return str(job_id)
    text = str.__str__(job_id).strip()
    if not text or len(text) > 256 or text.startswith("-") or not _JOB_ID_RE.fullmatch(text):
        raise ValueError(f"{describe(text, 40)} is not a job id")
    return text


def _kind_of(word: Any) -> str:
    """A dependency type's name, checked (any case)."""
    kind = word.strip().lower() if isinstance(word, str) else word
    if kind not in DEPENDENCY_KINDS:
        raise ValueError(f"unknown dependency type {describe(word, 40)}; the types are {_KINDS_TEXT}")
    return kind


def _text_dependencies(text: str, kind: str) -> list[tuple[str, Any]]:
    """``"1,2"``, ``"1:2"``, ``"afterany:1:2"``, ``"afterok:1,afternotok:3"``, ``"after:4,5"``,
    ``"singleton"``: a type word applies to the ids after it, up to the next type word."""
    out: list[tuple[str, Any]] = []
    for group in (g for g in re.split(r"[,\s]+", text) if g):
        words = group.split(":")
        if _KIND_WORD.fullmatch(words[0]):  # no job id is letters only: a type name
            kind = _kind_of(words[0])
            ids = [w for w in words[1:] if w]
            if kind == "singleton":
                if ids:
                    raise ValueError(f"{describe(group, 40)}: singleton takes no job ids (it waits for the "
                                     "earlier jobs of the same name)")
                out.append((kind, None))
                continue
            if not ids:
                raise ValueError(f"{kind} needs job ids, e.g. {kind}:12:13")
        else:
            ids = [w for w in words if w]
        out.extend((kind, i) for i in ids)
    return out


def dependency_items(value: Any, kind: str = "afterok") -> list[tuple[str, Any]]:
    """The items of a ``depends`` value as (type, item) pairs: an item is a job id (text or a whole number),
    an object with an ``.id`` such as a Job (kept as it is: one not yet submitted is submitted first), or
    None for ``singleton``. A value is an id, a Job, a :class:`Dependency`, a string (see
    ``_text_dependencies``), a mapping of types to any of these (``{"afterany": [job1, job2]}``), or a list
    of any of these. The type is ``afterok`` unless given."""
    if isinstance(value, bool):
        raise ValueError(f"{_JOB_ID_WANTED}, not a boolean")
    if isinstance(value, Dependency):
        return [(value.kind, value.job_id)]
    if isinstance(value, str):
        return _text_dependencies(value, kind)
    if isinstance(value, int):
        return [(kind, value)]
    if isinstance(value, Mapping):
        out: list[tuple[str, Any]] = []
        for key, items in _items(value.items()):
            key = _kind_of(key)
            if key == "singleton":
                if not isinstance(items, bool) and items is not None:
                    raise ValueError(f"singleton: expected True or False, not {describe(items, 40)}")
                out.extend([("singleton", None)] if items else [])
            elif items is not None:
                out.extend(_dependency_list(items, key))
        return out
    return _dependency_list(value, kind)


def _dependency_list(value: Any, kind: str) -> list[tuple[str, Any]]:
    """An item, or a list of items none of which is a list or a mapping."""
    if isinstance(value, (str, int, Dependency)):
        return dependency_items(value, kind)
    if isinstance(value, (bytes, bytearray, float, Mapping)):
        raise ValueError(f"{_JOB_ID_WANTED}, not {'bytes' if isinstance(value, bytes) else type(value).__name__}")
    try:
        is_job = hasattr(value, "id")
    except Exception:  # an .id that raises: _job_id_of says so
        is_job = True
    if isinstance(value, Iterable) and not is_job:
        out: list[tuple[str, Any]] = []
        for item in _items(value):
            if isinstance(item, (str, int, Dependency)):
                out.extend(dependency_items(item, kind))
            elif isinstance(item, (bytes, bytearray, float, Mapping)) or (
                    isinstance(item, Iterable) and not _has_id(item)):
                raise ValueError(f"{_JOB_ID_WANTED}, not {type(item).__name__}")
            else:
                out.append((kind, item))
        return out
    return [(kind, value)]


def _has_id(item: Any) -> bool:
    try:
        return hasattr(item, "id")
    except Exception:
        return True


def to_dependencies(pairs: Iterable[tuple[str, Any]]) -> tuple[Dependency, ...]:
    """The :class:`Dependency` records of ``dependency_items``' pairs, each once, in order; every Job among
    them must have been submitted."""
    out = [Dependency(kind, None if item is None else _job_id_of(item)) for kind, item in pairs]
    return tuple(dict.fromkeys(out))


def _depends(value: Any) -> tuple[Dependency, ...]:
    """What this job waits for: :class:`Dependency` records (afterok on every id unless a type is given).
    Nothing (an empty list or string) means no dependency; ``check_arguments`` drops it."""
    return to_dependencies(dependency_items(value))


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _export(value: Any) -> tuple[str, ...]:
    """Environment for the job: "ALL", "NONE", names to pass on, or NAME=value pairs (a dict or list)."""
    wanted = 'expected "ALL", "NONE", names or NAME=value pairs (a string, a list or a dict)'
    if isinstance(value, Mapping):
        items = [f"{_str_of(k)}={_str_of(v)}" for k, v in _items(value.items())]
    elif isinstance(value, str):
        items = [w for w in value.split(",") if w]
    elif isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        raise ValueError(f"{wanted}, not {'bytes' if isinstance(value, (bytes, bytearray)) else type(value).__name__}")
    else:
        items = [_str_of(v) for v in _items(value)]
    if not items:
        raise ValueError(f"{wanted}; this names nothing")
    for item in items:
        name = item.split("=", 1)[0]
        if item.upper() in ("ALL", "NONE"):
            continue
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{describe(name, 40)} is not an environment variable name")
        if "\n" in item or "\r" in item or "\0" in item:
            raise ValueError("values must not contain a newline or NUL")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{describe(name, 40)}: the value is not valid Unicode text (a lone surrogate)") from None
    return tuple(items)


_ARRAY_RE = re.compile(r"^[0-9]+(-[0-9]+(:[0-9]+)?)?(,[0-9]+(-[0-9]+(:[0-9]+)?)?)*(%[0-9]+)?$")
_ARRAY_FORMS = 'expected indices such as "0-9", "1,3,5", "0-99:2" or "0-9%2", a range, or a number of tasks'
_ARRAY_BOUNDS = f"indices must be below {MAX_ARRAY_INDEX + 1} and an array holds at most {MAX_ARRAY_TASKS} tasks"


def _array_parts(text: str) -> tuple[list[tuple[int, int, int]], Optional[int]]:
    """The (first, last, step) items and the %limit of an array spec, checked: no item counts down, steps
    and the limit are 1 or more, and the bounds hold. Cheap whatever the spec: no index list is built."""
    if len(text) > MAX_TEXT or not _ARRAY_RE.fullmatch(text):
        raise ValueError(_ARRAY_FORMS)
    body, _, limit_text = text.partition("%")
    parts = []
    count = 0
    for part in body.split(","):
        first, _, rest = part.partition("-")
        last, _, step_text = rest.partition(":")
        if max(len(first), len(last)) > len(str(MAX_ARRAY_INDEX)):
            raise ValueError(_ARRAY_BOUNDS)
        start = int(first)
        stop = int(last) if last else start
        if stop < start:
            raise ValueError(f"{describe(part, 40)} counts down")
        if not step_text:
            step = 1
        elif len(step_text) <= len(str(MAX_ARRAY_INDEX)):
            step = int(step_text)
        else:
            step = 0  # too many digits: refused below without converting them
        if not 1 <= step <= MAX_ARRAY_INDEX:
            raise ValueError(f"{describe(part, 40)}: a step must be from 1 to {MAX_ARRAY_INDEX}")
        if stop > MAX_ARRAY_INDEX:
            raise ValueError(_ARRAY_BOUNDS)
        count += (stop - start) // step + 1
        if count > MAX_ARRAY_TASKS:
            raise ValueError(_ARRAY_BOUNDS)
        parts.append((start, stop, step))
    limit = None
    if limit_text:
        if len(limit_text) > len(str(MAX_ARRAY_TASKS)) or int(limit_text) > MAX_ARRAY_TASKS:
            raise ValueError(f"a %limit of tasks at once must be at most {MAX_ARRAY_TASKS}")
        limit = int(limit_text)
        if limit < 1:
            raise ValueError("a %limit of tasks at once must be 1 or more")
    return parts, limit


def _array(value: Any) -> str:
    """Array task indices: "0-9", "1,3,5", "0-99:2", with an optional "%N" limit of tasks at once; a range;
    or N (tasks 0 to N-1). Indices are below 10**7 and an array holds at most 10**6 tasks."""
    if isinstance(value, bool):
        raise ValueError(f"{_ARRAY_FORMS}, not a boolean")
    if not isinstance(value, (int, str, range)) and hasattr(type(value), "__index__"):  # numpy integers
        value = operator.index(value)
    if isinstance(value, int):
        if value < 1:
            raise ValueError("an array needs at least one task")
        if value > MAX_ARRAY_TASKS:
            raise ValueError(_ARRAY_BOUNDS)
        text = f"0-{value - 1}"
    elif isinstance(value, range):
        if not value:
            raise ValueError("an array needs at least one index")
        if value.step < 0:
            value = value[::-1]
        if value.start < 0:
            raise ValueError("array indices must be 0 or more")
        if value[-1] > MAX_ARRAY_INDEX:
            raise ValueError(_ARRAY_BOUNDS)
        step = f":{value.step}" if value.step != 1 and value[-1] != value.start else ""
        text = f"{value.start}-{value[-1]}{step}"
    elif isinstance(value, str):
        text = value.replace(" ", "")
    else:
        raise ValueError(f"{_ARRAY_FORMS}, not {'bytes' if isinstance(value, bytes) else type(value).__name__}")
    _array_parts(text)
    return text


def array_indices(spec: str) -> tuple[list[int], Optional[int]]:
    """The task indices of an array spec ("0-9:2,15%3") and its limit of tasks at once (or None)."""
    try:
        parts, limit = _array_parts(_array(spec))
    except ValueError as exc:
        raise OptionError(f"array={describe(spec)}: {exc}", keyword="array", value=spec) from None
    if len(parts) == 1:
        first, last, step = parts[0]
        return list(range(first, last + 1, step)), limit
    indices: set[int] = set()
    for first, last, step in parts:
        indices.update(range(first, last + 1, step))
    return sorted(indices), limit


_MODULE = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_NAMES = r"\w+(?:\s+as\s+\w+)?(?:\s*,\s*\w+(?:\s+as\s+\w+)?)*"
_IMPORT_RE = re.compile(rf"import\s+{_MODULE}(?:\s+as\s+\w+)?(?:\s*,\s*{_MODULE}(?:\s+as\s+\w+)?)*"
                        rf"|from\s+\.*{_MODULE}\s+import\s+(?:\*|{_NAMES}|\(\s*{_NAMES}\s*,?\s*\))", re.ASCII)


def _imports(value: Any) -> tuple[str, ...]:
    """Import statements for a function job, run on the node before the function: each item is a
    statement ("import numpy as np", "from os import path") or a module name ("sys", "os.path" become
    "import sys", "import os.path"). A string may hold several, separated by ";" or newlines, or
    module names separated by commas."""
    if isinstance(value, str):
        parts = [p for p in re.split(r"[;\n]", value)]
        items = []
        for part in parts:
            part = part.strip()
            if part and not part.startswith(("import ", "from ")):
                items.extend(w.strip() for w in part.split(",") if w.strip())
            elif part:
                items.append(part)
        items = _text_items(items, "import statements or module names")
    else:
        items = [i.strip() for i in _text_items(value, "import statements or module names")]
    if not items:
        raise ValueError("must name at least one module")
    out = []
    for item in items:
        statement = item if item.startswith(("import ", "from ")) else f"import {item}"
        statement = " ".join(statement.split())
        if not _IMPORT_RE.fullmatch(statement):
            raise ValueError(f"{describe(item, 60)} is not an import statement or a module name")
        out.append(statement)
    return tuple(out)


def _paths(value: Any) -> tuple[str, ...]:
    """Directories (a list, or one string with several separated by os.pathsep or commas)."""
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, str):
        value = [value]
    if isinstance(value, str):
        value = [p for p in re.split(rf"[,{re.escape(os.pathsep)}]", value) if p.strip()]
    elif isinstance(value, (bytes, bytearray)) or isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise ValueError(f"expected a list of directories, not {type(value).__name__}")
    out = []
    for item in _items(value):
        try:
            out.append(os.path.abspath(os.path.expanduser(_path(item))))
        except ValueError as exc:
            raise ValueError(f"item {describe(item, 40)}: {exc}") from None
    if not out:
        raise ValueError("must name at least one directory")
    return tuple(out)


def _suffix(value: Any) -> str:
    text = _text(value)
    if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", text):
        raise ValueError("expected one word of letters, digits or '_' (at most 32), as in job.<suffix>.sh")
    return text


def _notify(value: Any) -> tuple[str, ...]:
    allowed = ("begin", "end", "fail", "all", "none")
    words = tuple(w.lower() for w in _words(value))
    for w in words:
        if w not in allowed:
            raise ValueError(f"{describe(w, 40)} is not one of {', '.join(allowed)}")
    return words


def _email(value: Any) -> str:
    text = _text(value)
    if not re.fullmatch(r"[^@\s,;]+@[^@\s,;]+", text):
        raise ValueError("expected an address such as name@example.org")
    return text


_CASTS: dict[str, Callable[[Any], Any]] = {
    "int": _positive_int,
    "signed": _int,
    "str": _text,
    "bool": _bool,
    "memory": parse_memory,
    "time": parse_time,
    "words": _words,
    "args": _args,
    "depends": _depends,
    "export": _export,
    "array": _array,
    "notify": _notify,
    "email": _email,
    "path": _path,
    "paths": _paths,
    "imports": _imports,
    "suffix": _suffix,
}


# --- the table --------------------------------------------------------------------------------------

@attrs.frozen
class OptionSpec:
    """One job keyword: its canonical name, type (a key of the cast table), aliases, default and help."""

    name: str
    type: str = attrs.field(validator=attrs.validators.in_(tuple(_CASTS)))
    help: str
    aliases: tuple[str, ...] = ()
    default: Any = None
    category: str = "resources"

    def cast(self, value: Any) -> Any:
        """Cast and validate one value; raises OptionError naming the keyword and the value."""
        try:
            return _CASTS[self.type](value)
        except (ValueError, TypeError, ArithmeticError) as exc:
            reason = str(exc)
            if len(reason) > 300:
                reason = reason[:297] + "..."
            raise OptionError(f"{self.name}={describe(value)}: {reason}", keyword=self.name, value=value) from None


def _opt(name, type_, help_, *aliases, default=None, category="resources"):
    return OptionSpec(name=name, type=type_, help=help_, aliases=tuple(aliases), default=default,
                      category=category)


OPTIONS: tuple[OptionSpec, ...] = (
    # resources
    _opt("cores", "int", "CPU cores for the job (per task)", "cpus", "ncpus", "cpus_per_task", "ppn",
         "threads_per_job", default=1),
    _opt("nodes", "int", "number of nodes", "node_count"),
    _opt("tasks", "int", "number of tasks (MPI ranks)", "ntasks"),
    _opt("tasks_per_node", "int", "tasks on each node", "ntasks_per_node"),
    _opt("mem", "memory", "memory for the job: MB, or a size such as 500M, 4GB, 1.5T", "memory"),
    _opt("mem_per_cpu", "memory", "memory per CPU core: MB or a size such as 2G", "memory_per_cpu"),
    _opt("time", "time", "wall-time limit: D-HH:MM:SS, HH:MM:SS, MM:SS, minutes, or 2h30m", "walltime",
         "time_limit"),
    _opt("gpus", "int", "GPUs for the job", "ngpus"),
    _opt("gres", "str", "generic resources in the scheduler's syntax, e.g. gpu:a100:2"),
    _opt("features", "words", "node features the job needs", "constraint", "constraints"),
    _opt("exclusive", "bool", "run alone on whole nodes"),
    _opt("licenses", "words", "licenses the job needs", "license"),
    # placement and accounting
    _opt("partition", "str", "partition or queue to submit to", "queue", category="placement"),
    _opt("account", "str", "account (project) to charge", "project", "allocation", category="placement"),
    _opt("qos", "str", "quality of service", category="placement"),
    _opt("reservation", "str", "reservation to run in", category="placement"),
    _opt("priority", "signed", "nice value: a positive number lowers the job's priority", "nice",
         category="placement"),
    _opt("begin", "str", "do not start before this time, in the scheduler's syntax", "begin_time",
         category="placement"),
    _opt("hold", "bool", "submit the job held; release it with the scheduler's own command",
         category="placement"),
    # naming and files
    _opt("name", "str", "job name", "job_name", category="files"),
    _opt("outfile", "path", "file for the job's stdout", "output", "stdout", "out_file", category="files"),
    _opt("errfile", "path", "file for the job's stderr", "error", "stderr", "err_file", category="files"),
    _opt("workdir", "path", "directory the job runs in", "chdir", "dir", "work_dir", "cwd", "runpath", "path",
         category="files"),
    _opt("jobdir", "path", "directory for the files cluster-core writes (script, results)", "filedir",
         "scriptdir", "scriptpath", "filepath", category="files"),
    _opt("outpath", "path", "directory for the job's stdout and stderr files (default: the job directory)",
         "outdir", category="files"),
    _opt("suffix", "suffix", "the word in the job's file names, <name>.<token>.<suffix>.sh (default: cluster)",
         category="files"),
    _opt("clean_files", "bool", "delete the job's script and pickles once get() has read its result",
         "delete_files", "cleanfiles", "delfiles", category="files"),
    _opt("clean_outputs", "bool", "delete the job's stdout and stderr files once get() has read them",
         "delete_outputs", "cleanouts", "delouts", "deloutputs", "cleanoutputs", category="files"),
    # running
    _opt("depends", "depends", 'jobs to wait for: ids or Jobs that must succeed first ("12,13"), or typed: '
         '"afterany:12:13", "afternotok:12", "after:12" (started), "singleton"', "dependencies",
         "dependency", "depend", "afterok", category="running"),
    _opt("array", "array", 'array task indices: "0-9", "1,3,5", "0-99:2", "0-9%2", or a count',
         "array_spec", category="running"),
    _opt("modules", "words", "environment modules to load before the command", "module",
         category="running"),
    _opt("imports", "imports", 'a function job: imports run before the function ("numpy as np", '
         '"from os import path")', "import", category="running"),
    _opt("syspaths", "paths", "a function job: directories put first on sys.path before it is loaded",
         "syspath", "paths", category="running"),
    _opt("threads", "int", "local backend: the cores its runner hands out at once, set when the runner "
         "starts (config local.threads)", "local_threads", category="running"),
    # ALL by default on every backend, as Slurm does (Torque, OpenPBS and Grid Engine would pass almost
    # nothing): the same job sees the same environment wherever it runs
    _opt("export", "export", 'environment: "ALL" (the default), "NONE", names, or NAME=value pairs', "env",
         "environment", default=("ALL",), category="running"),
    _opt("email", "email", "address for notifications", "mail_user", "mail", category="running"),
    _opt("notify", "notify", "when to mail: begin, end, fail, all, none", "mail_type", category="running"),
    _opt("requeue", "bool", "let the scheduler requeue the job after a node failure", category="running"),
    _opt("extra", "args", "raw scheduler arguments passed through as they are, e.g. --tmp=10G",
         "raw", "extra_args", "passthrough", category="running"),
)

_BY_NAME: dict[str, OptionSpec] = {}
for _spec in OPTIONS:
    for _key in (_spec.name, *_spec.aliases):
        if _key in _BY_NAME:  # pragma: no cover - a table error, caught by the tests
            raise RuntimeError(f"option name {_key!r} is used twice")
        _BY_NAME[_key] = _spec

# Keywords the submission calls take that are not job options; they never reach a backend.
CONTROL_KEYWORDS = frozenset({"backend", "profile", "qtype"})

# Job keywords the core itself carries out (file names and places, clean-up, what a function job loads);
# they are removed before the options reach a backend.
CORE_KEYWORDS = frozenset({"outpath", "suffix", "clean_files", "clean_outputs", "imports", "syspaths"})


def get_spec(keyword: str) -> OptionSpec:
    """The spec of a keyword or alias; an OptionError suggests the closest names for a typo."""
    if not isinstance(keyword, str):
        shown = describe(keyword, 40)
        raise OptionError(f"job keywords are names (strings), not {type(keyword).__name__}: {shown}; "
                          "`cluster keywords` lists them all", keyword=shown)
    key = keyword.strip().lower().replace("-", "_")
    if key in _BY_NAME:
        return _BY_NAME[key]
    close = difflib.get_close_matches(key, list(_BY_NAME), n=3, cutoff=0.6) if len(key) <= 64 else []
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        "; `cluster keywords` lists them all"
    raise OptionError(f"unknown job keyword {describe(keyword, 60)}{hint}", keyword=keyword)


def canonical_name(keyword: str) -> str:
    return get_spec(keyword).name


OptionsError = OptionError  # fyrd's name


def split_keywords(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """fyrd's ``split_keywords``: (the job keywords, checked; everything else, as given). A job keyword with
    a bad value is still an OptionError."""
    ours = {k: v for k, v in kwargs.items() if isinstance(k, str) and _known(k)}
    return check_arguments(ours), {k: v for k, v in kwargs.items() if k not in ours}


def _known(keyword: str) -> bool:
    return keyword.strip().lower().replace("-", "_") in _BY_NAME


def check_arguments(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Cast and validate job keywords; return a dict keyed by canonical names.

    Unknown keywords raise OptionError with the closest names; a keyword given twice under two aliases
    is an error; ``None`` means "not set" and is dropped, as is an empty ``depends`` (no dependency).
    """
    if not isinstance(kwargs, Mapping):
        raise OptionError(f"job options come as a mapping of keywords to values, not {type(kwargs).__name__}",
                          keyword="options")
    out: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, value in kwargs.items():
        spec = get_spec(key)  # an unknown keyword is an error even when its value is None
        if value is None:
            continue
        if spec.name in given_as:
            raise OptionError(f"{spec.name!r} given twice (as {describe(given_as[spec.name], 40)} and "
                              f"{describe(key, 40)})", keyword=spec.name)
        given_as[spec.name] = key
        cast = spec.cast(value)
        if spec.type == "depends" and not cast:
            continue
        out[spec.name] = cast
    if "mem" in out and "mem_per_cpu" in out:
        raise OptionError("give mem or mem_per_cpu, not both", keyword="mem")
    return out


# --- help -------------------------------------------------------------------------------------------

_HELP_MODES = ("string", "print", "table", "list")


def option_help(qtype: Optional[str] = None, mode: str = "string", category: Optional[str] = None,
                tablefmt: Optional[str] = None) -> Any:
    """Every keyword with its aliases, type, default and help.

    mode "string" returns a printable table, "table" a list of rows (dicts), "print" prints the string,
    "list" returns the keyword names. ``qtype`` (the seed's backend argument; fyrd put ``mode`` first, and a
    mode name there is read as the mode) is checked, and changes nothing: every keyword means the same on
    every backend, and one a backend cannot honour is ignored there. fyrd's ``tablefmt`` is accepted.
    """
    if qtype in _HELP_MODES and (mode == "string" or mode not in _HELP_MODES):
        qtype, mode = (None if mode == "string" else mode), qtype  # fyrd's order: option_help(mode, qtype)
    if qtype is not None:
        from . import plugins
        plugins.get_backend(qtype)
    if mode == "list":
        return [s.name for s in OPTIONS if category is None or s.category == category]
    specs = [s for s in OPTIONS if category is None or s.category == category]
    if mode == "table":
        return [{"name": s.name, "aliases": list(s.aliases), "type": s.type, "default": s.default,
                 "category": s.category, "help": s.help} for s in specs]
    if mode not in ("string", "print"):
        raise OptionError(f"mode={mode!r}: expected one of {', '.join(_HELP_MODES)}", keyword="mode")
    rows = [("keyword", "type", "default", "aliases", "help")]
    rows += [(s.name, s.type, "" if s.default is None else str(s.default), ", ".join(s.aliases), s.help)
             for s in specs]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    text = "\n".join(lines)
    if mode == "print":
        print(text)
        return None
    return text


# --- rendering --------------------------------------------------------------------------------------

# Keywords the core's job script carries out on every backend (no directive needed).
SCRIPT_KEYWORDS = frozenset({"modules", "jobdir", "workdir"})  # the script cds to workdir itself
# What to do instead, for keywords whose loss would surprise most.
_INSTEAD = {
    "threads": "threads is the local runner's core limit (the seed's meaning; fyrd 0.6.2 read it as cores): "
               "give cores= for the cores of each job",
}
_warned: set[tuple[str, str]] = set()


def _ignored(backend: str, key: str, value: Any) -> None:
    """A keyword the backend cannot honour: a warning naming it (once per backend and keyword in a process),
    or with the setting ``core.strict`` an OptionError."""
    from . import config
    message = f"{key}={describe(value, 60)}: backend {backend} cannot honour it, so it is ignored"
    if key in _INSTEAD:
        message += f"; {_INSTEAD[key]}"
    if str(config.get_option("core.strict") or "").strip().lower() in _TRUE:
        raise OptionError(message + " (core.strict is set)", keyword=key, value=value)
    if (backend, key) not in _warned:
        _warned.add((backend, key))
        log.warning("%s", message)

Renderer = Callable[[Any, Mapping[str, Any]], Optional[Iterable[tuple[str, ...]]]]


def render_with(renderers: Mapping[str, Renderer], options: Mapping[str, Any], backend: str,
                skip: Iterable[str] = ()) -> list[tuple[str, ...]]:
    """Render options through a backend's table of ``keyword -> renderer(value, options)``.

    A renderer returns directive tuples (or None for nothing). A keyword with no renderer is one the backend
    cannot honour: it is skipped with a warning naming it (an OptionError with ``core.strict``); keywords in
    ``skip`` (handled elsewhere by the backend) and those the core's script carries out are skipped silently.
    """
    out: list[tuple[str, ...]] = []
    skip = set(skip)
    for key, value in options.items():
        if key in skip:
            continue
        renderer = renderers.get(key)
        if renderer is None and key not in SCRIPT_KEYWORDS and key not in CORE_KEYWORDS:
            _ignored(backend, key, value)
        if renderer is None:
            continue
        for directive in renderer(value, options) or ():
            out.append(tuple(str(w) for w in directive))
    return out


def dependency_groups(value: Iterable[Any]) -> dict[str, list[str]]:
    """A checked ``depends`` value for a renderer: dependency type -> job ids, in the order given (types
    in the order they first appear; ``singleton`` maps to an empty list). An unchecked value (ids, text
    such as "afterany:1:2") is checked first."""
    if isinstance(value, (str, int)) or not all(isinstance(d, Dependency) for d in value):
        value = _depends(value)
    groups: dict[str, list[str]] = {}
    for dep in value:
        ids = groups.setdefault(dep.kind, [])
        if dep.job_id is not None and dep.job_id not in ids:
            ids.append(dep.job_id)
    return groups


def quote_directive_word(word: str, escape_backslash: bool = False) -> str:
    """Quote one word for a directive line. Some directive parsers (sbatch's) treat a backslash as an
    escape even inside single quotes; for them every backslash is doubled."""
    quoted = shlex.quote(word)
    return quoted.replace("\\", "\\\\") if escape_backslash else quoted


def directive_lines(directives: Iterable[tuple[str, ...]], prefix: Optional[str],
                    escape_backslash: bool = False) -> list[str]:
    """Script lines for directives, each word quoted for the scheduler's own directive parser."""
    if not prefix:
        return []
    return [prefix + " " + " ".join(quote_directive_word(w, escape_backslash) for w in d) for d in directives]


def options_to_string(options: Mapping[str, Any], backend: Optional[str] = None, *,
                      qtype: Optional[str] = None) -> str:
    """The directive lines a job script would carry for these keywords on a backend (default: the
    detected one; ``qtype`` is the seed's name for it), one per line. A keyword given None takes its
    default (a flag is set); a keyword the backend lacks gives nothing (logged at debug level)."""
    from . import plugins
    from .job import _backend_of
    be = plugins.get_backend(_backend_of(backend, qtype))
    given = {}
    for key, value in options.items():
        if value is None:
            spec = get_spec(key)
            value = spec.default if spec.default is not None else (True if spec.type == "bool" else None)
            if value is None:
                raise OptionError(f"{spec.name}: needs a value (it has no default)", keyword=spec.name)
        given[key] = value
    checked = check_arguments(given)
    return "\n".join(directive_lines(be.render_options(checked), be.info.directive_prefix,
                                     be.info.directive_escapes_backslash))


def option_to_string(keyword: str, value: Any = None, backend: Optional[str] = None, *,
                     qtype: Optional[str] = None) -> str:
    """The directive line(s) for one keyword on a backend; empty when the backend lacks the option."""
    return options_to_string({keyword: value}, backend=backend, qtype=qtype)


def defaults() -> dict[str, Any]:
    """The table's default values, applied under the user's profile and keywords."""
    return {s.name: s.default for s in OPTIONS if s.default is not None}
