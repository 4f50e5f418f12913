"""The ``depends`` keyword: job ids, Jobs and typed dependencies ("afterany:12:13") read into
:class:`~cluster_core.records.Dependency` records. Pure, like :mod:`.casts`."""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from .casts import _items, describe
from .records import DEPENDENCY_KINDS, Dependency

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
