"""MkDocs hooks for the cluster-core site (named in mkdocs.yml; not a page of the site).

- ``<!-- cli-reference -->`` (in ``reference/cli.md``) becomes the reference generated from
  ``cluster_core.cli.build_parser()``: every subcommand, argument, default and choice the parser has, so
  the page cannot drift from the command.
- ``changelog.md`` is the repository's ``CHANGELOG.md``; an image a page takes from the repository
  outside ``docs/`` (``../benchmarks/latest.png``) is copied under ``repository/``.
- ``::: cluster_core.NAME`` (any public name, also ``cluster_core.backend.NAME``) is rewritten to the
  object's defining module, found by importing it, so a name that moves between private modules needs no
  change to the pages; the heading keeps the public name.
- ``<!-- public-names -->`` becomes a table of every name of ``cluster_core.__all__`` and of
  ``cluster_core.backend.__all__``, each a cross-reference to its rendered entry: a public name that no page
  renders is an unresolved reference, which fails the strict build.
- A link to another file of the repository outside ``docs/`` (``../tests/test_seed.py``) becomes the file's path
  in code (the site has no copy of it); a link to a file that does not exist is a warning (an error with
  ``--strict``).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import re
from pathlib import Path

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.plugins.cluster_docs")
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


# --- API names ------------------------------------------------------------------------------------------

def canonical(module: str, name: str) -> tuple[str, str]:
    """(identifier where ``module.name`` is defined, the name a reader knows it by)."""
    mod = importlib.import_module(module)
    obj = getattr(mod, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return f"{obj.__module__}.{obj.__qualname__}", name
    # a value (hookimpl, a constant): where the package says it lives, else where it was named
    if module == "cluster_core":
        return f"cluster_core.{mod._WHERE[name]}.{name}", name
    for candidate in sorted(m for m in _loaded() if m.startswith("cluster_core.")):
        if candidate != module and getattr(importlib.import_module(candidate), name, None) is obj \
                and _assigns(candidate, name):
            return f"{candidate}.{name}", name
    return f"{module}.{name}", name


def _loaded() -> list[str]:
    import sys
    return list(sys.modules)


def _assigns(module: str, name: str) -> bool:
    path = importlib.import_module(module).__file__
    text = Path(path).read_text() if path else ""
    return re.search(rf"^{re.escape(name)}\s*[:=]", text, re.MULTILINE) is not None


def public_names() -> list[tuple[str, str, str]]:
    """(public spelling, identifier of its rendered entry, summary line) of every public name."""
    import cluster_core
    import cluster_core.backend as backend
    out = []
    for module, names in (("cluster_core", cluster_core.__all__), ("cluster_core.backend", backend.__all__)):
        for name in names:
            # cluster_core.backend is rendered whole, its re-exports under its own name
            ident = canonical(module, name)[0] if module == "cluster_core" else f"{module}.{name}"
            obj = getattr(importlib.import_module(module), name)
            doc = inspect.getdoc(obj) if (inspect.isclass(obj) or inspect.isfunction(obj)) else ""
            first = (doc or "").strip().split("\n\n")[0].replace("\n", " ")
            out.append((f"{module}.{name}", ident, first))
    return out


_DIRECTIVE = re.compile(r"^::: (cluster_core(?:\.\w+)*)\.(\w+)[ \t]*$", re.MULTILINE)


def _rewrite_directive(match: re.Match) -> str:
    module, name = match.group(1), match.group(2)
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return match.group(0)
    if inspect.ismodule(getattr(mod, name, None)) or not hasattr(mod, name):
        return match.group(0)  # a module, or a name griffe will report itself
    ident, public = canonical(module, name)
    if ident == f"{module}.{name}":
        return match.group(0)
    return f"::: {ident}\n    options:\n      heading: \"{public}\"\n      toc_label: \"{public}\""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _names_table() -> str:
    rows = ["| name | what it is |", "|---|---|"]
    for public, ident, summary in public_names():
        rows.append(f"| [`{public}`][{ident}] | {_cell(_plain(summary))} |")
    return "\n".join(rows)


def _plain(text: str) -> str:
    """A docstring's first paragraph as Markdown: reST roles and ``literals`` as code."""
    text = re.sub(r":(?:class|func|meth|mod|attr|data|exc):`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


# --- links to repository files --------------------------------------------------------------------------

_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\((\.\./[^)\s#]+)(#[^)\s]*)?\)")


def _repo_links(markdown: str, page) -> str:
    src = DOCS / page.file.src_uri

    def replace(match: re.Match) -> str:
        target = (src.parent / match.group(2)).resolve()
        try:
            rel = target.relative_to(ROOT)
        except ValueError:
            return match.group(0)
        if str(rel).startswith("docs" + os.sep):
            return match.group(0)  # a page: mkdocs checks it
        if not target.exists():
            log.warning("%s links to %s, which does not exist in the repository", page.file.src_uri, rel)
            return match.group(0)
        label = match.group(1)
        return label if label.startswith("`") else f"{label} (`{rel}`)"

    return _LINK.sub(replace, markdown)


# --- the CLI reference ------------------------------------------------------------------------------------

def _invocation(action: argparse.Action) -> str:
    if not action.option_strings:
        return _metavar(action)
    flags = ", ".join(f"`{f}`" for f in action.option_strings)
    if action.nargs == 0:
        return flags
    return f"{flags} `{_metavar(action)}`"


def _metavar(action: argparse.Action) -> str:
    formatter = argparse.HelpFormatter("cluster")
    default = action.dest.upper() if action.option_strings else action.dest
    text = formatter._format_args(action, default)
    return "..." if action.nargs == argparse.REMAINDER else text


def _details(action: argparse.Action) -> str:
    # help text is plain text: its <name> must not read as HTML
    parts = [(action.help or "").replace("%%", "%").replace("<", "&lt;").replace(">", "&gt;")]
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        parts.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    if action.default not in (None, False, argparse.SUPPRESS) and not isinstance(action.default, list):
        parts.append(f"default `{action.default}`")
    if isinstance(action, argparse._AppendAction) and "repeat" not in (action.help or ""):
        parts.append("repeatable")
    return "; ".join(p for p in parts if p)


def _arguments(parser: argparse.ArgumentParser) -> list[str]:
    lines = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions
                   if a.help != argparse.SUPPRESS and not isinstance(a, (argparse._HelpAction,
                                                                         argparse._SubParsersAction))]
        if not actions:
            continue
        title = {"positional arguments": "Arguments", "options": "Options",
                 "optional arguments": "Options"}.get(group.title, (group.title or "").capitalize())
        lines += [f"**{title}**", "", "| argument | meaning |", "|---|---|"]
        lines += [f"| {_cell(_invocation(a))} | {_cell(_details(a))} |" for a in actions]
        lines.append("")
    return lines


def _usage(name: str, parser: argparse.ArgumentParser) -> str:
    words = [f"cluster {name}".strip(), "[OPTIONS]"]
    for action in parser._actions:
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            words.append(_metavar(action) if action.nargs != argparse.REMAINDER else "[--] COMMAND...")
    if name == "":
        words.append("COMMAND ...")
    return " ".join(words)


def cli_page() -> str:
    from cluster_core import cli
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    out = [f"{parser.description}", "",
           "`cluster` is also `python -m cluster_core`; `cluster-status` and `cluster-cancel` are "
           "`cluster status` and `cluster cancel` as one word, for tools that run a command without a shell "
           "(see [Workflow engines](../guide/workflow-engines.md)). Every command takes `-h`/`--help`.", "",
           "```text", _usage("", parser), "```", ""]
    out += _arguments(parser)
    out += ["## Exit codes", "", "```text", (parser.epilog or "").strip(), "```", "",
            "| command | what it does |", "|---|---|"]
    out += [f"| [`cluster {name}`](#cluster-{name}) | {_cell(helps.get(name, ''))} |" for name in sub.choices]
    out.append("")
    for name, p in sub.choices.items():
        out += [f"## cluster {name}", "", helps.get(name, "").capitalize() + ".", "",
                "```text", _usage(name, p), "```", ""]
        if p.description:
            out += [p.description.replace("%%", "%").replace("<", "&lt;").replace(">", "&gt;"), ""]
        out += _arguments(p)
    return "\n".join(out) + "\n"


# --- mkdocs events ----------------------------------------------------------------------------------------

_IMAGE = re.compile(r"!\[([^\]\n]*)\]\((\.\./[^)\s]+)\)")


def _images() -> dict[str, str]:
    """Images of the repository outside docs/ that pages show: page-relative target -> site path."""
    found = {}
    for page in DOCS.rglob("*.md"):
        for _, target in _IMAGE.findall(page.read_text()):
            path = (page.parent / target).resolve()
            if path.exists() and not path.is_relative_to(DOCS):
                found[str(path)] = "repository/" + str(path.relative_to(ROOT))
    return found


def on_files(files, config):
    # a page shows an image from elsewhere in the repository (../benchmarks/latest.png, which GitHub
    # shows too): the site gets a copy under repository/
    for source, uri in _images().items():
        files.append(File.generated(config, uri, abs_src_path=source))
    changelog = (ROOT / "CHANGELOG.md").read_text()
    files.append(File.generated(config, "changelog.md", content=changelog))
    return files


def _image_links(markdown: str, page) -> str:
    src = DOCS / page.file.src_uri
    depth = len(Path(page.file.src_uri).parts) - 1

    def replace(match: re.Match) -> str:
        path = (src.parent / match.group(2)).resolve()
        if not path.exists() or path.is_relative_to(DOCS):
            return match.group(0)
        return f"![{match.group(1)}]({'../' * depth}repository/{path.relative_to(ROOT)})"

    return _IMAGE.sub(replace, markdown)


def on_page_markdown(markdown, page, config, files):
    markdown = _image_links(markdown, page)
    markdown = _DIRECTIVE.sub(_rewrite_directive, markdown)
    if "<!-- cli-reference -->" in markdown:
        markdown = markdown.replace("<!-- cli-reference -->", cli_page())
    if "<!-- public-names -->" in markdown:
        markdown = markdown.replace("<!-- public-names -->", _names_table())
    return _repo_links(markdown, page)
