"""Jobs found again by id: from this process, other processes and the CLI, on the local backend (real
runner, real processes). The conformance kit checks the same on every backend; these go further on local."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import cluster_core as cc


def square(x):
    return x * x


def fail_on_three(x):
    if x == 3:
        raise ValueError("three is right out")
    return x


def cluster(*args, expect=0, timeout=120):
    proc = subprocess.run([sys.executable, "-m", "cluster_core", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, NO_COLOR="1"))
    assert proc.returncode == expect, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def test_get_and_wait_take_ids_and_mixed_lists(local):
    job = cc.submit(square, (4,))
    shell = cc.submit("echo from-shell")
    assert cc.get(job.id) == 16
    assert cc.get([job.id, shell, (job.id)]) == [16, "from-shell\n", 16]
    assert cc.wait([shell.id, job]) is True
    assert cc.Queue(backend="local").get([job.id]) == [16]
    with pytest.raises(cc.UnknownJobError, match="4242") as err:
        cc.get(["4242", job.id])
    assert err.value.ids == ["4242"]


def test_get_raises_after_all_ended_and_can_return_every_error(local):
    tasks = cc.map(fail_on_three, range(5))
    with pytest.raises(ValueError, match="three is right out") as err:
        cc.get(tasks)
    notes = "\n".join(getattr(err.value, "__notes__", []))
    assert "1 of 5 jobs failed" in notes and tasks[3].id in notes and str(tasks[3].errfile) in notes
    assert all(t.done for t in tasks)  # the others were waited for, not abandoned
    values = cc.get(tasks, return_exceptions=True)
    assert values[:3] == [0, 1, 2] and values[4] == 4 and isinstance(values[3], ValueError)


def test_failed_shell_job_error_names_id_backend_and_stderr(local):
    job = cc.submit("echo oops >&2; exit 2", name="breaks")
    with pytest.raises(cc.JobFailedError) as err:
        job.get()
    text = str(err.value)
    assert f"job {job.id} (breaks) on local ended failed with exit code 2" in text
    assert str(job.errfile) in text and "oops" in text and "exit code 2, exit code 2" not in text


def test_map_on_a_backend_without_arrays_has_one_id_for_all_tasks(local):
    tasks = cc.map(square, [1, 2, 3])
    array_id = tasks[0].job.id
    assert array_id.startswith("@") and [t.id for t in tasks] != [array_id] * 3
    assert cc.get(array_id) == [1, 4, 9]
    found = cc.Job.from_id(tasks[2].id)
    assert isinstance(found, cc.Task) and found.index == 2 and found.get() == 9
    assert cc.Job.from_id((array_id, 1)).get() == 4
    with pytest.raises(cc.UnknownJobError, match="no task 7"):
        cc.Job.from_id((array_id, 7))


def test_history_after_the_scheduler_forgot(local):
    import cluster_local
    done = cc.submit("exit 3", name="old-one")
    done.wait()
    ok = cc.submit(square, (3,), name="sq")
    ok.get()
    cluster_local.purge(older_than=0, path=local)  # the local scheduler forgets every finished job
    assert cc.get_backend("local").parse_queue([done.id, ok.id]) == []
    names = [(j.name, j.state.value) for j in cc.jobs()]
    assert names == [("sq", "completed"), ("old-one", "failed")]
    assert [j.id for j in cc.jobs(name="old*")] == [done.id]
    assert [j.id for j in cc.jobs(state="completed")] == [ok.id]
    assert cc.jobs(since="1m") and not cc.jobs(since=time.time() + 60)
    rows = json.loads(cluster("queue", "--all", "--json").stdout)
    assert {(r["id"], r["state"], r["exitcode"]) for r in rows} == {(done.id, "failed", 3), (ok.id, "completed", 0)}
    assert "old-one" not in cluster("queue").stdout  # without --all: what the scheduler lists
    assert json.loads(cluster("queue", "--all", "--name", "sq", "--json").stdout)[0]["id"] == ok.id
    assert cluster("status", done.id).stdout == "failed\n"


def test_cli_wait_exit_codes_and_status_words(local):
    ok = cluster("submit", "true").stdout.strip()
    bad = cluster("submit", "exit 3").stdout.strip()
    slow = cluster("submit", "sleep 300").stdout.strip()
    cluster("wait", ok)
    cluster("wait", ok, bad, expect=1)
    proc = cluster("wait", "--timeout", "1", slow, expect=124)
    assert "go on running" in proc.stderr
    proc = cluster("wait", ok, "777777", "888888", expect=2)
    assert "777777, 888888" in proc.stderr
    assert cluster("status", ok, bad, slow).stdout == "completed\nfailed\nrunning\n"
    assert cluster("status", "--format", "snakemake", ok, bad, slow).stdout == "success\nfailed\nrunning\n"
    # the one-word commands tools run without a shell
    bindir = os.path.dirname(sys.executable)
    out = subprocess.run([os.path.join(bindir, "cluster-status"), "--format", "snakemake", slow],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "running\n"
    subprocess.run([os.path.join(bindir, "cluster-cancel"), slow], check=True, timeout=60)
    cluster("wait", slow, expect=1)
    assert cluster("status", slow).stdout == "cancelled\n"
    assert cluster("status", "--format", "snakemake", "999999").stdout == "failed\n"
    cluster("status", "999999", expect=2)


def test_cli_get_and_logs(local, tmp_path):
    func = cc.submit(square, (9,))
    assert cluster("get", func.id).stdout == "81\n"
    assert json.loads(cluster("get", "--json", func.id).stdout) == 81
    cluster("get", "--pickle", str(tmp_path / "v.pkl"), func.id)
    import pickle
    assert pickle.loads((tmp_path / "v.pkl").read_bytes()) == 81
    shell = cluster("submit", "--", "sh", "-c", "echo out-line; echo err-line >&2; exit 1").stdout.strip()
    cluster("wait", shell, expect=1)
    assert cluster("logs", shell).stdout == "out-line\n"
    assert cluster("logs", "--err", shell).stdout == "err-line\n"
    assert "exit code 1" in cluster("get", shell, expect=1).stderr
    follow = cluster("submit", "for i in 1 2 3; do echo line$i; sleep 0.3; done").stdout.strip()
    assert cluster("logs", "--follow", follow).stdout == "line1\nline2\nline3\n"


def test_interrupted_wait_says_which_jobs_go_on(local, tmp_path):
    code = """
