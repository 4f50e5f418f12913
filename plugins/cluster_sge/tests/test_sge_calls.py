"""The command layer with stand-in Grid Engine commands: retries, refusals, a dead qmaster, the number of
calls per poll. The stand-ins sit in a directory named by $CLUSTER_SGE_BIN (looked up before PATH, as a
site with Torque's qsub on PATH would set it) and replay output captured from the real cell."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import pytest

from cluster_core.errors import SchedulerError, SubmitError
from cluster_core.records import QueueJob, State
from cluster_sge import calls

FIXTURES = Path(__file__).parent / "fixtures"
DOWN = ('error: commlib error: got select error (Connection refused)\n'
        'unable to send message to qmaster using port 6444 on host "vm": got send error')


class FakeBin:
    """Executable stand-ins for qsub/qstat/qacct/qdel/qconf that log their arguments."""

    def __init__(self, path: Path):
        self.dir = path
        self.dir.mkdir()
        self.log = path / "calls.log"
        self.log.touch()

    def add(self, command: str, body: str) -> "FakeBin":
        script = self.dir / command
        script.write_text(f'#!/bin/bash\nprintf "%s\\n" "{command} $*" >> {shlex.quote(str(self.log))}\n{body}\n')
        script.chmod(0o755)
        return self

    def replay(self, command: str, fixture: str, rc: int = 0) -> "FakeBin":
        return self.add(command, f"cat {shlex.quote(str(FIXTURES / fixture))}; exit {rc}")

    def calls(self, command: str = "") -> list[str]:
        return [line for line in self.log.read_text().splitlines() if line.startswith(command)]


@pytest.fixture
def fake(tmp_path, monkeypatch, cluster_config):
    monkeypatch.setenv("CLUSTER_SGE_BIN", str(tmp_path / "bin"))
    monkeypatch.chdir(tmp_path)
    calls.forget()
    yield FakeBin(tmp_path / "bin")
    calls.forget()


def ge_qstat(fake: FakeBin, body: str) -> FakeBin:
    """A qstat that says it is Grid Engine's to -help and runs ``body`` otherwise."""
    return fake.add("qstat", f'if [ "$1" = -help ]; then echo "SGE 8.1.9"; echo "usage: qstat [options]"; '
                             f'exit 0; fi\n{body}')


def all_commands(fake: FakeBin) -> FakeBin:
    for command in ("qsub", "qacct", "qdel"):
        fake.add(command, "exit 0")
    return fake


# --- detect ---------------------------------------------------------------------------------------

def test_detect_without_commands(fake):
    det = calls.detect()
    assert not det.available and "no qsub in $CLUSTER_SGE_BIN=" in det.reason  # where it looked


def test_detect_refuses_torques_qstat(fake):
    all_commands(fake).add("qstat", "echo \"$0: invalid option -- 'h'\" >&2; echo usage: >&2; exit 2")
    det = calls.detect()
    assert not det.available and "not Grid Engine's qstat" in det.reason


def test_detect_qmaster_down(fake):
    ge_qstat(all_commands(fake), f"printf '%s\\n' {shlex.quote(DOWN)} >&2; exit 1")
    start = time.monotonic()
    det = calls.detect()
    assert not det.available and "qmaster is not answering" in det.reason and "Connection refused" in det.reason
    assert time.monotonic() - start < 2


def test_detect_hung_qmaster_times_out(fake, monkeypatch):
    monkeypatch.setattr(calls, "DETECT_TIMEOUT", 0.5)
    ge_qstat(all_commands(fake), "sleep 5")
    start = time.monotonic()
    det = calls.detect()
    assert not det.available and "did not answer" in det.reason
    assert time.monotonic() - start < 3


def test_detect_up(fake):
    block = (FIXTURES / "commands.txt").read_text().split("## qstat -g c\nrc=0\n")[1].split("\n## ")[0]
    ge_qstat(all_commands(fake), f"printf '%s' {shlex.quote(block)}")
    det = calls.detect()
    assert det.available and det.reason == "SGE 8.1.9: the qmaster answers (2 cluster queues)"


