"""The local backend against real processes: a real runner daemon, real job scripts, no mocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

import cluster_local
from cluster_core import plugins
from cluster_core.errors import SubmitError
from cluster_core.options import check_arguments
from cluster_core.records import State
from local_helpers import gone, until


def intervals_overlap_max(intervals) -> int:
    """The most intervals open at one moment."""
    events = sorted([(s, 1) for s, e in intervals] + [(e, -1) for s, e in intervals], key=lambda x: (x[0], x[1]))
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


# --- the hooks --------------------------------------------------------------------------------------

def test_info_detect_render(local):
    be = plugins.backend("local")
    info = be.info
    assert (info.name, info.directive_prefix, info.supports_arrays, info.priority) == ("local", None, False, 0)
    assert info.poll_interval == 0.05 and info.distribution == "cluster-local"
    assert be.detect().available
    assert be.render_options({"cores": 4, "mem": 100, "partition": "x"}) == []


def test_exit_codes_output_and_environment(local, tmp_path):
    (tmp_path / "wd").mkdir()
    ok = local.submit('echo "out $CLUSTER_JOB_ID $CLUSTER_JOB_NAME $(pwd)"; echo err >&2\n', name="fine",
                      workdir=str(tmp_path / "wd"))
    bad = local.submit("echo hi; exit 3\n", name="bad")
    killed = local.submit("kill -KILL $$\n", name="killed")
    jobs = local.wait([ok, bad, killed])
    assert jobs[ok].state is State.COMPLETED and jobs[ok].exitcode == 0
    assert local.path("fine1.sh.out").read_text() == f"out {ok} fine {tmp_path / 'wd'}\n"
    assert local.path("fine1.sh.err").read_text() == "err\n"
    assert jobs[bad].state is State.FAILED and jobs[bad].exitcode == 3 and jobs[bad].raw_state == "FAILED"
    assert local.path("bad2.sh.out").read_text() == "hi\n"
    assert jobs[killed].state is State.FAILED and jobs[killed].exitcode == 128 + 9
    assert "SIGKILL" in jobs[killed].reason
    for job in jobs.values():
        assert job.submit_time <= job.start_time <= job.end_time and job.cores == 1 and job.user


def test_export(local, monkeypatch):
    monkeypatch.setenv("CL_TEST_FOO", "foo")
    monkeypatch.setenv("CL_TEST_BAR", "bar")
    body = 'echo "${CL_TEST_FOO:-none} ${CL_TEST_BAR:-none} ${CL_TEST_SET:-none} ${PATH:+path}"\n'
    ids = [local.submit(body, name="all"), local.submit(body, name="none", export="NONE"),
           local.submit(body, name="named", export="CL_TEST_FOO,CL_TEST_SET=x y")]
    local.wait(ids)
    assert local.path("all1.sh.out").read_text() == "foo bar none path\n"
    assert local.path("none2.sh.out").read_text() == "none none none path\n"
    assert local.path("named3.sh.out").read_text() == "foo none x y path\n"


def test_listing_and_unknown_ids(local):
    job = local.submit("exit 0\n")
    local.wait([job])
    assert local.backend.parse_queue(["999999", "not-a-number"]) == []
    listed = {j.id for j in local.backend.parse_queue(None, None, None)}
    assert job in listed
    assert local.backend.parse_queue(None, "somebody-else", None) == []


# --- scheduling -------------------------------------------------------------------------------------

def test_jobs_run_in_parallel(local):
    # each job records its start, waits until the other has recorded its start (-s: the redirection
    # creates the file before date writes to it), then records its end
    body = ("date +%s.%N > {me}.start\n"
            "for _ in $(seq 1000); do [ -s {other}.start ] && break; sleep 0.01; done\n"
            "date +%s.%N > {me}.end\n")
    a = local.submit(body.format(me=local.q("a"), other=local.q("b")))
    b = local.submit(body.format(me=local.q("b"), other=local.q("a")))
    jobs = local.wait([a, b])
    assert all(j.state is State.COMPLETED for j in jobs.values())
    starts = [float(local.path(f"{n}.start").read_text()) for n in "ab"]
    ends = [float(local.path(f"{n}.end").read_text()) for n in "ab"]
    assert max(starts) < min(ends)


def test_cores_limit_respected(local):
    body = "date +%s.%N > {me}.start; sleep 0.15; date +%s.%N > {me}.end\n"
    ids = [local.submit(body.format(me=local.q(f"j{i}")), cores=2 if i == 3 else 1) for i in range(7)]
    jobs = local.wait(ids)
    assert all(j.state is State.COMPLETED for j in jobs.values())
    # the runner's own accounting (start at spawn, end at reap) never has more than 2 cores busy
    runner_view = [(j.start_time, j.end_time) for j in jobs.values()]
    assert intervals_overlap_max(runner_view) <= 2
    big = jobs[ids[3]]
    assert not any(j.start_time < big.end_time and big.start_time < j.end_time for i, j in jobs.items() if i != ids[3])
    # and the jobs' own view agrees; with 7 jobs of 0.15 s some ran side by side
    own = [(float(local.path(f"j{i}.start").read_text()), float(local.path(f"j{i}.end").read_text())) for i in range(7)]
    assert intervals_overlap_max(own) == 2


def test_dependency_runs_after_parent(local):
    parent = local.submit(local.gate("go") + "touch " + local.q("parent.done") + "\n")
    child = local.submit("[ -e " + local.q("parent.done") + " ] && echo ok || echo early\n", depends=parent)
    local.wait_state(parent, "running")
    assert local.state(child) == "pending"
    local.open_gate("go")
    jobs = local.wait([parent, child])
    assert jobs[child].state is State.COMPLETED
    assert local.path("job2.sh.out").read_text() == "ok\n"
    assert jobs[child].start_time >= jobs[parent].end_time


def test_failed_parent_cancels_dependents(local):
    parent = local.submit(local.gate("go") + "exit 1\n")
    child = local.submit("touch " + local.q("child.ran") + "\n", depends=[parent])
    grandchild = local.submit("touch " + local.q("grandchild.ran") + "\n", depends=f"{child}")
    other = local.submit("exit 0\n", depends=[parent, child])
    local.open_gate("go")
    jobs = local.wait([parent, child, grandchild, other])
    assert jobs[parent].state is State.FAILED
    for job_id in (child, grandchild, other):
        assert jobs[job_id].state is State.CANCELLED and jobs[job_id].reason == "DependencyNeverSatisfied"
    assert not local.path("child.ran").exists() and not local.path("grandchild.ran").exists()
    # a dependency that already failed before submission is never satisfied either
    late = local.submit("exit 0\n", depends=parent)
    assert local.wait([late])[late].reason == "DependencyNeverSatisfied"


def test_dependency_types(local):
    """afterany and afternotok run after a failure, after (started) while the parent runs; a condition
    that can no longer hold (afternotok on a success, afterok on a cancelled job) cancels, transitively."""
    parent = local.submit(local.gate("go") + "exit 1\n")
    anyway = local.submit("exit 0\n", depends=f"afterany:{parent}")
    on_failure = local.submit("exit 0\n", depends={"afternotok": [parent]})
    started = local.submit("exit 0\n", depends=f"after:{parent}")
    on_success = local.submit("touch " + local.q("ran") + "\n", depends=f"afternotok:{on_failure}")
    chained = local.submit("touch " + local.q("ran") + "\n", depends=on_success)
    local.wait_state(parent, "running")
    assert local.wait([started])[started].state is State.COMPLETED  # the parent still runs
    assert (local.state(anyway), local.state(on_failure)) == ("pending", "pending")
    local.open_gate("go")
    jobs = local.wait([parent, anyway, on_failure, on_success, chained])
    assert [jobs[j].state for j in (parent, anyway, on_failure)] == [State.FAILED, State.COMPLETED,
                                                                     State.COMPLETED]
    for job_id in (on_success, chained):
        assert jobs[job_id].state is State.CANCELLED and jobs[job_id].reason == "DependencyNeverSatisfied"
    assert not local.path("ran").exists()


def test_after_a_held_job_waits_until_it_starts_or_ends(local):
    held = local.submit("exit 0\n", hold=True)
    after = local.submit("exit 0\n", depends=f"after:{held}")
    late = local.submit("exit 0\n", depends=f"afterany:{held}")
    assert local.wait([local.submit("exit 0\n")])  # a pass of the runner went by
    assert (local.state(after), local.state(late)) == ("pending", "pending")
    local.backend.cancel([held])  # cancelled before it started: as Slurm, that satisfies after and afterany
    jobs = local.wait([held, after, late])
    assert [jobs[j].state for j in (held, after, late)] == [State.CANCELLED, State.COMPLETED, State.COMPLETED]


def test_singleton(local):
    first = local.submit(local.gate("go") + "exit 0\n", name="same")
    second = local.submit("exit 0\n", name="same", depends="singleton")
    third = local.submit("exit 0\n", name="same", depends="singleton")
    other = local.submit("exit 0\n", name="other", depends="singleton")
    assert local.wait([other])[other].state is State.COMPLETED
    local.wait_state(first, "running")
    assert (local.state(second), local.state(third)) == ("pending", "pending")
    local.open_gate("go")
    jobs = local.wait([first, second, third])
    assert jobs[first].end_time <= jobs[second].start_time and jobs[second].end_time <= jobs[third].start_time


def test_unknown_dependency_refused(local):
    with pytest.raises(SubmitError) as info:
        local.submit("exit 0\n", depends="424242")
    assert info.value.keyword == "depends" and "424242" in str(info.value)


def test_a_batch_of_jobs_is_recorded_and_run_together(local):
    from cluster_local.submit import submit_jobs
    parent = local.submit("exit 0\n")
    batch = [(local.script(f"echo {i}\n"), check_arguments({"outfile": str(local.path(f"b{i}.out"))}), None)
             for i in range(3)]
    batch.append((local.script("echo child\n"), check_arguments({"depends": parent, "hold": True}), None))
    ids = submit_jobs(batch)
    assert ids == list(range(int(parent) + 1, int(parent) + 5))  # in order, in one transaction
    jobs = local.wait([str(i) for i in ids[:3]])
    assert all(j.state is State.COMPLETED for j in jobs.values())
    assert [local.path(f"b{i}.out").read_text() for i in range(3)] == ["0\n", "1\n", "2\n"]
    assert local.state(str(ids[3])) == "held"


def test_a_batch_with_one_bad_job_records_none(local):
    from cluster_local.submit import submit_jobs
    good = (local.script("exit 0\n"), check_arguments({}), None)
    for bad, keyword in [((local.script("exit 0\n"), check_arguments({"workdir": str(local.path("nowhere"))}), None),
                          "workdir"),
                         ((local.script("exit 0\n"), check_arguments({"depends": "424242"}), None), "depends")]:
        with pytest.raises(SubmitError) as info:
            submit_jobs([good, bad])
        assert info.value.keyword == keyword
    assert local.backend.parse_queue(None, None, None) == []
    assert submit_jobs([]) == []


def test_backfill(local):
    holder = local.submit(local.gate("a") + "date +%s.%N\n")  # 1 of 2 cores
    wide = local.submit("date +%s.%N\n", cores=2)  # waits for both cores
    small = local.submit("date +%s.%N\n")  # fits beside the holder: starts first
    local.wait([small])
    assert local.state(wide) == "pending" and local.state(holder) == "running"
    local.open_gate("a")
    jobs = local.wait([holder, wide, small])
    assert all(j.state is State.COMPLETED for j in jobs.values())
    assert jobs[small].end_time <= jobs[wide].start_time
    assert jobs[wide].start_time >= jobs[holder].end_time


def test_memory_limit(local, monkeypatch):
    monkeypatch.setenv("CLUSTER_LOCAL_MEMORY", "1G")
    with pytest.raises(SubmitError) as info:
        local.submit("exit 0\n", mem="2G")
    assert info.value.keyword == "mem" and "1024" in str(info.value)
    first = local.submit(local.gate("m") + "exit 0\n", mem="600M")
    second = local.submit("exit 0\n", mem="600M")  # a free core, but not the memory
    no_mem = local.submit("exit 0\n")  # asks no memory: runs now
    local.wait([no_mem])
    assert local.state(first) == "running" and local.state(second) == "pending"
    local.open_gate("m")
    jobs = local.wait([first, second])
    assert jobs[second].start_time >= jobs[first].end_time


def test_bad_requests_name_the_keyword(local):
    with pytest.raises(SubmitError) as info:
        local.submit("exit 0\n", cores=3)
    assert info.value.keyword == "cores" and "limit of 2 cores" in str(info.value)
    with pytest.raises(SubmitError) as info:
        local.submit("exit 0\n", workdir=str(local.tmp / "missing"))
    assert info.value.keyword == "workdir"
    with pytest.raises(SubmitError) as info:
        local.submit("exit 0\n", nodes=2)
    assert info.value.keyword == "nodes"
    with pytest.raises(SubmitError) as info:
        local.submit("exit 0\n", outfile=str(local.tmp / "missing" / "out"))
    assert info.value.keyword == "outfile"


# --- stopping jobs ----------------------------------------------------------------------------------

def test_cancel_running_kills_process_tree(local):
    body = ("sleep 300 & echo $! > {g1}\n"
            "setsid sleep 300 & echo $! > {g2}\n"  # a descendant in a session of its own
            "echo $$ > {main}\nwait\n").format(g1=local.q("g1"), g2=local.q("g2"), main=local.q("main"))
    job = local.submit(body)
    until(lambda: all(local.path(n).exists() and local.path(n).read_text().strip() for n in ("g1", "g2", "main")),
          what="the job to record its pids")
    pids = [int(local.path(n).read_text()) for n in ("g1", "g2", "main")]
    assert not any(gone(p) for p in pids)
    assert plugins.backend("local").cancel([job]) is True
    record = local.wait([job])[job]
    assert record.state is State.CANCELLED and record.reason == "cancelled by user"
    until(lambda: all(gone(p) for p in pids), 5, "every process of the job to be gone")
    plugins.backend("local").cancel([job])  # cancelling a finished job is no error


def test_cancel_pending_and_held(local, monkeypatch):
    monkeypatch.setenv("CLUSTER_LOCAL_THREADS", "1")
    blocker = local.submit(local.gate("b") + "exit 0\n")
    queued = local.submit("touch " + local.q("queued.ran") + "\n")
    held = local.submit("touch " + local.q("held.ran") + "\n", hold=True)
    dependent = local.submit("exit 0\n", depends=queued)
    local.wait_state(blocker, "running")
    assert local.state(held) == "held"
    local.backend.cancel([queued, held])
    jobs = local.jobs([queued, held])
    assert all(j.state is State.CANCELLED for j in jobs.values())  # at once, not when the runner gets to it
    local.open_gate("b")
    jobs = local.wait([blocker, queued, dependent])
    assert jobs[dependent].state is State.CANCELLED and jobs[dependent].reason == "DependencyNeverSatisfied"
    assert not local.path("queued.ran").exists() and not local.path("held.ran").exists()


def test_hold_and_release(local):
    job = local.submit("exit 0\n", hold=True)
    assert local.state(job) == "held"
    assert cluster_local.release([job]) == 1
    assert local.wait([job])[job].state is State.COMPLETED


def test_walltime_timeout(local):
    job = local.submit("echo $$ > " + local.q("pid") + "; sleep 300\n", time="1s")
    record = local.wait([job], timeout=15)[job]
    assert record.state is State.TIMEOUT and "time limit" in record.reason
    assert record.exitcode == 128 + signal.SIGTERM
    assert 0.9 <= record.end_time - record.start_time < 5
    until(lambda: gone(int(local.path("pid").read_text())), 5, "the timed-out job's shell to be gone")


# --- many processes ---------------------------------------------------------------------------------

SUBMITTER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cluster_core import plugins
    from cluster_core.options import check_arguments
    go, count, tag = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    be = plugins.backend("local")
    while not go.exists():
        time.sleep(0.001)
    ids = []
    for i in range(count):
        script = go.parent / f"{tag}{i}.sh"
        script.write_text("echo " + tag + str(i) + "\\n" + sys.argv[4] + "\\n")
        opts = check_arguments({"outfile": str(script) + ".out", "errfile": str(script) + ".err"})
        ids.append(be.submit(script, opts, True))
    print(" ".join(ids))
""")


