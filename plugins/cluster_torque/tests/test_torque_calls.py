"""The hooks end to end against shims that print real captured output (no server is started here)."""

from __future__ import annotations

import re
import subprocess

import pytest

import cluster_core.commands
from cluster_core import plugins
from cluster_core.errors import SchedulerError, SubmitError
from cluster_core.options import check_arguments
from cluster_core.records import State
from cluster_torque import client, parse, plugin
from torque_testlib import fixture

QSTAT_B = "Server           Max   Tot   Que   Run   Hld   Wat   Trn   Ext Status\n" \
          "---------------- ----- ----- ----- ----- ----- ----- ----- ----- -----------\n" \
          "vm                   0     0     0     0     0     0     0     0 Active\n"  # shape of qstat -B


@pytest.fixture
def torque(monkeypatch):
    monkeypatch.setenv("CLUSTER_TORQUE_DIALECT", "torque")


@pytest.fixture
def pbspro(monkeypatch):
    monkeypatch.setenv("CLUSTER_TORQUE_DIALECT", "pbspro")


@pytest.fixture
def backend():
    plugins.reset()
    yield plugins.backend("torque")
    plugins.reset()


# --- who are you --------------------------------------------------------------------------------------

def test_backend_info(backend):
    info = backend.info
    assert (info.name, info.directive_prefix, info.supports_arrays, info.poll_interval, info.priority,
            info.distribution) == ("torque", "#PBS", True, 2.0, 90, "cluster-torque")
    assert info.task_id_variable.split() == ["PBS_ARRAYID", "PBS_ARRAY_INDEX"]


