"""Issue 14: what a Slurm user's fingers and a careful user's inputs expect of the `cluster` command and the
library, run for real (the `cluster` subprocess on the local backend, and on the real Slurm where marked)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

import pytest

import cluster_core as cc
from cluster_core import OptionError

from test_cli import cluster, env  # noqa: F401 - the fixture and the runner of `cluster`


def test_sbatch_short_flags_and_names(env, tmp_path):  # noqa: F811
    """-c -t -J -o -e and sbatch's long names (--cpus-per-task, --job-name) mean what they mean to sbatch."""
    info = json.loads(cluster(env, "submit", "--json", "-c", "1", "-t", "5", "-J", "short-flags", "-o",
                              str(tmp_path / "o.txt"), "-e", str(tmp_path / "e.txt"), "--", "echo", "hi",
                              cwd=tmp_path).stdout)
    assert info["name"] == "short-flags" and info["outfile"] == str(tmp_path / "o.txt")
    cluster(env, "wait", info["id"])
    assert (tmp_path / "o.txt").read_text() == "hi\n"
    named = json.loads(cluster(env, "submit", "--json", "--cpus-per-task", "1", "--job-name", "long-names",
                               "--", "true", cwd=tmp_path).stdout)
    assert named["name"] == "long-names"


def test_profile_is_capital_p_and_p_is_the_partition(env, tmp_path):  # noqa: F811
    cluster(env, "profile", "set", "small", "cores=1", "name=from-profile")
    info = json.loads(cluster(env, "submit", "--json", "-P", "small", "--", "true", cwd=tmp_path).stdout)
    assert info["name"] == "from-profile"
    proc = cluster(env, "-v", "submit", "-p", "debug", "--", "true", cwd=tmp_path)
    assert "partition='debug': backend local cannot honour it" in proc.stderr


def test_unknown_long_flag_gets_the_closest(env, tmp_path):  # noqa: F811
    proc = cluster(env, "submit", "--corse", "2", "--", "true", ok=False, cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean --cores" in proc.stderr


def test_a_value_that_starts_with_dashes(env, tmp_path):  # noqa: F811
    """--extra "--signal=B:USR1@60" is a value, not the next option (argparse alone refuses it)."""
    proc = cluster(env, "-v", "submit", "--extra", "--signal=B:USR1@60", "-J", "dashes", "--", "true", cwd=tmp_path)
    assert "extra=('--signal=B:USR1@60',)" in proc.stderr  # reached the backend, which says it ignores it


def test_repeated_depends_accumulate(env, tmp_path):  # noqa: F811
    first = cluster(env, "submit", "--", "echo", "1", cwd=tmp_path).stdout.strip()
    second = cluster(env, "submit", "--", "echo", "2", cwd=tmp_path).stdout.strip()
    info = json.loads(cluster(env, "submit", "--json", "-d", first, "-d", second, "--", "true", cwd=tmp_path).stdout)
    from cluster_core import registry
    assert set(registry.load("local", info["id"]).depends) == {first, second}


def test_closed_pipe_is_quiet(env):  # noqa: F811
    proc = subprocess.run(f"{sys.executable} -m cluster_core keywords --json | head -1", shell=True, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout == "[\n" and proc.stderr == ""


def test_config_checked_where_given(env):  # noqa: F811
    assert "did you mean core.backend" in cluster(env, "config", "set", "core.bakend", "local", ok=False).stderr
    assert "did you mean 'local'" in cluster(env, "config", "set", "core.backend", "lcoal", ok=False).stderr
    assert "expected one of debug" in cluster(env, "config", "set", "core.log_level", "loud", ok=False).stderr
    cluster(env, "config", "set", "core.backend", "local")
    assert cluster(env, "config", "get", "core.backend").stdout == "local\n"
    cluster(env, "config", "unset", "core.backend")
    assert cluster(env, "config", "get", "core.backend", ok=False).returncode == 1
    assert cluster(env, "config", "unset", ok=False).returncode == 2
    assert "did you mean local.threads" in cluster(env, "config", "set", "local.threds", "2", ok=False).stderr
    assert "did you mean 'local'" in cluster(env, "config", "set", "lcoal.threads", "2", ok=False).stderr
    for fine in (("local.threads", "2"), ("slurm.bin_dir", "/opt/slurm/bin"), ("commands.sbatch", "/x/sbatch")):
        cluster(env, "config", "set", *fine)


# --- the library ------------------------------------------------------------------------------------

def uses(value):
    return value


def test_unpicklable_argument_is_named_before_submission(local):
    with pytest.raises(OptionError, match=r"job uses: keyword argument 'value'.*lock.*cannot be pickled"):
        cc.submit(uses, kwargs={"value": threading.Lock()})
    with pytest.raises(OptionError, match=r"element 1, argument 0"):
        cc.map(uses, [1, threading.Lock()])
    assert cc.jobs() == []  # nothing was submitted


def test_missing_workdir_refused_at_submit_with_a_way_out(local, tmp_path):
    with pytest.raises(OptionError, match="workdir=.*no such directory.*core.check_workdir"):
        cc.submit("true", workdir=str(tmp_path / "nowhere"))
    cc.set_option("core.check_workdir", "false")
    job = cc.Job("true", workdir=str(tmp_path / "nowhere"))
    job.write()  # allowed by the core; the local backend itself still refuses a directory it cannot enter
    with pytest.raises(cc.SubmitError, match="no such directory"):
        job.submit()


def test_an_option_the_backend_cannot_honour_is_named(local, caplog):
    cc.options._warned.clear()  # once per process and keyword: earlier tests may have been warned
    with caplog.at_level(logging.WARNING, logger="cluster_core"):
        assert cc.submit("true", gpus=1, extra="--tmp=1G").wait() is True
    text = caplog.text
    assert "gpus=1: backend local cannot honour it" in text and "extra=" in text
    cc.set_option("core.strict", "true")
    with pytest.raises(OptionError, match="gpus=2: backend local cannot honour it.*core.strict"):
        cc.submit("true", gpus=2)


@pytest.mark.slurm
def test_cluster_submit_script_keeps_its_directives_on_slurm(tmp_path, cluster_config, monkeypatch):
    """`cluster submit ./job.sh` submits the script as it is: its #SBATCH lines stand (sacct: 2 CPUs, its own
    name and output file, with Slurm's placeholders filled in), and the core knows them."""
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n#SBATCH --cpus-per-task=2\n#SBATCH -J own-name\n"
                      "#SBATCH -o logs/%x-%j.out\necho \"cpus=$SLURM_CPUS_PER_TASK\"\n")
    (tmp_path / "logs").mkdir()
    env = dict(__import__("os").environ, CLUSTER_CORE_CONFIG=str(cluster_config), NO_COLOR="1")
    proc = subprocess.run([sys.executable, "-m", "cluster_core", "submit", "--json", "-b", "slurm", "./job.sh"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["name"] == "own-name" and info["outfile"] == str(tmp_path / "logs" / f"own-name-{info['id']}.out")
    job = cc.Job.from_id(info["id"], backend="slurm")
    assert job.get(timeout=120) == "cpus=2\n"
    monkeypatch.chdir(tmp_path)  # the script's relative output path is the submitter's
    job2 = cc.submit_file(script, backend="slurm", cores=1, name="overridden")
    assert job2.name == "overridden" and job2.options["cores"] == 1
    assert job2.get(timeout=120) == "cpus=1\n"
    assert job2.outfile == tmp_path / "logs" / f"overridden-{job2.id}.out"
