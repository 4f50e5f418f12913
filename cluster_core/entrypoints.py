"""The installed distributions' entry points of one group, read the way ``importlib.metadata`` reads them.

Finding the backends is on the way of every first submission and every ``cluster`` command, and
``importlib.metadata`` costs ~30 ms of imports there (email, zipfile, csv) for what is a directory listing
per ``sys.path`` entry and one small INI file per distribution that has any entry points. This module does
that much: ``*.dist-info`` and ``*.egg-info`` directories in each directory on ``sys.path``, in path order,
a distribution seen again under the same normalised name further down the path ignored (as
``importlib.metadata.entry_points`` does), then the group's lines of its ``entry_points.txt``. Where the
path holds anything else that can carry distributions (a zip file, an egg, a finder with
``find_distributions`` other than the standard path finder), it hands the question to ``importlib.metadata`` instead.
"""

from __future__ import annotations

import importlib
import importlib.machinery  # loaded at interpreter start already
import os
import re
import sys
from typing import Any, Optional, cast

_META_SUFFIXES = (".dist-info", ".egg-info")


class Distribution:
    """The name and version a distribution declares in its METADATA (PKG-INFO for an egg-info), read when
    first asked."""

    def __init__(self, path: str):
        self._path = path
        self._headers: Optional[dict[str, str]] = None

    def _header(self, key: str) -> Optional[str]:
        if self._headers is None:
            self._headers = {}
            for name in ("METADATA", "PKG-INFO"):
                try:
                    with open(os.path.join(self._path, name), encoding="utf-8", errors="replace") as fh:
                        for line in fh:
                            if not line.strip():
                                break  # the headers end at the first blank line
                            field, sep, value = line.partition(":")
                            if sep and not line[:1].isspace():
                                self._headers.setdefault(field.strip().lower(), value.strip())
                    break
                except OSError:
                    continue
        return self._headers.get(key)

    @property
    def name(self) -> Optional[str]:
        return self._header("name")

    @property
    def version(self) -> Optional[str]:
        return self._header("version")


class EntryPoint:
    """One ``name = module[:attribute]`` line of a group; ``load()`` imports what it names."""

    def __init__(self, name: str, value: str, group: str, dist: Optional[Distribution] = None):
        self.name, self.value, self.group, self.dist = name, value, group, dist

    def load(self) -> Any:
        target = self.value.split("[", 1)[0].strip()  # extras ("mod:obj [extra]") do not change what loads
        module, _, attribute = target.partition(":")
        obj = importlib.import_module(module.strip())
        for part in filter(None, attribute.strip().split(".")):
            obj = getattr(obj, part)
        return obj

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` of every distribution on ``sys.path``, in path order (importlib.metadata's
    own, which have the same fields and ``load``, where the path is not plain directories)."""
    if not _plain_path():
        from importlib import metadata
        if sys.version_info >= (3, 10):
            return cast("list[EntryPoint]", list(metadata.entry_points(group=group)))
        return cast("list[EntryPoint]", list(metadata.entry_points().get(group, ())))  # 3.9: no group= yet
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for entry in sys.path:
        directory = entry or "."
        try:
            names = os.listdir(directory)
        except OSError:  # not a directory (or gone): nothing there
            continue
        for child in names:
            if not child.lower().endswith(_META_SUFFIXES):
                continue
            key = _normalized(child)
            if key in seen:
                continue
            seen.add(key)
            path = os.path.join(directory, child)
            found += _read(path, group)
    return found


def _plain_path() -> bool:
    """True when sys.path holds only plain directories (or entries that do not exist: no zip file, no
    ``.egg`` whose metadata is in its EGG-INFO) and no finder but the standard one lists distributions:
    what this module reads is then all there is."""
    for finder in sys.meta_path:
        if hasattr(finder, "find_distributions") and finder is not importlib.machinery.PathFinder:
            return False
    return not any(entry and (entry.lower().rstrip("/").endswith(".egg") or os.path.isfile(entry))
                   for entry in sys.path)


def _normalized(directory_name: str) -> str:
    """The distribution's name in the directory name (``name-version.dist-info``), as importlib.metadata
    normalises it to tell one distribution from another."""
    stem = os.path.splitext(directory_name)[0]
    name = stem.partition("-")[0]
    return re.sub(r"[-_.]+", "_", name).lower()


def _read(path: str, group: str) -> list[EntryPoint]:
    try:
        with open(os.path.join(path, "entry_points.txt"), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return []
    dist = Distribution(path)
    found = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section == group:
            name, sep, value = line.partition("=")
            if sep:
                found.append(EntryPoint(name.strip(), value.strip(), group, dist))
    return found