# --- submit ---------------------------------------------------------------------------------------

def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_submit_args_for_the_cores_script(tmp_path):
    script = write(tmp_path / "job.sh", "#!/bin/bash\n#$ -N x\ntrue\n")
    args = calls.submit_args(script, {"name": "x", "outfile": "/o", "errfile": "/e"}, True)
    assert args == ["qsub", "-terse", "-w", "e", "-C", "", "-S", "/bin/bash", "-cwd", "-N", "x", "-o", "/o", "-e", "/e",
                    str(script)]


def test_submit_verify_level_from_the_config(tmp_path, cluster_config):
    import cluster_core as cc
    from cluster_core.errors import ConfigError
    script = write(tmp_path / "job.sh", "#!/bin/bash\ntrue\n")
    cc.set_option("sge.verify", "n")
    assert calls.submit_args(script, {}, True)[:4] == ["qsub", "-terse", "-w", "n"]
    cc.set_option("sge.verify", "v")  # only reports, never submits: refused before qsub runs
    with pytest.raises(ConfigError, match=r"sge.verify='v': expected one of e, w, n"):
        calls.submit_args(script, {}, True)


def test_submit_no_suitable_queue_lists_what_the_job_asked_for(fake, tmp_path):
    block = (FIXTURES / "qsub-errors.txt").read_text().split("## qsub -w e -pe smp 99\nrc=1\n")[1]
    fake.add("qsub", f"printf %s {shlex.quote(block)} >&2; exit 1")
    script = write(tmp_path / "job.sh", "#!/bin/bash\ntrue\n")
    with pytest.raises(SubmitError) as err:
        calls.submit(script, {"cores": 99, "time": 60, "name": "x"}, True)
    assert err.value.keyword == "cores"
    assert str(err.value) == ("Grid Engine refused job job.sh: no suitable queues: no queue of this cluster can "
                              "ever run it (qsub -w e); it asked for cores=99, time=60")


@pytest.mark.parametrize("first_line, shell", [
    ("#!/bin/bash", "/bin/bash"), ("#!/bin/sh -e", "/bin/sh"), ("#!/usr/bin/env python3", "python3"),
    ("echo no shebang", "/bin/bash"), ("#!", "/bin/bash"),
])
def test_submit_args_for_a_users_script_follow_its_shebang(tmp_path, first_line, shell):
    script = write(tmp_path / "mine.sh", f"{first_line}\ntrue\n")
    args = calls.submit_args(script, {}, False)
    assert "-C" not in args  # the user's own #$ lines still count; the command line overrides them
    assert args[args.index("-S") + 1].endswith(shell)


def test_submit_retries_a_busy_qmaster(fake, tmp_path):
    counter = tmp_path / "n"
    fake.add("qsub", f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}\n'
                     f'if [ $n = 0 ]; then printf "%s\\n" {shlex.quote(DOWN)} >&2; echo Exiting. >&2; exit 1; fi\n'
                     'echo 4711.1-3:1')
    script = write(tmp_path / "job.sh", "#!/bin/bash\ntrue\n")
    assert calls.submit(script, {"array": "0-2"}, True) == "4711"
    assert len(fake.calls("qsub")) == 2
    assert calls._array_tasks["4711"] == [1, 2, 3]


def test_submit_refusal_names_the_keyword(fake, tmp_path):
    fake.add("qsub", "printf 'Unable to run job: job rejected: the requested parallel environment \"smp\" "
                     "does not exist\\nExiting.\\n' >&2; exit 1")
    script = write(tmp_path / "job.sh", "#!/bin/bash\ntrue\n")
    with pytest.raises(SubmitError) as err:
        calls.submit(script, {"cores": 4}, True)
    assert err.value.keyword == "cores"
    assert str(err.value) == ('Grid Engine refused job job.sh: the requested parallel environment "smp" does '
                              'not exist (cores=4)')
    assert len(fake.calls("qsub")) == 1  # a refusal is not retried


