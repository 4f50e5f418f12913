"""PBS job ids in every form the servers print and users type.

``3.vm``, ``123.server.domain``, bare ``123``, array parents ``1[].vm`` and subjobs ``1[2].vm``; Torque
dependency lists add ``@server`` (``6059780.pbsserver@pbsserver``). Two spellings name the same job when
the sequence numbers and indices agree and the server names agree as far as both go: ``3``, ``3.vm`` and
``3.vm.example.org`` are one job (qsub prints the short name on OpenPBS, the long one on many Torque
sites, and users often type just the number).
"""

from __future__ import annotations

import re
from typing import Optional

import attrs

ID_RE = re.compile(r"^(?P<seq>\d+)(?:\[(?P<index>\d*)\])?(?:\.(?P<server>[A-Za-z0-9][\w.:-]*))?$")


class JobIdError(ValueError):
    """Text that is not a PBS job id."""


@attrs.frozen
class JobId:
    """One parsed job id. ``index`` is None for a plain job, "" for an array parent, digits for a subjob."""

    seq: str
    index: Optional[str] = None
    server: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "JobId":
        raw = str(text).strip()
        raw = raw.split("@", 1)[0]  # Torque depend lists: "12.srv@srv"
        m = ID_RE.match(raw)
        if not m:
            raise JobIdError(f"{text!r} is not a PBS job id (expected e.g. 123, 123.server, 1[].server, 1[2].server)")
        return cls(m["seq"], m["index"], m["server"] or None)

    @property
    def is_array_parent(self) -> bool:
        return self.index == ""

    @property
    def is_subjob(self) -> bool:
        return bool(self.index)

    @property
    def task_id(self) -> Optional[int]:
        return int(self.index) if self.index else None  # is_subjob, spelled so mypy sees a str

    @property
    def parent(self) -> "JobId":
        """The array parent of a subjob (itself for anything else)."""
        return attrs.evolve(self, index="") if self.is_subjob else self

    def subjob(self, index: int) -> "JobId":
        return attrs.evolve(self, index=str(int(index)))

    @property
    def short_server(self) -> Optional[str]:
        return self.server.split(".", 1)[0] if self.server else None

    def same_job(self, other: "JobId") -> bool:
        """True when both spellings name one job (see the module docstring for the server rule)."""
        return self.seq == other.seq and self.index == other.index and servers_match(self.server, other.server)

    def __str__(self) -> str:
        text = self.seq
        if self.index is not None:
            text += f"[{self.index}]"
        if self.server:
            text += f".{self.server}"
        return text


def parse(text: str) -> JobId:
    return JobId.parse(text)


def try_parse(text: str) -> Optional[JobId]:
    try:
        return JobId.parse(text)
    except JobIdError:
        return None


def servers_match(a: Optional[str], b: Optional[str]) -> bool:
    """Server names agree: one missing, equal, or one a dotted prefix of the other ("vm" vs "vm.example.org").

    A port suffix (``server:15001``) is ignored."""
    if not a or not b:
        return True
    a, b = a.split(":", 1)[0].lower(), b.split(":", 1)[0].lower()
    if a == b:
        return True
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return long_.startswith(short + ".")
