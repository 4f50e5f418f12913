"""OpenPBS / PBS Pro ``qstat -f -F json`` (with its defects) and ``qstat -f`` text, on real captures.

Expected outcomes come from openpbs.md and the public projects (see fixtures/README.md).
"""

from __future__ import annotations

import calendar
import json

import pytest

from cluster_core.records import State
from cluster_torque import client, parse
from torque_testlib import fixture

P, H, R, E, C, F, X, T, U = (State.PENDING, State.HELD, State.RUNNING, State.COMPLETING, State.COMPLETED,
                             State.FAILED, State.CANCELLED, State.TIMEOUT, State.UNKNOWN)

# OpenPBS 23.06.06, jobs run as root (openpbs.md Step 7, fixtures/README.md)
FINAL_ROOT = {
    "4.vm": (C, 0), "5.vm": (C, 0), "6.vm": (C, 0), "7.vm": (C, 0), "8.vm": (C, 0), "9[].vm": (C, 0),
    "10.vm": (C, 0), "11.vm": (F, 3), "12.vm": (X, None), "13.vm": (T, -29), "14.vm": (X, None),
}
# master build, jobs run as pbstest (openpbs.md Step 12)
FINAL_MASTER = {
    "0.vm": (X, None), "1.vm": (C, 0), "2.vm": (C, 0), "3.vm": (C, 0), "4[].vm": (C, 0), "5.vm": (C, 0),
    "6.vm": (F, 3), "7.vm": (T, -29), "8.vm": (X, 271), "9.vm": (X, None),
}


def by_id(records):
    out = {r.id: r for r in records}
    assert len(out) == len(records)
    return out


def js(name):
    return by_id(parse.parse_pbs_json(fixture(f"openpbs/{name}")))


def outcomes(jobs):
    return {k: (v.state, v.exitcode) for k, v in jobs.items()}


# --- finished jobs (qstat -x) -------------------------------------------------------------------------

def test_all_finished_as_root():
    assert outcomes(js("qstat_xf_json_all_finished.json")) == FINAL_ROOT


def test_all_finished_with_subjobs():
    jobs = js("qstat_xf_json_t_all_finished.json")
    expected = dict(FINAL_ROOT, **{f"9[{i}].vm": (C, 0) for i in range(4)})
    assert outcomes(jobs) == expected
    assert [(jobs[f"9[{i}].vm"].array_id, jobs[f"9[{i}].vm"].task_id) for i in range(4)] == \
        [("9[].vm", i) for i in range(4)]
    assert jobs["9[].vm"].array_id is None and jobs["9[].vm"].task_id is None


def test_deleted_running_root_job_reads_exit_0_but_is_cancelled():
    job = js("qstat_xf_json_deleted_running.json")["15.vm"]
    assert (job.state, job.exitcode, job.raw_state) == (X, 0, "F")
    assert "terminated by root@localhost" in job.reason


def test_finished_4_and_5():
    jobs = js("qstat_xf_json_finished_4_5.json")
    assert outcomes(jobs) == {"4.vm": (C, 0), "5.vm": (C, 0)}
    assert (jobs["4.vm"].user, jobs["5.vm"].user) == ("pbstest", "root")


def test_dependencies_and_deleted_array():
    jobs = js("qstat_xf_json_t_deps_arraydel.json")
    assert outcomes(jobs) == {
        "13.vm": (F, 2), "14.vm": (C, 0), "15.vm": (C, 0), "16.vm": (X, None),
        "17[].vm": (X, 0), "17[1].vm": (X, 0), "17[2].vm": (X, 0), "17[3].vm": (X, 0), "17[4].vm": (X, 0),
        "18.vm": (C, 0)}
    # queued subjobs carry no array_id attribute: the id says which array they belong to
    assert (jobs["17[2].vm"].array_id, jobs["17[2].vm"].task_id) == ("17[].vm", 2)


def test_master_build_final_states():
    assert outcomes(js("master/qstat_xf_json_final.json")) == FINAL_MASTER
    jobs = js("master/qstat_xf_json_t_final.json")
    assert outcomes(jobs) == dict(FINAL_MASTER, **{f"4[{i}].vm": (C, 0) for i in range(4)})
    assert jobs["2.vm"].cores == 2 and jobs["2.vm"].nodes == ("vm",)   # select=1:ncpus=2, exec_host vm/0*2
    assert jobs["0.vm"].name == "inf"


