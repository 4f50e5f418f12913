"""Rendering checked options for a backend: its renderer table (``render_with``), dependency groups, and
directive lines quoted for the scheduler's parser (``directive_lines``, ``options_to_string``)."""

from __future__ import annotations

import logging
import shlex
from typing import Any, Callable, Iterable, Mapping, Optional

from . import session
from .casts import _TRUE, describe
from .dependencies import _depends
from .errors import OptionError
from .keywords import CORE_KEYWORDS, check_arguments, get_spec
from .records import Dependency

log = logging.getLogger("cluster_core.options")  # the name its warnings had before the split

# Keywords the core's job script carries out on every backend (no directive needed).
SCRIPT_KEYWORDS = frozenset({"modules", "jobdir", "workdir"})  # the script cds to workdir itself
# What to do instead, for keywords whose loss would surprise most.
_INSTEAD = {
    "threads": "threads is the local runner's core limit (the seed's meaning; fyrd 0.6.2 read it as cores): "
               "give cores= for the cores of each job",
}


def __getattr__(name: str) -> set[tuple[str, str]]:
    if name == "_warned":  # the (backend, keyword) pairs already warned about, now the session's
        return session.current().warned
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _ignored(backend: str, key: str, value: Any) -> None:
    """A keyword the backend cannot honour: a warning naming it (once per backend and keyword in a process),
    or with the setting ``core.strict`` an OptionError."""
    from . import config  # config checks its values with the keyword table: imported when needed
    message = f"{key}={describe(value, 60)}: backend {backend} cannot honour it, so it is ignored"
    if key in _INSTEAD:
        message += f"; {_INSTEAD[key]}"
    if str(config.get_option("core.strict") or "").strip().lower() in _TRUE:
        raise OptionError(message + " (core.strict is set)", keyword=key, value=value)
    warned = session.current().warned
    if (backend, key) not in warned:
        warned.add((backend, key))
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
    from . import plugins  # pluggy and the entry points only when a backend renders
    be = plugins.get_backend(plugins.backend_of(backend, qtype))
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
