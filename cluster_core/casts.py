"""Casting and checking one job keyword's value: numbers, memory, time, text, paths, arrays, environment.

Pure functions, no scheduler names and no state: each takes what a user may pass and returns the clean
value every backend receives, or raises ValueError saying what was expected (``keywords.OptionSpec.cast``
turns that into an OptionError naming the keyword). Backends use ``parse_memory``, ``format_time``,
``array_indices`` and ``describe`` through :mod:`cluster_core.backend`.
"""

from __future__ import annotations

import math
import operator
import os
import re
import shlex
from typing import Any, Iterable, Mapping, Optional

from .errors import OptionError

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


def _items(value: Any) -> list[Any]:
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
    return _at_least(value, 1)


def _at_least(value: Any, low: int) -> int:
    n = _whole(value)
    if n < low:
        raise ValueError(f"must be {low} or more")
    if n > MAX_COUNT:
        raise ValueError(f"must be at most {MAX_COUNT}")
    return n


def _count(value: Any) -> int:
    """A whole number, 0 or more (a count that may be none)."""
    return _at_least(value, 0)


def _seconds(value: Any) -> int:
    """A short span in whole seconds: a number is seconds here (not minutes, as for ``time``); a string
    takes units or a clock ("90", "90s", "2m", "1:30")."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number of seconds")
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        seconds = float(value)
        if seconds != seconds or seconds < 0:  # NaN or negative
            raise ValueError("expected 0 seconds or more")
        if seconds > MAX_TIME_SECONDS:
            raise ValueError(f"must be at most {MAX_TIME_SECONDS} seconds (about 68 years)")
        return int(seconds)
    return parse_time(value)


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
        items: list[str] = []
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