def test_times_are_ctime_strings(utc):
    job = js("qstat_xf_json_deleted_running.json")["15.vm"]
    assert job.submit_time == calendar.timegm((2026, 11, 25, 13, 7, 7))    # ctime
    assert job.start_time == calendar.timegm((2026, 11, 25, 13, 7, 7))     # stime
    assert job.end_time == calendar.timegm((2026, 11, 25, 13, 7, 10))      # obittime


# --- active jobs --------------------------------------------------------------------------------------

def test_mixed_states():
    jobs = js("qstat_f_json_mixed_states.json")
    assert {k: v.state for k, v in jobs.items()} == {
        "6.vm": R, "7.vm": P, "8.vm": H, "9[].vm": P, "10.vm": H, "11.vm": P, "12.vm": H, "13.vm": P,
        "14.vm": P}
    assert jobs["8.vm"].reason == "user hold"
    assert jobs["10.vm"].reason == "system hold; depends on afterok:6.vm@vm"
    assert jobs["6.vm"].cores == 2 and jobs["6.vm"].partition == "workq" and jobs["6.vm"].user == "root"


def test_mixed_states_with_subjobs():
    jobs = js("qstat_f_json_t_mixed_states.json")
    assert {f"9[{i}].vm" for i in range(4)} <= set(jobs)
    assert all(jobs[f"9[{i}].vm"].state is P for i in range(4))


def test_the_subjobs_of_a_held_array_are_held_until_released():
    """PBS Pro shows them Q with the array's hold (Hold_Types u): they do not run, so they are held."""
    held = js("qstat_xf_json_t_held_array.json")
    assert {k: v.state for k, v in held.items()} == {
        "2188[].vm": H, "2188[0].vm": H, "2188[1].vm": H, "2188[2].vm": H}
    assert held["2188[1].vm"].reason == "user hold"
    released = js("qstat_xf_json_t_released_array.json")
    assert {k: v.state for k, v in released.items()} == {
        "2188[].vm": R, "2188[0].vm": R, "2188[1].vm": R, "2188[2].vm": P}


def test_array_begun():
    jobs = js("qstat_f_json_t_array_running.json")
    assert {k: v.state for k, v in jobs.items()} == {
        "9[].vm": R, "9[0].vm": R, "9[1].vm": R, "9[2].vm": P, "9[3].vm": P, "10.vm": P, "11.vm": P,
        "12.vm": H, "13.vm": P}
    assert jobs["9[].vm"].raw_state == "B"


def test_master_initial_and_array_begun():
    jobs = js("master/qstat_f_json_initial.json")
    assert {k: v.state for k, v in jobs.items()} == {
        "2.vm": R, "3.vm": P, "4[].vm": P, "5.vm": H, "6.vm": P, "7.vm": P, "8.vm": P, "9.vm": H}
    assert jobs["2.vm"].user == "pbstest"
    assert len(js("master/qstat_f_json_t_initial.json")) == 12
    begun = js("master/qstat_f_json_t_array_B.json")
    assert (begun["4[].vm"].state, begun["4[0].vm"].state, begun["4[2].vm"].state) == (R, R, P)


@pytest.mark.parametrize("name, job_id", [("qstat_f_json_running_single.json", "15.vm"),
                                          ("qstat_f_json_walltime_job_running.json", "13.vm")])
def test_single_running(name, job_id):
    jobs = js(name)
    assert list(jobs) == [job_id] and jobs[job_id].state is R and jobs[job_id].nodes == ("vm",)


def test_exiting_job_has_no_exit_status_yet():
    text = fixture("openpbs/qstat_f_json_running_single.json").replace('"job_state":"R"', '"job_state":"E"')
    job = parse.parse_pbs_json(text)[0]
    assert (job.state, job.exitcode) == (E, None)  # openpbs.md Step 11: E without Exit_status, poll on


# --- empty results and errors -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["qstat_f_json_running_or_queued.json", "qstat_f_json_special_chars.json",
                                  "master/qstat_unknown.stdout"])
