"""cluster_core.commands on real processes: lookup order, timeouts, retries of transient failures."""

import os

import pytest

from cluster_core import SchedulerError, commands, config
from cluster_core.testing.shims import ShimDir


@pytest.fixture
def shims(tmp_path, cluster_config):
    with ShimDir(tmp_path / "shims") as s:
        yield s


def test_lookup_order(shims, tmp_path, monkeypatch):
    shims.fail("fakesched", stdout="from PATH", returncode=0)
    assert commands.which("fakesched") == str(shims.dir / "fakesched")
    assert commands.run(["fakesched"], backend="nobody").stdout == "from PATH\n"
    own = tmp_path / "own-bin"
    ShimDir(own).fail("fakesched", stdout="from the backend's dir", returncode=0)
    config.set_option("acme.bin_dir", str(own))
    assert commands.which("fakesched", backend="acme") == str(own / "fakesched")
    assert commands.which("fakesched") == str(shims.dir / "fakesched")  # other backends keep PATH
    monkeypatch.setenv("CLUSTER_ACME_BIN", str(shims.dir))
    assert commands.which("fakesched", backend="acme") == str(shims.dir / "fakesched")
    config.set_option("commands.fakesched", "/opt/x/fakesched")
    assert commands.which("fakesched", backend="acme") == "/opt/x/fakesched"
    monkeypatch.setenv("CLUSTER_FAKESCHED", "/env/fakesched")
    assert commands.which("fakesched") == "/env/fakesched"


def test_missing_command_says_how_to_set_it(shims):
    with pytest.raises(SchedulerError, match="commands.nosuchcmd .* acme.bin_dir"):
        commands.run(["nosuchcmd"], backend="acme")


def test_transient_failure_retried_then_raised(shims):
    shims.fail("flaky", stderr="error: Socket timed out on send/recv operation", returncode=1)
    with pytest.raises(SchedulerError) as err:
        commands.run(["flaky"], retries=2, backoff=0.01, transient=[r"Socket timed out"])
    assert err.value.transient and err.value.returncode == 1
    assert shims.calls()["flaky"] == 3
    shims.reset()
    res = commands.run(["flaky"], retries=1, backoff=0.01, transient=[r"Socket timed out"], check=False)
    assert res.returncode == 1 and shims.calls()["flaky"] == 2


def test_permanent_failure_not_retried(shims):
    shims.fail("strict", stderr="error: Invalid partition name specified", returncode=1)
    with pytest.raises(SchedulerError, match="Invalid partition"):
        commands.run(["strict"], retries=3, backoff=0.01, transient=[r"Socket timed out"])
    assert shims.calls()["strict"] == 1


def test_timeout_retried_only_when_allowed(shims):
    shims.fail("hung", delay=5, returncode=0)
    with pytest.raises(SchedulerError, match="did not answer within 0.3 s"):
        commands.run(["hung"], timeout=0.3, retries=1, backoff=0.01, retry_timeouts=False)
    assert shims.calls()["hung"] == 1
    shims.reset()
    with pytest.raises(SchedulerError):
        commands.run(["hung"], timeout=0.3, retries=1, backoff=0.01)
    assert shims.calls()["hung"] == 2


def test_arguments_are_never_shell_parsed(shims, tmp_path):
    echo = ShimDir(tmp_path / "e")
    (echo.dir / "args").write_text('#!/bin/sh\nfor a in "$@"; do printf "[%s]\\n" "$a"; done\n')
    os.chmod(echo.dir / "args", 0o755)
    out = commands.run([str(echo.dir / "args"), "a b", "$(touch pwned)", ";", "'q'"]).stdout
    assert out == "[a b]\n[$(touch pwned)]\n[;]\n['q']\n"
    assert not (tmp_path / "pwned").exists()
