"""Fixtures for the torque backend's tests: a fixed time zone, isolation, scheduler command shims."""

from __future__ import annotations

import os
import time

import pytest

from torque_testlib import Shim


@pytest.fixture
def utc():
    """ctime-style PBS times are the server's local time; the captures were made on a UTC machine."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No real config, dialect or scheduler command leaks into a test."""
    monkeypatch.setenv("CLUSTER_CORE_CONFIG", str(tmp_path / "config.ini"))
    for name in ("CLUSTER_TORQUE_DIALECT", "CLUSTER_TORQUE_BIN", "CLUSTER_QSTAT", "CLUSTER_QSUB", "CLUSTER_QDEL",
                 "CLUSTER_TORQUE_ALLOW_ROOT", "CLUSTER_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    from cluster_torque import client, dialect
    dialect.reset()
    monkeypatch.setattr(client, "BACKOFF", 0.0)
    monkeypatch.setattr(client, "_JSON_FIRST_OPERAND_ONLY", set())
    yield
    dialect.reset()


@pytest.fixture
def shims(tmp_path, monkeypatch):
    """Fake qstat, qsub, qdel and qrls, found through $CLUSTER_<NAME> as the core's ``which`` allows."""
    made = {}
    for name in ("qstat", "qsub", "qdel", "qrls"):
        shim = Shim(tmp_path, name)
        monkeypatch.setenv(f"CLUSTER_{name.upper()}", str(shim.path))
        made[name] = shim
    return made


@pytest.fixture
def bin_dir_shims(tmp_path, monkeypatch):
    """Fake qstat, qsub and qdel in a directory named by $CLUSTER_TORQUE_BIN, behind a PATH whose own
    qstat, qsub and qdel are Grid Engine's (as on a machine with both): the backend must use the former."""
    bindir, foreign = tmp_path / "torque-bin", tmp_path / "path-bin"
    bindir.mkdir()
    foreign.mkdir()
    for name in ("qstat", "qsub", "qdel"):
        path = foreign / name
        path.write_text("#!/bin/sh\necho 'SGE 8.1.9'; echo \"usage: $0 [options]\"; exit 1\n")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{foreign}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("CLUSTER_TORQUE_BIN", str(bindir))
    return {name: Shim(bindir, name) for name in ("qstat", "qsub", "qdel")}


@pytest.fixture
def not_root(monkeypatch):
    from cluster_torque import client
    monkeypatch.setattr(client, "root_refusal", lambda: None)
