"""Parsers and the query on output captured from the servers CI runs (fixtures/*/real/, written by
capture_real_fixtures.py as pbstest; the jobs and commands are in each manifest.json). What happened to
each job is what the capture script did to it, not what the parsers say."""

from __future__ import annotations

import json

import pytest

from cluster_core.records import State
from cluster_torque import client, dialect, parse
from torque_testlib import fixture

P, H, C, F, X = State.PENDING, State.HELD, State.COMPLETED, State.FAILED, State.CANCELLED


def manifest(server):
    return json.loads(fixture(f"{server}/real/manifest.json"))


def torque(name):
    return parse.parse_torque_xml(fixture(f"torque/real/{name}.out"))


def pbs(name):
    return parse.parse_pbs_json(fixture(f"openpbs/real/{name}.out"))


def pbs_text(name):
    return parse.parse_qstat_f(fixture(f"openpbs/real/{name}.out"))


def outcomes(records):
    return [(r.id, r.state, r.exitcode) for r in records]


@pytest.mark.parametrize("server, expected", [("torque", (dialect.TORQUE, "6.1.3")),
                                              ("openpbs", (dialect.PBSPRO, "23.06.06"))])
def test_version(server, expected):
    flavour = dialect.from_version_output(fixture(f"{server}/real/qstat_version.out"))
    assert (flavour.dialect, flavour.version) == expected


# --- Torque 6.1.3 -------------------------------------------------------------------------------------

def test_torque_waiting_and_held_asked_together_then_deleted():
    assert [(r.id, r.state, r.raw_state) for r in torque("two_queued_asked_together")] == [
        ("124.vm", P, "W"), ("125.vm", H, "H")]
    # qdel'd before they ran: C with no exit status at all
    assert outcomes(torque("two_deleted_asked_together")) == [("124.vm", X, None), ("125.vm", X, None)]


def test_torque_lists_a_job_once_per_operand():
    records = torque("one_job_two_spellings")
    assert outcomes(records) == [("122.vm", F, 3)] * 2
    matched = client.match(["122.vm", "122"], records)
    assert {k: outcomes(v) for k, v in matched.items()} == {"122.vm": [("122.vm", F, 3)], "122": [("122", F, 3)]}


def test_torque_array_tasks():
    records = torque("array_finished")  # qstat -x -t '123[].vm': the tasks only
    assert outcomes(records) == [("123[0].vm", C, 0), ("123[1].vm", F, 3)]
    assert [(r.array_id, r.task_id, r.name) for r in records] == [("123[].vm", 0, "arr-0"), ("123[].vm", 1, "arr-1")]


def test_torque_workdir_with_a_backslash_fails_to_start():
    """-d with a backslash: Torque drops it from PBS_O_WORKDIR and the job cannot start (exit -2); the
    backend therefore leaves -d out for such paths (test_torque_render)."""
    (job,) = torque("odd_workdir")
    assert (job.state, job.exitcode) == (F, -2) and "JOB_EXEC code -2" in job.reason
    assert "\\back" not in fixture("torque/real/odd_workdir.out").split("PBS_O_WORKDIR=")[1].split(",")[0]


# --- OpenPBS master (23.06.06) ------------------------------------------------------------------------

def test_openpbs_json_keeps_only_the_first_operand():
    """qstat -f -F json -x -t 214.vm 215.vm printed 214.vm alone (exit 0, nothing on stderr); the text
    format of the same call lists both."""
    cmd = manifest("openpbs")["commands"]["two_queued_asked_together"]
    assert (cmd["argv"][-2:], cmd["rc"], cmd["stderr"]) == (["214.vm", "215.vm"], 0, "")
    assert [(r.id, r.state) for r in pbs("two_queued_asked_together")] == [("214.vm", P)]
    assert [(r.id, r.state, r.raw_state) for r in pbs_text("two_queued_asked_together_text")] == [
        ("214.vm", P, "W"), ("215.vm", H, "H")]
    assert outcomes(pbs_text("two_deleted_asked_together_text")) == [("214.vm", X, None), ("215.vm", X, None)]
    assert [r.id for r in pbs("one_job_two_spellings")] == ["212.vm"]  # asked as 212.vm and 212


def test_openpbs_query_asks_again_in_text_and_keeps_to_text(shims, monkeypatch):
    monkeypatch.setenv("CLUSTER_TORQUE_DIALECT", "pbspro")
    shims["qstat"].on(["-F", "json"], stdout=fixture("openpbs/real/two_queued_asked_together.out"))
    shims["qstat"].on(["-w"], stdout=fixture("openpbs/real/two_queued_asked_together_text.out"))
    records = client.query(dialect.PBSPRO, ["214.vm", "215.vm"])
    assert [(r.id, r.state) for r in records] == [("214.vm", P), ("215.vm", H)]
    assert shims["qstat"].calls == [["-f", "-F", "json", "-x", "-t", "214.vm", "215.vm"],
                                    ["-f", "-w", "-x", "-t", "215.vm"]]
    client.query(dialect.PBSPRO, ["214.vm", "215.vm"])  # later polls: one text call
    client.query(dialect.PBSPRO, ["214.vm"])            # one id: JSON is whole
    assert shims["qstat"].calls[2:] == [["-f", "-w", "-x", "-t", "214.vm", "215.vm"],
                                        ["-f", "-F", "json", "-x", "-t", "214.vm"]]


def test_openpbs_valid_escapes_are_left_alone():
    """A quote and a backslash in the working directory: valid JSON (\\\\' and \\\\\\\\), read as it is."""
    text = fixture("openpbs/real/odd_workdir.out")
    assert "\\\\'quote\\\\'" in text and "\\\\\\\\back" in text
    assert json.loads(parse.sanitise_json(text)) == json.loads(text)
    assert outcomes(pbs("odd_workdir")) == [("211.vm", C, 0)]


def test_openpbs_array_tasks():
    records = {r.id: r for r in pbs("array_finished")}
    assert {k: (r.state, r.exitcode) for k, r in records.items()} == {
        "213[].vm": (F, 1), "213[0].vm": (C, 0), "213[1].vm": (F, 3)}  # the parent: 1 when a task failed
    assert [(records[f"213[{i}].vm"].array_id, records[f"213[{i}].vm"].task_id) for i in (0, 1)] == \
        [("213[].vm", 0), ("213[].vm", 1)]
