"""The conformance kit: one suite every backend runs against itself.

In a backend's tests::

    from cluster_core.testing.conformance import BackendConformance

    class TestMyScheduler(BackendConformance):
        backend = "mysched"            # the entry-point name
        job_options = {"partition": "debug"}

Class attributes tune it: ``job_options`` (added to every job), ``timeout`` (seconds to wait for a
trivial job), ``time_limit_test`` (run the wall-time test; the scheduler must enforce ``time``),
``time_limit`` and ``time_limit_sleep``, ``hold_test`` (the scheduler takes ``hold=True`` and the backend
can release), ``other_processes`` (the backend is installed, so a new interpreter can load it: off only for
a backend registered by hand inside the test process). Override the ``backend_ready`` fixture to skip or set up.
The dependency-type tests run each type the backend's ``info.dependency_kinds`` lists, and for the others
check that a job with it is refused at submit.

"Another process" checks run a new interpreter (``sys.executable``) with this process's environment: it
never saw the job, and finds it through the job records alone, as a second shell or tomorrow's session does.
"""

from __future__ import annotations

import getpass
import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, cast

import pytest

# the names as ``cluster_core`` exports them (its lazy attributes), imported from their modules so that
# they keep their types
from cluster_core.checkpoint import Checkpointable
from cluster_core.errors import JobFailedError, OptionError, RemoteTraceback, UnknownJobError
from cluster_core.job import Job, get, map as map_jobs, release, submit_file, wait
from cluster_core.keywords import check_arguments
from cluster_core.plugins import get_backend
from cluster_core.records import QueueJob, State
from cluster_core.rendering import directive_lines


def _square(x: int) -> int:
    return x * x


def _uses_imports() -> tuple[str, str]:
    print("printed")
    # path and kit_probe_mod: given by the imports keyword
    return path.basename("/a/b"), kit_probe_mod.VALUE  # type: ignore[name-defined]  # noqa: F821


def _raise_lookup(key: str) -> None:
    def deeper() -> None:
        raise LookupError(f"no such key: {key}")
    deeper()


