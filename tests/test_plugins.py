import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

from cluster_core import BackendError, Detection, config, plugins
from toy_backend import ToyBackend


@pytest.fixture
def fresh_plugins():
    plugins.reset()
    yield
    plugins.reset()


def test_installed_distributions_register_through_entry_points(fresh_plugins):
    names = {ep.name: ep.value for ep in metadata.entry_points(group=plugins.ENTRY_POINT_GROUP)}
    assert names["local"] == "cluster_local.plugin"
    assert names["slurm"] == "cluster_slurm.plugin"
    assert names["torque"] == "cluster_torque.plugin"
    assert {"local", "slurm", "torque"} <= set(plugins.backend_names())
    for name in ("local", "slurm", "torque"):
        info = plugins.backend(name).info
        assert info.name == name and info.description


def _modules_after(code):
    code += ("; import sys; print(sorted(m.split('.')[0] for m in sys.modules if m.startswith(("
             "'cluster_local', 'cluster_slurm', 'cluster_torque', 'pluggy', 'attr', 'importlib.metadata'))))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_is_cheap_and_loads_no_backend():
    assert _modules_after("import cluster_core") == "[]"
    assert "cluster_" not in _modules_after("import cluster_core; cluster_core.Job; cluster_core.option_help()")


def test_third_party_backend_from_an_installed_dist_info(tmp_path, monkeypatch, fresh_plugins, cluster_config):
    """A backend published as a distribution with one entry point: the core finds it, no change needed."""
    (tmp_path / "acme_sched.py").write_text(textwrap.dedent("""
        from cluster_core import BackendInfo, Detection, hookimpl
        @hookimpl
        def backend_info():
            return BackendInfo(name="acme", description="ACME scheduler", priority=500)
        @hookimpl
        def detect():
            return Detection(True, "acme controller answered")
    """))
    dist = tmp_path / "acme_sched-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-sched\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[cluster_core.backends]\nacme = acme_sched\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "acme" in plugins.backend_names()
    assert plugins.get_cluster_environment() == "acme"  # highest priority among detected
    rows = {r.name: r for r in plugins.list_backends()}
    assert rows["acme"].available and rows["acme"].selected and rows["acme"].reason == "acme controller answered"
    with pytest.raises(BackendError, match="does not implement the 'submit' hook"):
        plugins.backend("acme").submit("x.sh", {})


def test_broken_plugin_is_reported_not_fatal(tmp_path, monkeypatch, fresh_plugins, cluster_config):
    dist = tmp_path / "broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[cluster_core.backends]\nbroken = no_such_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "broken" not in plugins.backend_names()
    rows = {r.name: r for r in plugins.list_backends()}
    assert not rows["broken"].available and "No module named" in rows["broken"].reason
    with pytest.raises(BackendError, match="failed to load"):
        plugins.get_backend("broken")


def test_dispatch_reaches_only_the_chosen_backend(fresh_plugins, cluster_config):
    a, b = ToyBackend("a"), ToyBackend("b")
    plugins.register(a, name="a")
    plugins.register(b, name="b")
    plugins.backend("a").parse_queue(["1"])
    plugins.backend("a").cancel(["1"])
    assert a.calls == ["parse_queue", "cancel"] and b.calls == []
    assert plugins.backend("b").info.name == "b"
    with pytest.raises(BackendError, match="already registered"):
        plugins.register(ToyBackend("a"), name="a")


def test_choice_order_explicit_env_config_detection(fresh_plugins, cluster_config, monkeypatch):
    plugins.register(ToyBackend("low", priority=1), name="low")
    plugins.register(ToyBackend("high", priority=1000), name="high")
    plugins.register(ToyBackend("off", priority=5000, available=False), name="off")
    assert plugins.choose_backend_name() == "high"
    config.set_option("core.backend", "low")
    assert plugins.choose_backend_name() == "low"
    monkeypatch.setenv("CLUSTER_BACKEND", "off")
    assert plugins.choose_backend_name() == "off"
    assert plugins.choose_backend_name("high") == "high"
    rows = {r.name: r for r in plugins.list_backends()}
    assert rows["off"].reason == "toy is switched off" and not rows["off"].available
    with pytest.raises(BackendError, match="'nope' is not installed"):
        plugins.get_backend("nope")


def test_local_is_the_fallback(fresh_plugins, cluster_config, monkeypatch):
    for name in plugins.backend_names():
        if name != "local":
            plugins.unregister(name)
    plugins.register(ToyBackend("off", available=False), name="off")
    assert plugins.get_cluster_environment(refresh=True) == "local"


def test_falling_back_to_local_while_a_scheduler_is_installed_is_loud(fresh_plugins, cluster_config,
                                                                      monkeypatch, caplog):
    """A scheduler plugin installed but not usable (its module not loaded): the job would run on the
    login node, so a warning names the scheduler and why, and `cluster backends` says so too."""
    monkeypatch.delenv("CLUSTER_BACKEND", raising=False)
    for name in plugins.backend_names():
        if name != "local":
            plugins.unregister(name)
    plugins.register(ToyBackend("sched", available=False), name="sched")
    with caplog.at_level("WARNING", logger="cluster_core"):
        assert plugins.get_cluster_environment(refresh=True) == "local"
    assert "jobs run on this machine" in caplog.text and "sched: toy is switched off" in caplog.text
    rows = {r.name: r for r in plugins.list_backends()}
    assert rows["local"].selected and "no installed scheduler is usable" in rows["local"].reason
    caplog.clear()
    plugins.unregister("sched")  # nothing else installed: local is simply the backend, no warning
    with caplog.at_level("WARNING", logger="cluster_core"):
        assert plugins.get_cluster_environment(refresh=True) == "local"
    assert not caplog.text


def test_detect_that_raises_is_contained(fresh_plugins, cluster_config):
    class Raising(ToyBackend):
        @plugins.hookspecs.hookimpl
        def detect(self):  # a buggy plugin: the contract says never raise
            raise RuntimeError("boom")
    plugins.register(Raising("r"), name="r")
    det = plugins.backend("r").detect()
    assert det == Detection(False, "detect raised RuntimeError: boom")