def test_job_submitted_elsewhere_is_visible_and_outlives_its_submitter(local):
    local.open_gate("go")
    proc = subprocess.run([sys.executable, "-c", SUBMITTER, str(local.path("go")), "1", "sub",
                           local.gate("release")], capture_output=True, text=True, timeout=60, cwd=local.tmp)
    assert proc.returncode == 0, proc.stderr
    (job,) = proc.stdout.split()
    local.wait_state(job, "running")  # the submitting process is gone; the job runs on
    local.open_gate("release")
    assert local.wait([job])[job].state is State.COMPLETED
    assert local.path("sub0.sh.out").read_text() == "sub0\n"


def test_two_processes_submit_at_once(local):
    assert cluster_local.runner_status(local.state_dir) is None  # both race to start the runner
    procs = [subprocess.Popen([sys.executable, "-c", SUBMITTER, str(local.path("go")), "15", tag, "exit 0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=local.tmp)
             for tag in ("x", "y")]
    local.open_gate("go")
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        ids += out.split()
    assert len(set(ids)) == 30
    jobs = local.wait(ids, timeout=30)
    assert all(j.state is State.COMPLETED for j in jobs.values())
    runners = [p for p in psutil.process_iter(["cmdline"])
               if "cluster_local.runner" in " ".join(p.info["cmdline"] or []) and
               str(local.state_dir) in " ".join(p.info["cmdline"] or [])]
    assert len(runners) == 1


def test_runner_killed_mid_job(local, runner_pid):
    done = local.submit("exit 0\n")
    local.wait([done])
    lost = local.submit("sleep 300 & echo $! > " + local.q("lost.child") + "\n" + local.gate("lost") + "exit 0\n")
    adopted = local.submit("echo $$ > " + local.q("adopted.pid") + "\n" + local.gate("adopted") + "exit 0\n")
    local.wait_state(lost, "running")
    local.wait_state(adopted, "running")
    until(lambda: local.path("lost.child").exists() and local.path("adopted.pid").exists()
          and local.path("lost.child").read_text().strip(), what="the jobs to start")
    stray = int(local.path("lost.child").read_text())
    old = runner_pid()
    os.kill(old, signal.SIGKILL)
    until(lambda: gone(old), 5, "the runner to die")
    # while no runner runs, one job ends (nobody can collect its exit status) and the other goes on
    local.open_gate("lost")
    lost_pid = until(lambda: _pid_of(local, lost), what="the lost job's pid")
    until(lambda: gone(lost_pid), 10, "the lost job's shell to end")
    # looking at the queue starts a new runner, which settles the lost job, kills its stray child and
    # adopts the live one
    jobs = local.wait([done, lost], timeout=20)
    assert runner_pid() != old
    assert jobs[done].state is State.COMPLETED and jobs[done].exitcode == 0
    assert jobs[lost].state is State.UNKNOWN and jobs[lost].reason == "runner lost the job"
    until(lambda: gone(stray), 5, "the lost job's background child to be killed")
    assert local.state(adopted) == "running"
    assert int(adopted) in cluster_local.runner_status(local.state_dir)["running"]
    local.open_gate("adopted")
    record = local.wait([adopted])[adopted]
    assert record.state is State.UNKNOWN and "runner lost the job" in record.reason  # the exit file tells
    after = local.submit("exit 0\n")
    assert local.wait([after])[after].state is State.COMPLETED


def _pid_of(local, job_id):
    from cluster_local.settings import state_dir
    from cluster_local.store import connect
    row = connect(state_dir()).execute("SELECT pid FROM jobs WHERE id=?", (int(job_id),)).fetchone()
    return row[0] if row else None


def test_cancel_adopted_job_after_runner_crash(local, runner_pid):
    job = local.submit("sleep 300 & echo $! > " + local.q("child") + "\nwait\n")
    until(lambda: local.path("child").exists() and local.path("child").read_text().strip(), what="the job")
    child = int(local.path("child").read_text())
    os.kill(runner_pid(), signal.SIGKILL)
    # no runner: cancel acts itself
    local.backend.cancel([job])
    record = local.wait([job])[job]
    assert record.state is State.CANCELLED
    until(lambda: gone(child), 5, "the job's child to be killed")


def test_runner_exits_when_idle_and_comes_back(local, monkeypatch, runner_pid):
    monkeypatch.setenv("CLUSTER_LOCAL_IDLE", "0.2")
    first = local.submit("exit 0\n")
    pid = runner_pid()
    local.wait([first])
    until(lambda: gone(pid), 10, "the idle runner to exit")
    assert cluster_local.runner_status(local.state_dir) is None
    second = local.submit("exit 0\n")
    assert local.wait([second])[second].state is State.COMPLETED


def test_long_state_dir_uses_short_socket(local, monkeypatch, tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    monkeypatch.setenv("CLUSTER_LOCAL_DIR", str(deep))
    try:
        job = local.submit("exit 0\n")
        assert local.wait([job])[job].state is State.COMPLETED
        status = cluster_local.runner_status()
        assert status["socket"].startswith(f"/tmp/cluster-local-{os.getuid()}-")
        assert (os.stat(os.path.dirname(status["socket"])).st_mode & 0o777) == 0o700
    finally:
        cluster_local.shutdown_runner(deep)


def test_runner_stopped_by_sigterm_cancels_running_and_a_new_one_resumes(local, monkeypatch, runner_pid):
    monkeypatch.setenv("CLUSTER_LOCAL_THREADS", "1")
    running = local.submit("echo $$ > " + local.q("pid") + "\n" + local.gate("never") + "exit 0\n")
    queued = local.submit("exit 0\n")
    local.wait_state(running, "running")
    until(lambda: local.path("pid").exists() and local.path("pid").read_text().strip(), what="the job's pid")
    old = runner_pid()
    os.kill(old, signal.SIGTERM)
    record = local.wait([running])[running]
    assert record.state is State.CANCELLED and record.reason == "runner stopped by SIGTERM"
    assert gone(int(local.path("pid").read_text()))
    # the queued job was left queued; asking about it brings a runner back, which runs it
    assert local.wait([queued])[queued].state is State.COMPLETED
    assert runner_pid() != old


def test_recovery_adopts_a_job_started_but_not_recorded(local):
    """A runner that died between starting a job and committing that: the next one adopts the process
    (found by the marker in its environment) instead of running the job twice."""
    from cluster_core.records import State as S
    from cluster_local.settings import MARKER, state_dir, state_key
    from cluster_local.store import connect, transaction
    job = local.submit("echo run >> " + local.q("runs") + "\n" + local.gate("g") + "exit 0\n", hold=True)
    sdir = state_dir()
    conn = connect(sdir)
    script = conn.execute("SELECT script FROM jobs WHERE id=?", (int(job),)).fetchone()[0]
    proc = subprocess.Popen(["/bin/bash", script], env=os.environ | {MARKER: f"{state_key(sdir)}:{job}"},
                            start_new_session=True, cwd=local.tmp)
    try:
        until(lambda: local.path("runs").exists(), what="the job to start")
        with transaction(conn):
            conn.execute("UPDATE jobs SET state='PENDING' WHERE id=?", (int(job),))
        cluster_local.ensure_runner()
        until(lambda: local.state(job) == "running", what="the runner to adopt the job")
        assert cluster_local.runner_status()["running"] == [int(job)]
        assert conn.execute("SELECT pid FROM jobs WHERE id=?", (int(job),)).fetchone()[0] == proc.pid
        local.open_gate("g")
        assert proc.wait(timeout=20) == 0
        record = local.wait([job])[job]
        assert record.state is S.UNKNOWN and record.reason.startswith("runner lost the job")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert local.path("runs").read_text() == "run\n"  # once


def test_recovery_settles_a_job_that_ended_before_its_start_was_recorded(local, runner_pid):
    """A runner that died after starting a short job, before writing the start (the writes of a busy runner
    share a commit), leaves the row queued and the job's exit file: the next runner settles the job by
    that file (state, exit code) and does not run it a second time."""
    import cluster_core as cc
    from cluster_local.settings import MARKER, state_dir, state_key
    from cluster_local.store import connect, transaction
    runs = local.path("runs")
    job = cc.submit(f"echo run >> {local.q('runs')}; exit 3", hold=True, backend="local")
    cluster_local.ensure_runner()
    pid = runner_pid()
    os.kill(pid, signal.SIGKILL)  # dies uncleanly, as in the middle of a pass
    until(lambda: gone(pid), 10, "the runner to die")
    sdir = state_dir()
    conn = connect(sdir)
    script = conn.execute("SELECT script FROM jobs WHERE id=?", (int(job.id),)).fetchone()[0]
    with transaction(conn):
        conn.execute("UPDATE jobs SET state='PENDING' WHERE id=?", (int(job.id),))  # released, then started
    done = subprocess.run(["/bin/bash", script], env=os.environ | {MARKER: f"{state_key(sdir)}:{job.id}"},
                          cwd=local.tmp, start_new_session=True, timeout=60)
    assert done.returncode == 3 and runs.read_text() == "run\n"
    cluster_local.ensure_runner()
    job.wait(timeout=60)
    assert (job.state, job.exitcode) == (State.FAILED, 3)
    assert runs.read_text() == "run\n"  # once
    assert cluster_local.runner_status()["running"] == []


def test_recovery_records_a_job_killed_for_a_cancel_as_cancelled(local, runner_pid):
    """A runner that died after killing a job for a cancel, before writing the end, leaves the row running
    with the cancel asked and an exit file that records only the signal: the next runner records the job
    as cancelled, not as failed with exit code 143."""
    import cluster_core as cc
    from cluster_local.settings import state_dir
    from cluster_local.store import connect, transaction
    started = local.path("started")
    job = cc.submit(f"touch {local.q('started')}; sleep 300", backend="local")
    until(started.exists, 20, "the job to start")  # in its command: the shell no longer forks (see script.py)
    pid = runner_pid()
    os.kill(pid, signal.SIGKILL)
    until(lambda: gone(pid), 10, "the runner to die")
    conn = connect(state_dir())
    leader = conn.execute("SELECT pid FROM jobs WHERE id=?", (int(job.id),)).fetchone()[0]
    with transaction(conn):
        conn.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (int(job.id),))  # what cancel asks
    os.killpg(leader, signal.SIGTERM)  # what the runner does for it
    until(lambda: gone(leader), 20, "the job to die")
    cluster_local.ensure_runner()
    job.wait(timeout=60)
    assert (job.state, local.job(job.id).reason) == (State.CANCELLED, "cancelled by user")


def test_cancel_without_a_runner_kills_a_job_started_but_not_recorded(local, runner_pid):
    """A runner that died between starting a job and committing that leaves its row queued: a cancel with
    no runner alive finds the job's process by its marker and kills it, and the job is cancelled."""
    from cluster_local.settings import MARKER, state_dir, state_key
    from cluster_local.store import connect, transaction
    job = local.submit(local.gate("never") + "exit 0\n", hold=True)
    cluster_local.ensure_runner()
    pid = runner_pid()
    os.kill(pid, signal.SIGKILL)  # no shutdown: that cancels what is queued
    until(lambda: gone(pid), 10, "the runner to die")
    sdir = state_dir()
    conn = connect(sdir)
    script = conn.execute("SELECT script FROM jobs WHERE id=?", (int(job),)).fetchone()[0]
    with transaction(conn):
        conn.execute("UPDATE jobs SET state='PENDING' WHERE id=?", (int(job),))  # released, then started
    proc = subprocess.Popen(["/bin/bash", script], env=os.environ | {MARKER: f"{state_key(sdir)}:{job}"},
                            start_new_session=True, cwd=local.tmp)
    try:
        assert cluster_local.runner_status() is None
        local.backend.cancel([job])
        proc.wait(timeout=20)  # killed (its gate never opens): not left running
        assert local.state(job) == "cancelled"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_limits_from_the_config_file(local, monkeypatch):
    from cluster_core import config
    monkeypatch.delenv("CLUSTER_LOCAL_THREADS")
    config.set_option("local.threads", "1")
    config.set_option("local.memory", "2G")
    with pytest.raises(SubmitError) as info:
        local.submit("exit 0\n", cores=2)
    assert info.value.keyword == "cores" and "limit of 1 cores" in str(info.value)
    with pytest.raises(SubmitError) as info:
        local.submit("exit 0\n", mem="3G")
    assert info.value.keyword == "mem" and "2048 MB" in str(info.value)
    job = local.submit("exit 0\n")
    local.wait([job])
    status = cluster_local.runner_status()
    assert (status["threads"], status["memory"]) == (1, 2048)


def test_default_state_dir_is_per_host(monkeypatch, tmp_path):
    import socket
    from cluster_local.settings import state_dir
    monkeypatch.delenv("CLUSTER_LOCAL_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == (tmp_path / "xdg" / "cluster-core" / "local" / socket.gethostname()).resolve()
    monkeypatch.setenv("CLUSTER_LOCAL_DIR", str(tmp_path / "mine"))
    assert state_dir() == (tmp_path / "mine").resolve()


RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cluster_core import plugins
    from cluster_core.options import check_arguments
    script, count = Path(sys.argv[1]), int(sys.argv[2])
    be = plugins.backend("local")
    ids = []
    for i in range(count):
        opts = check_arguments({"outfile": str(script) + ".out", "errfile": str(script) + ".err"})
        ids.append(be.submit(script, opts, True))
        if i % 2:  # let it end, so the runner goes idle and leaves as the next job comes in
            deadline = time.monotonic() + 20
            while not all(j.state.finished for j in be.parse_queue([ids[-1]])) and time.monotonic() < deadline:
                time.sleep(0.002)
    print(" ".join(ids))
""")


def test_submissions_racing_the_runners_idle_exit(local, monkeypatch):
    monkeypatch.setenv("CLUSTER_LOCAL_IDLE", "0")  # the runner leaves the moment nothing runs
    script = local.script("exit 0\n")
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(script), "12"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=local.tmp) for _ in range(2)]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        ids += out.split()
    assert len(set(ids)) == 24
    jobs = local.wait(ids, timeout=30)
    assert all(j.state is State.COMPLETED for j in jobs.values())
    assert (local.state_dir / "runner.log").read_text().count("serving") > 1  # it did leave and come back


def test_a_job_inherits_no_descriptor_of_the_runner(local):
    job = local.submit("ls /proc/$$/fd\n", name="fds")
    assert local.wait([job])[job].state is State.COMPLETED
    # 255: bash's own descriptor of the script
    assert sorted(local.path("fds1.sh.out").read_text().split(), key=int) == ["0", "1", "2", "255"]


def test_many_kept_poke_connections(local):
    """Submitting processes keep their connection to the runner; past MAX_CLIENTS the oldest are let go,
    and a job submitted meanwhile still runs."""
    import socket as socketlib
    from cluster_local.client import socket_path
    from cluster_local.server import MAX_CLIENTS
    first = local.submit("exit 0\n")
    local.wait([first])
    path = str(socket_path(local.state_dir))
    kept = []
    try:
        for _ in range(MAX_CLIENTS + 20):
            conn = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
            conn.connect(path)
            conn.sendall(b"wake\n")
            kept.append(conn)
        job = local.submit("exit 0\n")
        assert local.wait([job])[job].state is State.COMPLETED
        status = until(lambda: cluster_local.runner_status(local.state_dir), 10, "the runner to answer")
        assert status["pid"]
        # the oldest connections were closed by the runner

        def closed(conn) -> bool:
            try:
                return conn.recv(1, socketlib.MSG_DONTWAIT) == b""
            except BlockingIOError:
                return False
            except ConnectionResetError:
                return True
        until(lambda: closed(kept[0]), 10, "the oldest connection to close")
        assert not closed(kept[-1])
    finally:
        for conn in kept:
            conn.close()


def test_pokes_on_connections_dropped_in_the_same_wakeup(local, runner_pid):
    """The runner wakes up to new connections and to pokes on its oldest kept ones at once; accepting
    the new ones drops those oldest ones, whose events are still in the same batch. It must skip them,
    not die (it once did: its running job was then adopted by a new runner and ended 'lost')."""
    import socket as socketlib
    from cluster_local.client import socket_path
    from cluster_local.server import MAX_CLIENTS
    running = local.submit(local.gate("go") + "exit 3\n")
    local.wait_state(running, "running")
    pid = runner_pid()
    path = str(socket_path(local.state_dir))
    kept = []
    try:
        # with this process's own poke connection and the status request below, the runner is one short
        # of MAX_CLIENTS: none of these is dropped yet
        for _ in range(MAX_CLIENTS - 2):
            conn = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
            conn.connect(path)
            conn.sendall(b"wake\n")
            kept.append(conn)
        until(lambda: cluster_local.runner_status(local.state_dir), 10, "the runner to take them all")
        os.kill(pid, signal.SIGSTOP)
        try:
            for _ in range(20):  # the listener becomes ready first ...
                conn = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
                conn.connect(path)
                kept.append(conn)
            for conn in kept[:20]:  # ... then the connections the accepts will drop
                conn.sendall(b"wake\n")
        finally:
            os.kill(pid, signal.SIGCONT)
        local.open_gate("go")
        job = local.wait([running])[running]
        assert (job.state, job.exitcode) == (State.FAILED, 3)
        assert runner_pid() == pid
        assert "Traceback" not in (local.state_dir / "runner.log").read_text()
    finally:
        for conn in kept:
            conn.close()


def test_memory_limit_is_enforced(local):
    """A job's mem is enforced, not only booked: one that holds more resident memory ends out_of_memory
    (the runner adds up the resident memory of its processes twice a second, as Slurm's OverMemoryKill)."""
    import cluster_core as cc
    from cluster_core import State
    hog = cc.submit("python3 -c 'import time; x = bytearray(400 * 1024 * 1024); time.sleep(60)'", mem="100M",
                    backend="local")
    assert hog.wait(timeout=60) is False
    assert hog.state is State.OUT_OF_MEMORY and "memory limit of 100 MB exceeded" in hog.record.reason
    fits = cc.submit("python3 -c 'x = bytearray(20 * 1024 * 1024)'", mem="200M", backend="local")
    assert fits.wait(timeout=60) is True, (fits.state, fits.record)
