"""The distributions as a user installs them from PyPI: complete wheels and sdists, working extras, and a
pytest plugin that loads only where asked for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = {"cluster-core": ROOT, **{f"cluster-{p.name.split('_', 1)[1]}": p
                                     for p in sorted((ROOT / "plugins").glob("cluster_*"))
                                     if (p / "pyproject.toml").exists()}}


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    res = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert res.returncode == 0, f"{args}: rc {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def _project(tmp_path: Path) -> Path:
    """A user's own pytest project, outside this repository, with nothing configured."""
    proj = tmp_path / "someone-elses-project"
    proj.mkdir()
    (proj / "pytest.ini").write_text("[pytest]\n")
    (proj / "test_it.py").write_text("def test_it():\n    assert True\n")
    return proj


def test_installing_cluster_core_changes_no_other_pytest_run(tmp_path):
    """The kit's fixtures are opt-in: absent from a plain pytest run, present with -p cluster_core.testing."""
    proj = _project(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    plain = _run([sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider"], cwd=proj, env=env)
    assert "cluster_config" not in plain.stdout
    assert "cluster_core.testing" not in plain.stdout and "cluster_core-" not in plain.stdout
    opted = _run([sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider",
                  "-p", "cluster_core.testing"], cwd=proj, env=env)
    assert "cluster_config" in opted.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> Path:
    """The wheel and sdist of every distribution, built as a release would build them (isolated)."""
    out = tmp_path_factory.mktemp("dist")
    for name, path in PROJECTS.items():
        _run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, path], timeout=600)
    return out


def _metadata(text: str):
    return Parser().parsestr(text)


@pytest.mark.slow
def test_every_wheel_and_sdist_is_complete(dists):
    wheels = sorted(dists.glob("*.whl"))
    sdists = sorted(dists.glob("*.tar.gz"))
    assert len(wheels) == len(PROJECTS) == len(sdists), (wheels, sdists)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
            meta = _metadata(zf.read(meta_name).decode())
        dist = meta["Name"]
        assert any(n.endswith("licenses/LICENSE") for n in names), f"{wheel.name}: no LICENSE"
        assert any(n.endswith("/py.typed") for n in names), f"{wheel.name}: no py.typed"
        assert meta["License-Expression"] == "MIT"
        assert meta["Description-Content-Type"] == "text/markdown" and len(meta.get_payload()) > 200, \
            f"{wheel.name}: no README as its description"
        classifiers = meta.get_all("Classifier") or []
        assert "Typing :: Typed" in classifiers and any(c.startswith("Topic ::") for c in classifiers)
        requires = meta.get_all("Requires-Dist") or []
        if dist == "cluster-core":
            ours = [r for r in requires if r.startswith("cluster-")]
            assert ours and all("~=0.1.0" in r for r in ours), ours  # the same release's plugins only
            assert not any("pytest11" in n for n in names)
            entry = next(n for n in names if n.endswith("entry_points.txt"))
            with zipfile.ZipFile(wheel) as zf:
                assert "pytest11" not in zf.read(entry).decode()
        else:
            assert "cluster-core~=0.1.0" in requires, requires
    for sdist in sdists:
        with tarfile.open(sdist) as tf:
            members = [m.name.split("/", 1)[-1] for m in tf.getmembers()]
        for needed in ("LICENSE", "README.md", "pyproject.toml", "PKG-INFO"):
            assert needed in members, f"{sdist.name}: no {needed}"


def _venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin"


@pytest.mark.slow
@pytest.mark.parametrize("extra,backends", [("slurm", {"slurm"}),
                                            ("all", {"local", "slurm", "torque", "sge"})])
def test_extras_install_from_the_wheels(dists, tmp_path, extra, backends):
    """`pip install cluster-core[EXTRA]` from the built wheels into an empty venv: the backends it brings
    are listed, and with the local backend a real job runs."""
    bin_dir = _venv(tmp_path / "venv")
    _run([bin_dir / "python", "-m", "pip", "install", "-q", "--find-links", dists, f"cluster-core[{extra}]"],
         timeout=600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTER_")}
    env.update(HOME=str(tmp_path / "home"), CLUSTER_CORE_CONFIG=str(tmp_path / "config.ini"),
               CLUSTER_CORE_REGISTRY=str(tmp_path / "records"), CLUSTER_LOCAL_DIR=str(tmp_path / "local"),
               CLUSTER_LOCAL_IDLE="1", XDG_RUNTIME_DIR=str(tmp_path / "run"))
    listed = json.loads(_run([bin_dir / "cluster", "backends", "--json"], env=env, cwd=tmp_path).stdout)
    names = {b["name"] for b in listed}
    assert names == backends, listed
    if "local" in backends:
        job = _run([bin_dir / "cluster", "submit", "--backend", "local", "--json", "--", "echo", "from-a-wheel"],
                   env=env, cwd=tmp_path, timeout=120)
        job_id = json.loads(job.stdout)["id"]
        out = _run([bin_dir / "cluster", "get", job_id], env=env, cwd=tmp_path, timeout=60)
        assert out.stdout.strip() == "from-a-wheel"
