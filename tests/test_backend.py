"""cluster_core.backend: the one module a backend imports, and its helpers on real scheduler output.

The strings below were printed by the real schedulers of ``ci/`` (Slurm 22.05, Son of Grid Engine 8.1.9,
Torque 6.1.3, OpenPBS 23.06); each plugin's fixtures hold the full captures they come from.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster_core import backend
from cluster_core.backend import (Commands, OptionError, QueueJob, SchedulerError, State, SubmitError, argv_words,
                                  array_range, chunks, error_summary, format_hms, harmless_failure, index_list,
                                  job_id_from_output, keyword_for_error, known_ids, mail_letters, merge_records,
                                  parse_timestamp, priority_from_nice, refine_oom, submit_retrying)

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "plugins"
#: The core modules a bundled plugin may import: the backend module and the hook contract.
ALLOWED = {"cluster_core.backend", "cluster_core.hookspecs"}


# --- the import rule --------------------------------------------------------------------------------

def _core_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of the core in a source file, inside functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "cluster_core"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "cluster_core":  # from cluster_core import backend / hookimpl / config
                found += [(node.lineno, f"cluster_core.{a.name}") for a in node.names]
            elif node.module.split(".")[0] == "cluster_core":
                found.append((node.lineno, node.module))
    return found


def _plugin_modules() -> list[Path]:
    return sorted(p for p in PLUGINS.glob("cluster_*/cluster_*/*.py") if "tests" not in p.parts)


def test_the_import_check_sees_every_form(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import cluster_core.config\nfrom cluster_core import commands, backend\n"
                   "from cluster_core.options import x\nfrom . import parse\n"
                   "def f():\n    from cluster_core import get_option\n")
    assert [m for _, m in _core_imports(src)] == ["cluster_core.config", "cluster_core.commands",
                                                  "cluster_core.backend", "cluster_core.options",
                                                  "cluster_core.get_option"]


@pytest.mark.parametrize("plugin", ["cluster_slurm", "cluster_torque", "cluster_sge", "cluster_local"])
def test_bundled_plugins_import_only_the_backend_module(plugin):
    """DESIGN.md: a plugin imports cluster_core.backend and cluster_core.hookspecs, nothing else of the core."""
    modules = [p for p in _plugin_modules() if p.parent.name == plugin]
    assert modules, f"no modules found for {plugin}"
    bad = [f"{p.relative_to(ROOT)}:{line}: {module}" for p in modules for line, module in _core_imports(p)
           if module not in ALLOWED]
    assert not bad, "plugins import core internals (use cluster_core.backend):\n" + "\n".join(bad)


def test_every_public_name_exists():
    missing = [n for n in backend.__all__ if not hasattr(backend, n)]
    assert not missing and len(set(backend.__all__)) == len(backend.__all__)


# --- reading what commands print --------------------------------------------------------------------

SBATCH_ID = r"(?P<id>\d+)(?:;\S+)?"
QSUB_TERSE_ID = r"(?P<id>\d+)(?:\.\d+-\d+:\d+)?"
PBS_ID = r"\d+(?:\[\d*\])?(?:\.[A-Za-z0-9][\w.:-]*)?"


@pytest.mark.parametrize("stdout, pattern, job_id", [
    ("123\n", SBATCH_ID, "123"), ("123;ci\n", SBATCH_ID, "123"), ("sbatch: warning: x\n45\n", SBATCH_ID, "45"),
    ("142\n", QSUB_TERSE_ID, "142"), ("144.1-4:1\n", QSUB_TERSE_ID, "144"),        # Grid Engine qsub -terse
    ("Your job 7 is queued\n152.1-3:1\n", QSUB_TERSE_ID, "152"),
    ("3.vm\n", PBS_ID, "3.vm"), ("1[].vm\n", PBS_ID, "1[].vm"),                   # Torque / OpenPBS qsub
    ("qsub: warning: resource x is deprecated\n80005196.gadi-pbs\n", PBS_ID, "80005196.gadi-pbs"),
])
def test_job_id_from_output(stdout, pattern, job_id):
    assert job_id_from_output(stdout, pattern, "qsub") == job_id


def test_job_id_from_output_without_one():
    with pytest.raises(SubmitError, match="qsub printed no job id") as err:
        job_id_from_output('Unable to run job: unknown resource "gpu"\nExiting.\n', QSUB_TERSE_ID, "qsub")
    assert "Exiting" in err.value.output


@pytest.mark.parametrize("text, expected", [
    ("2026-11-25T13:47:44", (2026, 11, 25, 13, 47, 44)),     # squeue / sacct, qstat -xml (local time)
    ("Wed Nov 25 14:29:41 2026", (2026, 11, 25, 14, 29, 41)),  # qacct, PBS qstat -f
    ("Nov  4 09:05:01 2026", (2026, 11, 4, 9, 5, 1)),          # ctime without the weekday
])
def test_parse_timestamp_local_times(text, expected):
    assert time.localtime(parse_timestamp(text))[:6] == expected


@pytest.mark.parametrize("value, expected", [(1764078611, 1764078611.0), ("1764078611", 1764078611.0),
                                             ("N/A", None), ("Unknown", None), ("None", None), ("-/-", None),
                                             ("", None), ("0", None), (0, None), (None, None),
                                             ("Wed Foo 25 14:29:41 2026", None), ("undefined", None)])
def test_parse_timestamp_epochs_and_nothing(value, expected):
    assert parse_timestamp(value) == expected


def test_error_summary_on_real_refusals():
    sbatch = ("sbatch: error: invalid partition specified: nope\n"
              "sbatch: error: Batch job submission failed: Invalid partition name specified\n")
    assert error_summary(sbatch, strip=[r"^sbatch: error: (Batch job submission failed: )?"]) == \
        "invalid partition specified: nope; Invalid partition name specified"
    qsub = 'Unable to run job: Job was rejected because job requests unknown queue "nosuch.q"\nExiting.\n'
    assert error_summary(qsub, strip=[r"^((Unable to run job|qsub|error): )+"], drop=[r"Exiting\."]) == \
        'Job was rejected because job requests unknown queue "nosuch.q"'
    assert error_summary("a\na\n\n") == "a" and error_summary("") == "no message"


TABLE = [(r"invalid partition", "partition"),
         (r"More processors requested than permitted", ("cores", "tasks", "nodes")),
         (re.compile(r"walltime", re.I), "time")]


def test_keyword_for_error():
    assert keyword_for_error("sbatch: error: invalid partition specified: nope", TABLE) == "partition"
    message = "sbatch: error: Batch job submission failed: More processors requested than permitted"
    assert keyword_for_error(message, TABLE) == "cores"                      # none set: the first
    assert keyword_for_error(message, TABLE, {"tasks": 9}) == "tasks"        # the one the job set
    assert keyword_for_error("qsub: Illegal attribute or resource value Resource_List.walltime", TABLE) == "time"
    assert keyword_for_error("something new entirely", TABLE) is None


@pytest.mark.parametrize("output, expected", [
    ("scancel: error: Kill job error on job id 5: Job/step already completing or completed\n", True),
    ("scancel: error: Kill job error on job id 5: Access/permission denied\n", False),
    ("scancel: warning: x\nscancel: error: Invalid job id specified\n", True),   # only "error" lines count
    ("", False),                                                                 # a silent failure is a failure
])
def test_harmless_failure_with_relevant_lines(output, expected):
    assert harmless_failure(output, ["already completing or completed", "Invalid job id specified"],
                            relevant="error") is expected


def test_harmless_failure_every_line():
    harmless = ["does not exist", "has deleted"]
    assert harmless_failure('denied: job "99999999" does not exist\n', harmless)   # Grid Engine qdel
    assert not harmless_failure('denied: job "5" does not exist\nerror: you are not the owner\n', harmless)


def test_chunks():
    assert [list(c) for c in chunks(list("abcde"), 2)] == [["a", "b"], ["c", "d"], ["e"]]
    assert list(chunks([], 3)) == []


def test_argv_words():
    assert argv_words([("--job-name=my job",), ("-l", "walltime=1:00:00"), ()]) == \
        ["--job-name=my job", "-l", "walltime=1:00:00"]


# --- option values ----------------------------------------------------------------------------------

def test_format_hms():
    assert format_hms(5 * 60) == "0:05:00"
    assert format_hms(26 * 3600 + 3 * 60 + 4) == "26:03:04"           # no days
    assert format_hms(5400, hour_digits=2) == "01:30:00"
    assert format_hms(3 * 86400) == "72:00:00"


def test_priority_from_nice():
    assert priority_from_nice(10, -1024, 1023, "PBS") == -10
    assert priority_from_nice(-1023, -1024, 1023, "PBS") == 1023
    with pytest.raises(OptionError, match=r"Grid Engine takes priorities -1023..1024.*use -1024..1023") as err:
        priority_from_nice(2000, -1023, 1024, "Grid Engine")
    assert err.value.keyword == "priority"


def test_mail_letters():
    pbs = {"begin": "b", "end": "e", "fail": "a", "all": "abe", "none": "n"}
    assert mail_letters(("end", "begin"), pbs, order="abe") == "be"
    assert mail_letters(("begin", "end", "fail"), pbs, order="abe") == "abe"
    assert mail_letters(("end", "none"), pbs, order="abe") == "n"
    ge = {"begin": "b", "end": "e", "fail": "a", "all": "bea", "none": "n"}
    assert mail_letters(("all", "end"), ge) == "bea"


def test_array_range_and_index_list():
    assert array_range("0-9", "X") == (0, 9, 1, None)
    assert array_range("0-9:3%2", "X", offset=1) == (1, 10, 3, 2)
    assert array_range("1,3,5", "X") == (1, 5, 2, None)
    with pytest.raises(OptionError, match="evenly") as err:
        array_range("0,1,5", "X")
    assert err.value.keyword == "array"
    with pytest.raises(OptionError, match="at least 2"):
        array_range("3", "PBS Pro", min_tasks=2)
    assert index_list("0-6:3") == "0,3,6" and index_list("0-3,7,9-10%2") == "0-3,7,9-10"


# --- records ----------------------------------------------------------------------------------------

def _job(job_id, state, array_id=None, task_id=None, **kw):
    return QueueJob(id=job_id, state=state, array_id=array_id, task_id=task_id, **kw)


def test_merge_records_live_wins_and_lagging_accounting_is_left_out():
    running = _job("5_1", State.RUNNING, "5", 1)
    pending_rest = _job("5", State.PENDING, "5")
    finished_task = _job("5_0", State.COMPLETED, "5", 0)
    lagging_summary = _job("5", State.FAILED)        # sacct's one row for an array that just ended
    gone = _job("7", State.FAILED, exitcode=1)
    merged = merge_records([running, pending_rest],
                           [_job("5_1", State.CANCELLED, "5", 1), finished_task, lagging_summary, gone])
    assert merged == [running, pending_rest, finished_task, gone]
    assert known_ids(merged) == {"5_1", "5", "5_0", "7"}


def test_refine_oom_on_real_stderr():
    failed = _job("9", State.FAILED, exitcode=1)
    stderr = ("Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\nMemoryError\n")
    refined = refine_oom(failed, stderr, r"MemoryError|Cannot allocate memory", "out of memory", tail_lines=20)
    assert refined.state is State.OUT_OF_MEMORY and refined.reason == "out of memory" and refined.exitcode == 1
    slurmstepd = "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=12.batch. Some of your processes"
    assert refine_oom(failed, slurmstepd, r"oom-kill", "x").state is State.OUT_OF_MEMORY
    assert refine_oom(failed, "all good", r"oom-kill", "x") is None
    assert refine_oom(_job("9", State.COMPLETED), slurmstepd, r"oom-kill", "x") is None
    assert refine_oom(failed, "MemoryError\n" + "x\n" * 30, r"MemoryError", "x", tail_lines=20) is None


# --- commands ---------------------------------------------------------------------------------------

def _script(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def mysched(tmp_path, monkeypatch):
    """A backend "mysched" whose commands are real scripts in $CLUSTER_MYSCHED_BIN."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("CLUSTER_MYSCHED_BIN", str(bindir))
    return bindir


