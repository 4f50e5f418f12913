"""Job options: the keyword table and its checks, casts and backend rendering, under one name.

The parts live in their own modules: :mod:`.keywords` (the table, ``check_arguments``), :mod:`.casts` and
:mod:`.dependencies` (casting one value), :mod:`.rendering` (what backends use to turn options into
directives) and :mod:`.help` (``option_help``). Every name importable from here before the split still is:
users' code, the seed's and fyrd's names and plugins written against ``cluster_core.options`` keep working.
"""

from __future__ import annotations

import logging

from . import session
from .casts import (MAX_ARRAY_INDEX, MAX_ARRAY_TASKS, MAX_COUNT, MAX_MEMORY_MB, MAX_TEXT, MAX_TIME_SECONDS,
                    _ARRAY_BOUNDS, _ARRAY_FORMS, _ARRAY_RE, _CONTROL_RE, _ENV_NAME, _FALSE, _IMPORT_RE,
                    _MAX_NUMBER_TEXT, _MEM_FACTOR, _MEM_RE, _MODULE, _NAMES, _TIME_UNIT_RE, _TIME_UNITS, _TRUE,
                    _args, _array, _array_parts, _bool, _check_text, _email, _export, _imports, _int, _items,
                    _notify, _parse_time_text, _path, _paths, _positive_int, _str_of, _suffix, _text, _text_items,
                    _whole, _words, array_indices, describe, format_time, parse_memory, parse_time)  # noqa: F401
from .dependencies import (_JOB_ID_RE, _JOB_ID_WANTED, _KIND_WORD, _KINDS_TEXT, _dependency_list, _depends, _has_id,
                           _job_id_of, _kind_of, _text_dependencies, dependency_items, to_dependencies)  # noqa: F401
from .errors import OptionError  # noqa: F401
from .help import _HELP_MODES, option_help  # noqa: F401
from .keywords import (_BY_NAME, _CASTS, CONTROL_KEYWORDS, CORE_KEYWORDS, OPTIONS, OptionsError, OptionSpec, _known,
                       _opt, canonical_name, check_arguments, defaults, get_spec, split_keywords)  # noqa: F401
from .records import DEPENDENCY_KINDS, Dependency  # noqa: F401
from .rendering import (_INSTEAD, SCRIPT_KEYWORDS, Renderer, _ignored, dependency_groups, directive_lines,
                        option_to_string, options_to_string, quote_directive_word, render_with)  # noqa: F401

log = logging.getLogger(__name__)

#: the public names (a type checker reads the re-exports above as such only through this list)
__all__ = ["MAX_ARRAY_INDEX", "MAX_ARRAY_TASKS", "MAX_COUNT", "MAX_MEMORY_MB", "MAX_TEXT", "MAX_TIME_SECONDS",
           "array_indices", "describe", "format_time", "parse_memory", "parse_time", "dependency_items",
           "to_dependencies", "OptionError", "option_help", "CONTROL_KEYWORDS", "CORE_KEYWORDS", "OPTIONS",
           "OptionsError", "OptionSpec", "canonical_name", "check_arguments", "defaults", "get_spec",
           "split_keywords", "DEPENDENCY_KINDS", "Dependency", "SCRIPT_KEYWORDS", "Renderer", "dependency_groups",
           "directive_lines", "option_to_string", "options_to_string", "quote_directive_word", "render_with"]


def __getattr__(name: str) -> set[tuple[str, str]]:
    if name == "_warned":  # the (backend, keyword) pairs already warned about: the session's, not a copy
        return session.current().warned
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
