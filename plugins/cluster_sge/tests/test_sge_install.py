"""Entry-point discovery from an install, not the source tree: build the core's and this plugin's wheels,
install both (and their dependencies from the package index) into a fresh virtual environment, and ask
that environment's ``cluster backends --json`` which backends it has."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cluster_sge import calls

PLUGIN = Path(__file__).resolve().parents[1]
CORE = PLUGIN.parents[1]


def _copy_source(project: Path, package: str, dest: Path) -> Path:
    """What a source distribution holds: pyproject.toml, README, LICENSE and the package, nothing built."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (project / name).exists():
            shutil.copy2(project / name, dest / name)
    shutil.copytree(project / package, dest / package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return dest


def _pip(python: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "pip", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _need(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode == 0:
        return
    message = f"{what} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
    network = any(s in proc.stdout + proc.stderr for s in ("Could not find a version", "NewConnectionError",
                                                           "Temporary failure in name resolution"))
    if network and os.environ.get("CI", "").lower() != "true":
        pytest.skip(f"no package index reachable: {message.splitlines()[0]}")
    pytest.fail(message, pytrace=False)


@pytest.mark.slow
def test_wheels_in_a_fresh_venv_list_and_detect_sge(tmp_path):
    dist = tmp_path / "dist"
    for project, package in ((CORE, "cluster_core"), (PLUGIN, "cluster_sge")):
        source = _copy_source(project, package, tmp_path / "src" / package)  # setuptools writes build/
        _need(_pip(sys.executable, "wheel", "--no-deps", "-q", "-w", str(dist), str(source), cwd=tmp_path),
              f"pip wheel {project.name}")
    wheels = sorted(dist.glob("*.whl"))
    assert [w.name.split("-")[0] for w in wheels] == ["cluster_core", "cluster_sge"]
    with zipfile.ZipFile(wheels[1]) as whl:
        entry_points = next(n for n in whl.namelist() if n.endswith("entry_points.txt"))
        text = whl.read(entry_points).decode()
        assert "[cluster_core.backends]" in text and "sge = cluster_sge.plugin" in text
        assert "cluster_sge/plugin.py" in whl.namelist()
        assert not [n for n in whl.namelist() if "/tests/" in n or n.startswith("tests/")]

    venv = tmp_path / "venv"
    proc = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"python -m venv does not work here (python3-venv missing?): {proc.stderr.strip()[:200]}")
    python = str(venv / "bin" / "python")
    _need(_pip(python, "install", "-q", *map(str, wheels), cwd=tmp_path), "pip install of the two wheels")

    # run from an empty directory with a clean environment: nothing can come from the source tree
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CLUSTER_"))}
    env["CLUSTER_CORE_CONFIG"] = str(tmp_path / "config.ini")
    where = subprocess.run([python, "-c", "import cluster_core, cluster_sge; print(cluster_core.__file__); "
                                          "print(cluster_sge.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, check=True).stdout.split()
    assert all(path.startswith(str(venv)) for path in where), where
    proc = subprocess.run([str(venv / "bin" / "cluster"), "backends", "--json"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert set(rows) == {"sge"}, rows  # only what this venv installed
    det = calls.detect()
    up, reason = det.available, det.reason
    assert rows["sge"]["available"] is up, (rows["sge"], reason)
    if up:
        assert rows["sge"]["reason"].startswith("SGE 8.1.9")
        assert rows["sge"]["selected"] is True  # the only backend that detects itself here
