"""The pure parsers, on output captured from a real Grid Engine 8.1.9 cell (tests/fixtures/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster_core.backend import (QueueJob, State, SubmitError, error_summary, job_id_from_output,
                                  keyword_for_error, known_ids, merge_records, parse_timestamp)
from cluster_sge import parse

FIXTURES = Path(__file__).parent / "fixtures"

MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())


def n(scenario: str) -> str:
    return MANIFEST[scenario]


def parse_qsub(stdout):
    return job_id_from_output(stdout, parse.QSUB_ID, "qsub")


def submit_error_keyword(message, options=None, memory_resource="h_vmem"):
    return keyword_for_error(message, parse.submit_errors(memory_resource), options)


def summary(output):
    return error_summary(output, strip=parse.QSUB_ERROR_PREFIXES, drop=(r"Exiting\.",))


def by_id(records):
    return {r.id: r for r in records}


def live(name: str = "qstat-live.xml") -> dict[str, QueueJob]:
    return by_id(parse.qstat_records(parse.parse_qstat_xml((FIXTURES / name).read_text())))


# --- qsub -----------------------------------------------------------------------------------------

def test_qsub_terse_ids():
    rows = [line.split("\t") for line in (FIXTURES / "qsub-terse.txt").read_text().splitlines()[1:]]
    assert rows
    for options, stdout in rows:
        number = parse_qsub(stdout + "\n")
        assert number.isdigit() and stdout.startswith(number)
        if "-t " in options:
            assert stdout != number  # "144.1-4:1"
    assert parse_qsub("Your job 7 is queued\n152.1-3:1\n") == "152"
    with pytest.raises(SubmitError, match="no job id"):
        parse_qsub("Unable to run job: unknown resource \"gpu\"\nExiting.\n")


@pytest.mark.parametrize("job_id, expected", [
    ("12", ("12", None)), ("12.3", ("12", 3)), ("12.1-5:1", ("12", None)), ("12[0]", ("12", 1)),
    (" 7 ", ("7", None))])
def test_split_id(job_id, expected):
    assert parse.split_id(job_id) == expected


@pytest.mark.parametrize("bad", ["", "abc", "12_3", "12.x", "-1"])
def test_split_id_refuses(bad):
    with pytest.raises(ValueError):
        parse.split_id(bad)


def _errors():
    blocks = (FIXTURES / "qsub-errors.txt").read_text().split("## qsub ")[1:]
    return {b.split("\n", 1)[0]: b.split("\n", 1)[1] for b in blocks}


@pytest.mark.parametrize("options, keyword", [
    ("-q nosuch.q", "partition"), ("-l h_vmem=abc", "mem"), ("-l nosuch=1", "gres"),
    ("-pe nosuch 2", "cores"), ("-P nosuch", "account"), ("-t 0-3", "array"), ("-a 2099", "begin"),
    ("-ar 99", "reservation"), ("-p 2000", "priority"), ("-l h_rt=1:00:00:00", "time"),
    ("-l exclusive=TRUE", "exclusive"), ("-l gpu=1", "gpus"), ("-N 1abc", "name"), ("-o /tmp/a:b", "outfile"),
    ("-w e -pe smp 99", "cores"),
])
def test_submit_error_keywords_on_real_messages(options, keyword):
    message = _errors()[options]
    assert message.startswith("rc=1") or message.startswith("rc=7")
    assert submit_error_keyword(message) == keyword


def test_submit_error_keyword_prefers_what_the_job_set():
    message = _errors()["-l h_vmem=abc"]
    assert submit_error_keyword(message, {"mem_per_cpu": 100}) == "mem_per_cpu"
    assert submit_error_keyword('unknown resource "mem_free"', {}, memory_resource="mem_free") == "mem"
    assert submit_error_keyword("something new entirely") is None
    no_queue = _errors()["-w e -pe smp 99"]
    assert submit_error_keyword(no_queue, {"time": 99999, "partition": "all.q"}) == "time"


def test_error_summary_strips_qsub_framing():
    assert summary(_errors()["-q nosuch.q"].split("\n", 1)[1]) == \
        'Job was rejected because job requests unknown queue "nosuch.q"'
    assert summary(_errors()["-P nosuch"].split("\n", 1)[1]) == \
        'the requested project "nosuch" does not exist'


# --- states ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, state", [
    ("qw", State.PENDING), ("hqw", State.HELD), ("hRwq", State.HELD), ("Rq", State.PENDING),
    ("r", State.RUNNING), ("t", State.RUNNING), ("Rr", State.RUNNING), ("Rt", State.RUNNING),
    ("s", State.SUSPENDED), ("S", State.SUSPENDED), ("T", State.SUSPENDED), ("ts", State.SUSPENDED),
    ("Eqw", State.FAILED), ("Ehqw", State.FAILED), ("dr", State.COMPLETING), ("dRr", State.COMPLETING),
    ("dt", State.COMPLETING), ("z", State.COMPLETED), ("", State.UNKNOWN), ("?", State.UNKNOWN),
])
def test_map_state(code, state):
    assert parse.map_state(code) is state


def test_hold_for_predecessors_is_pending():
    assert parse.map_state("hqw", waiting_for=("12",)) is State.PENDING


def test_every_observed_state_code_maps():
    seen = set()
    for path in sorted((FIXTURES / "observed").glob("qstat-*.xml")):
        for entry in parse.parse_qstat_xml(path.read_text()):
            assert parse.map_state(entry.state) is not State.UNKNOWN, (path.name, entry.state)
            seen.add(entry.state)
    assert {"qw", "hqw", "r", "t", "Eqw", "S", "Rq", "Rr", "dr"} <= seen


# --- qstat -xml -r --------------------------------------------------------------------------------

def test_qstat_live_snapshot():
    jobs = live()
    running = jobs[n("running")]
    assert running.state is State.RUNNING and running.raw_state == "r"
    assert running.partition == "all.q" and running.nodes == ("vm",) and running.cores == 1
    assert running.name == "running" and running.user == "root" and running.start_time > 1.7e9
    assert jobs[n("held")].state is State.HELD and jobs[n("held")].reason == "held"
    after = jobs[n("after_running")]
    assert after.state is State.PENDING and after.reason == f"waiting for job {n('running')}"
    bad = jobs[n("bad_wd")]
    assert bad.state is State.FAILED and bad.raw_state == "Eqw" and bad.reason.startswith("error state")
    assert bad.exitcode is None
    assert jobs[n("pe2")].cores == 2 and jobs[n("pe2")].state is State.PENDING
    assert jobs[n("pe2")].submit_time and jobs[n("pe2")].start_time is None
    assert jobs[n("name'with\"quotes$(x)")].name == "name'with\"quotes$(x)"


def test_qstat_array_tasks_one_record_each():
    jobs = live()
    array = n("array")
    tasks = {j.id: j for j in jobs.values() if j.array_id == array}
    assert set(tasks) == {f"{array}.{t}" for t in (1, 2, 3, 4)}
    assert tasks[f"{array}.1"].state is State.RUNNING and tasks[f"{array}.1"].task_id == 0
    assert [tasks[f"{array}.{t}"].state for t in (2, 3, 4)] == [State.PENDING] * 3
    assert [tasks[f"{array}.{t}"].task_id for t in (2, 3, 4)] == [1, 2, 3]


def test_qstat_wanted_filters_job_numbers():
    entries = parse.parse_qstat_xml((FIXTURES / "qstat-live.xml").read_text())
    records = parse.qstat_records(entries, wanted={n("held"), n("array")})
    assert {r.array_id or r.id for r in records} == {n("held"), n("array")}


def test_qstat_suspensions():
    assert live("qstat-suspended.xml")[n("running")].state is State.SUSPENDED
    queue_suspended = live("qstat-queue-suspended.xml")
    assert queue_suspended[n("running")].state is State.SUSPENDED
    assert queue_suspended[n("running")].raw_state == "S"


def test_qstat_deleting_and_rerun():
    dr = live("observed/qstat-dr.xml")
    assert {r.state for r in dr.values()} == {State.COMPLETING}
    assert all(r.reason == "being deleted" for r in dr.values())
    rerun = live("observed/qstat-Rr.xml")[n("running")]
    assert rerun.state is State.RUNNING and rerun.raw_state == "Rr"
    assert live("observed/qstat-Rq.xml")[n("running")].state is State.PENDING


def test_qstat_empty_and_garbage():
    assert parse.parse_qstat_xml("") == []
    assert parse.parse_qstat_xml("<?xml version='1.0'?>\n<job_info><queue_info/><job_info/></job_info>") == []
    with pytest.raises(ValueError, match="no readable XML"):
        parse.parse_qstat_xml("error: commlib error: got select error (Connection refused)")


def test_zombies_are_left_to_accounting():
    xml = ("<job_info><job_info><job_list state='zombie'><JB_job_number>5</JB_job_number>"
           "<state>z</state><tasks>1-3:1</tasks></job_list></job_info></job_info>")
    assert parse.qstat_records(parse.parse_qstat_xml(xml)) == []


@pytest.mark.parametrize("spec, tasks", [("7", [7]), ("2,3", [2, 3]), ("1-10:4", [1, 5, 9]),
                                         ("2-4:1", [2, 3, 4]), ("1,4-8:2", [1, 4, 6, 8])])
def test_expand_tasks(spec, tasks):
    assert parse.expand_tasks(spec) == tasks


def test_error_reasons_from_qstat_j():
    reasons = parse.parse_error_reasons((FIXTURES / "qstat-j-error.xml").read_text())
    assert reasons[n("bad_wd")] == "can't chdir to /nonexistent/dir: No such file or directory"
    after_run = parse.parse_error_reasons((FIXTURES / "qstat-j-error-after-run.xml").read_text())
    assert after_run[n("exit100")] == "exit_status of job start = 100"
    assert after_run[f"{n('bad_wd_done')}.1"].startswith("can't chdir")
    entries = parse.parse_qstat_xml((FIXTURES / "qstat-live.xml").read_text())
    bad = by_id(parse.qstat_records(entries, errors=reasons))[n("bad_wd")]
    assert bad.reason == "error state: can't chdir to /nonexistent/dir: No such file or directory"


# --- qacct ----------------------------------------------------------------------------------------

def acct(cancelled=()) -> dict[str, QueueJob]:
    return by_id(parse.qacct_records((FIXTURES / "qacct-all.txt").read_text(), cancelled=cancelled))


@pytest.mark.parametrize("scenario, state, exitcode", [
    ("exit0", State.COMPLETED, 0),
    ("exit3", State.FAILED, 3),
    ("h_rt", State.TIMEOUT, 137),
    ("s_rt", State.TIMEOUT, 138),
    ("self_kill9", State.FAILED, 137),
    ("deleted_running", State.FAILED, 137),  # accounting alone cannot tell a qdel from a kill
    ("exit100", State.FAILED, 100),
    ("h_vmem", State.FAILED, 1),
    ("pe2_done", State.COMPLETED, 0),
])
def test_qacct_outcomes(scenario, state, exitcode):
    job = acct()[n(scenario)]
    assert (job.state, job.exitcode) == (state, exitcode), job


def test_qacct_fields():
    job = acct()[n("pe2_done")]
    assert job.cores == 2 and job.partition in ("all.q", "second.q") and job.nodes == ("vm",)
    assert job.user == "root" and job.name == "pe2_done"
    assert job.submit_time <= job.start_time <= job.end_time
    assert acct()[n("h_rt")].reason == "wall-time limit h_rt=3 reached"
    assert acct()[n("self_kill9")].reason == "killed by signal 9"


def test_qacct_array_tasks():
    array = n("array_exits")
    tasks = {j.task_id: j for j in acct().values() if j.array_id == array}
    assert {t: (j.id, j.exitcode) for t, j in tasks.items()} == \
        {0: (f"{array}.1", 0), 1: (f"{array}.2", 1), 2: (f"{array}.3", 2)}
    assert tasks[0].state is State.COMPLETED and tasks[1].state is State.FAILED


def test_qacct_cancelled_by_this_process():
    assert acct(cancelled={n("deleted_running")})[n("deleted_running")].state is State.CANCELLED
    array = n("array")  # phase 1's array, deleted while task 1 ran
    assert acct(cancelled={array})[f"{array}.1"].state is State.CANCELLED


def test_qacct_wanted_and_one_job():
    assert set(acct()) >= {n("exit0"), n("exit3")}
    one = parse.qacct_records((FIXTURES / "qacct-one.txt").read_text(), wanted={n("exit3")})
    assert [(j.id, j.state, j.exitcode) for j in one] == [(n("exit3"), State.FAILED, 3)]
    assert parse.qacct_records((FIXTURES / "qacct-all.txt").read_text(), wanted={"99999999"}) == []


def test_qacct_failed_before_start_has_no_exit_code():
    block = {"jobnumber": "9", "taskid": "undefined", "failed": "28  : changing into working directory",
             "exit_status": "0", "category": "NONE"}
    state, exitcode, reason = parse.accounting_outcome(block)
    assert (state, exitcode) == (State.FAILED, None)
    assert reason == "failed 28: changing into working directory"


def test_qacct_last_record_wins():
    text = (FIXTURES / "qacct-one.txt").read_text()
    rerun = text + text.replace("exit_status  3", "exit_status  0")
    [job] = parse.qacct_records(rerun)
    assert job.state is State.COMPLETED and job.exitcode == 0


@pytest.mark.parametrize("text, value", [("Wed Nov 25 14:29:41 2026", True), ("-/-", None), ("", None)])
def test_qacct_time(text, value):
    assert (parse_timestamp(text) is not None) if value else parse_timestamp(text) is None


def test_category_limits():
    assert parse.category_limits("-l h_rt=30,s_rt=2 -pe smp 2") == {"h_rt": "30", "s_rt": "2"}
    assert parse.category_limits("NONE") == {}


# --- merging and refine ---------------------------------------------------------------------------

def test_merge_prefers_qstat():
    a = QueueJob(id="5.1", state=State.RUNNING, array_id="5", task_id=0)
    b = QueueJob(id="5.1", state=State.FAILED, array_id="5", task_id=0)
    c = QueueJob(id="5.2", state=State.COMPLETED, array_id="5", task_id=1)
    assert merge_records([a], [b, c]) == [a, c]
    assert known_ids([a, QueueJob(id="7", state=State.PENDING)]) == {"5.1", "5", "7"}


def test_refine_oom_from_real_stderr():
    stderr = (FIXTURES / "h_vmem.err").read_text()
    job = acct()[n("h_vmem")]
    refined = parse.refine_oom(job, stderr)
    assert refined.state is State.OUT_OF_MEMORY and refined.exitcode == 1
    assert parse.refine_oom(job, "Traceback ...\nKeyError: 'x'\n") is None
    assert parse.refine_oom(acct()[n("exit0")], stderr) is None


def test_task_ids_both_ways_counted_from_one():
    from cluster_sge import plugin
    assert plugin.task_id("12", 0) == "12.1"
    assert plugin.parse_task_id("12.4") == ("12", 3)
    for other in ("12", "12.1-5:1", "x"):
        assert plugin.parse_task_id(other) is None


def test_job_contexts_from_qstat_j():
    text = (FIXTURES / "qstat-j-context.xml").read_text()
    assert parse.parse_job_contexts(text) == {"157": {"CLUSTER_CORE_TOKEN": "a1"}, "158": {"CLUSTER_CORE_TOKEN": "b1"}}
    assert parse.parse_job_contexts((FIXTURES / "qstat-j-unknown.xml").read_text()) == {}
    assert parse.parse_job_contexts((FIXTURES / "qstat-j-error.xml").read_text()) != {}  # jobs without a context
    with pytest.raises(ValueError):
        parse.parse_job_contexts("qstat: error")
