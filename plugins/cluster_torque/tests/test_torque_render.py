"""Job options as qsub arguments, per dialect and keyword."""

from __future__ import annotations

import logging

import pytest

from cluster_core.errors import OptionError
from cluster_core.options import check_arguments, directive_lines
from cluster_core.backend import argv_words
from cluster_torque import render
from cluster_torque.dialect import PBSPRO, TORQUE


def r(dialect, **kwargs):
    return render.render(check_arguments(kwargs), dialect)


def without_resources(dialect, **kwargs):
    return [d for d in r(dialect, **kwargs) if d[0] != "-l" or not d[1].startswith(("nodes=", "select="))]


# --- resources ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, torque, pbspro", [
    ({}, [], []),
    ({"cores": 1}, [("-l", "nodes=1:ppn=1")], [("-l", "select=1:ncpus=1")]),
    ({"cores": 4}, [("-l", "nodes=1:ppn=4")], [("-l", "select=1:ncpus=4")]),
    ({"nodes": 2, "cores": 4}, [("-l", "nodes=2:ppn=4")],
     [("-l", "select=2:ncpus=4"), ("-l", "place=scatter")]),
    ({"tasks": 8, "tasks_per_node": 4, "cores": 2}, [("-l", "nodes=2:ppn=8")],
     [("-l", "select=2:ncpus=8:mpiprocs=4"), ("-l", "place=scatter")]),
    ({"tasks": 6, "nodes": 2}, [("-l", "nodes=2:ppn=3")],
     [("-l", "select=2:ncpus=3:mpiprocs=3"), ("-l", "place=scatter")]),
    ({"cores": 2, "mem": "4G"}, [("-l", "nodes=1:ppn=2"), ("-l", "mem=4096mb")],
     [("-l", "select=1:ncpus=2:mem=4096mb")]),
    ({"nodes": 2, "mem": "4G"}, [("-l", "nodes=2:ppn=1"), ("-l", "mem=4096mb")],
     [("-l", "select=2:ncpus=1:mem=2048mb"), ("-l", "place=scatter")]),
    ({"cores": 4, "mem_per_cpu": "1G"}, [("-l", "nodes=1:ppn=4"), ("-l", "pmem=1024mb")],
     [("-l", "select=1:ncpus=4:mem=4096mb")]),
    ({"gpus": 2, "nodes": 2}, [("-l", "nodes=2:ppn=1:gpus=1")],
     [("-l", "select=2:ncpus=1:ngpus=1"), ("-l", "place=scatter")]),
    ({"features": "haswell,ib"}, [("-l", "nodes=1:ppn=1:haswell:ib")],
     [("-l", "select=1:ncpus=1:haswell=True:ib=True")]),
    ({"exclusive": True}, [("-n",)], [("-l", "place=excl")]),
    ({"exclusive": True, "nodes": 3}, [("-l", "nodes=3:ppn=1"), ("-n",)],
     [("-l", "select=3:ncpus=1"), ("-l", "place=scatter:excl")]),
])
def test_resources(kwargs, torque, pbspro):
    assert render.resources(check_arguments(kwargs), TORQUE) == torque
    assert render.resources(check_arguments(kwargs), PBSPRO) == pbspro


def test_pbspro_feature_with_value_and_bad_features():
    assert render.resources(check_arguments({"features": "model=skylake"}), PBSPRO) == \
        [("-l", "select=1:ncpus=1:model=skylake")]
    with pytest.raises(OptionError) as err:
        render.resources(check_arguments({"features": "model=skylake"}), TORQUE)
    assert err.value.keyword == "features"
    with pytest.raises(OptionError):
        render.resources(check_arguments({"features": "a:b"}), PBSPRO)


