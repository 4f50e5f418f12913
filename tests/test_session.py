"""Per-process state lives in one Session: a fresh one forgets plugins, trackers, warnings and caches,
and the old reset functions act on the current one."""

import logging

import pytest

from cluster_core import config, options, plugins, queue, registry, rendering, session
from toy_backend import ToyBackend


def test_a_fresh_session_starts_empty_and_the_old_one_comes_back(cluster_config):
    outer = session.current()
    plugins.register(ToyBackend("kept"), name="kept")
    try:
        kept_tracker = queue.tracker("kept")
        with session.fresh() as inner:
            assert session.current() is inner and inner is not outer
            assert "kept" not in plugins.backend_names()  # entry points scanned afresh, no hand registration
            assert inner.trackers == {}
            plugins.register(ToyBackend("kept"), name="kept")  # the name is free in this session
            assert queue.tracker("kept") is not kept_tracker
        assert session.current() is outer
        assert queue.tracker("kept") is kept_tracker and plugins.backend("kept").name == "kept"
    finally:
        plugins.unregister("kept")
        queue.reset_trackers("kept")


def test_the_reset_functions_act_on_the_current_session(fresh_session, cluster_config):
    plugins.register(ToyBackend("toy"), name="toy")
    track = queue.tracker("toy")
    assert fresh_session.trackers == {"toy": track}
    queue.reset_trackers("toy")
    assert fresh_session.trackers == {}
    plugins.backend("toy")
    plugins.reset()
    assert fresh_session.plugin_manager is None and fresh_session.backends == {}
    assert "toy" not in plugins.backend_names()


def test_warned_once_is_per_session(fresh_session, cluster_config, caplog):
    """A keyword a backend cannot honour is warned about once per session; ``options._warned`` (which
    tests clear) is the current session's set."""
    assert options._warned is fresh_session.warned is rendering._warned
    with caplog.at_level(logging.WARNING, logger="cluster_core"):
        rendering.render_with({}, {"qos": "high"}, "toy")
        rendering.render_with({}, {"qos": "high"}, "toy")
    assert caplog.text.count("qos='high': backend toy cannot honour it") == 1
    caplog.clear()
    with session.fresh(), caplog.at_level(logging.WARNING, logger="cluster_core"):
        rendering.render_with({}, {"qos": "high"}, "toy")
    assert "cannot honour it" in caplog.text


def test_made_dirs_and_the_config_cache_are_the_sessions(fresh_session, cluster_config, tmp_path):
    registry._ensure_dir(tmp_path / "records")
    assert registry._made_dirs is fresh_session.made_dirs and str(tmp_path / "records") in fresh_session.made_dirs
    config.set_option("core.jobdir", str(tmp_path))
    assert config.get_option("core.jobdir") == str(tmp_path)
    assert fresh_session.config_cache["key"][0] == str(cluster_config)
    with session.fresh() as other:
        assert other.config_cache == {} and other.made_dirs == set()
        assert config.get_option("core.jobdir") == str(tmp_path)  # read again from the file


def test_new_session_replaces_the_current_one():
    old = session.current()
    try:
        made = session.new_session()
        assert session.current() is made and made is not old
    finally:
        session.use(old)
    with pytest.raises(AttributeError):
        registry.no_such_name  # noqa: B018  the module __getattr__ answers for _made_dirs only
