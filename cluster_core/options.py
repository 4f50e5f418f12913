"""The job keyword table: every option a job takes, with its type, aliases, default and checks.

The table says what a keyword means; each backend says how its scheduler spells it (its
``render_options`` hook, usually through :func:`render_with`). ``check_arguments`` is the single place
where user values are cast and validated, so every backend receives the same clean values.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
import shlex
from typing import Any, Callable, Iterable, Mapping, Optional

import attrs

from .errors import OptionError

log = logging.getLogger(__name__)


# --- casts ------------------------------------------------------------------------------------------

_MEM_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]?)(i?b?)\s*$", re.IGNORECASE)
_MEM_FACTOR = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024 ** 2, "p": 1024 ** 3}


def parse_memory(value: Any) -> int:
    """Memory in whole MB (MiB, as schedulers count them), rounded up.

    Numbers are MB. Strings take K, M, G, T, P with an optional B or iB: "4GB", "4G" and "4GiB" are all
    4096 MB, as Slurm and PBS read them; "1.5T" is 1572864; "500M" is 500; "512K" rounds up to 1.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount of memory")
    if isinstance(value, (int, float)):
        mb = float(value)
    else:
        m = _MEM_RE.match(str(value))
        if not m:
            raise ValueError("expected a number of MB or a size such as 500M, 4GB, 1.5T")
        mb = float(m.group(1)) * _MEM_FACTOR[m.group(2).lower()]
    if not math.isfinite(mb) or mb <= 0:
        raise ValueError("memory must be more than zero")
    return int(math.ceil(mb))


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
        seconds = float(value) * 60
    else:
        text = str(value).strip().lower()
        seconds = _parse_time_text(text)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("time must be more than zero")
    return int(math.ceil(seconds))


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


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not a boolean")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("expected a whole number")
    try:
        n = int(str(value).strip()) if not isinstance(value, (int, float)) else int(value)
    except ValueError:
        raise ValueError("expected a whole number") from None
    if n < 1:
        raise ValueError("must be 1 or more")
    return n


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not a boolean")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def _text(value: Any) -> str:
    if value is None or isinstance(value, (bool, list, tuple, dict, set)):
        raise ValueError("expected a string")
    text = str(value)
    if not text.strip():
        raise ValueError("must not be empty")
    if "\n" in text or "\r" in text or "\0" in text:
        raise ValueError("must not contain a newline or NUL")
    return text


def _args(value: Any) -> tuple[str, ...]:
    """Raw command-line arguments: a string is split as a shell would (quotes respected, no expansion),
    so "-l nodes=1:ppn=4,mem=4gb" stays two words; a list is taken as it is."""
    if isinstance(value, str):
        try:
            items = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split into arguments: {exc}") from None
    elif isinstance(value, Iterable):
        items = [_text(v) for v in value]
    else:
        raise ValueError("expected a string or a list of arguments")
    if not items:
        raise ValueError("must hold at least one argument")
    return tuple(items)


def _words(value: Any) -> tuple[str, ...]:
    """A list of strings; a single string is split on commas and whitespace."""
    if isinstance(value, str):
        items = [w for w in re.split(r"[,\s]+", value) if w]
    elif isinstance(value, Iterable):
        items = [_text(v) for v in value]
    else:
        raise ValueError("expected a string or a list of strings")
    if not items:
        raise ValueError("must name at least one item")
    return tuple(items)


def _job_id_of(item: Any) -> str:
    job_id = getattr(item, "id", item)  # a Job or any object with .id
    if job_id is None:
        raise ValueError(f"{item!r} has no job id yet: submit it before the jobs that depend on it")
    text = str(job_id).strip()
    if not text or not re.fullmatch(r"[\w.\[\]@:-]+", text):
        raise ValueError(f"{text!r} is not a job id")
    return text


def _depends(value: Any) -> tuple[str, ...]:
    """Job ids (or Job objects) this job waits for: it runs only after all ended successfully."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        items = [w for w in re.split(r"[,:\s]+", str(value)) if w]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        items = [value]
    return tuple(_job_id_of(i) for i in items)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _export(value: Any) -> tuple[str, ...]:
    """Environment for the job: "ALL", "NONE", names to pass on, or NAME=value pairs (a dict or list)."""
    if isinstance(value, Mapping):
        items = [f"{k}={v}" for k, v in value.items()]
    elif isinstance(value, str):
        items = [w for w in value.split(",") if w]
    else:
        items = [str(v) for v in value]
    for item in items:
        name = item.split("=", 1)[0]
        if item.upper() in ("ALL", "NONE"):
            continue
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        if "\n" in item or "\0" in item:
            raise ValueError("values must not contain a newline or NUL")
    return tuple(items)


_ARRAY_RE = re.compile(r"^\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?$")


def _array(value: Any) -> str:
    """Array task indices: "0-9", "1,3,5", "0-99:2", with an optional "%N" limit of tasks at once; or N."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError("an array needs at least one task")
        return f"0-{value - 1}"
    if isinstance(value, range):
        if len(value) == 0 or value.start < 0:
            raise ValueError("an array needs at least one non-negative index")
        step = f":{value.step}" if value.step != 1 else ""
        return f"{value.start}-{value[-1]}{step}"
    text = str(value).replace(" ", "")
    if not _ARRAY_RE.match(text):
        raise ValueError('expected indices such as "0-9", "1,3,5", "0-99:2" or "0-9%2"')
    return text


