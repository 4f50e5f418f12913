import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

from cluster_core import BackendError, BackendInfo, Detection, config, hookimpl, plugins, session
from toy_backend import ToyBackend


@pytest.fixture
def fresh_plugins():
    with session.fresh():
        yield


@pytest.mark.plugins
def test_installed_distributions_register_through_entry_points(fresh_plugins):
    names = {ep.name: ep.value for ep in metadata.entry_points(group=plugins.ENTRY_POINT_GROUP)}
    assert names["local"] == "cluster_local.plugin"
    assert names["slurm"] == "cluster_slurm.plugin"
    assert names["torque"] == "cluster_torque.plugin"
    assert {"local", "slurm", "torque"} <= set(plugins.backend_names())
    for name in ("local", "slurm", "torque"):
        info = plugins.backend(name).info
        assert info.name == name and info.description
    rows = {r.name: r for r in plugins.list_backends()}
    assert rows["slurm"].distribution.startswith("cluster-slurm ")  # the entry point's distribution, version


def _modules_after(code):
    code += ("; import sys; print(sorted(m.split('.')[0] for m in sys.modules if m.startswith(("
             "'cluster_local', 'cluster_slurm', 'cluster_torque', 'pluggy', 'attr', 'importlib.metadata'))))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_is_cheap_and_loads_no_backend():
    assert _modules_after("import cluster_core") == "[]"
    assert "cluster_" not in _modules_after("import cluster_core; cluster_core.Job; cluster_core.option_help()")


def test_third_party_backend_from_an_installed_dist_info(tmp_path, monkeypatch, fresh_plugins, cluster_config):
    """A backend published as a distribution with one entry point: the core finds it, no change needed."""
    _install(tmp_path, monkeypatch, "acme", ACME_HOOKS)
    assert "acme" in plugins.backend_names()
    assert plugins.get_cluster_environment() == "acme"  # highest priority among detected
    rows = {r.name: r for r in plugins.list_backends()}
    assert rows["acme"].available and rows["acme"].selected and rows["acme"].reason == "acme controller answered"
    assert rows["acme"].distribution == "acme-sched 1.0"
    assert plugins.backend("acme").info.name == "acme"  # backend_info leaves the name out: the entry point's
    with pytest.raises(BackendError, match="does not implement the 'max_array_size' hook"):  # optional hooks
        plugins.backend("acme")._call("max_array_size")


ACME_HOOKS = """
    from cluster_core import BackendInfo, Detection, hookimpl
    @hookimpl
    def backend_info():
        return BackendInfo(description="ACME scheduler", priority=500)
    @hookimpl
    def detect():
        return Detection(True, "acme controller answered")
    @hookimpl
    def render_options(options):
        return []
    @hookimpl
    def submit(script, options, directives_in_script):
        return "1"
    @hookimpl
    def parse_queue(job_ids, user, partition):
        return []
    @hookimpl
    def cancel(job_ids):
        return True
"""


def _install(tmp_path, monkeypatch, name, source):
    """Install a backend module ``<name>_sched`` as a distribution with one entry point, as pip would."""
    (tmp_path / f"{name}_sched.py").write_text(textwrap.dedent(source))
    dist = tmp_path / f"{name}_sched-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-sched\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[cluster_core.backends]\n{name} = {name}_sched\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_misspelled_hook_fails_to_load(tmp_path, monkeypatch, fresh_plugins, cluster_config):
    """A typo in a hook name would register and fail at the first poll: it is refused at load instead."""
    _install(tmp_path, monkeypatch, "typo", ACME_HOOKS.replace("def parse_queue(", "def parse_quee("))
    assert "typo" not in plugins.backend_names()
    rows = {r.name: r for r in plugins.list_backends()}
    assert not rows["typo"].available and rows["typo"].distribution == "typo-sched 1.0"
    assert rows["typo"].reason == ("failed to load: hook 'parse_quee' is not in the contract (did you mean "
                                   "'parse_queue'?); required hook parse_queue not implemented")
    with pytest.raises(BackendError, match="'typo' is installed but failed to load: hook 'parse_quee'"):
        plugins.get_backend("typo")
    assert "typo" not in [name for name, _ in plugins.plugin_manager().list_name_plugin()]


def test_missing_required_hooks_fail_to_load(tmp_path, monkeypatch, fresh_plugins, cluster_config):
    source = ACME_HOOKS.split("    @hookimpl\n    def render_options")[0]  # who-are-you hooks only
    _install(tmp_path, monkeypatch, "half", source)
    rows = {r.name: r for r in plugins.list_backends()}
    assert rows["half"].reason == ("failed to load: required hooks render_options, submit, parse_queue, cancel "
                                   "not implemented")
    assert not rows["half"].available and not rows["half"].selected
    monkeypatch.setenv("CLUSTER_BACKEND", "half")
    with pytest.raises(BackendError, match="required hooks render_options, submit, parse_queue, cancel"):
        plugins.get_backend()


def test_hook_argument_the_spec_lacks_fails_to_load(tmp_path, monkeypatch, fresh_plugins, cluster_config):
    """pluggy's own check (an argument the hook does not have), reported the same way; nothing of the
    plugin stays registered (pluggy keeps the hooks it took before the bad one)."""
    _install(tmp_path, monkeypatch, "argy", ACME_HOOKS.replace("def cancel(job_ids)", "def cancel(job_ids, force)"))
    rows = {r.name: r for r in plugins.list_backends()}
    assert rows["argy"].reason.startswith("failed to load: breaks the contract: Plugin 'argy' for hook 'cancel'")
    assert "{'force'}" in rows["argy"].reason
    assert not any(impl.plugin_name == "argy" for impl in plugins.plugin_manager().hook.detect.get_hookimpls())


class _Good:
    """The smallest backend that keeps the contract: the six required hooks."""

    @hookimpl
    def backend_info(self):
        return BackendInfo(description="good")

    @hookimpl
    def detect(self):
        return Detection(True, "always")

    @hookimpl
    def render_options(self, options):
        return []

    @hookimpl
    def submit(self, script, options, directives_in_script):
        return "7"

    @hookimpl
    def parse_queue(self, job_ids, user, partition):
        return []

    @hookimpl
    def cancel(self, job_ids):
        return True


class _Misspelled(_Good):
    @hookimpl
    def parse_quee(self, job_ids, user, partition):
        return []


class _Missing:
    backend_info = _Good.backend_info
    detect = _Good.detect


def test_register_checks_the_contract(fresh_plugins, cluster_config):
    """Objects registered by hand through the real manager: a good one is used, a misspelled or an
    incomplete one is refused with the reason, and leaves nothing registered."""
    plugins.register(_Good(), name="good")
    assert plugins.get_backend("good").submit("x.sh", {}) == "7"
    assert plugins.backend("good").info.name == "good"
    with pytest.raises(BackendError, match=r"'bad' cannot be registered: hook 'parse_quee' is not in the contract "
                                           r"\(did you mean 'parse_queue'\?\)"):
        plugins.register(_Misspelled(), name="bad")
    with pytest.raises(BackendError, match="'part' cannot be registered: required hooks render_options, submit, "
                                           "parse_queue, cancel not implemented"):
        plugins.register(_Missing(), name="part")
    assert "bad" not in plugins.backend_names() and "part" not in plugins.backend_names()
    plugins.register(_Good(), name="bad")  # the name is free again


def test_backend_info_name_must_be_the_entry_point_name(fresh_plugins, cluster_config):
    class Named(_Good):
        @hookimpl
        def backend_info(self):
            return BackendInfo(name="other", description="names itself")
    plugins.register(Named(), name="mine")
    with pytest.raises(BackendError, match="backend_info names it 'other'; leave the name out"):
        plugins.backend("mine").info
    rows = {r.name: r for r in plugins.list_backends()}
    assert not rows["mine"].available and "backend_info failed" in rows["mine"].reason


def test_cluster_backends_shows_a_misspelled_plugin(tmp_path, cluster_config):
    """`cluster backends` (and --json) in a real process: the plugin is listed as failed to load, never chosen."""
    (tmp_path / "typo_sched.py").write_text(textwrap.dedent(ACME_HOOKS.replace("def parse_queue(",
                                                                               "def parse_quee(")))
    dist = tmp_path / "typo_sched-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: typo-sched\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[cluster_core.backends]\ntypo = typo_sched\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
               CLUSTER_CORE_CONFIG=str(cluster_config), NO_COLOR="1")
    env.pop("CLUSTER_BACKEND", None)
    run = [sys.executable, "-m", "cluster_core", "backends"]
    rows = {r["name"]: r for r in json.loads(subprocess.run(run + ["--json"], env=env, capture_output=True,
                                                            text=True, check=True).stdout)}
    assert rows["typo"]["available"] is False and rows["typo"]["selected"] is False
    assert rows["typo"]["reason"].startswith("failed to load: hook 'parse_quee' is not in the contract")
    assert rows["typo"]["distribution"] == "typo-sched 1.0"
    table = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in table.splitlines() if x.split()[:1] == ["typo"])
    assert "no" in line.split() and "failed to load: hook 'parse_quee'" in line


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


