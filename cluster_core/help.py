"""``option_help``: the keyword table as text, rows or names, for users and ``cluster keywords``."""

from __future__ import annotations

from typing import Any, Optional

from .errors import OptionError
from .keywords import OPTIONS

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
        fyrd_mode = qtype  # fyrd's order: option_help(mode, qtype)
        qtype, mode = (None if mode == "string" else mode), fyrd_mode
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
