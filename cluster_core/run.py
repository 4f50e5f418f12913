"""The seed's run.py knick-knacks: run a command, find a program, open zipped files, split a file.

Kept for code written against python-cluster 0.6.1 and fyrd 0.6 (``cmd``, ``which``, ``open_zipped``,
``split_file``). Differences from the seed, each on purpose: ``cmd`` runs no shell (a value in an
argument is never read as shell syntax); ``split_file`` is pure Python, splits as evenly as possible and
never writes an empty part. Stdlib only, and the compression modules load on first use.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import time
from typing import IO, Any, Iterator, Optional, Sequence, Union

from .errors import OptionError

log = logging.getLogger(__name__)

__all__ = ["cmd", "which", "open_zipped", "split_file"]

PathOrFile = Union[str, "os.PathLike[str]", IO[Any]]

NOT_FOUND = 127  # what a shell returns for a command it cannot find
NOT_EXECUTABLE = 126  # ... and for one it cannot run


# --- running commands -------------------------------------------------------------------------------

def cmd(command: Union[str, Sequence[Any]], args: Optional[Sequence[Any]] = None, stdout: Optional[PathOrFile] = None,
        stderr: Optional[PathOrFile] = None, tries: int = 1, *, delay: float = 1.0) -> tuple[int, str, str]:
    """Run a command; return ``(exit_code, stdout, stderr)``, the two texts with trailing white space
    stripped, as the seed returned them.

    ``command`` is the executable and ``args`` its arguments (any values, passed as ``str(value)``). A
    string with no ``args`` is split into words as a shell would (``shlex.split``: quotes work); a list
    or tuple is the argument vector itself. No shell runs: a pipe, a redirection or ``$VAR`` is passed
    as a plain word. Write ``cmd("bash", ["-c", "sort x | uniq"])`` for shell syntax (the seed ran
    everything through ``/bin/sh``).

    ``stdout``/``stderr``: a path (``.gz``, ``.bz2`` and ``.xz`` are compressed) or an open file to
    receive the whole text as well; a file you pass is written to, not closed. ``tries``: run again,
    ``delay`` seconds later, while the exit code is not 0, at most this many runs in all.

    A program that cannot be found gives ``(127, "", "<name>: command not found")`` (one that cannot be
    run, 126), as from a shell, so code that checks the exit code keeps working; it is not run again.
    """
    argv = _argv(command, args)
    tries = _tries(tries)
    for attempt in range(1, tries + 1):
        log.debug("running %s (try %d of %d)", shlex.join(argv), attempt, tries)
        code, out, err, started = _run_once(argv)
        if code == 0 or not started or attempt == tries:
            break
        log.warning("%s ended with exit code %d (try %d of %d); trying again in %g s", argv[0], code, attempt,
                    tries, delay)
        time.sleep(delay)
    log.debug("%s ended with exit code %d", argv[0], code)
    if stdout is not None:
        _write_text(stdout, out, "stdout")
    if stderr is not None:
        _write_text(stderr, err, "stderr")
    return code, out.rstrip(), err.rstrip()


def _argv(command: Any, args: Optional[Sequence[Any]]) -> list[str]:
    if isinstance(command, (list, tuple)):
        argv = [str(word) for word in command]
    elif isinstance(command, (str, os.PathLike)):
        text = os.fspath(command)
        if args is not None:
            argv = [text]  # "Path to executable": taken as it is
        else:
            try:
                argv = shlex.split(text)
            except ValueError as exc:
                raise OptionError(f"command {text!r} cannot be split into words: {exc}", keyword="command") from None
    else:
        raise OptionError(f"command must be a string or a list of words, not {type(command).__name__}",
                          keyword="command")
    if args is not None:
        if isinstance(args, (str, bytes, os.PathLike)):
            args = [os.fsdecode(args)]  # one argument (the seed raised; fyrd glued it to the command)
        elif not isinstance(args, (list, tuple)):
            raise OptionError(f"args must be a list or tuple of arguments, not {type(args).__name__}", keyword="args")
        argv += [str(arg) for arg in args]
    if not argv or not argv[0]:
        raise OptionError("the command is empty", keyword="command")
    return argv


def _tries(tries: Any) -> int:
    try:
        count = int(tries) if not isinstance(tries, (bool, float)) else None
    except (TypeError, ValueError):
        count = None
    if count is None or count < 1:
        raise OptionError(f"tries={tries!r}: expected a whole number of runs, 1 or more", keyword="tries")
    return count


def _run_once(argv: list[str]) -> tuple[int, str, str, bool]:
    """Exit code, stdout, stderr, and whether the program started at all."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return NOT_FOUND, "", f"{argv[0]}: command not found", False
    except OSError as exc:  # no permission, not an executable format
        return NOT_EXECUTABLE, "", f"{argv[0]}: {exc.strerror or exc}", False
    return proc.returncode, proc.stdout, proc.stderr, True


