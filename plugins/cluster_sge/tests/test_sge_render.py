"""Options as qsub words: each keyword, the refusals, and the plugin's settings."""

from __future__ import annotations

import pytest

import cluster_core
from cluster_core.errors import OptionError
from cluster_core.options import check_arguments, directive_lines
from cluster_core.backend import argv_words
from cluster_sge import render


def words(**keywords) -> list[tuple[str, ...]]:
    return render.render(check_arguments(keywords))


def flat(**keywords) -> list[str]:
    return argv_words(words(**keywords))


def test_every_job_runs_under_bash_where_it_was_submitted():
    assert words() == [("-S", "/bin/bash"), ("-cwd",)]
    assert words(workdir="/tmp/w") == [("-S", "/bin/bash"), ("-wd", "/tmp/w")]


@pytest.mark.parametrize("keywords, expected", [
    ({"cores": 1}, []),
    ({"cores": 4}, [("-pe", "smp", "4")]),
    ({"tasks": 3}, [("-pe", "smp", "3")]),
    ({"tasks": 2, "cores": 3}, [("-pe", "smp", "6")]),
    ({"nodes": 1, "cores": 2}, [("-pe", "smp", "2")]),
    ({"mem": "4G"}, [("-l", "h_vmem=4096M")]),
    ({"mem": "4G", "cores": 3}, [("-pe", "smp", "3"), ("-l", "h_vmem=1366M")]),  # per slot, rounded up
    ({"mem_per_cpu": "1G", "cores": 2}, [("-pe", "smp", "2"), ("-l", "h_vmem=1024M")]),
    ({"time": "1-02:03:04"}, [("-l", "h_rt=26:03:04")]),
    ({"time": 5}, [("-l", "h_rt=0:05:00")]),
    ({"gpus": 2}, [("-l", "gpu=2")]),
    ({"gres": "scratch=10G"}, [("-l", "scratch=10G")]),
    ({"features": "avx2,ib"}, [("-l", "avx2=TRUE,ib=TRUE")]),
    ({"exclusive": True}, [("-l", "exclusive=TRUE")]),
    ({"exclusive": False}, []),
    ({"licenses": "matlab:2,abaqus"}, [("-l", "matlab=2,abaqus=1")]),
    ({"partition": "second.q"}, [("-q", "second.q")]),
    ({"account": "proj1"}, [("-P", "proj1")]),
    ({"reservation": "12"}, [("-ar", "12")]),
    ({"priority": 10}, [("-p", "-10")]),
    ({"priority": -5}, [("-p", "5")]),
    ({"begin": "202612312359"}, [("-a", "202612312359")]),
    ({"hold": True}, [("-h",)]),
    ({"name": "my job"}, [("-N", "my_job")]),
    ({"name": "a/b:c@d\\e*f?g"}, [("-N", "a_b_c_d_e_f_g")]),
    ({"name": "1st"}, [("-N", "j1st")]),
    ({"name": "ünï"}, [("-N", "_n_")]),
    ({"name": "it's $(x)"}, [("-N", "it's_$(x)")]),
    ({"outfile": "/tmp/o.txt"}, [("-o", "/tmp/o.txt")]),
    ({"errfile": "/tmp/a:b.err"}, [("-e", ":/tmp/a:b.err")]),
    ({"depends": ["12", "13.2", "14[3]", "12"]}, [("-hold_jid", "12,13,14")]),
    # -hold_jid waits for any end; the core's script checks afterok and afternotok outcomes
    ({"depends": "afterany:12,afternotok:13,afterok:14"}, [("-hold_jid", "12,13,14")]),
    ({"export": "ALL"}, [("-V",)]),
    ({"export": "NONE"}, []),
    ({"export": {"A": "1", "B": "x y"}}, [("-v", "A=1"), ("-v", "B=x y")]),
    ({"export": "HOME"}, [("-v", "HOME")]),
    ({"email": "me@example.org"}, [("-M", "me@example.org")]),
    ({"notify": "begin,end,fail"}, [("-m", "bea")]),
    ({"notify": "all"}, [("-m", "bea")]),
    ({"notify": "none"}, [("-m", "n")]),
    ({"requeue": True}, [("-r", "y")]),
    ({"requeue": False}, [("-r", "n")]),
    ({"extra": "-l scratch=1G -P proj"}, [("-l", "scratch=1G", "-P", "proj")]),
    ({"qos": "high"}, []),  # Grid Engine has no QoS: skipped (logged at debug level)
    ({"modules": "gcc"}, []),
    ({"jobdir": "/tmp/j"}, []),
])
def test_keywords(keywords, expected):
    assert words(workdir="/w", **keywords)[2:] == expected