def test_submit_timeout_is_not_retried(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(calls, "SUBMIT_TIMEOUT", 0.5)
    fake.add("qsub", "sleep 5; echo 1")
    script = write(tmp_path / "job.sh", "#!/bin/bash\ntrue\n")
    with pytest.raises(SubmitError, match="did not answer"):
        calls.submit(script, {}, True)
    assert len(fake.calls("qsub")) == 1  # it may have been accepted: never submit twice


def test_submit_carries_a_token_last(fake, tmp_path):
    """The token goes into the job context after every other word, so a user's own -sc cannot drop it;
    a submission that worked asks nothing more."""
    ge_qstat(fake, "exit 99")
    fake.add("qsub", "echo 4712")
    script = write(tmp_path / "job.sh", "#!/bin/bash\ntrue\n")
    assert calls.submit(script, {"extra": ("-sc", "MINE=1")}, True) == "4712"
    (line,) = fake.calls("qsub")
    words = line.split()
    assert words[-3] == "-ac" and re.fullmatch(r"CLUSTER_CORE_TOKEN=[0-9a-f]{32}", words[-2])
    assert words[-1] == str(script) and "-sc" in words[:-3]
    assert fake.calls("qstat") == []


LOST = ('error: commlib error: got read error (closing "vm/qmaster/1")\n'
        'Unable to run job: failed receiving gdi request response for mid=1 (got syncron message receive timeout '
        'error).\nExiting.')


def qstat_listing(rows: str) -> str:
    return ("<?xml version='1.0'?>\n<job_info><queue_info></queue_info><job_info>" + rows +
            "</job_info></job_info>")


def zombie(number: str, name: str, when: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(when))
    return (f'<job_list state="zombie"><JB_job_number>{number}</JB_job_number><JB_name>{name}</JB_name>'
            f"<JB_owner>me</JB_owner><state>z</state><JB_submission_time>{stamp}</JB_submission_time>"
            "<slots>1</slots></job_list>")


def test_lost_answer_found_by_the_job_context(fake, tmp_path):
    """qsub's answer is lost; qstat -j shows the job's context with the token this qsub carried."""
    fake.add("qsub", f'for w in "$@"; do case $w in CLUSTER_CORE_TOKEN=*) echo "${{w#*=}}" > {tmp_path}/tok;; '
                     f"esac; done; printf '%s\\n' {shlex.quote(LOST)} >&2; exit 1")
    listing = qstat_listing('<job_list state="pending"><JB_job_number>31</JB_job_number><JB_name>x</JB_name>'
                            "<JB_owner>me</JB_owner><state>qw</state></job_list>")
    context = (FIXTURES / "qstat-j-context.xml").read_text().replace("<JB_job_number>157<", "<JB_job_number>31<")
    ge_qstat(fake, f'case "$*" in *-j*) printf %s {shlex.quote(context)} | sed "s/>a1</>$(cat {tmp_path}/tok)</";; '
                   f"*) printf %s {shlex.quote(listing)};; esac")
    script = write(tmp_path / "job.sh", "#!/bin/bash\ntrue\n")
    assert calls.submit(script, {"name": "x"}, True) == "31"
    assert len(fake.calls("qsub")) == 1
    assert [c.split()[1:] for c in fake.calls("qstat")] == [["-xml", "-s", "prsz", "-u", calls.getpass.getuser()],
                                                           ["-xml", "-j", "31"]]
    assert "31" in calls._mine


def test_job_that_ended_is_told_by_its_outputs(fake, tmp_path, monkeypatch):
    """No live job carries the token; the output file appeared since qsub ran: the one ended job of the
    name received meanwhile is it. Without the output file, the same listing means no job was made."""
    out = tmp_path / "x.out"
    fake.add("qsub", f"touch {out}; printf '%s\\n' {shlex.quote(LOST)} >&2; exit 1")
    now = time.time()
    ge_qstat(fake, f"printf %s {shlex.quote(qstat_listing(zombie('40', 'x', now) + zombie('39', 'x', now - 600)))}")
    script = write(tmp_path / "job.sh", "#!/bin/bash\ntrue\n")
    assert calls.submit(script, {"name": "x", "outfile": str(out)}, True) == "40"
    assert len(fake.calls("qsub")) == 1


def test_no_outputs_means_no_job_was_made(fake, tmp_path):
    counter = tmp_path / "n"
    fake.add("qsub", f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}\n'
                     f"if [ $n = 0 ]; then printf '%s\\n' {shlex.quote(LOST)} >&2; exit 1; fi\necho 41")
    ge_qstat(fake, f"printf %s {shlex.quote(qstat_listing(zombie('40', 'x', time.time())))}")
    script = write(tmp_path / "job.sh", "#!/bin/bash\ntrue\n")
    assert calls.submit(script, {"name": "x", "outfile": str(tmp_path / "x.out")}, True) == "41"
    assert len(fake.calls("qsub")) == 2


