"""Leveled, coloured, timestamped console logging on top of the standard logging module.

The library only logs to loggers under ``cluster_core``; :func:`setup` (called by the CLI, or by a user who
wants our console format) attaches one console handler to that logger. Colours are used only on a
terminal (and never with NO_COLOR set). The level can be changed at any time with :func:`set_level`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional, TextIO, Union

LOGGER_NAME = "cluster_core"
LEVELS = {"debug": logging.DEBUG, "verbose": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}
_COLORS = {logging.DEBUG: "\x1b[2m", logging.INFO: "\x1b[32m", logging.WARNING: "\x1b[33m",
           logging.ERROR: "\x1b[31m", logging.CRITICAL: "\x1b[1;41m"}
_RESET = "\x1b[0m"


class ConsoleFormatter(logging.Formatter):
    """``2026-11-25 13:40:37 WARNING cluster_core.job: message``, the level coloured on a terminal."""

    def __init__(self, color: bool):
        super().__init__("%(asctime)s %(levelname)-8s %(name)s: %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not self.color:
            return text
        color = _COLORS.get(record.levelno, "")
        return text.replace(record.levelname, f"{color}{record.levelname}{_RESET}", 1)


def parse_level(level: Union[str, int]) -> int:
    if isinstance(level, int):
        return level
    try:
        return LEVELS[str(level).strip().lower()]
    except KeyError:
        from .errors import OptionError
        raise OptionError(f"log level {level!r}: expected one of {', '.join(sorted(set(LEVELS)))}",
                          keyword="level") from None


def _wants_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_handler: Optional[logging.Handler] = None


def setup(level: Union[str, int, None] = None, stream: Optional[TextIO] = None,
          color: Optional[bool] = None, default: str = "info") -> logging.Logger:
    """Attach (once) our console handler to the ``cluster_core`` logger and set its level.

    The level defaults to $CLUSTER_LOG_LEVEL, else the config's ``core.log_level``, else ``default``.
    """
    global _handler
    logger = logging.getLogger(LOGGER_NAME)
    stream = stream or sys.stderr
    if _handler is not None:
        logger.removeHandler(_handler)
    _handler = logging.StreamHandler(stream)
    _handler.setFormatter(ConsoleFormatter(_wants_color(stream) if color is None else color))
    logger.addHandler(_handler)
    logger.propagate = False
    if level is None:
        level = os.environ.get("CLUSTER_LOG_LEVEL")
    if level is None:
        from . import config
        try:
            level = config.get_option("core.log_level")
        except Exception:
            level = None
    set_level(level or default)
    return logger


def set_level(level: Union[str, int]) -> None:
    """Change the minimum level shown, at run time."""
    logging.getLogger(LOGGER_NAME).setLevel(parse_level(level))