@pytest.mark.parametrize("spec, expected", [
    ("0-9", [("-t", "1-10:1")]),
    (5, [("-t", "1-5:1")]),
    ("3", [("-t", "4-4:1")]),
    ("0-99:2", [("-t", "1-99:2")]),
    ("1,3,5", [("-t", "2-6:2")]),
    ("0-9%2", [("-t", "1-10:1"), ("-tc", "2")]),
])
def test_array_indices_shift_to_grid_engine(spec, expected):
    assert words(workdir="/w", array=spec)[2:] == expected


def test_array_needs_one_even_range():
    with pytest.raises(OptionError, match="one evenly stepped range") as err:
        words(array="0,1,5")
    assert err.value.keyword == "array"


@pytest.mark.parametrize("keywords, keyword, message", [
    ({"nodes": 2}, "nodes", "parallel environment"),
    ({"outfile": "/tmp/a,b"}, "outfile", "comma"),
    ({"errfile": "/tmp/$JOB_ID.err"}, "errfile", r"\$JOB_ID"),
    ({"export": {"A": "1,2"}}, "export", "comma"),
    ({"priority": 2000}, "priority", "-1024..1023"),
])
def test_refusals_name_the_keyword(keywords, keyword, message):
    with pytest.raises(OptionError, match=message) as err:
        words(**keywords)
    assert err.value.keyword == keyword


def test_literal_dollar_that_is_no_pseudo_variable_is_kept():
    assert words(outfile="/tmp/$FOO.out", workdir="/w")[2:] == [("-o", "/tmp/$FOO.out")]


def test_settings_from_the_config(cluster_config):
    cluster_core.set_option("sge.pe", "threads")
    cluster_core.set_option("sge.memory_resource", "mem_free")
    cluster_core.set_option("sge.gpu_resource", "ngpus")
    cluster_core.set_option("sge.account_flag", "-A")
    assert words(workdir="/w", cores=2, mem="2G", gpus=1, account="lab")[2:] == [
        ("-pe", "threads", "2"), ("-l", "mem_free=1024M"), ("-l", "ngpus=1"), ("-A", "lab")]


def test_defaults_without_a_config(cluster_config):
    assert {k: render.setting(k) for k in render.DEFAULTS} == render.DEFAULTS


def test_directive_lines_as_the_core_writes_them():
    lines = directive_lines(words(name="x y", workdir="/tmp/dir with space"), "#$")
    assert lines == ["#$ -S /bin/bash", "#$ -wd '/tmp/dir with space'", "#$ -N x_y"]


def test_job_name_rules():
    assert render.job_name("ok-name_1.2") == "ok-name_1.2"
    assert render.job_name("tab\there") == "tab_here"
    assert render.job_name("") == "job"


@pytest.mark.parametrize("depends", ["after:12", "singleton"])
def test_no_start_or_singleton_dependencies(depends):
    """The core refuses them at submit (backend_info does not list them); the renderer refuses them too."""
    with pytest.raises(OptionError, match=depends.split(":")[0]) as err:
        words(depends=depends)
    assert err.value.keyword == "depends"
