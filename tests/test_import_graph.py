"""The core's modules import each other without cycles, read from the source with ``ast``.

Two graphs. The module-level one (imports run when a module loads, outside ``if TYPE_CHECKING:``) must be
acyclic: a cycle there means half-initialised modules and an import order that matters. The full one
adds the imports inside functions; those are deliberate (they keep ``import cluster_core`` and the CLI
cheap, or reach up a layer only when a call needs it), and the few that close a cycle are listed below
with the reason, so a new cycle fails here instead of at a user's import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cluster_core

PACKAGE = "cluster_core"
ROOT = Path(cluster_core.__file__).parent

# Imports inside functions that point back up the layers, each closing a cycle in the full graph. A
# module-level import in their place would close the same cycle at load time.
UPWARD = {
    # a setting's value is checked against the installed backends (core.backend, <backend>.<key>)
    ("cluster_core.config", "cluster_core.plugins"),
    # logging's level may come from the config file
    ("cluster_core.config", "cluster_core.logme"),
    # Job.submit(max_queue_len=...) waits on the user's queue listing, which reads job records back as Jobs
    ("cluster_core.job", "cluster_core.queue"),
    # Job.__await__ is the asyncio layer's, loaded only when a job is awaited
    ("cluster_core.job", "cluster_core.futures"),
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((PACKAGE, *parts))] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module: str, is_package: bool, modules: set[str]) -> tuple[set[str], set[str]]:
    """(module-level targets, targets imported inside functions) of one module, core modules only."""
    top: set[str] = set()
    inner: set[str] = set()
    base = module if is_package else module.rpartition(".")[0]

    def targets(node) -> set[str]:
        out = set()
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            if node.level:
                anchor = base
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                prefix = f"{anchor}.{node.module}" if node.module else anchor
            else:
                prefix = node.module or ""
            names = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in modules:  # a name imported from a module is that module
                name = name.rpartition(".")[0]
            if name and name != PACKAGE and name != module:
                out.add(name)
        return out

    def walk(nodes, inside_function: bool) -> None:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                (inner if inside_function else top).update(targets(node))
            elif isinstance(node, ast.If) and _is_type_checking(node):
                continue  # annotations only
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                walk(ast.iter_child_nodes(node), True)
            else:
                walk(ast.iter_child_nodes(node), inside_function)

    walk(tree.body, False)
    return top, inner - top


def _graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = _modules()
    top, full = {}, {}
    for name, path in modules.items():
        at_load, in_functions = _imports(ast.parse(path.read_text(), str(path)), name,
                                         path.name == "__init__.py", set(modules))
        top[name] = at_load
        full[name] = at_load | in_functions
    return top, full


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of the graph as a list of modules (first == last), or [] when there is none."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in graph}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, BLACK) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return []

    for node in sorted(graph):
        if colour[node] == WHITE:
            found = visit(node)
            if found:
                return found
    return []


def test_the_graph_sees_the_imports_it_should():
    """The reader finds both kinds of import (a test of the test: an empty graph has no cycles either)."""
    top, full = _graphs()
    assert "cluster_core.plugins" in top["cluster_core.job"]
    assert "cluster_core.records" in top["cluster_core.plugins"]
    assert "cluster_core.records" not in top["cluster_core.hookspecs"]  # under TYPE_CHECKING only
    assert "cluster_core.plugins" in full["cluster_core.config"] - top["cluster_core.config"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_module_level_imports_have_no_cycle():
    top, _ = _graphs()
    cycle = _cycle(top)
    assert not cycle, "import cycle at load time: " + " -> ".join(cycle)


def test_imports_inside_functions_close_no_new_cycle():
    """With every import counted, the graph is acyclic once the listed upward imports are taken out."""
    _, full = _graphs()
    pruned = {m: {t for t in targets if (m, t) not in UPWARD} for m, targets in full.items()}
    cycle = _cycle(pruned)
    assert not cycle, ("import cycle through an import inside a function: " + " -> ".join(cycle) +
                       " (import the lower module at the top, or move the shared code down a layer)")
    stale = sorted(edge for edge in UPWARD if edge[1] not in full.get(edge[0], ()))
    assert not stale, f"listed upward imports that no longer exist: {stale}"


def test_the_options_split_keeps_its_layers():
    """casts and dependencies are pure, the keyword table reaches no backend, and the core's own modules
    import the parts, not the compatibility face ``options`` (which would load all of them)."""
    _, full = _graphs()
    for low in ("cluster_core.casts", "cluster_core.dependencies", "cluster_core.keywords", "cluster_core.session"):
        assert not {"cluster_core.options", "cluster_core.plugins", "cluster_core.config", "cluster_core.job",
                    "cluster_core.rendering"} & full[low], low
    for module in ("cluster_core.job", "cluster_core.config", "cluster_core.queue", "cluster_core.plugins",
                   "cluster_core.backend", "cluster_core.cli", "cluster_core.helpers", "cluster_core.futures"):
        assert "cluster_core.options" not in full[module], module