class _Tally(Checkpointable):
    """A checkpointable job that is never warned: it must run as any function job."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, n: int) -> int:
        for i in range(n):
            self.total += i
        return self.total


class _Waiting(Checkpointable):
    """A checkpointable job that runs until it is stopped (it saves itself on the SIGTERM of a cancel)."""

    def __call__(self, started: str) -> None:
        Path(started).touch()
        while True:
            time.sleep(0.2)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll a real condition until it holds (returns its value) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class BackendConformance:
    backend: str = ""
    job_options: Mapping[str, Any] = {}
    timeout: float = 120.0
    time_limit_test: bool = True
    time_limit: str = "1m"
    time_limit_sleep: int = 150
    hold_test: bool = True
    other_processes: bool = True
    tmp: Path  # the test's tmp_path, also its working directory

    @pytest.fixture(autouse=True)
    def _conformance_setup(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend_ready: object
                           ) -> Iterator[None]:
        from cluster_core.queue import reset_trackers
        from cluster_core.registry import ENV_REGISTRY
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv(ENV_REGISTRY, str(tmp_path / "job-records"))
        self.tmp = tmp_path
        yield
        reset_trackers(self.backend)  # a scheduler set up afresh per test may hand out the same ids

    @pytest.fixture
    def backend_ready(self) -> object:
        """Override to skip when the scheduler is not up, or to prepare it."""
        return True

    def submit(self, command: str | Callable[..., Any], *args: Any, **options: Any) -> Job:
        opts = {**self.job_options, **options}
        return Job(command, *args, backend=self.backend, **opts).submit()

    def test_backend_is_installed_and_detected(self) -> None:
        be = get_backend(self.backend)
        assert be.info.name == self.backend
        assert be.detect().available

    def test_shell_job_stdout_stderr(self) -> None:
        job = self.submit("echo to-out; echo to-err >&2")
        assert job.wait(timeout=self.timeout) is True
        assert job.state is State.COMPLETED and job.exitcode == 0
        assert job.stdout == "to-out\n" and job.stderr == "to-err\n"

    def test_function_job_returns_value(self) -> None:
        assert self.submit(_square, (12,)).get(timeout=self.timeout) == 144

    def test_closure_job(self) -> None:
        factor = 3
        assert self.submit(lambda v: [factor * x for x in v], ([1, 2],)).get(timeout=self.timeout) == [3, 6]

    def test_exception_reraised_with_remote_traceback(self) -> None:
        job = self.submit(_raise_lookup, ("k1",))
        with pytest.raises(LookupError, match="no such key: k1") as err:
            job.get(timeout=self.timeout)
        assert isinstance(err.value.__cause__, RemoteTraceback)
        assert "in deeper" in err.value.__cause__.tb
        assert job.state is State.FAILED

    def test_nonzero_exit(self) -> None:
        job = self.submit("echo bye; exit 7")
        assert job.wait(timeout=self.timeout) is False
        assert job.state is State.FAILED and job.exitcode == 7
        assert job.stdout == "bye\n"
        with pytest.raises(JobFailedError, match="exit code 7"):
            job.get()

    def test_dependency_chain_runs_in_order(self) -> None:
        log = self.tmp / "order.log"
        first = self.submit(f"sleep 1; echo first >> '{log}'")
        second = self.submit(f"echo second >> '{log}'", depends=first)
        third = self.submit(f"echo third >> '{log}'", depends=[second])
        assert wait([first, second, third], timeout=self.timeout * 2) is True
        assert log.read_text().split() == ["first", "second", "third"]

    def test_failing_dependency_never_runs_child(self) -> None:
        marker = self.tmp / "child-ran"
        parent = self.submit("exit 1")
        child = self.submit(f"touch '{marker}'", depends=parent)
        wait([parent, child], timeout=self.timeout * 2)
        assert parent.state is State.FAILED
        assert child.state is State.CANCELLED
        assert not marker.exists()

    # --- dependency types: each backend runs those its backend_info lists, and refuses the others --------

    def _has_dependency_kind(self, kind: str) -> bool:
        """True when the backend lists ``kind``; else checks that a job with it is refused at submit, with an
        OptionError naming the type and the backend, before anything is submitted (not even a parent Job
        given unsubmitted), and returns False: the test has nothing more to run."""
        if kind in get_backend(self.backend).info.dependency_kinds:
            return True
        parent = Job("exit 0", backend=self.backend, **self.job_options)
        depends = "singleton" if kind == "singleton" else {kind: parent}
        child = Job("exit 0", backend=self.backend, depends=depends, **self.job_options)
        with pytest.raises(OptionError, match=kind) as err:
            child.submit()
        assert err.value.keyword == "depends" and self.backend in str(err.value)
        assert not parent.submitted and not child.submitted
        return False

    def test_afterany_runs_after_a_failed_parent(self) -> None:
        if not self._has_dependency_kind("afterany"):
            return
        log = self.tmp / "order.log"
        parent = self.submit(f"sleep 1; echo parent >> '{log}'; exit 3")
        child = self.submit(f"echo child >> '{log}'", depends=f"afterany:{parent.id}")
        assert wait([parent, child], timeout=self.timeout * 2) is False
        assert (parent.state, child.state) == (State.FAILED, State.COMPLETED)
        assert log.read_text().split() == ["parent", "child"]

    def test_afternotok_runs_only_after_a_failure(self) -> None:
        if not self._has_dependency_kind("afternotok"):
            return
        log = self.tmp / "order.log"
        failing = self.submit(f"sleep 1; echo failing >> '{log}'; exit 2")
        succeeding = self.submit(f"sleep 1; echo succeeding >> '{log}'")
        after_failure = self.submit(f"echo after-failure >> '{log}'", depends=f"afternotok:{failing.id}")
        after_success = self.submit(f"echo after-success >> '{log}'", depends={"afternotok": succeeding})
        wait([failing, succeeding, after_failure, after_success], timeout=self.timeout * 2)
        assert (failing.state, succeeding.state) == (State.FAILED, State.COMPLETED)
        assert after_failure.state is State.COMPLETED
        assert after_success.state is State.CANCELLED  # its condition can never hold: it never runs
        lines = log.read_text().split()
        assert "after-success" not in lines and lines.index("failing") < lines.index("after-failure")

    def test_after_starts_once_the_parent_started(self) -> None:
        """``after``: the child may start while its parent runs; here the parent waits for a file that only
        the child creates, so a backend that waited for the parent's end would never finish it."""
        if not self._has_dependency_kind("after"):
            return
        log, started, gate = self.tmp / "order.log", self.tmp / "parent-started", self.tmp / "gate"
        parent = self.submit(f"touch '{started}'; n=0; while [ ! -e '{gate}' ] && [ $n -lt 600 ]; do sleep 0.2; "
                             f"n=$((n+1)); done; echo parent-ends >> '{log}'")
        # the scheduler's start comes a moment before the parent's command runs: allow it some seconds
        child = self.submit(f"n=0; while [ ! -e '{started}' ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; "
                            f"[ -e '{started}' ] && echo child-after-start >> '{log}' || echo child-early >> "
                            f"'{log}'; touch '{gate}'", depends={"after": parent})
        try:
            assert wait([parent, child], timeout=self.timeout * 2) is True
        finally:
            gate.touch()  # whatever happened, let the parent end
        assert log.read_text().split() == ["child-after-start", "parent-ends"]

    def test_singleton_waits_for_the_running_job_of_its_name(self) -> None:
        if not self._has_dependency_kind("singleton"):
            return
        log, name = self.tmp / "order.log", f"kit-singleton-{os.getpid()}-{time.monotonic_ns()}"
        first = self.submit(f"sleep 3; echo first >> '{log}'", name=name)
        second = self.submit(f"echo second >> '{log}'", name=name, depends="singleton")
        other = self.submit(f"echo other >> '{log}'", name=name + "-other", depends="singleton")
        assert wait([first, second, other], timeout=self.timeout * 2) is True
        lines = log.read_text().split()
        assert lines.index("first") < lines.index("second") and "other" in lines  # other: another name

    def test_cancel_running_job(self) -> None:
        started = self.tmp / "started"
        job = self.submit(f"touch '{started}'; sleep 300")
        wait_for(lambda: started.exists(), self.timeout, "the job to start")
        job.cancel()
        job.wait(timeout=self.timeout)
        assert job.state is State.CANCELLED
        # killed by a signal: its exit file (when the shell lived to write one) must not say it succeeded
        assert job.exitcode != 0, "a cancelled job reports exit code 0"

    def test_a_checkpointing_job_runs_as_any_job_or_is_refused(self) -> None:
        """On a backend that can requeue, a Checkpointable job never warned runs as any function job (its
        script passes signals on and keeps the same result and exit file), and a cancel ends it cancelled
        though it saves itself on the SIGTERM: it is not requeued. A backend that cannot refuses it at
        submission, with an OptionError naming max_requeue and the backend."""
        if get_backend(self.backend).requeue_lines() is None:
            with pytest.raises(OptionError) as err:
                self.submit(_Tally(), (5,))
            assert err.value.keyword == "max_requeue" and f"the {self.backend} backend cannot" in str(err.value)
            return
        job = self.submit(_Tally(), (5,))
        assert job.get(timeout=self.timeout) == 10
        assert job.state is State.COMPLETED and job.exitcode == 0
        assert not job._job_files.checkpoint.exists()
        started = self.tmp / "started"
        job = self.submit(_Waiting(), (str(started),))
        wait_for(lambda: started.exists(), self.timeout, "the job to start")
        job.cancel()
        job.wait(timeout=self.timeout)
        assert job.state is State.CANCELLED
        queued = [r for r in get_backend(self.backend).parse_queue([cast(str, job.id)]) if r.state.active]
        assert queued == [], f"a cancelled job was requeued: {queued}"

    def test_metacharacters_taken_literally(self) -> None:
        odd = self.tmp / "dir with space; $(touch pwned) 'quote' \"dq\""
        odd.mkdir()
        job = self.submit("pwd; printf '%s\\n' \"$0\" >/dev/null", workdir=str(odd),
                          name="name with $(touch pwned2); `x`")
        assert job.wait(timeout=self.timeout) is True
        assert job.stdout == f"{odd}\n"
        assert not (self.tmp / "pwned").exists() and not (odd / "pwned").exists()
        assert not (odd / "pwned2").exists() and not (self.tmp / "pwned2").exists()

    def test_many_jobs_one_query_per_poll(self, monkeypatch: pytest.MonkeyPatch) -> None:
        be = get_backend(self.backend)
        asked: list[list[str]] = []
        real = be.parse_queue

        def recording(job_ids: Optional[Sequence[str]] = None, user: Optional[str] = None,
                      partition: Optional[str] = None) -> list[QueueJob]:
            asked.append(list(job_ids or []))
            return real(job_ids, user, partition)
        monkeypatch.setattr(be, "parse_queue", recording)
        jobs = [self.submit(f"exit {i % 3}") for i in range(6)]
        wait(jobs, timeout=self.timeout * 2)
        assert [j.exitcode for j in jobs] == [0, 1, 2, 0, 1, 2]
        ids = {j.id for j in jobs}
        assert set(asked[0]) == ids  # the first poll asks about all six at once
        for batch in asked:  # later polls ask only about unfinished jobs, all in one call
            assert set(batch) <= ids and len(batch) == len(set(batch))
        finished_before: set[Optional[str]] = set()
        for batch in asked:
            assert not (set(batch) & finished_before)
            finished_before |= ids - set(batch) if batch else ids

    def test_reading_results_one_by_one_asks_the_scheduler_no_more(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Getting N results one at a time costs no more scheduler queries than one get of all of them: a
        job known to have ended is read without asking, and two queries are never closer than the poll
        interval."""
        be = get_backend(self.backend)
        asked: list[float] = []
        real = be.parse_queue

        def recording(job_ids: Optional[Sequence[str]] = None, user: Optional[str] = None,
                      partition: Optional[str] = None) -> list[QueueJob]:
            asked.append(time.monotonic())
            return real(job_ids, user, partition)
        monkeypatch.setattr(be, "parse_queue", recording)
        jobs = [self.submit(f"echo {i}") for i in range(6)]
        assert [j.get(timeout=self.timeout * 2) for j in jobs] == [f"{i}\n" for i in range(6)]
        one_by_one = len(asked)
        assert [j.get() for j in jobs] == [f"{i}\n" for i in range(6)] and len(asked) == one_by_one
        gaps = [b - a for a, b in zip(asked, asked[1:])]
        assert all(g >= be.info.poll_interval * 0.9 for g in gaps), gaps

    def test_map_values_in_order(self) -> None:
        tasks = map_jobs(_square, range(5), backend=self.backend, **self.job_options)
        assert get(tasks, timeout=self.timeout * 2) == [0, 1, 4, 9, 16]
        assert [t.exitcode for t in tasks] == [0] * 5

    def test_shell_array_tasks_see_their_index(self) -> None:
        job = self.submit('echo "task=$CLUSTER_TASK_ID"; exit $((CLUSTER_TASK_ID == 2 ? 3 : 0))', array="0-2")
        assert job.wait(timeout=self.timeout * 2) is False
        assert [t.stdout for t in job.tasks] == ["task=0\n", "task=1\n", "task=2\n"]
        assert [t.exitcode for t in job.tasks] == [0, 0, 3]

    def test_every_held_job_is_reported_by_one_query(self) -> None:
        """parse_queue must report every id asked for, also jobs that will never write an exit file
        while they wait (held): the exit-file fallback cannot cover for a backend that drops them."""
        if not self.hold_test:
            pytest.skip(f"{self.backend} cannot submit held jobs")
        jobs = [self.submit("echo never", hold=True) for _ in range(3)]
        try:
            records = {r.id: r for r in get_backend(self.backend).parse_queue([cast(str, j.id) for j in jobs])}
            assert set(records) == {j.id for j in jobs}
            assert {r.state for r in records.values()} == {State.HELD}
        finally:
            get_backend(self.backend).cancel([cast(str, j.id) for j in jobs])  # submitted: each has its id
        wait(jobs, timeout=self.timeout)
        assert {j.state for j in jobs} == {State.CANCELLED}

    def test_held_jobs_run_once_released(self) -> None:
        """A job and an array submitted held stay held until released (the array by its own id: every
        task), with one call, then run; releasing them again once they ended is no error."""
        if not self.hold_test:
            pytest.skip(f"{self.backend} cannot submit held jobs")
        log = self.tmp / "released.log"
        job = self.submit(f"echo job >> '{log}'", hold=True)
        array = self.submit(f'echo "task $CLUSTER_TASK_ID" >> \'{log}\'', hold=True, array="0-2")
        try:
            assert (job.state, array.state) == (State.HELD, State.HELD)
            if self.other_processes:
                self.cli("release", cast(str, job.id), cast(str, array.id))
            else:
                release([job, array])
            assert wait([job, array], timeout=self.timeout * 2) is True
        finally:
            get_backend(self.backend).cancel([cast(str, j.id) for j in (job, array) if not j.done])
        assert sorted(log.read_text().splitlines()) == ["job", "task 0", "task 1", "task 2"]
        release([job, array])

    @pytest.mark.slow
    def test_time_limit(self) -> None:
        if not self.time_limit_test:
            pytest.skip(f"time_limit_test is off for {self.backend} (no enforced limit, or tested elsewhere)")
        job = self.submit(f"sleep {self.time_limit_sleep}", time=self.time_limit)
        job.wait(timeout=self.time_limit_sleep + self.timeout)
        assert job.state is State.TIMEOUT
        assert job.exitcode != 0, "a job killed at its time limit reports exit code 0"

    # --- jobs that outlive the process that submitted them ------------------------------------------

    def _need_other_processes(self) -> None:
        if not self.other_processes:
            pytest.skip(f"{self.backend} is registered inside the test process only: another process "
                        "cannot load it")

    def second_process(self, code: str) -> Any:
        """Run ``code`` in a new interpreter with this environment; the JSON it prints last is returned."""
        self._need_other_processes()
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=self.timeout * 4, env=dict(os.environ), cwd=str(self.tmp))
        assert proc.returncode == 0, f"the second process failed:\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def cli(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        """``cluster ARGS`` as a new process (a second shell), with this backend; its exit code is checked."""
        self._need_other_processes()
        proc = subprocess.run([sys.executable, "-m", "cluster_core", *args], capture_output=True, text=True,
                              timeout=self.timeout * 4, env=dict(os.environ, NO_COLOR="1"), cwd=str(self.tmp))
        assert proc.returncode == expect, f"cluster {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
        return proc

    def keyword_args(self) -> list[str]:
        return [w for k, v in self.job_options.items() for w in ("-k", f"{k}={v}")]

    def test_every_kind_of_job_found_by_id_from_another_process(self) -> None:
        shell = self.submit("echo shell-out; exit 3")
        func = self.submit(_square, (7,))
        array = self.submit('echo "t$CLUSTER_TASK_ID"', array="0-2")
        tasks = map_jobs(_square, [2, 3], backend=self.backend, **self.job_options)
        script = self.tmp / "users-own.sh"
        script.write_text("#!/bin/bash\necho from-the-users-script\n")
        own = submit_file(script, backend=self.backend, **self.job_options)
        got = self.second_process(f"""
            import json, cluster_core as cc
            be, t = {self.backend!r}, {self.timeout * 2!r}
            shell = cc.Job.from_id({shell.id!r})            # the backend comes from the job's record
            out = {{"shell_ok": shell.wait(timeout=t), "shell": [shell.state.value, shell.exitcode, shell.stdout]}}
            out["func"] = cc.get({func.id!r}, timeout=t)
            out["array"] = cc.get({array.id!r}, timeout=t)    # an array's id: every task, in order
            out["task"] = cc.get({array.tasks[1].id!r}, backend=be, timeout=t)  # the scheduler's own task id
            out["pair"] = cc.Job.from_id(({array.id!r}, 2), backend=be).stdout
            out["map"] = cc.get({[t.id for t in tasks]!r}, timeout=t)
            out["own"] = cc.get({own.id!r}, timeout=t)
            print(json.dumps(out))
        """)
        assert got == {"shell_ok": False, "shell": ["failed", 3, "shell-out\n"], "func": 49,
                       "array": ["t0\n", "t1\n", "t2\n"], "task": "t1\n", "pair": "t2\n", "map": [4, 9],
                       "own": "from-the-users-script\n"}

    def test_a_pickled_job_works_where_it_is_unpickled(self) -> None:
        job = self.submit(_square, (5,))
        task = map_jobs(_square, [6], backend=self.backend, **self.job_options)[0]
        (self.tmp / "jobs.pkl").write_bytes(pickle.dumps([job, task]))
        got = self.second_process(f"""
            import json, pickle
            job, task = pickle.loads(open("jobs.pkl", "rb").read())
            print(json.dumps([job.get(timeout={self.timeout!r}), task.get(timeout={self.timeout!r}), job.id]))
        """)
        assert got == [25, 36, job.id]

    def test_outcome_kept_after_the_scheduler_and_the_exit_file_are_gone(self) -> None:
        """Once a job's end is known, its record tells it: another process asks no scheduler, and needs no
        exit file (a scheduler that forgot the job, a job directory cleaned of its exit files)."""
        job = self.submit("exit 4")
        assert job.wait(timeout=self.timeout) is False
        assert job.files is not None
        job.files.exit.unlink()
        got = self.second_process(f"""
            import json, cluster_core as cc
            be = cc.get_backend({self.backend!r})
            def asked(*args, **kwargs):
                raise AssertionError("the scheduler was asked about a job whose end is recorded")
            be.parse_queue = asked
            job = cc.Job.from_id({job.id!r})
            print(json.dumps([job.state.value, job.exitcode]))
        """)
        assert got == ["failed", 4]

    def test_unknown_id_is_an_error_at_once(self) -> None:
        with pytest.raises(UnknownJobError, match="99999999"):
            wait(["99999999"], backend=self.backend, timeout=self.timeout)
        self.cli("wait", "--backend", self.backend, "99999999", expect=2)

    def test_start_directory_and_umask_are_the_submitters(self) -> None:
        """Every backend starts a job where it was submitted, with the submitter's umask (Torque and
        OpenPBS would start it in $HOME, Grid Engine and PBS with their own umask)."""
        here = self.tmp / "submitted-from-here"  # Torque delivers no output to a path with a space
        here.mkdir()
        old = os.umask(0o027)
        cwd = os.getcwd()
        try:
            os.chdir(here)
            job = self.submit("pwd; umask; touch made-here")
        finally:
            os.chdir(cwd)
            os.umask(old)
        assert job.wait(timeout=self.timeout) is True
        assert job.stdout is not None and job.stdout.splitlines() == [str(here), "0027"]
        assert (here / "made-here").exists()

    def test_job_sees_the_submitters_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """As Slurm does by default, every backend passes the submitting environment to the job (Torque,
        OpenPBS and Grid Engine pass almost nothing unless told)."""
        monkeypatch.setenv("CLUSTER_KIT_PROBE", "a value; with $pace")
        job = self.submit('printf "%s\\n" "$CLUSTER_KIT_PROBE"')
        assert job.wait(timeout=self.timeout) is True
        assert job.stdout == "a value; with $pace\n"

    def test_fyrd_file_and_function_keywords(self) -> None:
        """fyrd's keywords mean the same on every backend: scriptpath, outpath and suffix place and name the
        files, imports and syspaths prepare a function job, clean_files and clean_outputs tidy up after get
        (what was read stays readable)."""
        lib = self.tmp / "kit-lib"
        lib.mkdir()
        (lib / "kit_probe_mod.py").write_text("VALUE = 'from syspaths'\n")
        job = self.submit(_uses_imports, scriptpath=str(self.tmp / "scripts"), outpath=str(self.tmp / "outs"),
                          suffix="kit", imports=["from os import path", "kit_probe_mod"], syspaths=[str(lib)],
                          clean_files=True, clean_outputs=True)
        assert job.scriptfile is not None and job.outfile is not None
        assert job.scriptfile.parent == self.tmp / "scripts" and ".kit.sh" in job.scriptfile.name
        assert job.outfile.parent == self.tmp / "outs"
        assert job.get(timeout=self.timeout) == ("b", "from syspaths")
        assert not job.scriptfile.exists() and not job.outfile.exists() and job.stdout == "printed\n"
        shell = self.submit("echo kept", outpath=str(self.tmp / "outs"), suffix="kit")
        assert shell.get(timeout=self.timeout) == "kept\n" and shell.outfile is not None
        assert shell.outfile.parent == self.tmp / "outs" and ".kit." in shell.outfile.name

    def test_output_path_placeholders_mean_the_same_everywhere(self) -> None:
        """%x (name), %j (job id), %u (user), %A and %a (array id, task index) in outfile and errfile are
        filled in on every backend (by the job's script, from the scheduler's variables), and the Job knows
        the paths; a placeholder a backend cannot fill in is an OptionError at submit naming it."""
        logs = self.tmp / "logs"
        logs.mkdir()
        job = self.submit("echo out; echo err >&2", name="ph", outfile=str(logs / "%x-%j.out"),
                          errfile=str(logs / "%x-%j-%u.err"))
        assert job.outfile == logs / f"ph-{job.id}.out"
        assert job.get(timeout=self.timeout) == "out\n" and job.stderr == "err\n"
        assert (logs / f"ph-{job.id}-{getpass.getuser()}.err").read_text() == "err\n"
        assert Job.from_id(job.id, backend=self.backend).outfile == job.outfile
        be = get_backend(self.backend)
        array = Job('echo "t$CLUSTER_TASK_ID"', backend=self.backend, array="0-1", name="pa",
                       outfile=str(logs / "%x-%A_%a.out"), **self.job_options)
        if not (be.info.supports_arrays and be.info.array_id_variable):
            with pytest.raises(OptionError, match="%A cannot be filled in"):
                array.submit()
            return
        assert get(array.submit(), timeout=self.timeout) == ["t0\n", "t1\n"]
        assert [t.outfile for t in array.tasks] == [logs / f"pa-{array.id}_{i}.out" for i in range(2)]

    def test_cli_takes_sbatchs_flags(self) -> None:
        """`cluster submit` takes sbatch's short flags on every backend, placeholders in -o included."""
        logs = self.tmp / "cli-logs"
        logs.mkdir()
        proc = self.cli("submit", "--backend", self.backend, "--json", "-J", "kitflags", "-c", "1", "-t", "10",
                        "-o", str(logs / "%x-%j.out"), *self.keyword_args(), "--", "echo", "flags")
        info = json.loads(proc.stdout)
        assert info["outfile"] == str(logs / f"kitflags-{info['id']}.out")
        self.cli("wait", "--backend", self.backend, info["id"])
        assert (logs / f"kitflags-{info['id']}.out").read_text() == "flags\n"

    def test_a_users_script_keeps_its_own_directives(self) -> None:
        """A user's own script is submitted as it is: its directives (written in the scheduler's own syntax)
        stand, and the core reads them, so the Job knows its name, cores, time limit and output files (a
        time in H:MM:SS, whose colons are no separator: Torque's reader once kept only the hours)."""
        be = get_backend(self.backend)
        if not be.info.directive_prefix or not be.reads_directives:
            pytest.skip(f"{self.backend} reads no directives from a script")
        out, err = self.tmp / "own-out.txt", self.tmp / "own-err.txt"
        own = check_arguments({"name": "own-name", "cores": 2, "time": "1:00:00", "outfile": str(out),
                               "errfile": str(err)})
        lines = directive_lines(be.render_options(own), be.info.directive_prefix, be.info.directive_escapes_backslash)
        script = self.tmp / "own-directives.sh"
        script.write_text("#!/bin/bash\n" + "\n".join(lines) + "\necho from-own-script\necho to-err >&2\n")
        job = submit_file(script, backend=self.backend, **self.job_options)
        assert (job.name, job.options.get("cores"), job.outfile, job.errfile) == ("own-name", 2, out, err)
        assert job.options.get("time") == 3600
        assert job.get(timeout=self.timeout) == "from-own-script\n"
        assert out.read_text() == "from-own-script\n" and err.read_text() == "to-err\n"
        assert job.record is None or job.record.cores in (None, 2)
        again = Job.from_id(job.id, backend=self.backend)
        assert (again.name, again.outfile) == ("own-name", out)

    def test_cli_array_status_wait_get_logs_cancel_from_other_shells(self) -> None:
        kw = self.keyword_args()
        array_id = self.cli("submit", "--backend", self.backend, *kw, "--array", "0-2", "--",
                            'echo "t$CLUSTER_TASK_ID"; exit $((CLUSTER_TASK_ID == 1 ? 5 : 0))').stdout.strip()
        assert array_id and "\n" not in array_id
        self.cli("wait", array_id, expect=1)  # one task failed
        assert self.cli("status", array_id).stdout == "failed\n"
        assert self.cli("status", "--format", "snakemake", array_id).stdout == "failed\n"
        info = json.loads(self.cli("status", "--json", array_id).stdout)[0]
        assert [(t["index"], t["state"], t["exitcode"]) for t in info["tasks"]] == [
            (0, "completed", 0), (1, "failed", 5), (2, "completed", 0)]
        assert all(open(t["outfile"]).read() == f"t{t['index']}\n" for t in info["tasks"])
        logs = self.cli("logs", array_id).stdout
        assert all(f"t{i}\n" in logs for i in range(3))
        good = self.cli("submit", "--backend", self.backend, *kw, "--array", "0-1", "--",
                        'echo "ok$CLUSTER_TASK_ID"').stdout.strip()
        assert self.cli("get", good).stdout == "ok0\nok1\n"
        assert self.cli("status", "--format", "snakemake", good).stdout == "success\n"
        sleeper = self.cli("submit", "--backend", self.backend, *kw, "--array", "0-1", "--",
                           "sleep 300").stdout.strip()
        assert self.cli("status", "--format", "snakemake", sleeper).stdout == "running\n"
        self.cli("cancel", sleeper)
        self.cli("wait", sleeper, expect=1)
        assert self.cli("status", sleeper).stdout == "cancelled\n"