@pytest.mark.parametrize("env, index", [({"PBS_ARRAYID": "3"}, "3"), ({"PBS_ARRAY_INDEX": "5"}, "5")])
def test_task_index_from_either_dialect(env, index):
    """The core reads the first set variable of task_id_variable: Torque's or PBS Pro's."""
    variables = plugin.backend_info().task_id_variable.split()
    expr = ""
    for var in reversed(variables):  # what cluster_core.script.TaskSpec writes
        expr = f"${{{var}:-{expr}}}" if expr else f"${{{var}}}"
    out = subprocess.run(["bash", "-c", f"echo $(( {expr} + 0 ))"], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == index


def test_detect_torque(shims, backend):
    shims["qstat"].on(["--version"], stdout=fixture("torque/qstat_version.txt")).on(["-B"], stdout=QSTAT_B)
    det = backend.detect()
    assert det.available and det.reason == "Torque 6.1.3: server vm answered"


def test_detect_openpbs(shims, backend):
    shims["qstat"].on(["--version"], stdout=fixture("openpbs/qstat_version.txt")).on(["-B"], stdout=QSTAT_B)
    det = backend.detect()
    assert det.available and "OpenPBS/PBS Pro 23.06.06" in det.reason


def test_detect_server_down(shims, backend):
    shims["qstat"].on(["--version"], stdout=fixture("torque/qstat_version.txt")).on(
        ["-B"], stderr="qstat: cannot connect to server vm (errno=111) Connection refused\n", rc=1)
    det = backend.detect()
    assert not det.available
    assert "server did not answer" in det.reason and "Connection refused" in det.reason


def test_detect_server_hangs(shims, backend, monkeypatch):
    monkeypatch.setattr(plugin, "DETECT_TIMEOUT", 0.3)
    shims["qstat"].on(["--version"], stdout=fixture("torque/qstat_version.txt")).on(["-B"], sleep=5)
    det = backend.detect()
    assert not det.available and "did not answer within 0.3 s" in det.reason


def test_detect_without_qstat(backend, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(cluster_core.commands, "EXTRA_DIRS", ())  # CI machines have several qstat installed
    det = backend.detect()
    assert not det.available and "qstat not found on PATH" in det.reason
    monkeypatch.setenv("CLUSTER_QSTAT", "/nonexistent/qstat")
    det = backend.detect()
    assert not det.available and "/nonexistent/qstat" in det.reason


def test_detect_slurm_wrappers(tmp_path, monkeypatch, backend):
    wrapper = tmp_path / "qstat"
    wrapper.write_text("#! /usr/bin/perl -w\n# qstat - queries slurm jobs in familar pbs format.\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("CLUSTER_QSTAT", str(wrapper))
    det = backend.detect()
    assert not det.available and "Slurm's Torque-compatibility wrapper" in det.reason


def test_detect_grid_engine_qstat_on_path(tmp_path, monkeypatch, backend):
    """Debian's gridengine-client puts its qstat in /usr/bin: detection says whose it is and how to
    point the backend at Torque's or PBS's commands instead."""
    path = tmp_path / "bin"
    path.mkdir()
    qstat = path / "qstat"
    qstat.write_text("#!/bin/sh\necho 'SGE 8.1.9'; echo 'usage: qstat [options]'; exit 1\n")
    qstat.chmod(0o755)
    monkeypatch.setenv("PATH", str(path))
    det = backend.detect()
    assert not det.available
    assert f"{qstat} is Grid Engine's" in det.reason and "torque.bin_dir" in det.reason


def test_every_command_comes_from_the_backends_bin_dir(bin_dir_shims, backend, not_root, tmp_path):
    """With $CLUSTER_TORQUE_BIN set, detect, submit, qstat, qdel and the array limit all use the
    commands there, never the Grid Engine qstat/qsub/qdel first on PATH."""
    shims = bin_dir_shims
    shims["qstat"].on(["--version"], stdout=fixture("torque/qstat_version.txt")).on(["-B", "-f"], stdout="") \
        .on(["-B"], stdout=QSTAT_B).on(["-x"], stdout=fixture("torque/qstat_x_completed_exit3.xml"))
    shims["qsub"].on([], stdout="66.vm\n")
    shims["qdel"].on([])
    assert backend.detect().available
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\ntrue\n")
    options = check_arguments({"outfile": str(tmp_path / "o"), "errfile": str(tmp_path / "e")})
    assert backend.submit(script, options, True) == "66.vm"
    assert [j.id for j in backend.parse_queue(["66.vm"])] == ["66.vm"]
    assert backend.cancel(["66.vm"]) is True
    assert backend.max_array_size() is None
    (qsub,) = shims["qsub"].calls
    assert qsub[:2] == ["-v", qsub[1]] and qsub[1].startswith("CLUSTER_CORE_TOKEN=") and qsub[2:] == [str(script)]
    assert shims["qdel"].calls == [["66.vm"]]
    assert ["--version"] in shims["qstat"].calls and ["-x", "-t", "66.vm"] in shims["qstat"].calls


def test_bin_dir_without_qstat(tmp_path, monkeypatch, backend):
    monkeypatch.setenv("CLUSTER_TORQUE_BIN", str(tmp_path))
    det = backend.detect()
    assert not det.available and det.reason == f"no qstat in $CLUSTER_TORQUE_BIN={tmp_path}"


# --- submit -------------------------------------------------------------------------------------------

def test_submit_returns_the_id(shims, torque, not_root, backend, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n#PBS -N x\ntrue\n")
    shims["qsub"].on([], stdout="0.vm\n")
    options = check_arguments({"name": "x", "outfile": str(tmp_path / "o"), "errfile": str(tmp_path / "e")})
    assert backend.submit(script, options, True) == "0.vm"
    (args,) = shims["qsub"].calls
    assert re.fullmatch(r"CLUSTER_CORE_TOKEN=[0-9a-f]{32}", args[1]) and args == ["-v", args[1], str(script)]
    assert shims["qstat"].calls == []  # a submission that worked asks nothing more


def test_submit_file_passes_options_on_the_command_line(shims, pbspro, not_root, backend, tmp_path):
    script = tmp_path / "user.sh"
    script.write_text("true\n")
    shims["qsub"].on([], stdout="9[].vm\n")
    options = check_arguments({"cores": 2, "array": "0-3", "outfile": "/o", "errfile": "/e"})
    assert backend.submit(script, options, False) == "9[].vm"
    (args,) = shims["qsub"].calls
    assert args == ["-l", "select=1:ncpus=2", "-J", "0-3", "-o", "/o", "-e", "/e", "-v", args[-2], str(script)]
    assert args[-2].startswith("CLUSTER_CORE_TOKEN=")


def test_submit_as_root_is_refused_with_a_reason(shims, torque, monkeypatch, tmp_path):
    monkeypatch.setattr(client, "root_refusal", lambda: "cannot submit as root: qsub refuses root")
    with pytest.raises(SubmitError, match="cannot submit as root"):
        plugin.submit(tmp_path / "s.sh", {}, True)
    assert shims["qsub"].calls == []
    # allowed on request; then Torque's qsub itself refuses (torque/qsub_as_root.txt)
    monkeypatch.setenv(plugin.ENV_ALLOW_ROOT, "1")
    shims["qsub"].on([], stderr="qsub can not be run as root\n", rc=1)
    with pytest.raises(SubmitError, match="cannot submit as root"):
        plugin.submit(tmp_path / "s.sh", {}, True)


def test_root_refusal_names_both_servers():
    message = client.root_refusal()
    if message is not None:  # the test suite may run as root or not
        assert "Torque's qsub refuses root" in message and "OpenPBS" in message


def test_submit_retries_a_busy_server(shims, torque, not_root, tmp_path):
    shims["qsub"].sequence([], [("", "qsub: Pbs Server is currently too busy to service this request\n", 1),
                                ("12.vm\n", "", 0)])
    assert plugin.submit(tmp_path / "s.sh", {}, True) == "12.vm"
    assert len(shims["qsub"].calls) == 2


def test_submit_timeout_asks_qstat_before_trying_again(shims, torque, not_root, tmp_path, monkeypatch):
    """A qsub that timed out may have made the job: qsub runs again only after qstat lists no job with the
    token (here it never does: three tries, and the error says the job was not created)."""
    monkeypatch.setattr(client, "SUBMIT_TIMEOUT", 0.3)
    shims["qsub"].on([], stdout="13.vm\n", sleep=5)
    shims["qstat"].on(["-x"], stdout=fixture("torque/qstat_x_token.xml"))
    with pytest.raises(SubmitError, match="did not answer within 0.3 s") as err:
        plugin.submit(tmp_path / "s.sh", {}, True)
    assert err.value.transient
    assert len(shims["qsub"].calls) == 3 and shims["qstat"].calls == [["-x"]] * 3


TOKEN = "0123456789abcdef0123456789abcdef"  # the token of job tokjob in the *_token fixtures
EOF_TORQUE = "qsub: submit error (End of File)\n"
DOWN = "qstat: cannot connect to server vm (errno=111) Connection refused\n"


def submit_with_token(tmp_path, dialect="torque", outputs=()):
    return client.submit(tmp_path / "s.sh", ["-v", f"CLUSTER_CORE_TOKEN={TOKEN}"], token=TOKEN, dialect=dialect,
                         outputs=outputs)


@pytest.mark.parametrize("dialect, query, answer", [
    ("torque", ["-x"], "torque/qstat_x_token.xml"),
    ("pbspro", ["-f", "-w", "-x"], "openpbs/qstat_f_w_x_token.txt"),
])
def test_lost_answer_is_found_by_the_token(shims, tmp_path, dialect, query, answer):
    shims["qsub"].on([], stderr=EOF_TORQUE, rc=1)
    shims["qstat"].sequence(query, [("", DOWN, 1), (fixture(answer), "", 0)])  # asked again after a failure
    assert submit_with_token(tmp_path, dialect) in ("338.vm", "318.vm")
    assert len(shims["qsub"].calls) == 1 and shims["qstat"].calls == [query, query]


def test_no_job_with_the_token_allows_another_try(shims, tmp_path):
    shims["qsub"].sequence([], [("", EOF_TORQUE, 1), ("14.vm\n", "", 0)])
    shims["qstat"].on(["-x"], stdout='<?xml version="1.0"?>\n<Data></Data>\n')
    assert submit_with_token(tmp_path) == "14.vm"
    assert len(shims["qsub"].calls) == 2 and len(shims["qstat"].calls) == 1


def test_qstat_that_never_answers_is_no_no(shims, tmp_path, monkeypatch):
    monkeypatch.setattr(client, "CHECK_PATIENCE", 0.5)
    shims["qsub"].on([], stderr=EOF_TORQUE, rc=1)
    shims["qstat"].on(["-x"], stderr=DOWN, rc=1)
    with pytest.raises(SubmitError, match=f"not submitted again.*CLUSTER_CORE_TOKEN={TOKEN}") as err:
        submit_with_token(tmp_path)
    assert err.value.transient and len(shims["qsub"].calls) == 1 and len(shims["qstat"].calls) >= 2


def test_qstat_refusing_for_good_is_not_asked_again(shims, tmp_path):
    shims["qsub"].on([], stderr=EOF_TORQUE, rc=1)
    shims["qstat"].on(["-x"], stderr="qstat: Unauthorized Request\n", rc=1)
    with pytest.raises(SubmitError, match="cannot tell whether the job was created.*Unauthorized"):
        submit_with_token(tmp_path)
    assert len(shims["qstat"].calls) == 1


def test_outputs_that_appeared_say_the_job_ran(shims, tmp_path):
    """No listed job carries the token (the server forgot it: keep_completed 0, no job history), but its
    output file appeared while qsub ran: it is not submitted again."""
    out = tmp_path / "job.out"
    shims["qsub"].on([], stdout="", stderr=EOF_TORQUE, rc=1)
    shims["qstat"].on(["-x"], stdout='<?xml version="1.0"?>\n<Data></Data>\n')
    shims["qsub"].path.write_text(shims["qsub"].path.read_text().replace(
        "import json, sys", f"import json, sys; open({str(out)!r}, 'w').close()"))
    with pytest.raises(SubmitError, match="it was created and has run"):
        submit_with_token(tmp_path, outputs=(str(out), None))
    assert len(shims["qsub"].calls) == 1


def test_a_server_out_of_reach_is_tried_again_without_asking(shims, tmp_path):
    shims["qsub"].sequence([], [("", "qsub: cannot connect to server vm (errno=111) Connection refused\n", 1),
                                ("15.vm\n", "", 0)])
    assert submit_with_token(tmp_path) == "15.vm"
    assert shims["qstat"].calls == []


def test_without_a_token_a_lost_answer_is_reported(shims, tmp_path):
    shims["qsub"].on([], stderr=EOF_TORQUE, rc=1)
    with pytest.raises(SubmitError, match="may or may not have been queued") as err:
        client.submit(tmp_path / "s.sh", [])
    assert err.value.transient and len(shims["qsub"].calls) == 1 and shims["qstat"].calls == []


def test_ids_carrying_the_token_in_both_formats():
    marker = f"CLUSTER_CORE_TOKEN={TOKEN}"
    assert parse.ids_carrying(fixture("torque/qstat_x_token.xml"), marker, xml=True) == ["338.vm"]
    assert parse.ids_carrying(fixture("openpbs/qstat_f_w_x_token.txt"), marker, xml=False) == ["318.vm"]
    assert parse.ids_carrying(fixture("torque/qstat_x_token.xml"), marker + "f", xml=True) == []
    assert parse.ids_carrying("", marker, xml=True) == [] and parse.ids_carrying("", marker, xml=False) == []


# --- the token and the job's own variables ----------------------------------------------------------------

def test_token_joins_the_variables_of_the_options(tmp_path):
    """Both servers keep the last -v only: the token's -v repeats the job's own."""
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/bash\n#PBS -N x\ntrue\n")
    rendered = ["-l", "nodes=1:ppn=1", "-v", "A=1,B", "-N", "x"]
    assert client.tagged_args([], rendered, script, TOKEN, True) == ["-v", f"A=1,B,CLUSTER_CORE_TOKEN={TOKEN}"]
    assert client.tagged_args(rendered, rendered, script, TOKEN, False) == \
        [*rendered, "-v", f"A=1,B,CLUSTER_CORE_TOKEN={TOKEN}"]
    assert client.tagged_args([], ["-V"], script, TOKEN, True) == ["-v", f"CLUSTER_CORE_TOKEN={TOKEN}"]
    extra = ["-v", "A=1", "-W", "x=y", "-vC=3"]  # an extra= -v after the export one is the one qsub keeps
    assert client.tagged_args([], extra, script, TOKEN, True) == ["-v", f"C=3,CLUSTER_CORE_TOKEN={TOKEN}"]


def test_a_users_script_that_sets_variables_gets_no_token(tmp_path, monkeypatch):
    mine = tmp_path / "mine.sh"
    mine.write_text("#!/bin/bash\n#PBS -l nodes=1\n#PBS -N a -v MINE=1\necho $MINE\n")
    assert client.tagged_args([], [], mine, TOKEN, False) is None
    assert client.tagged_args([], ["-v", "X=1"], mine, TOKEN, False) == ["-v", f"X=1,CLUSTER_CORE_TOKEN={TOKEN}"]
    plain = tmp_path / "plain.sh"
    plain.write_text("#!/bin/bash\n#PBS -N my-vjob -V\necho -v\n")
    assert client.tagged_args([], [], plain, TOKEN, False) == ["-v", f"CLUSTER_CORE_TOKEN={TOKEN}"]
    assert client.tagged_args([], ["-C", "#MY"], mine, TOKEN, False) is not None  # not its prefix
    monkeypatch.setenv("PBS_DPREFIX", "#MY")
    assert client.tagged_args([], [], mine, TOKEN, False) is not None
    assert client.tagged_args([], ["positional"], mine, TOKEN, True) is None  # cannot be read: no token


@pytest.mark.parametrize("stderr, keyword", [
    ("qsub: submit error (Unknown queue MSG=requested queue not found)\n", "partition"),
    ("qsub: illegal -N value\n", "name"),
    ("qsub: cannot send environment with the job\n", "export"),
    ("qsub: Job exceeds queue resource limits MSG=cannot satisfy queue max walltime requirement\n", "time"),
    ("qsub: Bad UID for job execution\n", None),
])
def test_submit_errors_name_the_keyword(shims, torque, not_root, tmp_path, stderr, keyword):
    shims["qsub"].on([], stderr=stderr, rc=1)
    with pytest.raises(SubmitError) as err:
        plugin.submit(tmp_path / "s.sh", {}, True)
    assert err.value.keyword == keyword
    assert stderr.strip() in str(err.value)


def test_qsub_output_with_a_warning_first():
    assert client.job_id_from_qsub("qsub: warning: resource x is deprecated\n80005196.gadi-pbs\n") == \
        "80005196.gadi-pbs"
    with pytest.raises(SubmitError):
        client.job_id_from_qsub("nothing useful\n")


# --- parse_queue --------------------------------------------------------------------------------------

def test_torque_one_call_and_unknown_ids_do_not_hide_others(shims, torque, backend):
    # Torque prints one XML document per operand and names the purged id on stderr (exit 153)
    shims["qstat"].on(["-x", "-t"], stdout=fixture("torque/qstat_x_2.vm_state.xml")
                      + fixture("torque/qstat_x_6.vm_state.xml"),
                      stderr="qstat: Unknown Job Id Error 99.vm\n", rc=153)
    records = backend.parse_queue(["2", "6.vm.example.org", "99.vm"])
    assert [(r.id, r.state, r.exitcode) for r in records] == [
        ("2", State.FAILED, 3), ("6.vm.example.org", State.TIMEOUT, -11)]   # asked spellings kept
    assert shims["qstat"].calls == [["-x", "-t", "2", "6.vm.example.org", "99.vm"]]


def test_two_spellings_of_one_job_give_one_record_each(shims, torque, backend):
    # asked for as 2 and as 2.vm, Torque prints the job once per operand (seen on the real 6.1.3)
    twice = fixture("torque/qstat_x_2.vm_state.xml")
    shims["qstat"].on(["-x", "-t"], stdout=twice + twice)
    records = backend.parse_queue(["2", "2.vm"])
    assert [(r.id, r.exitcode) for r in records] == [("2", 3), ("2.vm", 3)]


def test_torque_array_is_reported_per_task(shims, torque, backend):
    shims["qstat"].on(["-x", "-t", "1[].vm"], stdout=fixture("torque/qstat_x_t_array.xml"))
    records = backend.parse_queue(["1[].vm"])
    assert [(r.id, r.state, r.array_id, r.task_id) for r in records] == [
        ("1[0].vm", State.RUNNING, "1[].vm", 0), ("1[1].vm", State.PENDING, "1[].vm", 1),
        ("1[2].vm", State.PENDING, "1[].vm", 2), ("1[3].vm", State.PENDING, "1[].vm", 3)]


def test_pbspro_query_uses_history_and_json(shims, pbspro, backend):
    shims["qstat"].on(["-f", "-F", "json", "-x", "-t"], stdout=fixture("openpbs/qstat_xf_json_t_all_finished.json"))
    records = backend.parse_queue(["11.vm", "13.vm", "14.vm", "9[].vm"])
    assert [(r.id, r.state, r.exitcode) for r in records] == [
        ("11.vm", State.FAILED, 3), ("13.vm", State.TIMEOUT, -29), ("14.vm", State.CANCELLED, None),
        ("9[].vm", State.COMPLETED, 0)] + [(f"9[{i}].vm", State.COMPLETED, 0) for i in range(4)]
    assert shims["qstat"].calls == [["-f", "-F", "json", "-x", "-t", "11.vm", "13.vm", "14.vm", "9[].vm"]]


def test_pbspro_unknown_id(shims, pbspro, backend):
    shims["qstat"].on(["-f"], stdout=fixture("openpbs/master/qstat_unknown.stdout"),
                      stderr="qstat: Unknown Job Id 99999.vm\n", rc=153)
    assert backend.parse_queue(["99999.vm"]) == []
    assert len(shims["qstat"].calls) == 1


def test_ids_neither_reported_nor_disowned_trigger_one_full_query(shims, pbspro, backend):
    """A qstat that stops at the first bad id (or words it differently) must not hide the other jobs."""
    shims["qstat"].on(["-f", "-F", "json", "-x", "-t", "11.vm"], stdout=fixture("openpbs/master/qstat_unknown.stdout"),
                      stderr="qstat: illegally formed job identifier: 11.vm.\n", rc=1)
    shims["qstat"].on(["-f", "-F", "json", "-x", "-t"], stdout=fixture("openpbs/qstat_xf_json_all_finished.json"))
    records = backend.parse_queue(["11.vm", "13.vm"])
    assert [(r.id, r.state) for r in records] == [("11.vm", State.FAILED), ("13.vm", State.TIMEOUT)]
    assert shims["qstat"].calls[1] == ["-f", "-F", "json", "-x", "-t"]


def test_pbspro_unreadable_json_falls_back_to_text(shims, pbspro, backend):
    shims["qstat"].on(["-F", "json"], stdout='{"Jobs":{"69301.mycluster":{"comment":"a "quoted" word"}}}\n')
    shims["qstat"].on(["-f", "-w"], stdout=fixture("public/aiida_pbspro_qstat_f.txt"))
    records = backend.parse_queue(["69301.mycluster", "69302.mycluster"])
    assert [(r.id, r.state) for r in records] == [("69301.mycluster", State.RUNNING),
                                                  ("69302.mycluster", State.HELD)]
    assert shims["qstat"].calls[1] == ["-f", "-w", "-x", "-t", "69301.mycluster", "69302.mycluster"]


def test_server_down_is_a_scheduler_error_after_retries(shims, torque, backend):
    shims["qstat"].on([], stderr="qstat: cannot connect to server vm (errno=15010) Access from host not allowed, "
                                 "or unknown host\n", rc=1)
    with pytest.raises(SchedulerError, match="cannot connect to server"):
        backend.parse_queue(["1.vm"])
    assert len(shims["qstat"].calls) == 1 + client.RETRIES


def test_listing_filters_user_and_queue_here(shims, torque, backend):
    shims["qstat"].on(["-x", "-t"], stdout=fixture("torque/qstat_x_t_all_1.xml"))
    assert len(backend.parse_queue(None, user="pbstest")) == 14
    assert backend.parse_queue(None, user="root") == []
    assert len(backend.parse_queue(None, partition="batch")) == 14
    assert shims["qstat"].calls[0] == ["-x", "-t"]


def test_pbspro_listing_shows_current_jobs(shims, pbspro, backend):
    shims["qstat"].on(["-f", "-F", "json", "-t"], stdout=fixture("openpbs/master/qstat_f_json_t_initial.json"))
    records = backend.parse_queue(None, user="pbstest")
    assert len(records) == 12
    assert shims["qstat"].calls == [["-f", "-F", "json", "-t"]]  # no -x: no history, no -u with JSON


# --- cancel -------------------------------------------------------------------------------------------

def test_cancel_one_call(shims, backend):
    shims["qdel"].on([])
    assert backend.cancel(["1.vm", "2[].vm"]) is True
    assert shims["qdel"].calls == [["1.vm", "2[].vm"]]


@pytest.mark.parametrize("stderr, rc", [
    ("qdel: Request invalid for state of job MSG=invalid state for job - COMPLETE 9.vm\n", 170),  # torque.md
    ("qdel: Unknown Job Id Error 0.vm\n", 153),
    ("qdel: Unknown Job Id 99999.vm\n", 153),
    ("qdel: Job has finished 15.vm\n", 35),
])
def test_cancel_of_finished_jobs_is_not_an_error(shims, backend, stderr, rc):
    shims["qdel"].on([], stderr=stderr, rc=rc)
    assert backend.cancel(["9.vm"]) is True


def test_cancel_refused(shims, backend):
    shims["qdel"].on([], stderr="qdel: Unauthorized Request  MSG=operation not permitted 5.vm\n", rc=159)
    with pytest.raises(SchedulerError, match="Unauthorized Request"):
        backend.cancel(["5.vm"])


def test_release_one_call(shims, backend):
    shims["qrls"].on([])
    assert backend.release(["1.vm", "2[].vm"]) is True
    assert shims["qrls"].calls == [["1.vm", "2[].vm"]]


@pytest.mark.parametrize("stderr, rc", [  # what the CI's servers answered on 2026-12-02
    ("qrls: The requested state or substate can't be set from the job's current state (slot limit in effect)."
     " 161.vm\n", 70),                                                                    # Torque, running
    ("qrls: Request invalid for state of job MSG=invalid state for job - COMPLETE 162.vm\n", 170),  # Torque
    ("", 153),                                                             # Torque, an id it does not know
    ("qrls: Job has finished\n", 35),                                                      # OpenPBS
    ("qrls: Unknown Job Id 999999.vm\n", 153),                                             # OpenPBS
])
def test_release_of_jobs_not_held_is_not_an_error(shims, backend, stderr, rc):
    shims["qrls"].on([], stderr=stderr, rc=rc)
    assert backend.release(["161.vm"]) is True


def test_release_refused(shims, backend):
    shims["qrls"].on([], stderr="qrls: Unauthorized Request  MSG=operation not permitted 5.vm\n", rc=159)
    with pytest.raises(SchedulerError, match="Unauthorized Request"):
        backend.release(["5.vm"])


def test_failure_of_the_full_query_too_is_a_scheduler_error(shims, torque, backend):
    shims["qstat"].on([], stderr="qstat: Unauthorized Request  MSG=operation not permitted\n", rc=159)
    with pytest.raises(SchedulerError, match="Unauthorized Request"):
        backend.parse_queue(["1.vm"])
    assert shims["qstat"].calls == [["-x", "-t", "1.vm"], ["-x", "-t"]]


# --- array size limit ---------------------------------------------------------------------------------

def test_max_array_size_of_openpbs(shims, pbspro, backend):
    shims["qstat"].on(["-B", "-f", "-F", "json"], stdout=fixture("openpbs/qstat_B_f_json.json"))
    assert backend.max_array_size() == 10000     # "max_array_size":10000 on this machine's server
    assert backend.max_array_size() == 10000
    assert len(shims["qstat"].calls) == 1        # asked once


def test_max_array_size_of_torque(shims, torque):
    # qstat -B -f text; Torque lists max_job_array_size only when a manager set it (qmgr_print_server.txt
    # on this machine has none)
    shims["qstat"].on(["-B", "-f"], stdout="Server: vm\n    server_state = Active\n")
    assert plugin.max_array_size() is None
    shims["qstat"].rules.clear()
    shims["qstat"].on(["-B", "-f"], stdout="Server: vm\n    max_job_array_size = 500\n")
    assert plugin.max_array_size() == 500


def test_max_array_size_when_the_server_cannot_be_asked(shims, monkeypatch):
    shims["qstat"].on([], stderr="qstat: Unauthorized Request\n", rc=159)
    monkeypatch.setenv("CLUSTER_TORQUE_DIALECT", "torque")
    assert plugin.max_array_size() is None
    monkeypatch.setenv("CLUSTER_TORQUE_DIALECT", "pbspro")
    assert plugin.max_array_size() == 10000  # the OpenPBS default
