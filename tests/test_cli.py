"""The `cluster` command, run as a real subprocess against the local backend (its own state dir)."""

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture
def env(tmp_path, cluster_config):
    e = dict(os.environ, CLUSTER_LOCAL_DIR=str(tmp_path / "state"), CLUSTER_LOCAL_THREADS="2",
             CLUSTER_BACKEND="local", CLUSTER_CORE_CONFIG=str(cluster_config), NO_COLOR="1")
    yield e
    import cluster_local
    cluster_local.shutdown_runner(tmp_path / "state")


def cluster(env, *args, ok=True, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "cluster_core", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=cwd)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_submit_in_one_process_wait_and_queue_in_others(env, tmp_path):
    job_id = cluster(env, "submit", "--cores", "1", "--name", "greet", "--", "echo", "hi there",
                     cwd=tmp_path).stdout.strip()
    assert job_id.isdigit()
    waited = json.loads(cluster(env, "wait", job_id, "--json").stdout)
    assert waited == [{"id": job_id, "state": "completed", "exitcode": 0}]
    rows = json.loads(cluster(env, "queue", "--json").stdout)
    mine = [r for r in rows if r["id"] == job_id]
    assert mine and mine[0]["state"] == "completed" and mine[0]["name"] == "greet"
    table = cluster(env, "queue").stdout
    assert table.splitlines()[0].split()[:3] == ["ID", "NAME", "USER"] and "greet" in table
    out = list((tmp_path / "cluster_jobs").glob("greet.*.cluster.out"))
    assert out and out[0].read_text() == "hi there\n"


def test_submit_wait_prints_output_and_returns_exit_code(env, tmp_path):
    proc = cluster(env, "submit", "--wait", "echo out; echo err >&2; exit 4", ok=False, cwd=tmp_path)
    assert proc.returncode == 4
    assert proc.stdout == "out\n" and proc.stderr.endswith("err\n")
    info = json.loads(cluster(env, "submit", "--wait", "--json", "-k", "walltime=5m", "--", "printf", "%s",
                              "a b; $(x)", cwd=tmp_path).stdout)
    assert info["state"] == "completed" and info["exitcode"] == 0 and info["stdout"] == "a b; $(x)"
    assert info["backend"] == "local"


def test_cancel_from_another_process(env, tmp_path):
    job_id = cluster(env, "submit", "sleep 300", cwd=tmp_path).stdout.strip()
    cluster(env, "cancel", job_id)
    waited = json.loads(cluster(env, "wait", job_id, "--json", ok=False).stdout)
    assert waited[0]["state"] == "cancelled"


def test_bad_keyword_is_a_clear_error(env, tmp_path):
    proc = cluster(env, "submit", "-k", "coers=2", "true", ok=False, cwd=tmp_path)
    assert proc.returncode == 2  # a usage error
    assert proc.stderr.startswith("cluster: error: unknown job keyword 'coers'; did you mean 'cores'")
    proc = cluster(env, "submit", "--mem", "lots", "true", ok=False, cwd=tmp_path)
    assert "mem='lots'" in proc.stderr and "Traceback" not in proc.stderr


def test_keywords_profiles_config_backends(env, tmp_path):
    assert "walltime" in cluster(env, "keywords").stdout
    names = {r["name"] for r in json.loads(cluster(env, "keywords", "--json").stdout)}
    assert {"cores", "mem", "time", "depends", "array"} <= names
    cluster(env, "profile", "set", "big", "cores=2", "mem=1G")
    assert json.loads(cluster(env, "profile", "show", "big", "--json").stdout) == {"cores": 2, "mem": 1024}
    assert "big: cores=2 mem=1G" in cluster(env, "profile", "list").stdout
    assert "did you mean" in cluster(env, "profile", "set", "bad", "coers=1", ok=False).stderr
    cluster(env, "profile", "delete", "big")
    assert cluster(env, "profile", "show", "big", ok=False).returncode == 1
    cluster(env, "config", "set", "core.jobdir", str(tmp_path / "jd"))
    assert cluster(env, "config", "get", "core.jobdir").stdout.strip() == str(tmp_path / "jd")
    assert cluster(env, "config", "get", "core.nothing", ok=False).returncode == 1
    rows = json.loads(cluster(env, "backends", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["local"]["available"] and by_name["local"]["selected"]
    assert {"slurm", "torque"} <= set(by_name)


def test_corrupt_config_is_reported_not_a_traceback(env, cluster_config):
    cluster_config.write_text("[core]\nbackend = local\nnot a setting\n")
    proc = cluster(env, "config", "get", "core.backend", ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{cluster_config}, line 3" in proc.stderr


def test_clean_removes_only_job_files(env, tmp_path):
    cluster(env, "submit", "--wait", "true", cwd=tmp_path)
    mine = tmp_path / "cluster_jobs" / "notes.txt"
    mine.write_text("keep")
    proc = cluster(env, "clean", "--yes", str(tmp_path / "cluster_jobs"))
    assert "removed 4 job files" in proc.stderr
    assert [p.name for p in (tmp_path / "cluster_jobs").iterdir()] == ["notes.txt"]


def test_help_and_version(env):
    assert "submit" in cluster(env, "--help").stdout
    assert '"0-9%2"' in cluster(env, "submit", "--help").stdout
    assert cluster(env, "--version").stdout.startswith("cluster-core ")


def test_status_json_of_a_task_by_its_own_id(env, tmp_path):
    """A task's own id (a local task, Slurm's 12_3) is a job of its own to `status --json`, with its script
    (it raised AttributeError: a Task has no scriptfile)."""
    array_id = cluster(env, "submit", "--array", "0-1", "--", "echo t$CLUSTER_TASK_ID", cwd=tmp_path).stdout.strip()
    cluster(env, "wait", array_id)
    tasks = json.loads(cluster(env, "status", "--json", array_id).stdout)[0]["tasks"]
    for task in tasks:
        shown = json.loads(cluster(env, "status", "--json", task["id"]).stdout)
        assert len(shown) == 1 and shown[0]["state"] == "completed", shown
        assert shown[0]["script"] == task["script"] and shown[0]["script"].endswith(f".{task['index']}.sh")