# --- one keyword at a time ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, torque, pbspro", [
    ({"time": "1:30:00"}, [("-l", "walltime=01:30:00")], None),
    ({"time": "2-00:00:01"}, [("-l", "walltime=48:00:01")], None),   # hours past a day, no "D-"
    ({"time": 90}, [("-l", "walltime=01:30:00")], None),              # a number is minutes
    ({"partition": "batch"}, [("-q", "batch")], None),
    ({"account": "proj1"}, [("-A", "proj1")], None),
    ({"priority": 10}, [("-p", "-10")], None),                        # nice 10 = lower priority
    ({"priority": -1023}, [("-p", "1023")], None),
    ({"begin": "202612311830"}, [("-a", "202612311830")], None),
    ({"begin": "2026-12-31T18:30"}, [("-a", "202612311830.00")], None),
    ({"begin": "1830.15"}, [("-a", "1830.15")], None),
    ({"hold": True}, [("-h",)], None),
    ({"hold": False}, [], None),
    ({"name": "myjob"}, [("-N", "myjob")], None),
    ({"outfile": "/tmp/o.txt"}, [("-o", "/tmp/o.txt")], None),
    ({"errfile": "/tmp/e.txt"}, [("-e", "/tmp/e.txt")], None),
    ({"workdir": "/scratch/run"}, [("-d", "/scratch/run")], []),     # PBS Pro has no -d: the script cds
    ({"depends": ["3.vm", "4.vm"]}, [("-W", "depend=afterok:3.vm:4.vm")], None),
    ({"depends": ["3.vm", "1[].vm"]}, [("-W", "depend=afterok:3.vm,afterokarray:1[].vm")],
     [("-W", "depend=afterok:3.vm:1[].vm")]),
    ({"depends": "afterany:3.vm,afternotok:4.vm,after:5.vm"},
     [("-W", "depend=afterany:3.vm,afternotok:4.vm,after:5.vm")], None),
    ({"depends": ["afternotok:1[].vm", "afterany:1[].vm:2.vm", "after:1[].vm"]},
     [("-W", "depend=afternotokarray:1[].vm,afterany:2.vm,afteranyarray:1[].vm,afterstartarray:1[].vm")],
     [("-W", "depend=afternotok:1[].vm,afterany:1[].vm:2.vm,after:1[].vm")]),
    ({"array": "0-3"}, [("-t", "0-3")], [("-J", "0-3")]),
    ({"array": "0-9%2"}, [("-t", "0-9%2")], [("-J", "0-9%2")]),
    ({"array": 4}, [("-t", "0-3")], [("-J", "0-3")]),
    ({"array": "0-6:3"}, [("-t", "0,3,6")], [("-J", "0-6:3")]),
    ({"array": "1,3,5"}, [("-t", "1,3,5")], [("-J", "1-5:2")]),
    ({"export": "ALL"}, [("-V",)], None),
    ({"export": "NONE"}, [], None),
    ({"export": "HOME,PATH"}, [("-v", "HOME,PATH")], None),
    ({"export": {"A": "1", "B": "two words"}}, [("-v", "A=1,B=two words")], None),
    ({"export": ["ALL", "X=1"]}, [("-V",), ("-v", "X=1")], None),
    ({"email": "me@example.org"}, [("-M", "me@example.org")], None),
    ({"notify": "begin,end,fail"}, [("-m", "abe")], None),
    ({"notify": "fail"}, [("-m", "a")], None),
    ({"notify": "end, begin"}, [("-m", "be")], None),
    ({"notify": "all"}, [("-m", "abe")], None),
    ({"notify": "none"}, [("-m", "n")], None),
    ({"requeue": True}, [("-r", "y")], None),
    ({"requeue": False}, [("-r", "n")], None),
    ({"extra": ["-k", "oe"]}, [("-k", "oe")], None),
    ({"gres": "matlab:1"}, [("-l", "gres=matlab:1")], []),           # Torque/Moab only
    ({"qos": "high"}, [("-l", "qos=high")], []),
    ({"licenses": "fluent"}, [], []),
    ({"reservation": "maint"}, [], []),
    ({"jobdir": "/x", "modules": "gcc"}, [], []),                    # core-internal
])
def test_keyword(kwargs, torque, pbspro):
    assert without_resources(TORQUE, **kwargs) == torque
    assert without_resources(PBSPRO, **kwargs) == (torque if pbspro is None else pbspro)


