"""sbatch's directives and words as slurmrestd's job description (pure; the real submissions are in
test_rest_real.py). Scripts are written the way the core writes them: render_options, then the core's
quoting for #SBATCH lines."""

from __future__ import annotations

import pytest

from cluster_core.backend import SubmitError
from cluster_core.options import check_arguments
from cluster_core.rendering import directive_lines
from cluster_slurm import render, rest_submit


def script_for(**keywords) -> str:
    options = check_arguments({"outfile": "/tmp/o/%x.out", "errfile": "/tmp/o/%x.err", **keywords})
    lines = directive_lines(render.render(options), "#SBATCH", escape_backslash=True)
    return "\n".join(["#!/bin/bash", *lines, "echo hi", "#SBATCH --job-name=too-late"]) + "\n"


def describe(script: str, arguments=(), environ=None, **kw) -> dict:
    return rest_submit.job_description(script, "job.sh", list(arguments), cwd=kw.get("cwd", "/work/dir"),
                                       environ=environ if environ is not None else {"PATH": "/bin", "HOME": "/h"},
                                       umask=kw.get("umask", 0o027), host="vm")


@pytest.mark.parametrize("name", ["plain", "with space", "it's", 'say "hi"', "back\\slash", "semi;$(x)|y",
                                  "hash # inside", "tab\there"])
def test_names_survive_the_cores_quoting(name):
    """What the core writes after #SBATCH reads back as the same word, as sbatch reads it."""
    assert describe(script_for(name=name))["job"]["name"] == name


def test_every_keyword_the_plugin_renders():
    job = describe(script_for(
        name="j", cores=3, nodes=1, tasks=2, tasks_per_node=2, mem=1536, time="1:02:05", partition="debug",
        account="ci", qos="normal", reservation="r1", priority=5, begin="now+60", hold=True,
        workdir="/tmp/wd", depends=["afterok:12", "afterany:13"], array="0-9%2", email="a@b.c",
        notify=["end", "fail"], requeue=False, gpus=1, gres="gpu:1", features=["a", "b"], exclusive=True,
        licenses=["matlab:1"]))["job"]
    assert job == {**job, "name": "j", "cpus_per_task": 3, "nodes": [1, 1], "tasks": 2, "tasks_per_node": 2,
                   "memory_per_node": 1536, "time_limit": 63, "partition": "debug", "account": "ci",
                   "qos": "normal", "reservation": "r1", "nice": 5, "begin_time": "now+60", "hold": True,
                   "current_working_directory": "/tmp/wd", "dependency": "afterok:12,afterany:13",
                   "kill_on_invalid_dependency": True, "array": "0-9%2", "mail_user": "a@b.c",
                   "mail_type": "END,FAIL", "requeue": False, "gpus": "1", "gres": "gpu:1",
                   "constraints": "a&b", "exclusive": "true", "licenses": "matlab:1",
                   # the core doubles a literal % (slurmstepd expands %x itself)
                   "standard_output": "/tmp/o/%%x.out", "standard_error": "/tmp/o/%%x.err"}


def test_directives_stop_at_the_first_command():
    assert describe(script_for(name="first"))["job"]["name"] == "first"  # not "too-late"


def test_command_line_words_win_over_directives():
    job = describe(script_for(name="in-script", cores=1), ["--job-name=given", "-c", "4"])["job"]
    assert (job["name"], job["cpus_per_task"]) == ("given", 4)


def test_a_users_own_script_with_short_flags():
    text = "#!/bin/sh\n# a comment\n\n#SBATCH -J mine -c2 -t 1-00:30\n#SBATCH -o logs/%x-%j.out # why\n" \
           "#SBATCH --mem 2G -N 1-2 -p debug --exclusive=user\n#SBATCHX -J ignored\nsrun hostname\n"
    job = describe(text)["job"]
    assert job == {**job, "name": "mine", "cpus_per_task": 2, "time_limit": 24 * 60 + 30,
                   "standard_output": "logs/%x-%j.out", "memory_per_node": 2048, "nodes": [1, 2],
                   "partition": "debug", "exclusive": "user"}