def _write_text(target: PathOrFile, text: str, what: str) -> None:
    if hasattr(target, "write"):
        target.write(text)
        return
    try:
        with open_zipped(target, "w") as handle:
            handle.write(text)
    except OSError as exc:
        raise OptionError(f"{what}={os.fspath(target)!r}: cannot write the command's {what} there: {exc}",
                          keyword=what) from None


def which(program: Union[str, "os.PathLike[str]"]) -> Optional[str]:
    """The absolute path of an executable program (a name looked up on PATH, or a path), else None."""
    name = os.fspath(program)
    if not name:
        return None
    found = shutil.which(name)
    return os.path.abspath(found) if found else None


# --- files ------------------------------------------------------------------------------------------

_OPENERS = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}


def _compression(path: str) -> Optional[str]:
    return next((module for ext, module in _OPENERS.items() if path.endswith(ext)), None)


def open_zipped(infile: PathOrFile, mode: str = "r") -> IO[Any]:
    """Open a plain, gzipped (``.gz``), bzip2 (``.bz2``) or xz (``.xz``) file in text mode, chosen by
    its name. ``mode`` is ``r``, ``w``, ``a`` or ``x``; as in the seed, only its first letter counts
    (``"rb"`` still opens as text). An open file is returned unchanged."""
    if hasattr(infile, "read") or hasattr(infile, "write"):
        return infile  # type: ignore[return-value]
    if not isinstance(infile, (str, os.PathLike)):
        raise OptionError(f"expected a path or an open file, not {type(infile).__name__}", keyword="infile")
    if not mode or mode[0] not in "rwax":
        raise OptionError(f"mode={mode!r}: expected 'r', 'w', 'a' or 'x'", keyword="mode")
    path, text_mode = os.fspath(infile), mode[0] + "t"
    module = _compression(path)
    if module is None:
        return open(path, text_mode)
    import importlib
    handle: IO[str] = importlib.import_module(module).open(path, text_mode)
    return handle


def _open_bytes(path: str, mode: str) -> IO[bytes]:
    """A binary handle that (de)compresses by the file's name: split_file copies lines byte for byte."""
    module = _compression(path)
    if module is None:
        return open(path, mode)
    import importlib
    handle: IO[bytes] = importlib.import_module(module).open(path, mode)
    return handle


def even_bounds(total: int, parts: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of ``parts`` runs over ``total`` items, sizes differing by at most one, the
    longer first (``numpy.array_split``'s rule); empty runs are left out."""
    size, extra = divmod(total, parts)
    start = 0
    for index in range(parts):
        stop = start + size + (1 if index < extra else 0)
        if stop > start:
            yield start, stop
        start = stop


def split_file(infile: Union[str, "os.PathLike[str]"], parts: int, outpath: Union[str, "os.PathLike[str]"] = "",
               keep_header: bool = True) -> list[str]:
    """Split a file by lines into ``parts`` files as evenly as possible; return their paths, in order.

    With ``keep_header`` the first line is the header: it is written at the top of every part and the
    other lines are shared out. Parts are named ``<file name>.split_0001.<extension>`` in ``outpath``
    (default: the current directory) and compressed as the input is (``x.txt.gz`` gives
    ``x.txt.gz.split_0001.gz``). Lines are copied byte for byte, whatever their encoding or line ends.

    Fewer lines than ``parts`` give one part per line: no part is empty, except the single part of a
    file with no lines. The seed counted lines with ``wc`` and put ``lines // parts + 1`` in each part,
    which could leave fewer parts than asked for and split unevenly.
    """
    parts = _count(parts, "parts")
    path = os.fspath(infile)
    try:
        lines = _count_lines(path) - (1 if keep_header else 0)
    except OSError as exc:
        raise OptionError(f"infile={path!r}: cannot read it: {exc}", keyword="infile") from None
    bounds = list(even_bounds(max(lines, 0), parts)) or [(0, 0)]
    names = _part_names(path, len(bounds), os.fspath(outpath))
    if os.fspath(outpath):
        os.makedirs(outpath, exist_ok=True)
    with _open_bytes(path, "rb") as fin:
        header = fin.readline() if keep_header else b""
        for (start, stop), name in zip(bounds, names):
            with _open_bytes(name, "wb") as fout:
                fout.write(header)
                for _ in range(stop - start):
                    fout.write(fin.readline())
    log.debug("split %s into %d parts in %s", path, len(names), os.fspath(outpath) or ".")
    return names


def _count(value: Any, keyword: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"{keyword}={value!r}: expected a whole number, 1 or more", keyword=keyword)
    return value


def _count_lines(path: str) -> int:
    """Lines as readline() returns them: newlines, plus a last line that has none."""
    count, last = 0, b"\n"
    with _open_bytes(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (0 if last == b"\n" else 1)


def _part_names(path: str, count: int, outpath: str) -> list[str]:
    base = os.path.basename(path)
    extension = base.rsplit(".", 1)[1] if "." in base.strip(".") else ""
    width = max(4, len(str(count)))
    return [os.path.join(outpath, f"{base}.split_{index:0{width}d}" + (f".{extension}" if extension else ""))
            for index in range(1, count + 1)]
