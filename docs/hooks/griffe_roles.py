"""A griffe extension for the API reference: the docstrings' reST roles (``:class:`Task```,
``:func:`~cluster_core.wait```) become Markdown code (`Task`, `wait`), as mkdocstrings renders docstrings
as Markdown. ``literals`` need nothing: a double-backtick span is code in Markdown too."""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")


def plain(text: str) -> str:
    return ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", text)


class ReSTRoles(griffe.Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