def test_commands_use_the_backend_bin_dir_and_say_where_they_looked(mysched):
    _script(mysched, "mysub", 'echo "LC_ALL=$LC_ALL $*"')
    cmds = Commands("mysched", transient=["busy"], env={"LC_ALL": "C"})
    assert cmds.run(["mysub", "a b"]).stdout == "LC_ALL=C a b\n"
    assert cmds.which("mysub") == str(mysched / "mysub")
    assert cmds.missing(["mysub"]) is None
    assert cmds.missing(["mysub", "myq"]) == f"no myq in $CLUSTER_MYSCHED_BIN={mysched}"
    assert backend.bin_dir_setting("mysched") == f"$CLUSTER_MYSCHED_BIN={mysched}"


def test_commands_cancel_ignores_jobs_already_gone(mysched):
    cmds = Commands("mysched")
    _script(mysched, "mydel", "echo 'denied: job \"$1\" does not exist' >&2; exit 1")
    assert cmds.cancel(["mydel", "99"], ["does not exist"]) is True
    _script(mysched, "mydel", "echo 'error: you are not the owner' >&2; exit 1")
    with pytest.raises(SchedulerError, match="not the owner"):
        cmds.cancel(["mydel", "99"], ["does not exist"])


def test_submit_retrying_asks_before_submitting_again(mysched):
    """A transient failure that may have reached the scheduler: the job is looked for before another try,
    and a job found is the answer; one that says it never arrived is submitted again at once."""
    log = mysched / "calls"
    _script(mysched, "mysub", f'echo x >> {log}; n=$(wc -l < {log}); '
                              'if [ "$n" -lt 2 ]; then echo "connection refused" >&2; exit 1; fi; echo 42')
    cmds = Commands("mysched", transient=["connection refused", "timed out"], not_submitted=["connection refused"])
    asked = []

    def refused(exc):
        raise SubmitError(f"refused: {exc}")

    def attempt():
        return job_id_from_output(cmds.run(["mysub"], retries=0).stdout, r"\d+", "mysub")

    assert submit_retrying(attempt, cmds, find=asked.append, refused=refused, retries=2, backoff=0.0) == "42"
    assert asked == [] and log.read_text().count("x") == 2          # never reached: no question asked
    _script(mysched, "mysub", 'echo "timed out waiting for the server" >&2; exit 1')
    assert submit_retrying(attempt, cmds, find=lambda exc: "41", refused=refused, retries=2, backoff=0.0) == "41"
    _script(mysched, "mysub", 'echo "no such queue" >&2; exit 1')
    with pytest.raises(SubmitError, match="refused: .*no such queue"):
        submit_retrying(attempt, cmds, find=lambda exc: None, refused=refused, retries=2, backoff=0.0)