def array_indices(spec: str) -> tuple[list[int], Optional[int]]:
    """The task indices of an array spec ("0-9:2,15%3") and its limit of tasks at once (or None)."""
    body, _, limit = _array(spec).partition("%")
    indices: list[int] = []
    for part in body.split(","):
        first, _, rest = part.partition("-")
        last, _, step = rest.partition(":")
        start = int(first)
        stop = int(last) if last else start
        if stop < start:
            raise OptionError(f"array={spec!r}: {part!r} counts down", keyword="array", value=spec)
        indices.extend(range(start, stop + 1, int(step) if step else 1))
    return sorted(set(indices)), (int(limit) if limit else None)


def _notify(value: Any) -> tuple[str, ...]:
    allowed = ("begin", "end", "fail", "all", "none")
    words = tuple(w.lower() for w in _words(value))
    for w in words:
        if w not in allowed:
            raise ValueError(f"{w!r} is not one of {', '.join(allowed)}")
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
    "path": _text,
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
        except (ValueError, TypeError) as exc:
            raise OptionError(f"{self.name}={value!r}: {exc}", keyword=self.name, value=value) from None


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
    _opt("workdir", "path", "directory the job runs in", "chdir", "dir", "work_dir", "cwd",
         category="files"),
    _opt("jobdir", "path", "directory for the files cluster-core writes (script, results)", "filedir",
         "scriptdir", category="files"),
    # running
    _opt("depends", "depends", "job ids or Jobs that must end successfully first", "dependencies",
         "dependency", "afterok", category="running"),
    _opt("array", "array", 'array task indices: "0-9", "1,3,5", "0-99:2", "0-9%2", or a count',
         "array_spec", category="running"),
    _opt("modules", "words", "environment modules to load before the command", "module",
         category="running"),
    _opt("export", "export", 'environment: "ALL", "NONE", names, or NAME=value pairs', "env",
         "environment", category="running"),
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
CONTROL_KEYWORDS = frozenset({"backend", "profile"})


def get_spec(keyword: str) -> OptionSpec:
    """The spec of a keyword or alias; an OptionError suggests the closest names for a typo."""
    key = keyword.strip().lower().replace("-", "_")
    if key in _BY_NAME:
        return _BY_NAME[key]
    close = difflib.get_close_matches(key, list(_BY_NAME), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        "; `cluster keywords` lists them all"
    raise OptionError(f"unknown job keyword {keyword!r}{hint}", keyword=keyword)


def canonical_name(keyword: str) -> str:
    return get_spec(keyword).name


def check_arguments(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Cast and validate job keywords; return a dict keyed by canonical names.

    Unknown keywords raise OptionError with the closest names; a keyword given twice under two aliases
    is an error; ``None`` means "not set" and is dropped.
    """
    out: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, value in kwargs.items():
        if value is None:
            continue
        spec = get_spec(key)
        if spec.name in out:
            raise OptionError(f"{spec.name!r} given twice (as {given_as[spec.name]!r} and {key!r})",
                              keyword=spec.name)
        out[spec.name] = spec.cast(value)
        given_as[spec.name] = key
    if "mem" in out and "mem_per_cpu" in out:
        raise OptionError("give mem or mem_per_cpu, not both", keyword="mem")
    return out


# --- help -------------------------------------------------------------------------------------------

def option_help(mode: str = "string", category: Optional[str] = None) -> Any:
    """Every keyword with its aliases, type, default and help.

    mode "string" returns a printable table, "table" a list of rows (dicts), "print" prints the string.
    """
    specs = [s for s in OPTIONS if category is None or s.category == category]
    if mode == "table":
        return [{"name": s.name, "aliases": list(s.aliases), "type": s.type, "default": s.default,
                 "category": s.category, "help": s.help} for s in specs]
    if mode not in ("string", "print"):
        raise OptionError(f"mode={mode!r}: expected 'string', 'table' or 'print'", keyword="mode")
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

Renderer = Callable[[Any, Mapping[str, Any]], Optional[Iterable[tuple[str, ...]]]]


def render_with(renderers: Mapping[str, Renderer], options: Mapping[str, Any], backend: str,
                skip: Iterable[str] = ()) -> list[tuple[str, ...]]:
    """Render options through a backend's table of ``keyword -> renderer(value, options)``.

    A renderer returns directive tuples (or None for nothing). Keywords with no renderer are skipped and
    logged at debug level; keywords in ``skip`` are skipped silently (handled elsewhere by the backend).
    """
    out: list[tuple[str, ...]] = []
    skip = set(skip)
    for key, value in options.items():
        if key in skip:
            continue
        renderer = renderers.get(key)
        if renderer is None:
            log.debug("backend %s has no option %r; skipped", backend, key)
            continue
        for directive in renderer(value, options) or ():
            out.append(tuple(str(w) for w in directive))
    return out


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


def options_to_string(options: Mapping[str, Any], backend: Optional[str] = None) -> str:
    """The directive lines a job script would carry for these keywords on a backend (default: the
    detected one), one per line."""
    from . import plugins
    be = plugins.get_backend(backend)
    checked = check_arguments(options)
    return "\n".join(directive_lines(be.render_options(checked), be.info.directive_prefix,
                                     be.info.directive_escapes_backslash))


def option_to_string(keyword: str, value: Any = None, backend: Optional[str] = None) -> str:
    """The directive line(s) for one keyword on a backend; empty when the backend lacks the option."""
    return options_to_string({keyword: value}, backend=backend)


def defaults() -> dict[str, Any]:
    """The table's default values, applied under the user's profile and keywords."""
    return {s.name: s.default for s in OPTIONS if s.default is not None}