def test_keywords_the_backend_cannot_honour_are_named(caplog):
    from cluster_core import options
    options._warned.clear()  # once per process and keyword
    with caplog.at_level(logging.WARNING, logger="cluster_core.options"):
        r(PBSPRO, workdir="/w", licenses="x")
    assert "licenses=('x',): backend" in caplog.text and "cannot honour it" in caplog.text


@pytest.mark.parametrize("kwargs, keyword", [
    ({"priority": 2000}, "priority"),
    ({"priority": -1024}, "priority"),                # would be PBS priority 1024, above 1023
    ({"begin": "tomorrow"}, "begin"),
    ({"outfile": "/tmp/a:b"}, "outfile"),
    ({"errfile": "host:/tmp/e"}, "errfile"),
    ({"export": {"A": "x,y"}}, "export"),
    ({"export": {"A": 'say "hi"'}}, "export"),
    ({"export": {"A": "back\\slash"}}, "export"),
])
def test_values_pbs_cannot_take(kwargs, keyword):
    for dialect in (TORQUE, PBSPRO):
        with pytest.raises(OptionError) as err:
            r(dialect, **kwargs)
        assert err.value.keyword == keyword


@pytest.mark.parametrize("spec", ["5", "0-0", "1,2,4", "1,2,7-9%3"])
def test_pbspro_arrays_it_cannot_express(spec):
    with pytest.raises(OptionError) as err:
        r(PBSPRO, array=spec)
    assert err.value.keyword == "array"
    assert r(TORQUE, array=spec)  # Torque takes single tasks and lists


# --- names --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, torque, pbspro", [
    ("my job", "my_job", "my_job"),
    ("a;b$c`d", "a;b$c`d", "a_b_c_d"),          # Torque takes any printable character but spaces
    ("run.v2+x-y_z", "run.v2+x-y_z", "run.v2+x-y_z"),
    ("2nd", "2nd", "j2nd"),                       # older PBS Pro want a letter first
    ("x" * 300, "x" * 256, "x" * 230),
])
def test_job_names(name, torque, pbspro):
    assert render.job_name(name, TORQUE) == torque
    assert render.job_name(name, PBSPRO) == pbspro


# --- words stay literal through the #PBS line ---------------------------------------------------------

def pbs_make_argv(line: str) -> list[str]:
    """Python transcription of make_argv() in Torque 6.1.3 src/cmds/qsub_functions.c and OpenPBS
    src/cmds/qsub.c (identical): split on spaces; a quote (either kind) runs to its match, taken
    literally; a backslash outside quotes takes the next character literally."""
    words, buf, in_word, i = [], [], False, 0
    while i < len(line):
        c = line[i]
        if c in "\"'":
            end = line.index(c, i + 1)  # qsub: "unmatched" error otherwise
            buf.append(line[i + 1:end])
            in_word, i = True, end + 1
        elif c == "\\":
            buf.append(line[i + 1:i + 2])
            in_word, i = True, i + 2
        elif c.isspace():
            if in_word:
                words.append("".join(buf))
                buf, in_word = [], False
            i += 1
        else:
            buf.append(c)
            in_word, i = True, i + 1
    if in_word:
        words.append("".join(buf))
    return words