import cluster_core as cc, sys
job = cc.submit("sleep 300", backend="local")
print(job.id, flush=True)
cc.wait([job], cancel_on_interrupt=len(sys.argv) > 1)
"""
    for cancel in (False, True):
        proc = subprocess.Popen([sys.executable, "-c", code] + (["cancel"] if cancel else []), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
        job_id = proc.stdout.readline().strip()
        deadline = time.time() + 30
        while cluster("status", job_id).stdout != "running\n":
            assert time.time() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0
        if cancel:
            assert f"cancelled 1 unfinished jobs ({job_id})" in err
            cluster("wait", job_id, expect=1)
            assert cluster("status", job_id).stdout == "cancelled\n"
        else:
            assert f"1 jobs go on running ({job_id})" in err
            assert cluster("status", job_id).stdout == "running\n"
            cluster("cancel", job_id)


def test_submission_survives_an_unwritable_record_directory(local, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("CLUSTER_CORE_REGISTRY", str(blocker / "records"))
    from cluster_core import registry
    registry._made_dirs.clear()
    job = cc.submit(square, (5,))
    assert "can be followed from this process only" in caplog.text
    assert job.get() == 25


def test_resubmit_keeps_working_and_a_found_job_says_why_it_cannot(local):
    job = cc.submit("echo again")
    job.wait()
    first = job.id
    job.resubmit()
    assert job.id != first and job.get() == "again\n"
    func = cc.submit(square, (2,))
    func.wait()
    with pytest.raises(cc.JobError, match="its command is not known here"):
        cc.Job.from_id(func.id).resubmit()  # the function itself is not in the record


def test_a_user_script_found_by_its_id_says_how_to_submit_it_again(local, tmp_path):
    script = tmp_path / "mine.sh"
    script.write_text("#!/bin/bash\necho mine\n")
    job = cc.submit_file(script)
    job.wait()
    found = cc.Job.from_id(job.id)
    with pytest.raises(cc.JobError, match=r"found by its id; submit it again with submit_file\("):
        found.resubmit()  # it raised AttributeError: what the caller gave is not in the record
    job.resubmit()  # the process that submitted it still can
    assert job.get() == "mine\n"


def test_cli_clean_older_than_prunes_records(local):
    import attrs

    from cluster_core import registry
    old = cc.submit("true", name="ancient")
    old.wait()
    rec = registry.load("local", old.id)
    registry.save(attrs.evolve(rec, submit_time=time.time() - 40 * 86400))
    new = cc.submit("true", name="recent")
    new.wait()
    assert "removed 1 job records" in cluster("clean", "--older-than", "30d").stderr
    assert registry.load("local", old.id) is None and registry.load("local", new.id) is not None
    cluster("clean", "--older-than", "soon", expect=2)


def test_a_full_job_directory_is_our_error_before_anything_is_submitted(local, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], check=True)
    try:
        with open(small / "filler", "wb") as fh:
            try:
                fh.write(b"x" * 128 * 1024)
            except OSError:
                pass
        before = cc.get_backend("local").parse_queue(None, None, None)
        with pytest.raises(cc.SubmitError, match=f"cannot write its files in {small}.*disk is full.*jobdir="):
            cc.submit(square, (2,), jobdir=str(small))
        assert cc.get_backend("local").parse_queue(None, None, None) == before  # nothing was submitted
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_an_id_handed_out_again_is_not_read_as_the_old_jobs_end(local, tmp_path, monkeypatch):
    """A scheduler that hands out an id again (here a new local state dir, whose ids start at 1 again; on
    a cluster, a reinstalled controller) gets a new job under it: what was kept of the old job's end and
    of its cancellation is not that job's, in this process or another."""
    import cluster_local
    from cluster_core import session
    old = cc.submit("exit 3")
    assert old.wait() is False and old.exitcode == 3
    cc.cancel(old)  # asked to cancel after it ended: kept beside its record too
    cluster_local.shutdown_runner(local)
    monkeypatch.setenv("CLUSTER_LOCAL_DIR", str(tmp_path / "state2"))
    with session.fresh():
        new = cc.submit("sleep 30", hold=True)
        try:
            assert new.id == old.id  # the same id, another job
            assert cluster("status", new.id).stdout == "held\n"
            assert cc.Job.from_id(new.id).state is cc.State.HELD
        finally:
            cc.cancel(new)
            cluster_local.shutdown_runner(tmp_path / "state2")
