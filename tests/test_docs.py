"""The documentation: the site builds with every warning an error and documents every public name; the
code the pages show runs; links between the README and docs/ point at files that exist.

The site needs the pinned doc tools that ``bash ci/docs.sh`` installs into ``.venv-docs`` (or mkdocs with
the same plugins in the running interpreter); without them the build test skips, saying so.
"""

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PUBLIC_MODULES = ("cluster_core", "cluster_core.backend", "cluster_core.hookspecs", "cluster_core.records",
                  "cluster_core.errors", "cluster_core.futures")
#: Reference pages that render a module whole (every public member of it).
WHOLE_MODULES = {"cluster_core.backend", "cluster_core.hookspecs", "cluster_core.records", "cluster_core.errors",
                 "cluster_core.futures"}


def _docs_python():
    """An interpreter with mkdocs and the site's plugins, or None."""
    venv = ROOT / ".venv-docs" / "bin" / "python"
    candidates = [venv] if venv.exists() else []
    candidates.append(Path(sys.executable))
    for python in candidates:
        probe = subprocess.run([str(python), "-c", "import mkdocs, mkdocstrings, material, mkdocstrings_handlers.python"],
                               capture_output=True)
        if probe.returncode == 0:
            return python
    return None


def _names(module: str) -> list[str]:
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    if names is None:  # no __all__: its public classes and functions defined there
        names = [n for n, o in vars(mod).items() if not n.startswith("_")
                 and (inspect.isclass(o) or inspect.isfunction(o)) and o.__module__ == module]
    return list(names)


def _defined_at(module: str, name: str) -> str:
    obj = getattr(importlib.import_module(module), name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    if module == "cluster_core":
        return f"cluster_core.{importlib.import_module('cluster_core')._WHERE[name]}.{name}"
    return f"{module}.{name}"


def _inventory(site: Path) -> dict[str, str]:
    """objects.inv (Sphinx's format, written by mkdocstrings): identifier -> URL."""
    data = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = data.index(b"\n", header_end) + 1
    out = {}
    for line in zlib.decompress(data[header_end:]).decode().splitlines():
        m = re.match(r"(\S+) (\S+) (-?\d+) (\S+) (.*)", line)
        if m:
            out[m.group(1)] = m.group(4)
    return out


# --- the site ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    python = _docs_python()
    if python is None:
        pytest.skip("the doc tools are not installed (bash ci/docs.sh installs them into .venv-docs)")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([str(python), "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert "WARNING" not in proc.stderr, proc.stderr
    return out


def test_every_public_name_is_in_the_api_reference(site):
    inventory = _inventory(site)
    missing = []
    for module in PUBLIC_MODULES:
        for name in _names(module):
            ident = _defined_at(module, name)
            # cluster_core.backend renders its re-exports under its own name
            if ident not in inventory and f"{module}.{name}" not in inventory \
                    and not any(url.endswith(f"#{module}.{name}") for url in inventory.values()):
                missing.append(f"{module}.{name} ({ident})")
    assert not missing, f"public names with no entry in the API reference: {missing}"


def test_cli_reference_has_every_subcommand_and_flag(site):
    from cluster_core import cli
    page = (site / "reference" / "cli.html").read_text()
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert f'id="cluster-{name}"' in page, f"cluster {name} has no section"
        for action in p._actions:
            if action.help == "==SUPPRESS==" or action.__class__.__name__ == "_HelpAction":
                continue
            for flag in action.option_strings:
                assert f"<code>{flag}</code>" in page, f"cluster {name} {flag} is not in the CLI reference"


def test_site_has_every_page_of_the_nav(site):
    for page in ("index", "getting-started", "guide/functions", "guide/arrays", "guide/dependencies",
                 "guide/config", "guide/reattaching", "guide/workflow-engines", "backends/local", "backends/slurm",
                 "backends/torque", "backends/sge", "reference/cli", "reference/index", "coming-from-fyrd",
                 "coming-from-submitit", "writing-a-backend", "benchmarks", "changelog"):
        assert (site / f"{page}.html").exists(), page


# --- without the doc tools --------------------------------------------------------------------------------

def test_reference_pages_name_every_public_name():
    """Every public name has a ``::: cluster_core...`` entry on a reference page, or its module is rendered
    whole (checked here without building, so a new name fails even where the doc tools are missing)."""
    text = "\n".join(p.read_text() for p in (DOCS / "reference").glob("*.md"))
    whole = {m for m in WHOLE_MODULES if re.search(rf"^::: {re.escape(m)}\s*$", text, re.MULTILINE)}
    assert whole == WHOLE_MODULES, f"module pages missing: {WHOLE_MODULES - whole}"
    entries = set(re.findall(r"^::: (\S+)\s*$", text, re.MULTILINE))
    missing = []
    for name in _names("cluster_core"):
        home = _defined_at("cluster_core", name).rsplit(".", 1)[0]
        if f"cluster_core.{name}" not in entries and home not in whole:
            missing.append(name)
    assert not missing, f"cluster_core names on no reference page: {missing}"


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", ["README.md", "CHANGELOG.md", *sorted(str(p.relative_to(ROOT))
                                                                    for p in DOCS.rglob("*.md"))])
