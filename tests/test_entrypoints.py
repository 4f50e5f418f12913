"""The backends' entry points read without importlib.metadata: the same answer, on real installs."""

import subprocess
import sys
import zipfile
from importlib import metadata

import pytest

from cluster_core import entrypoints


def _as_tuples(eps):
    return sorted((e.name, e.value, e.group, e.dist.name, e.dist.version) for e in eps)


@pytest.mark.parametrize("group", ["cluster_core.backends", "console_scripts", "pytest11"])
def test_same_entry_points_as_importlib_metadata(group):
    """On this environment's real site-packages (editable installs and wheels alike)."""
    assert entrypoints._plain_path()
    ours = entrypoints.entry_points(group)
    assert _as_tuples(ours) == _as_tuples(metadata.entry_points(group=group))
    assert all(isinstance(e, entrypoints.EntryPoint) for e in ours)


def _dist(where, stem, name, version, text):
    dist = where / f"{stem}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody: x\n")
    (dist / "entry_points.txt").write_text(text)


def test_first_on_the_path_wins_and_only_the_group(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    _dist(first, "My_Sched", "my-sched", "2.0", "[cluster_core.backends]\nmine = mod_two:plugin [extra]\n"
                                               "# a comment\n[other]\nmine = not_this\n")
    _dist(second, "my.sched", "my-sched", "1.0", "[cluster_core.backends]\nmine = mod_one\n")
    _dist(second, "other", "other", "0.1", "[cluster_core.backends]\n  spaced  =  spaced_mod  \n")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    ours = [e for e in entrypoints.entry_points("cluster_core.backends") if e.name in ("mine", "spaced")]
    theirs = [e for e in metadata.entry_points(group="cluster_core.backends") if e.name in ("mine", "spaced")]
    assert _as_tuples(ours) == _as_tuples(theirs)
    assert _as_tuples(ours) == [("mine", "mod_two:plugin [extra]", "cluster_core.backends", "my-sched", "2.0"),
                                ("spaced", "spaced_mod", "cluster_core.backends", "other", "0.1")]


def test_load_imports_the_module_and_attribute(tmp_path, monkeypatch):
    (tmp_path / "ep_target_mod.py").write_text("class Outer:\n    class Inner:\n        pass\n")
    _dist(tmp_path, "t", "t", "1", "[g]\nwhole = ep_target_mod\npart = ep_target_mod:Outer.Inner [x]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = {e.name: e for e in entrypoints.entry_points("g")}
    assert found["whole"].load().__name__ == "ep_target_mod"
    assert found["part"].load().__qualname__ == "Outer.Inner"


def test_a_zip_on_the_path_is_left_to_importlib_metadata(tmp_path, monkeypatch):
    """Distributions inside a zip file are beyond a directory listing: importlib.metadata answers."""
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\nVersion: 1.0\n")
        zf.writestr("zipped-1.0.dist-info/entry_points.txt", "[cluster_core.backends]\nzipped = zipped_mod\n")
    monkeypatch.syspath_prepend(str(archive))
    assert not entrypoints._plain_path()
    names = {e.name: e.dist.name for e in entrypoints.entry_points("cluster_core.backends")}
    assert names["zipped"] == "zipped" and names["local"] == "cluster-local"


def test_an_egg_on_the_path_is_left_to_importlib_metadata(tmp_path, monkeypatch):
    egg = tmp_path / "old_style-1.0-py3.egg"
    (egg / "EGG-INFO").mkdir(parents=True)
    (egg / "EGG-INFO" / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: old-style\nVersion: 1.0\n")
    (egg / "EGG-INFO" / "entry_points.txt").write_text("[cluster_core.backends]\nold = old_mod\n")
    monkeypatch.syspath_prepend(str(egg))
    assert not entrypoints._plain_path()
    found = {e.name: e.dist.name for e in entrypoints.entry_points("cluster_core.backends")}
    assert found["old"] == "old-style"


def test_finding_backends_imports_no_importlib_metadata():
    code = ("import sys, cluster_core.plugins as p; p.get_backend('local'); "
            "print('importlib.metadata' in sys.modules, 'email' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