def test_defaults_are_sbatchs():
    body = describe("#!/bin/bash\ntrue\n", environ={"PATH": "/bin", "X": "1"}, cwd="/here", umask=0o027)
    job = body["job"]
    assert body["script"] == "#!/bin/bash\ntrue\n"
    assert job["name"] == "job.sh" and job["current_working_directory"] == "/here"
    assert job["environment"] == {"PATH": "/bin", "X": "1", "SLURM_SUBMIT_DIR": "/here",
                                  "SLURM_SUBMIT_HOST": "vm", "SLURM_UMASK": "0027"}


def test_an_inherited_umask_is_kept_as_sbatch_keeps_it():
    env = describe("#!/bin/bash\n", environ={"SLURM_UMASK": "0077"}, umask=0o022)["job"]["environment"]
    assert env["SLURM_UMASK"] == "0077"


@pytest.mark.parametrize("export, expected", [
    (None, {"PATH": "/bin", "HOME": "/h", "SLURM_CONF": "/c"}),
    ("ALL", {"PATH": "/bin", "HOME": "/h", "SLURM_CONF": "/c"}),
    ("NONE", {"SLURM_CONF": "/c", "SLURM_EXPORT_ENV": "NONE"}),
    ("HOME,A=b c", {"SLURM_CONF": "/c", "HOME": "/h", "A": "b c"}),
    ("ALL,A=1", {"PATH": "/bin", "HOME": "/h", "SLURM_CONF": "/c", "A": "1"}),
])
def test_export(export, expected):
    assert rest_submit.environment(export, {"PATH": "/bin", "HOME": "/h", "SLURM_CONF": "/c"}) == expected


def test_export_from_the_keyword():
    env = describe(script_for(export=["NONE"]), environ={"PATH": "/bin"})["job"]["environment"]
    assert "PATH" not in env and env["SLURM_EXPORT_ENV"] == "NONE"


@pytest.mark.parametrize("text, minutes", [
    ("10", 10), ("10:30", 11), ("1:00:00", 60), ("1:00:01", 61), ("2-0", 2880), ("1-2:3", 1563),
    ("1-00:00:30", 1441), ("UNLIMITED", None), ("infinite", None),
])
def test_minutes(text, minutes):
    assert rest_submit.minutes(text) == minutes


@pytest.mark.parametrize("text, mb", [("100", 100), ("100M", 100), ("2G", 2048), ("1.5g", 1536),
                                      ("1T", 1048576), ("512K", 1), ("2048KB", 2)])
def test_megabytes(text, mb):
    assert rest_submit.megabytes(text) == mb


def test_unlimited_time_leaves_the_partitions_limit():
    assert "time_limit" not in describe("#!/bin/bash\n#SBATCH --time=UNLIMITED\n")["job"]


@pytest.mark.parametrize("words, message", [
    (["--nodelist=vm"], "sbatch option --nodelist cannot be passed to slurmrestd"),
    (["-w", "vm"], "sbatch option -w cannot be passed"),
    (["--mem=lots"], "--mem=lots cannot be sent"),
    (["--time"], "--time needs a value"),
])
def test_what_cannot_be_sent_is_an_error_naming_it(words, message):
    with pytest.raises(SubmitError, match=message) as info:
        describe("#!/bin/bash\ntrue\n", words)
    assert "slurm.transport=commands" in str(info.value)


def test_a_script_without_interpreter_line_is_refused():
    with pytest.raises(SubmitError, match="must start with #!"):
        describe("echo hi\n")


@pytest.mark.parametrize("line, words", [
    ("  -J 'a b' -c2", ["-J", "a b", "-c2"]),
    ('--comment="x  y"', ["--comment=x  y"]),
    ("--job-name=a\\ b", ["--job-name=a b"]),
    ("-J x # comment", ["-J", "x"]),
    ("-J a#b", ["-J", "a#b"]),
    ("-J ''", ["-J", ""]),
])
def test_split_directive(line, words):
    assert rest_submit.split_directive(line) == words