def test_relative_links_point_at_files(doc):
    path = ROOT / doc
    broken = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file = target.split("#")[0]
        if file and not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f"{doc} links to files that do not exist: {broken}"


# --- the code the pages show ------------------------------------------------------------------------------

BLOCK = re.compile(r"<!-- run -->\n```(python|sh)\n(.*?)\n```", re.DOTALL)
RUN_PAGES = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "<!-- run -->" in p.read_text())


@pytest.mark.plugins
@pytest.mark.parametrize("page", RUN_PAGES)
def test_page_code_runs(page, tmp_path):
    """The blocks of a page marked ``<!-- run -->`` run in order on the local backend, each language in
    one process (a page reads as one session); every one must exit 0."""
    cluster_local = pytest.importorskip("cluster_local", reason="the local backend (cluster-local) is not installed")
    blocks = BLOCK.findall((DOCS / page).read_text())
    assert blocks
    state = tmp_path / "state"
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, CLUSTER_BACKEND="local", CLUSTER_LOCAL_DIR=str(state), CLUSTER_LOCAL_THREADS="2",
               CLUSTER_CORE_CONFIG=str(tmp_path / "config.ini"), CLUSTER_CORE_REGISTRY=str(tmp_path / "records"),
               PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    try:
        for lang in ("python", "sh"):
            code = "\n".join(body for kind, body in blocks if kind == lang)
            if not code:
                continue
            (tmp_path / f"page.{lang}").write_text(code + "\n")
            argv = [sys.executable, "page.python"] if lang == "python" else ["bash", "-eu", "page.sh"]
            proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, (f"{page}: its {lang} blocks exited {proc.returncode}\n--- code\n{code}\n"
                                          f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    finally:
        cluster_local.shutdown_runner(state)


# --- the backend pages' keyword tables --------------------------------------------------------------------

TABLE = re.compile(r"<!-- keyword-table: ([^>]+) -->\n\n?((?:\|.*\n)+)")
#: Lines every Grid Engine script carries, which its page states once instead of in every row.
ALWAYS = {"sge": {"#$ -S /bin/bash", "#$ -cwd"}}

RENDER = r"""
import ast, json, logging, sys
import cluster_core as cc
logging.disable(logging.WARNING)
out = {}
for sample in json.loads(sys.argv[2]):
    key, _, text = sample.partition("=")
    try:
        out[sample] = cc.options_to_string({key: ast.literal_eval(text)}, backend=sys.argv[1]).splitlines()
    except cc.ClusterError as exc:
        out[sample] = "refused"
print(json.dumps(out))
"""


def _keyword_tables():
    for page in sorted((DOCS / "backends").glob("*.md")):
        for spec, table in TABLE.findall(page.read_text()):
            rows = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in table.splitlines()[2:]]
            for column, target in enumerate(spec.split(), start=1):
                yield pytest.param(page.name, target, [(r[0], r[column]) for r in rows], id=f"{page.stem}-{target}")


@pytest.mark.plugins
@pytest.mark.parametrize("page, target, rows", list(_keyword_tables()))
def test_backend_keyword_tables_match_the_renderers(page, target, rows, tmp_path):
    """Each row ``| `keyword=value` | `#DIRECTIVE ...`<br>... |`` of a backend page is what
    ``options_to_string`` gives on that backend (and dialect), computed here without a scheduler."""
    import json
    backend, _, dialect = target.partition(":")
    pytest.importorskip(f"cluster_{backend}", reason=f"the {backend} backend is not installed")
    samples = [cell.strip("`") for cell, _ in rows]
    env = dict(os.environ, CLUSTER_CORE_CONFIG=str(tmp_path / "config.ini"))
    if dialect:
        env["CLUSTER_TORQUE_DIALECT"] = dialect
    proc = subprocess.run([sys.executable, "-c", RENDER, backend, json.dumps(samples)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rendered = json.loads(proc.stdout)
    wrong = []
    for (cell, documented), sample in zip(rows, samples):
        got = rendered[sample]
        if documented.startswith("refused"):
            ok = got == "refused"
        elif documented.startswith("(nothing"):
            ok = [line for line in got if line not in ALWAYS.get(backend, ())] == []
        else:
            lines = [part.strip().strip("`") for part in documented.split("<br>")]
            ok = got != "refused" and [line for line in got if line not in ALWAYS.get(backend, ())] == lines
        if not ok:
            wrong.append(f"{sample}: page says {documented!r}, the code gives {got!r}")
    assert not wrong, f"{page} ({target}):\n" + "\n".join(wrong)


def test_readme_keeps_the_newcomer_commands():
    """The README's two set-up commands for a fresh machine, and .ci/run running the README's test command."""
    readme = (ROOT / "README.md").read_text()
    assert "bash ci/setup.sh && .venv/bin/python examples/first_jobs.py" in readme
    assert re.search(r"^bash ci/test\.sh\s", readme, re.MULTILINE)
    assert re.search(r"^bash ci/test\.sh\b", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)
    assert (ROOT / "examples" / "first_jobs.py").exists()
