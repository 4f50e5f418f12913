"""Job through the toy backend (real child processes): files, results, errors, module-level functions."""

import stat

import pytest

import cluster_core as cc
from cluster_core import JobError, JobFailedError, OptionError, RemoteTraceback, State


def add(a, b=0):
    return a + b


def fail_deep(n):
    def inner():
        raise ValueError(f"bad input {n}")
    inner()


def test_shell_job_end_to_end(toy, tmp_path):
    job = cc.submit("echo out; echo err >&2; exit 0", cores=2)
    assert job.id == "1.toy" and job.name == "echo"
    assert job.wait() is True
    assert job.state is State.COMPLETED and job.exitcode == 0
    assert job.stdout == "out\n" and job.stderr == "err\n"
    assert job.get() == "out\n" and job.out == "out\n"
    assert job.runtime is not None and job.runtime >= 0
    script = job.scriptfile.read_text()
    assert "#TOY --cores=2\n" in script and "#TOY --name echo\n" in script
    assert job.scriptfile.parent == tmp_path / "cluster_jobs"


def test_function_job_returns_value_and_files_are_private(toy):
    job = cc.Job(add, (2,), {"b": 40})
    job.submit()
    assert job.get() == 42
    assert stat.S_IMODE(job.files.pickle_in.stat().st_mode) == 0o600
    assert stat.S_IMODE(job.files.pickle_out.stat().st_mode) == 0o600


def test_closure_and_lambda(toy):
    offset = 100
    assert cc.get(cc.submit(lambda x: x + offset, (1,))) == 101


def test_exception_is_reraised_with_remote_traceback(toy):
    job = cc.submit(fail_deep, (7,))
    with pytest.raises(ValueError, match="bad input 7") as err:
        job.get()
    cause = err.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in inner" in cause.tb and "in fail_deep" in cause.tb
    assert job.state is State.FAILED and job.exitcode == 1


def test_nonzero_exit_raises_job_failed_with_stderr(toy):
    job = cc.submit("echo doomed >&2; exit 3")
    assert job.wait() is False
    assert job.state is State.FAILED and job.exitcode == 3
    with pytest.raises(JobFailedError, match=r"(?s)ended failed with exit code 3.*doomed") as err:
        job.get()
    assert err.value.job is job


def test_exit_file_settles_a_job_the_scheduler_forgot(toy):
    job = cc.submit("exit 5")
    toy.procs[job.id].wait()
    del toy.procs[job.id]  # the scheduler no longer reports it
    assert job.wait() is False
    assert job.state is State.FAILED and job.exitcode == 5
    assert job.record.reason == "from the job's exit file"


def test_wait_timeout_leaves_job_running(toy):
    job = cc.submit("sleep 30")
    with pytest.raises(cc.WaitTimeout, match="still not finished after 0.2 s"):
        job.wait(timeout=0.2)
    assert job.state is State.RUNNING
    job.cancel()
    job.wait()
    # the toy reports a SIGKILLed job failed; the core knows it was asked to cancel it
    assert job.state is State.CANCELLED and job.exitcode == -9
    assert "the scheduler reported it failed, exit code -9" in job.record.reason


def test_one_query_per_poll_for_many_jobs(toy):
    jobs = [cc.submit(f"exit {i % 2}") for i in range(12)]
    toy.calls.clear()
    assert cc.wait(jobs) is False
    polls = toy.calls.count("parse_queue")
    assert 1 <= polls <= 4 * 12 and toy.calls == ["parse_queue"] * polls
    states = [j.state for j in jobs]
    assert states.count(State.COMPLETED) == 6 and states.count(State.FAILED) == 6
    assert toy.calls.count("parse_queue") == polls  # finished states are cached, never asked again


def test_get_many_and_wait_by_id(toy):
    jobs = [cc.submit(add, (i, i)) for i in range(5)]
    assert cc.get(jobs) == [0, 2, 4, 6, 8]
    assert cc.wait([jobs[0].id]) is True


def test_make_job_and_make_job_file(toy):
    job = cc.make_job("echo made", name="made")
    assert job.written and not job.submitted and job.scriptfile.exists()
    with pytest.raises(JobError, match="has not been submitted"):
        job.cancel()
    path = cc.make_job_file(add, (1, 2))
    assert path.name.endswith(".cluster.sh") and "cluster_core.runner" in path.read_text()
    assert job.submit().get() == "made\n"
    first = job.id
    assert job.submit() is job and job.id == first  # a second submit() is a no-op, as in the seed
    assert toy.calls.count("submit") == 1


def test_resubmit_runs_again_with_a_new_id(toy, tmp_path):
    counter = tmp_path / "count"
    job = cc.submit(f"echo x >> {counter}; wc -l < {counter}")
    assert job.get().strip() == "1"
    first = job.id
    job.resubmit()
    assert job.id != first
    assert job.get().strip() == "2"


def test_dependencies_submit_unsubmitted_parents_first(toy):
    parent = cc.Job("echo parent")
    child = cc.Job("echo child", depends=parent)
    child.submit()
    assert parent.submitted and parent.id == "1.toy" and child.id == "2.toy"