def test_no_jobs_key(name):
    assert parse.parse_pbs_json(fixture(f"openpbs/{name}")) == []


def test_stderr_mixed_into_stdout():
    # captured with 2>&1: "qstat: 15.vm Job has finished, use -x or -H ..." then the JSON header
    assert parse.parse_pbs_json(fixture("openpbs/qstat_f_json_after_qdel_running.json")) == []


def test_unknown_job_id_message():
    stderr = fixture("openpbs/master/qstat_unknown.stderr")
    assert client.unknown_ids(stderr) == {"99999.vm"}
    assert client.unknown_ids("qstat: Unknown Job Id Error 3685292.mgt.meerkat.mcri.edu.au\n") == \
        {"3685292.mgt.meerkat.mcri.edu.au"}  # Torque's wording (bpipe's capture, pbs-sge.md A9)
    mixed = fixture("openpbs/qstat_f_json_after_qdel_running.json")  # stderr line captured with stdout
    assert client.unknown_ids(mixed) == {"15.vm"}


# --- JSON defects -------------------------------------------------------------------------------------

def _with_v23_defects() -> str:
    """A real v23.06.06 record with the invalid tokens openpbs.md Step 10 saw in that version's output:
    ``-N inf`` -> ``"Job_Name":inf`` and ``-v A=1.,B=.5,C=-00,D=nan`` -> bare tokens; plus openpbs#1255's
    ``"foo":005``."""
    text = fixture("openpbs/qstat_xf_json_all_finished.json")
    text = text.replace('"Job_Name":"delq"', '"Job_Name":inf', 1)
    return text.replace('"PBS_O_SYSTEM":"Linux",',
                        '"PBS_O_SYSTEM":"Linux",\n                "A":1.,\n                "B":.5,\n'
                        '                "C":-00,\n                "D":nan,\n                "foo":005,')


def test_v23_invalid_numbers_are_repaired():
    text = _with_v23_defects()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    jobs = by_id(parse.parse_pbs_json(text))
    assert outcomes(jobs) == FINAL_ROOT
    assert jobs["14.vm"].name == "inf"
    repaired = json.loads(parse.sanitise_json(text))
    variables = repaired["Jobs"]["14.vm"]["Variable_List"]
    assert (variables["A"], variables["B"], variables["C"], variables["D"], variables["foo"]) == \
        ("1.", ".5", "-00", "nan", "005")
    assert repaired["Jobs"]["14.vm"]["Priority"] == 0  # valid numbers stay numbers


def test_sanitise_leaves_valid_json_and_strings_alone():
    text = fixture("openpbs/master/qstat_xf_json_t_final.json")
    assert json.loads(parse.sanitise_json(text)) == json.loads(text)
    tricky = '{"a":"x: inf, .5","b":-29,"c":1e5,"d":true,"e":null,"f":"q\\"uote:nan"}'
    assert parse.sanitise_json(tricky) == tricky


def test_invalid_escapes_are_kept_literally():
    # openpbs#2049: PBS escaped commas and quotes in env values as \, and \' (invalid JSON escapes)
    text = fixture("openpbs/qstat_xf_json_finished_4_5.json").replace(
        '"PBS_O_LANG":"C.UTF-8"', '"PBS_O_LANG":"a\\,b\\\'c"', 1)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert outcomes(by_id(parse.parse_pbs_json(text))) == {"4.vm": (C, 0), "5.vm": (C, 0)}


def test_exit_status_as_a_string():
    # baw-server issues #875/#878/#880: "PBS sometimes returns exit status as a string"
    doc = json.loads(fixture("public/baw_server_openpbs_22.05.11_finished.json"))
    doc["Jobs"]["0.725ccdf1a5fb"]["Exit_status"] = "-29"
    job = parse.parse_pbs_json(json.dumps(doc))[0]
    assert (job.state, job.exitcode) == (T, -29)


def test_unrepairable_json_is_a_parse_error():
    # openpbs#830: an unescaped double quote inside a comment
    text = fixture("openpbs/qstat_xf_json_finished_4_5.json").replace(
        'and finished"', 'and "finished""', 1)
    with pytest.raises(parse.ParseError):
        parse.parse_pbs_json(text)