def test_ask_patiently_gives_up_on_a_permanent_error_and_after_its_patience():
    calls = []

    def ask():
        calls.append(1)
        raise SchedulerError("qstat failed: busy", transient=len(calls) < 3)
    with pytest.raises(SubmitError, match="cannot tell: qstat failed"):
        backend.ask_patiently(ask, lambda e: SubmitError(f"cannot tell: {e}"), waiting="x", delay=0.0)
    assert len(calls) == 3
    with pytest.raises(SubmitError):
        backend.ask_patiently(lambda: (_ for _ in ()).throw(SchedulerError("busy", transient=True)),
                              lambda e: SubmitError(str(e)), waiting="x", patience=0.0, delay=0.01)
    assert backend.ask_patiently(lambda: "ok", lambda e: e, waiting="x") == "ok"


def test_output_appeared(tmp_path):
    out, old = tmp_path / "job.out", tmp_path / "old.out"
    old.write_text("")
    before = backend.files_existing([str(out), str(old), None])
    assert before == {str(out): False, str(old): True}
    assert backend.output_appeared(before) is False
    out.write_text("")
    assert backend.output_appeared(before) is True
    assert backend.output_appeared(backend.files_existing([str(old)])) is None


def test_state_dir_is_shared_by_every_process(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTER_CORE_REGISTRY", str(tmp_path / "jobs"))
    here = backend.state_dir("my sched")
    there = subprocess.run([sys.executable, "-c", "from cluster_core import backend; print(backend.state_dir('my sched'))"],
                           capture_output=True, text=True, check=True, env=os.environ.copy()).stdout.strip()
    assert here == there == str(tmp_path / "backend-state" / "my_sched") and os.path.isdir(here)


def test_export_items_sets_and_copies_and_leaves_all_none_to_the_caller():
    from cluster_core.backend import export_items
    env = export_items({"KEEP": "1"}, ["ALL", "NONE", "A=x=y", "HOME", "MISSING"], {"HOME": "/h", "OTHER": "o"})
    assert env == {"KEEP": "1", "A": "x=y", "HOME": "/h"}