def test_submit_file_passes_options_not_directives(toy, tmp_path):
    script = tmp_path / "mine.sh"
    script.write_text("#!/bin/bash\necho from my script \"$1\"\n")
    job = cc.submit_file(script, cores=3)
    assert job.scriptfile == script and job.name == "mine"
    assert job.get() == "from my script \n"
    assert script.read_text() == "#!/bin/bash\necho from my script \"$1\"\n"
    with pytest.raises(OptionError, match="does not exist"):
        cc.submit_file(tmp_path / "nope.sh")


def test_workdir_and_metacharacters_taken_literally(toy, tmp_path):
    odd = tmp_path / "a dir; $(touch pwned) 'q'"
    odd.mkdir()
    job = cc.submit("pwd", workdir=str(odd), name="odd; name $(x)")
    assert job.get() == f"{odd}\n"
    assert not (tmp_path / "pwned").exists()
    assert job.name == "odd; name $(x)"


def test_profile_and_bad_keywords(toy):
    cc.set_profile("two", {"cores": 2})
    job = cc.Job("true", profile="two")
    assert job.options["cores"] == 2
    with pytest.raises(OptionError, match="did you mean 'cores'"):
        cc.Job("true", coers=2)
    with pytest.raises(OptionError):
        cc.Job(42)
    with pytest.raises(OptionError, match="for function jobs"):
        cc.Job("echo", args=(1,))


def test_clean_and_clean_dir(toy, tmp_path):
    job = cc.submit(add, (1, 1))
    job.get()
    other = tmp_path / "cluster_jobs" / "keep_me.txt"
    other.write_text("mine")
    files = [p for p in job.files.all() if p.exists()]
    assert len(files) == 6
    removed = cc.clean_dir(tmp_path / "cluster_jobs", confirm=False, outputs=False)
    assert {p.name.split(".cluster.")[1] for p in removed} == {"sh", "exit", "in.pkl", "out.pkl"}
    assert job.outfile.exists()
    job.clean(delete_outputs=True)
    assert not job.outfile.exists() and other.exists()
    assert cc.clean_dir(tmp_path / "cluster_jobs", confirm=False) == []


def test_queue_views(toy):
    done = cc.submit("true")
    running = cc.submit("sleep 30")
    done.wait()
    q = cc.Queue(backend="toy").update(force=True)
    assert set(q.jobs) == {done.id, running.id}
    assert set(q.completed) == {done.id} and set(q.running) == {running.id} and q.queued == {}
    assert done in q and q[done.id].state is State.COMPLETED
    running.cancel()
    assert q.wait([running]) is False


from cluster_core.testing.conformance import BackendConformance  # noqa: E402


class TestToyConformance(BackendConformance):
    """The kit against the toy backend: what a scheduler-less plugin passes and what it cannot."""

    backend = "toy"
    timeout = 30
    other_processes = False  # registered by the test, not installed

    @pytest.fixture
    def backend_ready(self, toy):
        return toy

    @pytest.mark.skip(reason="the toy backend has no dependencies")
    def test_dependency_chain_runs_in_order(self):
        pass

    @pytest.mark.skip(reason="the toy backend has no dependencies")
    def test_failing_dependency_never_runs_child(self):
        pass

    time_limit_test = False
    hold_test = False


def test_function_jobs_offer_the_call_to_backends_that_take_it(toy, tmp_path):
    """A backend whose submit takes ``call`` learns the function job's files (to run it warm); shell jobs
    and backends without the argument are unaffected."""
    from cluster_core import hookimpl, plugins, queue
    from toy_backend import ToyBackend

    class CallAware(ToyBackend):
        @hookimpl
        def submit(self, script, options, directives_in_script, call):
            self.seen = call
            return ToyBackend.submit(self, script, options, directives_in_script)

    aware = CallAware("aware")
    plugins.register(aware, name="aware")
    try:
        job = cc.submit(add, (1, 2), backend="aware")
        assert job.get() == 3
        assert aware.seen.pickle_in == str(job.files.pickle_in)
        assert aware.seen.exit_file == str(job.files.exit) and aware.seen.task is None
        cc.submit("true", backend="aware").wait()
        assert aware.seen is None
    finally:
        for proc in aware.procs.values():
            proc.wait()
        plugins.unregister("aware")
        queue.reset_trackers("aware")


def test_a_written_job_drops_stale_results_when_submitted(toy):
    """Outputs already under the job's files (a write() before, a hand-run) never pass for this run's."""
    job = cc.Job(add, (1, 2))
    job.write()
    job.files.exit.write_text("0 1 2 end\n")
    job.files.pickle_out.write_bytes(b"stale")
    job.submit()
    assert job.get() == 3


def test_a_resubmitted_script_is_replaced_not_rewritten_in_place(toy):
    job = cc.submit("exit 0")
    assert job.wait() is True
    before = job.scriptfile.stat().st_ino
    job.resubmit()
    assert job.wait() is True
    # a job of the earlier submission still reading the old script keeps reading the old file
    assert job.scriptfile.stat().st_ino != before


def test_release_on_a_backend_that_cannot_names_it(toy):
    """The toy backend has no release hook: releasing one of its jobs says so, naming the backend."""
    job = cc.submit("true")
    job.wait(timeout=30)
    with pytest.raises(cc.BackendError, match="backend 'toy' cannot release held jobs"):
        job.release()
    with pytest.raises(cc.BackendError, match="'toy' cannot release"):
        cc.release([job.id], backend="toy")