def test_several_documents_are_merged():
    text = fixture("openpbs/qstat_xf_json_finished_4_5.json") + fixture("openpbs/qstat_xf_json_deleted_running.json")
    assert set(js_text(text)) == {"4.vm", "5.vm", "15.vm"}


def js_text(text):
    return by_id(parse.parse_pbs_json(text))


# --- public PBS Pro / OpenPBS -------------------------------------------------------------------------

def test_baw_server_finished_job(utc):
    job = parse.parse_pbs_json(fixture("public/baw_server_openpbs_22.05.11_finished.json"))[0]
    assert (job.id, job.state, job.exitcode, job.user, job.partition) == \
        ("0.725ccdf1a5fb", C, 0, "pbsuser", "workq")
    assert job.cores == 1 and job.nodes == ("725ccdf1a5fb",)
    assert job.end_time == calendar.timegm((2022, 10, 11, 8, 13, 47))


def test_aiida_pbspro_text(utc):
    jobs = by_id(parse.parse_qstat_f(fixture("public/aiida_pbspro_qstat_f.txt")))
    assert {k: v.state for k, v in jobs.items()} == {
        "68350.mycluster": P, "68351.mycluster": P, "69301.mycluster": R, "69302.mycluster": H,
        "74164.mycluster": R, "74165.mycluster": H}
    running = jobs["69301.mycluster"]
    assert (running.user, running.cores, running.nodes) == ("user02", 64, ("b141", "b142", "b143", "b144"))
    assert jobs["74164.mycluster"].nodes == ("b270", "b275") and jobs["74164.mycluster"].user == "user3"
    assert jobs["68350.mycluster"].cores == 240
    assert jobs["68350.mycluster"].submit_time == calendar.timegm((2013, 4, 9, 15, 1, 47))  # "Tue Apr  9"
    attrs = dict(parse.qstat_f_attrs(fixture("public/aiida_pbspro_qstat_f.txt")))["69301.mycluster"]
    assert attrs["exec_vnode"] == "(b141:ncpus=16)+(b142:ncpus=16)+(b143:ncpus=16)+(b144:ncpus=16)"
    assert attrs["depend"] == "afterok:69299.mycluster@mycluster.cluster,beforeok:69302.mycluster@mycluster.cluster"


def test_pysqa_gadi_text_with_space_continuations(utc):
    jobs = by_id(parse.parse_qstat_f(fixture("public/pysqa_pbspro_gadi_qstat_f.txt")))
    assert {k: v.state for k, v in jobs.items()} == {
        "80005196.gadi-pbs": R, "80005197.gadi-pbs": P, "80005198.gadi-pbs": P}
    long_job = jobs["80005198.gadi-pbs"]
    assert (long_job.name, long_job.user, long_job.cores, long_job.partition) == \
        ("test_asdfasdfasdfasdfasdfasdfasdfasdfasdfasdf", "fgh562", 96, "normal-exec")
    attrs = dict(parse.qstat_f_attrs(fixture("public/pysqa_pbspro_gadi_qstat_f.txt")))["80005196.gadi-pbs"]
    assert attrs["Resource_List.select"] == "2:ncpus=48:mpiprocs=48:mem=34359738368:job_tags=normal:jobfs=104857600"
    assert attrs["Error_Path"] == "gadi.nci.org.au:/scratch/a01/asd562/VASP/test/test1/test1.e80005196"


def test_text_of_finished_pbs_jobs():
    """qstat -f (text) of the same finished jobs reads like the JSON; built from the JSON capture in the
    text layout PBS prints (4-space attributes), as the fallback would receive it."""
    doc = json.loads(fixture("openpbs/qstat_xf_json_all_finished.json"))
    lines = []
    for job_id, attrs in doc["Jobs"].items():
        lines.append(f"Job Id: {job_id}")
        for key, value in attrs.items():
            if isinstance(value, dict):
                for sub, subvalue in value.items():
                    lines.append(f"    {key}.{sub} = {subvalue}")
            else:
                lines.append(f"    {key} = {value}")
        lines.append("")
    assert outcomes(by_id(parse.parse_qstat_f("\n".join(lines)))) == FINAL_ROOT
