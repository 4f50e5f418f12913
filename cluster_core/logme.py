"""Leveled, coloured, timestamped console logging on top of the standard logging module.

The library only logs to loggers under ``cluster_core``; :func:`setup` (called by the CLI, or by a user who
wants our console format) attaches one console handler to that logger. Colours are used only on a
terminal (and never with NO_COLOR set). The level can be changed at any time with :func:`set_level`.

The seed's interface is here too: ``logme.MIN_LEVEL = 'debug'`` changes the minimum level at run time
(and shows the library's messages on stderr, as the seed did), and :func:`log` with the leveled
:func:`debug`, :func:`info`, :func:`warn`, :func:`error` and :func:`critical` print a timestamped line.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import types
from typing import Any, Optional, TextIO, Union

LOGGER_NAME = "cluster_core"
LEVELS = {"debug": logging.DEBUG, "verbose": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL,
          # fyrd's one-letter levels
          "v": logging.DEBUG, "d": logging.DEBUG, "i": logging.INFO, "w": logging.WARNING, "e": logging.ERROR,
          "c": logging.CRITICAL}
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


def _level_name(level: int) -> str:
    return {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
            logging.CRITICAL: "critical"}.get(level, logging.getLevelName(level).lower())


def _min_level() -> str:
    """The level below which nothing is shown: the ``cluster_core`` logger's (info when unset)."""
    level = logging.getLogger(LOGGER_NAME).level
    return _level_name(level or logging.INFO)


def _set_min_level(level: Union[str, int]) -> None:
    """The seed's ``MIN_LEVEL = ...``: the level, and our console handler when nothing shows the
    library's messages yet (no handler of ours or the application's)."""
    number = parse_level(level)
    logger = logging.getLogger(LOGGER_NAME)
    if _handler is None and not logger.handlers and not logging.getLogger().handlers:
        setup(number)
    else:
        logger.setLevel(number)


_PREFIX = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARNING", logging.ERROR: "ERROR",
           logging.CRITICAL: "CRITICAL"}


def log(message: Any, level: Union[str, int] = "info", logfile: Any = None, also_write: Optional[str] = None,
        min_level: Union[str, int, None] = None, kind: Union[str, int, None] = None) -> None:
    """Print ``<timestamp> LEVEL --> message`` when ``level`` is at least ``MIN_LEVEL`` (the seed's
    ``logme.log``).

    logfile: a path (appended to), an open file, or a logging.Logger (the message is logged to it);
    default stderr. also_write: "stdout" or "stderr" to print there too. min_level overrides MIN_LEVEL for
    this call; kind is the seed's synonym for level. The level "normal" prints the message as it is.
    """
    level = kind if kind is not None else level
    plain = isinstance(level, str) and level.strip().lower() == "normal"
    number = logging.INFO if plain else parse_level(level)
    if isinstance(logfile, logging.Logger):
        logfile.log(number, "%s", message)
        return
    if number < parse_level(min_level if min_level is not None else _min_level()):
        return
    stamp = time.strftime("%Y%m%d %H:%M:%S")
    line = f"{message}\n" if plain else f"{stamp} {_PREFIX.get(number, 'INFO')} --> {message}\n"
    streams: list[TextIO] = []
    if logfile is None:
        streams.append(sys.stderr)
    elif hasattr(logfile, "write"):
        streams.append(logfile)
    else:
        with open(os.fspath(logfile), "a", encoding="utf-8") as fh:
            fh.write(line)
    extra = {"stdout": sys.stdout, "stderr": sys.stderr}.get(str(also_write or "").lower())
    if extra is not None and extra not in streams:
        streams.append(extra)
    for stream in streams:
        stream.write(line)
        stream.flush()


def debug(message: Any, logfile: Any = None) -> None:
    log(message, "debug", logfile)


def info(message: Any, logfile: Any = None) -> None:
    log(message, "info", logfile)


def warn(message: Any, logfile: Any = None) -> None:
    log(message, "warn", logfile)


warning = warn


def error(message: Any, logfile: Any = None) -> None:
    log(message, "error", logfile)


def critical(message: Any, logfile: Any = None) -> None:
    log(message, "critical", logfile)


class _Module(types.ModuleType):
    """This module, with ``MIN_LEVEL`` read from and written to the ``cluster_core`` logger's level, so
    the seed's ``cluster_core.logme.MIN_LEVEL = 'debug'`` works at any time."""

    @property
    def MIN_LEVEL(self) -> str:  # noqa: N802 - the seed's name
        return _min_level()

    @MIN_LEVEL.setter
    def MIN_LEVEL(self, level: Union[str, int]) -> None:  # noqa: N802
        _set_min_level(level)


sys.modules[__name__].__class__ = _Module