def test_an_ended_job_of_the_name_without_outputs_to_tell_is_no_answer(fake, tmp_path):
    fake.add("qsub", f"printf '%s\\n' {shlex.quote(LOST)} >&2; exit 1")
    ge_qstat(fake, f"printf %s {shlex.quote(qstat_listing(zombie('40', 'x', time.time())))}")
    script = write(tmp_path / "job.sh", "#!/bin/bash\ntrue\n")
    with pytest.raises(SubmitError, match=r"ended job\(s\) 40 of the same name may be it.*not submitted again"):
        calls.submit(script, {"name": "x", "outfile": "/dev/null"}, True)
    assert len(fake.calls("qsub")) == 1


def test_qstat_that_never_answers_is_no_no(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(calls, "CHECK_PATIENCE", 0.5)
    monkeypatch.setattr(calls, "SUBMIT_BACKOFF", 0.05)
    fake.add("qsub", f"printf '%s\\n' {shlex.quote(LOST)} >&2; exit 1")
    ge_qstat(fake, f"printf '%s\\n' {shlex.quote(DOWN)} >&2; exit 1")
    script = write(tmp_path / "job.sh", "#!/bin/bash\ntrue\n")
    with pytest.raises(SubmitError, match="cannot tell whether the job was created.*not submitted again") as err:
        calls.submit(script, {}, True)
    assert err.value.transient and len(fake.calls("qsub")) == 1 and len(fake.calls("qstat")) >= 2


def test_submit_without_an_id(fake, tmp_path):
    fake.add("qsub", "echo 'something odd'")
    with pytest.raises(SubmitError, match="no job id"):
        calls.submit(write(tmp_path / "job.sh", "#!/bin/bash\n"), {}, True)


# --- parse_queue ----------------------------------------------------------------------------------

def numbers():
    import json
    return json.loads((FIXTURES / "manifest.json").read_text())


def test_one_qstat_one_qacct_per_poll(fake):
    m = numbers()
    ge_qstat(fake, f"cat {FIXTURES / 'qstat-live.xml'}")
    fake.replay("qacct", "qacct-all.txt")
    asked = [m["running"], m["held"], m["exit3"], m["array_exits"]]
    records = {r.id: r for r in calls.parse_queue(asked, None, None)}
    assert records[m["running"]].state is State.RUNNING
    assert records[m["held"]].state is State.HELD
    assert records[m["exit3"]].exitcode == 3
    assert {r.task_id: r.exitcode for r in records.values() if r.array_id == m["array_exits"]} == \
        {0: 0, 1: 1, 2: 2}
    assert fake.calls("qstat") == ["qstat -xml -r -u *"]  # owners unknown: every user's jobs
    [qacct] = fake.calls("qacct")
    assert qacct.startswith("qacct -j * -b ")  # several finished jobs: one qacct for all


def test_finished_jobs_are_never_asked_again(fake):
    m = numbers()
    ge_qstat(fake, "echo '<job_info><queue_info/><job_info/></job_info>'")
    fake.replay("qacct", "qacct-one.txt")
    assert [r.exitcode for r in calls.parse_queue([m["exit3"]], None, None)] == [3]
    assert [r.exitcode for r in calls.parse_queue([m["exit3"]], None, None)] == [3]
    assert fake.calls("qacct") == [f"qacct -j {m['exit3']}"]  # one id: exactly that job


def test_error_state_reason_costs_one_more_call_only_then(fake):
    m = numbers()
    ge_qstat(fake, f'if [ "$2" = -j ]; then cat {FIXTURES / "qstat-j-error.xml"}; exit 0; fi\n'
                   f'cat {FIXTURES / "qstat-live.xml"}')
    fake.add("qacct", "exit 1")
    [bad] = calls.parse_queue([m["bad_wd"]], None, None)
    assert bad.state is State.FAILED
    assert bad.reason == "error state: can't chdir to /nonexistent/dir: No such file or directory"
    assert fake.calls("qstat") == ["qstat -xml -r -u *", f"qstat -xml -j {m['bad_wd']}"]
    fake.log.write_text("")
    calls.parse_queue([m["running"]], None, None)
    assert fake.calls("qstat") == ["qstat -xml -r -u root"]  # owner seen once: only root's jobs now


def test_unknown_to_both_is_left_out(fake):
    ge_qstat(fake, "echo '<job_info><queue_info/><job_info/></job_info>'")
    fake.add("qacct", "echo 'error: job id 99 not found' >&2; exit 1")
    assert calls.parse_queue(["99"], None, None) == []
    assert calls.parse_queue(["not-an-id"], None, None) == []


def test_qmaster_down_raises(fake, monkeypatch):
    ge_qstat(fake, f"printf '%s\\n' {shlex.quote(DOWN)} >&2; exit 1")
    monkeypatch.setattr(calls, "QUERY_TIMEOUT", 2)
    with pytest.raises(SchedulerError, match="Connection refused"):
        calls.parse_queue(["5"], None, None)
    assert len(fake.calls("qstat")) == 3  # tried again twice: a restarting qmaster comes back


def test_listing_filters_user_and_partition(fake):
    ge_qstat(fake, f"cat {FIXTURES / 'qstat-live.xml'}")
    jobs = calls.parse_queue(None, "root", "all.q")
    assert fake.calls("qstat") == ["qstat -xml -r -u root", f"qstat -xml -j {numbers()['bad_wd']}"]
    assert jobs and all(j.partition in (None, "all.q") for j in jobs)


def test_qacct_args_bound_the_search(monkeypatch):
    calls.forget()
    assert calls.qacct_args(["7"]) == ["qacct", "-j", "7"]
    now = time.mktime((2026, 11, 25, 12, 0, 0, 0, 0, -1))
    assert calls.qacct_args(["7", "8"], now=now) == ["qacct", "-j", "*", "-b", "202611181200.00"]
    calls._submitted.update({"7": now - 60, "8": now - 30})
    assert calls.qacct_args(["7", "8"], now=now) == ["qacct", "-j", "*", "-b", "202611251059.00"]
    calls.forget()


# --- cancel ---------------------------------------------------------------------------------------

def test_qdel_ids():
    assert calls.qdel_ids(["12", "12.3", "13[0]", "12"]) == ["12", "12.3", "13.1"]
    with pytest.raises(ValueError):
        calls.qdel_ids(["x"])


def test_cancel_finished_is_not_an_error(fake):
    fake.add("qdel", "echo 'denied: job \"99\" does not exist' >&2; exit 1")
    assert calls.cancel(["99"]) is True
    assert fake.calls("qdel") == ["qdel 99"]


def test_cancel_other_errors_raise(fake):
    fake.add("qdel", "echo 'error: you are not the owner' >&2; exit 1")
    with pytest.raises(SchedulerError, match="not the owner"):
        calls.cancel(["99"])


def test_deleted_before_start_reads_as_cancelled(fake):
    fake.add("qdel", "echo 'root has deleted job 42'")
    ge_qstat(fake, "echo '<job_info><queue_info/><job_info/></job_info>'")
    fake.add("qacct", "echo 'error: job id 42 not found' >&2; exit 1")
    calls.cancel(["42"])
    assert calls.parse_queue(["42"], None, None) == [
        QueueJob(id="42", state=State.CANCELLED, reason="deleted (qdel)", raw_state="deleted")]
