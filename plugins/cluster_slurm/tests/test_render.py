"""render_options: every keyword as sbatch words, values kept literal (no scheduler needed)."""

from __future__ import annotations

import shlex

import pytest

from cluster_core.errors import OptionError
from cluster_core.options import check_arguments, directive_lines
from cluster_slurm import plugin
from cluster_core.backend import argv_words
from cluster_slurm.render import render


def words(**kwargs) -> list[tuple[str, ...]]:
    return plugin.render_options(options=check_arguments(kwargs))


@pytest.mark.parametrize("kwargs, expected", [
    ({"cores": 4}, [("--cpus-per-task=4",)]),
    ({"nodes": 2}, [("--nodes=2",)]),
    ({"tasks": 8}, [("--ntasks=8",)]),
    ({"tasks_per_node": 4}, [("--ntasks-per-node=4",)]),
    ({"mem": "4G"}, [("--mem=4096M",)]),
    ({"mem": 500}, [("--mem=500M",)]),
    ({"mem_per_cpu": "2G"}, [("--mem-per-cpu=2048M",)]),
    ({"time": "1h30m"}, [("--time=01:30:00",)]),
    ({"time": "2-03:04:05"}, [("--time=2-03:04:05",)]),
    ({"time": 5}, [("--time=00:05:00",)]),
    ({"gpus": 2}, [("--gpus=2",)]),
    ({"gres": "gpu:a100:2"}, [("--gres=gpu:a100:2",)]),
    ({"features": "avx2,ib"}, [("--constraint=avx2&ib",)]),
    ({"exclusive": True}, [("--exclusive",)]),
    ({"exclusive": False}, []),
    ({"licenses": ["matlab", "comsol"]}, [("--licenses=matlab,comsol",)]),
    ({"partition": "debug"}, [("--partition=debug",)]),
    ({"account": "proj1"}, [("--account=proj1",)]),
    ({"qos": "high"}, [("--qos=high",)]),
    ({"reservation": "maint"}, [("--reservation=maint",)]),
    ({"priority": 10}, [("--nice=10",)]),
    ({"priority": -5}, [("--nice=-5",)]),
    ({"begin": "now+1hour"}, [("--begin=now+1hour",)]),
    ({"hold": True}, [("--hold",)]),
    ({"hold": False}, []),
    ({"name": "my job"}, [("--job-name=my job",)]),
    ({"outfile": "/tmp/out.txt"}, [("--output=/tmp/out.txt",)]),
    ({"errfile": "/tmp/err.txt"}, [("--error=/tmp/err.txt",)]),
    ({"workdir": "/scratch/run 1"}, [("--chdir=/scratch/run 1",)]),
    ({"depends": ["12", "13"]}, [("--dependency=afterok:12:13",), ("--kill-on-invalid-dep=yes",)]),
    ({"depends": "7"}, [("--dependency=afterok:7",), ("--kill-on-invalid-dep=yes",)]),
    ({"depends": "afterany:451"}, [("--dependency=afterany:451",), ("--kill-on-invalid-dep=yes",)]),
    ({"depends": ["afterany:1:2", "3", "afternotok:4", "after:5_1", "singleton", "afterok:6"]},
     [("--dependency=afterany:1:2,afterok:3:6,afternotok:4,after:5_1,singleton",), ("--kill-on-invalid-dep=yes",)]),
    ({"array": "0-9%2"}, [("--array=0-9%2",)]),
    ({"array": 3}, [("--array=0-2",)]),
    ({"export": "ALL"}, [("--export=ALL",)]),
    ({"export": "none"}, [("--export=NONE",)]),
    ({"export": {"A": "1", "B": "x y"}}, [("--export=A=1,B=x y",)]),
    ({"export": ["ALL", "FOO=bar"]}, [("--export=ALL,FOO=bar",)]),
    ({"email": "me@example.org"}, [("--mail-user=me@example.org",)]),
    ({"notify": "end,fail"}, [("--mail-type=END,FAIL",)]),
    ({"notify": "all"}, [("--mail-type=ALL",)]),
    ({"requeue": True}, [("--requeue",)]),
    ({"requeue": False}, [("--no-requeue",)]),
    ({"extra": "--tmp=10G"}, [("--tmp=10G",)]),
    ({"extra": ["--comment", "two words"]}, [("--comment", "two words")]),
])
def test_each_keyword(kwargs, expected):
    assert words(**kwargs) == expected


def test_core_only_keywords_are_not_rendered():
    assert words(modules="gcc", jobdir="/tmp/jobs") == []


def test_the_whole_table_renders_and_stays_in_order():
    got = words(cores=2, mem="1G", time="10m", name="n", partition="debug", hold=True)
    assert got == [("--cpus-per-task=2",), ("--mem=1024M",), ("--time=00:10:00",), ("--job-name=n",),
                   ("--partition=debug",), ("--hold",)]


ODD = ["my job", "it's", 'say "hi"', "$(touch pwned)", "`id`", "a;b", "a|b", "a&b", "*?[x]", "#hash",
       "tab\tx", "--x", "é ü ☃"]


@pytest.mark.parametrize("value", ODD)
def test_metacharacters_stay_literal_one_word(value):
    assert words(name=value) == [(f"--job-name={value}",)]
    assert words(workdir=f"/tmp/{value}") == [(f"--chdir=/tmp/{value}",)]
    (line,) = directive_lines(words(name=value), "#SBATCH")
    assert shlex.split(line[len("#SBATCH "):]) == [f"--job-name={value}"]


def test_percent_in_output_paths_is_escaped_for_slurm():
    # slurmstepd expands %j, %A, %a, ... in --output/--error; %% is a literal %
    assert words(outfile="/tmp/100%done %j.out") == [("--output=/tmp/100%%done %%j.out",)]
    assert words(errfile="/tmp/%x") == [("--error=/tmp/%%x",)]
    assert words(name="100%") == [("--job-name=100%",)]  # names are not expanded


@pytest.mark.parametrize("keyword", ["outfile", "errfile"])
def test_backslash_in_output_path_is_refused(keyword):
    # measured: slurmstepd drops the backslash and then leaves %-patterns unexpanded
    with pytest.raises(OptionError, match="backslash") as err:
        words(**{keyword: "/tmp/a\\b.out"})
    assert err.value.keyword == keyword


def test_export_value_with_comma_is_refused():
    # measured: sbatch --export=ALL,A=x,y gives A=x; quoting keeps the quotes in the value
    with pytest.raises(OptionError, match="comma") as err:
        words(export={"A": "x,y"})
    assert err.value.keyword == "export"


def test_argv_words_flattens_for_the_command_line():
    directives = words(name="my job", depends=["5"], extra=["--comment", "c d"])
    assert argv_words(directives) == ["--job-name=my job", "--dependency=afterok:5",
                                      "--kill-on-invalid-dep=yes", "--comment", "c d"]


def test_render_is_the_hook():
    opts = check_arguments({"cores": 3})
    assert render(opts) == plugin.render_options(options=opts)


def test_backend_info():
    info = plugin.backend_info()
    assert info.name == "slurm" and info.directive_prefix == "#SBATCH"
    assert info.supports_arrays and info.task_id_variable == "SLURM_ARRAY_TASK_ID"
    assert info.priority > 0 and info.distribution == "cluster-slurm"