def test_a_backend_made_before_others_were_registered_still_reaches_only_its_own(fresh_plugins, cluster_config):
    a = ToyBackend("a")
    plugins.register(a, name="a")
    first = plugins.backend("a")
    b = ToyBackend("b")
    plugins.register(b, name="b")  # after "a"'s Backend was made
    first.parse_queue(["1"])
    assert a.calls == ["parse_queue"] and b.calls == []
    plugins.unregister("b")
    c = ToyBackend("c")
    plugins.register(c, name="c")  # as many plugins as before, one of them new
    first.cancel(["1"])
    assert a.calls == ["parse_queue", "cancel"] and c.calls == []


@pytest.mark.plugins
def test_naming_a_backend_loads_that_plugin_alone(fresh_plugins):
    """A submission to a named backend imports its plugin only; a listing or auto-detection loads them all."""
    named = _modules_after("import cluster_core as cc; cc.get_backend('local').info")
    assert "cluster_local" in named and "cluster_slurm" not in named and "cluster_torque" not in named
    listed = _modules_after("import cluster_core as cc; cc.get_backend('local').info; cc.list_backends()")
    assert "cluster_slurm" in listed and "cluster_torque" in listed
    assert {"local", "slurm", "torque"} <= set(plugins.backend_names())
    with pytest.raises(BackendError, match="'nosuch' is not installed; installed: local"):
        plugins.get_backend("nosuch")


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


def _only_a_local_toy():
    """Nothing installed but a backend named local (a toy standing in for cluster-local, not needed here)."""
    for name in plugins.backend_names():
        plugins.unregister(name)
    plugins.register(ToyBackend("local", priority=0), name="local")


def test_local_is_the_fallback(fresh_plugins, cluster_config, monkeypatch):
    _only_a_local_toy()
    plugins.register(ToyBackend("off", available=False), name="off")
    assert plugins.get_cluster_environment(refresh=True) == "local"


def test_falling_back_to_local_while_a_scheduler_is_installed_is_loud(fresh_plugins, cluster_config,
                                                                      monkeypatch, caplog):
    """A scheduler plugin installed but not usable (its module not loaded): the job would run on the
    login node, so a warning names the scheduler and why, and `cluster backends` says so too."""
    monkeypatch.delenv("CLUSTER_BACKEND", raising=False)
    _only_a_local_toy()
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
        @hookimpl
        def detect(self):  # a buggy plugin: the contract says never raise
            raise RuntimeError("boom")
    plugins.register(Raising("r"), name="r")
    det = plugins.backend("r").detect()
    assert det == Detection(False, "detect raised RuntimeError: boom")