@pytest.mark.parametrize("dialect", [TORQUE, PBSPRO])
def test_metacharacters_survive_the_directive_line(dialect):
    nasty = "/tmp/it's a $HOME `x` \"q\" ;& dir" + ("\\" if dialect == PBSPRO else "")  # Torque: see below
    out = nasty if dialect == PBSPRO else nasty.replace(" ", "_")  # Torque delivers no output to a space
    options = check_arguments({"outfile": out + "/o", "errfile": out + "/e", "workdir": nasty,
                               "name": "it's;$(rm -rf ~)", "account": "a b'c", "partition": "q\"1"})
    directives = render.render(options, dialect)
    for directive, line in zip(directives, directive_lines(directives, "#PBS")):
        assert line.startswith("#PBS ")
        assert pbs_make_argv(line[len("#PBS "):]) == list(directive)
    words = argv_words(directives)
    assert words[words.index("-o") + 1] == out + "/o"
    assert words[words.index("-e") + 1] == out + "/e"
    assert words[words.index("-A") + 1] == "a b'c"
    if dialect == TORQUE:
        assert words[words.index("-d") + 1] == nasty
        assert words[words.index("-N") + 1] == "it's;$(rm_-rf_~)"
    else:
        assert "-d" not in words
        assert words[words.index("-N") + 1] == "it_s___rm_-rf___"


def test_torque_and_backslashes_in_paths(caplog):
    """Torque 6.1.3 drops a backslash from -d (the job then fails, exit -2) and cannot deliver output to
    a path with one (seen on the real server, fixtures/torque/real/odd_workdir.out)."""
    caplog.set_level(logging.INFO, logger="cluster_core.torque")
    assert r(TORQUE, workdir="/tmp/b\\sl") == []
    assert "drops backslashes" in caplog.text
    with pytest.raises(OptionError, match="outfile=.*backslash"):
        r(TORQUE, outfile="/tmp/b\\sl/o")
    assert r(PBSPRO, outfile="/tmp/b\\sl/o") == [("-o", "/tmp/b\\sl/o")]


def test_torque_and_spaces_in_output_paths():
    """Torque 6.1.3 delivers no output to a path with a space, quoted or escaped (seen on the real server:
    the files stay in its undelivered/ directory); OpenPBS delivers it."""
    with pytest.raises(OptionError, match="errfile=.*space.*jobdir"):
        r(TORQUE, errfile="/tmp/with space/e")
    assert r(PBSPRO, errfile="/tmp/with space/e") == [("-e", "/tmp/with space/e")]


def test_full_job_in_each_dialect():
    kwargs = dict(cores=4, nodes=2, mem="8G", time="1d", name="fit", partition="batch", account="p1",
                  depends=["3.vm"], array="0-9%2", export="ALL", email="me@example.org", notify="end",
                  priority=5, hold=True, outfile="/j/o", errfile="/j/e", workdir="/j")
    assert r(TORQUE, **kwargs) == [
        ("-l", "nodes=2:ppn=4"), ("-l", "mem=8192mb"), ("-l", "walltime=24:00:00"), ("-N", "fit"),
        ("-q", "batch"), ("-A", "p1"), ("-W", "depend=afterok:3.vm"), ("-t", "0-9%2"), ("-V",),
        ("-M", "me@example.org"), ("-m", "e"), ("-p", "-5"), ("-h",), ("-o", "/j/o"), ("-e", "/j/e"),
        ("-d", "/j")]
    assert r(PBSPRO, **kwargs) == [
        ("-l", "select=2:ncpus=4:mem=4096mb"), ("-l", "place=scatter"), ("-l", "walltime=24:00:00"),
        ("-N", "fit"), ("-q", "batch"), ("-A", "p1"), ("-W", "depend=afterok:3.vm"), ("-J", "0-9%2"),
        ("-V",), ("-M", "me@example.org"), ("-m", "e"), ("-p", "-5"), ("-h",), ("-o", "/j/o"),
        ("-e", "/j/e")]


@pytest.mark.parametrize("dialect", [TORQUE, PBSPRO])
def test_no_singleton(dialect):
    """The core refuses it at submit (backend_info lists no singleton); the renderer refuses it too."""
    with pytest.raises(OptionError, match="singleton") as err:
        r(dialect, depends="singleton")
    assert err.value.keyword == "depends"
