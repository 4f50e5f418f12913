"""cluster_core.futures on the real local backend (its own runner, 2 cores), and on the real Slurm (marked
slurm: skipped with a reason when no controller answers, and must run in CI): the Executor and its
futures, as_completed, and asyncio (await, gather, wait_async) over one shared poller.

Jobs that must stay unfinished wait for a gate file the test creates; nothing here sleeps in place of a
wait, and no test asserts how long anything took."""

import asyncio
import concurrent.futures
import os
import threading
import time

import pytest

import cluster_core as cc
from cluster_core.errors import ConfigError, OptionError, RemoteTraceback, WaitTimeout
from cluster_core.futures import (Executor, FutureJob, JobCancelledError, as_completed, awaitable, gather,
                                  wait_async)
from cluster_core.queue import reset_trackers, tracker
from cluster_core.records import State
from futures_jobs import add, after_gate, divide, fail  # what the jobs run (tests/ is on sys.path: conftest.py)

GATE = 'while [ ! -e "{gate}" ]; do sleep 0.05; done'
# the threads an event loop's default executor may start, whatever the number of jobs awaited
LOOP_THREADS = min(32, (os.cpu_count() or 1) + 4)


def notes(error):
    """The notes added to an exception (Python 3.11+); None where exceptions take no notes."""
    return "\n".join(error.__notes__) if hasattr(BaseException, "add_note") else None


def counted_queries(monkeypatch, backend, on_query=None):
    """Record every scheduler query of ``backend`` (the ids asked about, the process's thread count),
    as the conformance kit counts them; ``on_query(n)`` runs after the n-th query."""
    be = cc.get_backend(backend)
    real = be.parse_queue
    asked = []

    def counting(job_ids=None, user=None, partition=None):
        asked.append((list(job_ids or []), threading.active_count()))
        found = real(job_ids, user, partition)
        if on_query is not None:
            on_query(len(asked))
        return found
    monkeypatch.setattr(be, "parse_queue", counting)
    return asked


# --- the Executor and its futures -------------------------------------------------------------------

def test_submit_gives_a_job_that_is_a_future(local):
    ex = Executor()
    ok, bad = ex.submit(add, 2, b=40), ex.submit(fail, 7)
    assert isinstance(ok, cc.Job) and isinstance(ok, FutureJob) and ok.submitted
    assert ok.result() == 42 and ok.get() == 42
    assert ok.exception() is None
    assert ok.done() is True and ok.done and ok.done == True  # noqa: E712 - the Job's property, and the Future's method
    assert ok.running() is False and ok.cancelled() is False and ok.cancel() is False
    error = bad.exception()
    assert isinstance(error, ValueError) and str(error) == "bad input 7"
    assert isinstance(error.__cause__, RemoteTraceback) and "in fail" in error.__cause__.tb
    with pytest.raises(ValueError, match="bad input 7") as raised:
        bad.result()
    assert raised.value is error  # the same exception, as a Future keeps it
    assert bad.state is State.FAILED
    ex.shutdown()


def test_a_shell_command_is_a_future_too(local):
    with Executor() as ex:
        job = ex.submit("echo hello")
    assert job.result() == "hello\n"


def test_keywords_are_checked_when_the_executor_is_made(local):
    with pytest.raises(OptionError, match="coers"):
        Executor(coers=2)
    with pytest.raises(OptionError, match="array"):
        Executor(array="0-3")
    with pytest.raises(ConfigError, match="no such profile"):
        Executor(profile="nosuch")
    cc.set_profile("two", {"cores": 2})
    with Executor(profile="two", name="summed") as ex:
        job = ex.submit(add, 1, 2)
    assert job.result() == 3 and job.options["cores"] == 2 and job.name == "summed"
    assert ex.backend == "local" and ex.jobs == [job]


def test_map_gives_results_in_order_from_several_iterables(local):
    with Executor() as ex:
        assert list(ex.map(add, [1, 2, 3], [10, 20, 30])) == [11, 22, 33]
        assert list(ex.map(add, [])) == []
        results = ex.map(divide, [1, 2, 3], [1, 0, 1])
        assert next(results) == 1.0
        with pytest.raises(ZeroDivisionError):  # the first failure, when its turn comes
            next(results)


def test_map_timeout_raises_and_cancels_what_did_not_end(local):
    gate = local.parent / "gate"
    ex = Executor()
    results = ex.map(after_gate, [str(gate)] * 3, [1, 2, 3], timeout=0.5)
    with pytest.raises(WaitTimeout, match="3 of 3 jobs still not finished after 0.5 s") as raised:
        next(results)
    assert isinstance(raised.value, concurrent.futures.TimeoutError)
    assert "cancelled, as concurrent.futures' map does" in str(raised.value)
    assert cc.wait(ex.jobs) is False
    assert {t.state for t in ex.jobs} == {State.CANCELLED}


def test_shutdown_without_wait_returns_and_with_wait_waits(local):
    gate = local.parent / "gate"
    ex = Executor()
    job = ex.submit(after_gate, str(gate), "opened")
    ex.shutdown(wait=False)
    assert not job.done()  # it waits for the gate: shutdown(wait=False) did not wait for it
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(add, 1)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.map(add, [1])
    gate.touch()
    ex.shutdown(wait=True)
    assert tracker("local").is_done(job.id)  # known to have ended before anyone asked for its result
    assert job.result() == "opened"


def test_shutdown_cancel_futures_cancels_the_queued_jobs(local):
    gate = local.parent / "gate"
    blocker = cc.submit(GATE.format(gate=gate), cores=2)  # both cores: the jobs below queue behind it
    ex = Executor()
    queued = [ex.submit(add, i) for i in range(3)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert [j.cancelled() for j in queued] == [True] * 3
    assert {j.state for j in queued} == {State.CANCELLED}
    with pytest.raises(concurrent.futures.CancelledError):
        queued[0].result()
    with pytest.raises(JobCancelledError, match="cancelled"):
        queued[1].exception()
    assert blocker.state in (State.PENDING, State.RUNNING)  # not touched
    gate.touch()
    assert blocker.wait() is True


def test_done_callbacks_run_once_where_the_end_is_seen(local, caplog):
    gate = local.parent / "gate"
    ex = Executor()
    job = ex.submit(after_gate, str(gate), 5)
    seen = []
    job.add_done_callback(lambda j: seen.append((j, threading.current_thread())))
    job.add_done_callback(lambda j: 1 / 0)  # logged; the others still run
    job.add_done_callback(lambda j: seen.append("third"))
    assert seen == []  # it waits for the gate
    gate.touch()
    assert job.result() == 5
    assert seen == [(job, threading.current_thread()), "third"]
    assert "exception calling callback" in caplog.text
    job.add_done_callback(lambda j: seen.append("late"))  # it has ended: called at once
    assert seen[-1] == "late"
    job.result()
    assert len(seen) == 3  # each callback once

    other = ex.submit(add, 1, 1)
    other.add_done_callback(lambda j: seen.append("by as_completed"))
    assert list(as_completed([other])) == [other]
    assert seen[-1] == "by as_completed"
    ex.shutdown()


# --- as_completed -----------------------------------------------------------------------------------

def test_as_completed_yields_in_the_order_jobs_end(local):
    gates = [local.parent / f"gate{i}" for i in range(3)]
    ex = Executor()
    jobs = [ex.submit(after_gate, str(g), i) for i, g in enumerate(gates)]  # 0 and 1 run, 2 queues
    release = [1, 2, 0]
    gates[release[0]].touch()
    order = []
    for job in as_completed([jobs[0], jobs[1].id, jobs[2], jobs[0]], timeout=120):  # an id; a job twice
        order.append(job.id)
        if len(order) < 3:
            gates[release[len(order)]].touch()
    assert order == [jobs[i].id for i in release]
    assert [j.result() for j in jobs] == [0, 1, 2]


def test_as_completed_timeout_names_how_many_are_left(local):
    gate = local.parent / "gate"
    quick = cc.submit(add, (1, 2))
    waiting = cc.submit(after_gate, (str(gate), 0))
    assert quick.get() == 3
    found = as_completed([quick, waiting], timeout=0.5)
    assert next(found) is quick  # what had ended comes first
    with pytest.raises(WaitTimeout, match="1 of 2 jobs still not finished after 0.5 s") as raised:
        next(found)
    assert raised.value.pending == [waiting.id] and "they go on running" in str(raised.value)
    assert waiting.state in (State.PENDING, State.RUNNING)
    gate.touch()
    assert waiting.get() == 0


def test_ctrl_c_in_as_completed_leaves_the_jobs_running(local):
    gate = local.parent / "gate"
    quick = Executor().submit(add, 1)
    waiting = cc.submit(after_gate, (str(gate), 0))

    def interrupt(job):
        raise KeyboardInterrupt  # arrives while as_completed polls, as Ctrl-C would
    quick.add_done_callback(interrupt)
    with pytest.raises(KeyboardInterrupt) as raised:
        for _ in as_completed([quick, waiting]):
            pass
    if notes(raised.value) is not None:
        assert "1 jobs go on running" in notes(raised.value) and waiting.id in notes(raised.value)
    assert waiting.state in (State.PENDING, State.RUNNING)
    gate.touch()
    assert waiting.get() == 0


def test_progress_line(local, capsys):
    job = cc.submit(add, (1,))
    assert list(as_completed([job], progress=True)) == [job]
    assert "[1/1 done" in capsys.readouterr().err
    with Executor() as ex:
        ex.submit(add, 2)
        ex.shutdown(progress=True)
    assert "[1/1 done" in capsys.readouterr().err
    assert asyncio.run(gather([job], progress=True)) == [1]
    assert "[1/1 done" in capsys.readouterr().err


# --- asyncio ----------------------------------------------------------------------------------------

def test_await_a_job_and_a_failing_one(local):
    ex = Executor()
    ok, bad = ex.submit(add, 20, 22), ex.submit(fail, 3)
    task = cc.map(add, [5])[0]
    seen = []
    ok.add_done_callback(seen.append)

    async def main():
        assert await ok == 42
        assert await awaitable(task) == 5
        with pytest.raises(ValueError, match="bad input 3") as raised:
            await bad
        assert isinstance(raised.value.__cause__, RemoteTraceback)
    asyncio.run(main())
    assert seen == [ok]  # run by the event loop's poller, which saw the end
    ex.shutdown()


def test_gather_results_in_order_and_return_exceptions(local):
    gate = local.parent / "gate"
    ex = Executor()
    jobs = [ex.submit(add, 1), ex.submit(fail, 2), ex.submit(add, 3)]
    waiting = ex.submit(after_gate, str(gate), 0)

    async def main():
        values = await gather(jobs, return_exceptions=True)
        assert values[0] == 1 and values[2] == 3 and isinstance(values[1], ValueError)
        with pytest.raises(ValueError, match="bad input 2") as raised:
            await gather(jobs)
        assert notes(raised.value) is None or "1 of 3 jobs failed" in notes(raised.value)
        assert await wait_async(jobs) is False
        assert await wait_async([jobs[0], jobs[2].id]) is True
        with pytest.raises(WaitTimeout, match="1 of 1 jobs still not finished after 0.2 s"):
            await wait_async(waiting, timeout=0.2)
        gate.touch()
        assert await gather([waiting]) == [0]
    asyncio.run(main())
    ex.shutdown()


def test_200_awaited_jobs_share_one_poller(local, monkeypatch):
    """200 coroutines, each awaiting its own job: the scheduler is asked once per poll interval about
    every job still unfinished, not once per job; no thread is started per job."""
    gate = local.parent / "gate"
    ex = Executor()
    jobs = [ex.submit(after_gate, str(gate), i) for i in range(200)]  # all wait: 2 run, 198 queue
    interval = cc.get_backend("local").info.poll_interval
    asked = counted_queries(monkeypatch, "local", on_query=lambda n: n == 3 and gate.touch())
    threads_before = threading.active_count()

    async def main():
        return await asyncio.gather(*(awaitable(j) for j in jobs))
    start = time.monotonic()
    values = asyncio.run(main())
    elapsed = time.monotonic() - start
    assert values == list(range(200))
    sizes = [len(ids) for ids, _ in asked]
    assert sizes[0] == 200  # the first poll asked about all of them at once
    assert sizes == sorted(sizes, reverse=True)  # then about those still unfinished, all at once
    assert len(asked) <= elapsed / interval + 2, (len(asked), elapsed)
    assert max(n for _, n in asked) <= threads_before + LOOP_THREADS  # the loop's executor, not a thread a job
    print(f"local: 200 jobs awaited in {elapsed:.2f} s with {len(asked)} queries")
    ex.shutdown()


# --- the real Slurm ---------------------------------------------------------------------------------

@pytest.fixture
def slurm(tmp_path, monkeypatch, cluster_config):
    """The real Slurm, chosen for the test, which runs in tmp_path."""
    monkeypatch.setenv("CLUSTER_BACKEND", "slurm")
    monkeypatch.chdir(tmp_path)
    yield "slurm"
    reset_trackers("slurm")


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_asyncio_200_tasks_one_poller(slurm, monkeypatch):
    tasks = cc.map(add, range(200), backend="slurm")  # one array submission
    interval = cc.get_backend("slurm").info.poll_interval
    asked = counted_queries(monkeypatch, "slurm")
    threads_before = threading.active_count()

    async def main():
        return await asyncio.gather(*(awaitable(t) for t in tasks))
    start = time.monotonic()
    values = asyncio.run(main())
    elapsed = time.monotonic() - start
    assert values == list(range(200))
    assert {i for ids, _ in asked for i in ids} == {tasks[0].job.id}  # the array, asked about as one
    assert len(asked) <= elapsed / interval + 2, (len(asked), elapsed)
    assert max(n for _, n in asked) <= threads_before + LOOP_THREADS
    print(f"slurm: 200 tasks awaited in {elapsed:.1f} s with {len(asked)} queries")


@pytest.mark.slurm
def test_slurm_executor(slurm):
    with Executor(backend="slurm", time="00:05:00") as ex:
        assert list(ex.map(add, [1, 2, 3], [10, 20, 30])) == [11, 22, 33]
        ok, bad = ex.submit(add, 40, 2), ex.submit(fail, 1)
        assert [j.id for j in as_completed([ok, bad], timeout=300)] != []
        assert ok.result() == 42 and isinstance(bad.exception(), ValueError)

        async def main():
            return await gather([ok, bad], return_exceptions=True)
        values = asyncio.run(main())
        assert values[0] == 42 and isinstance(values[1], ValueError)
    assert ex.jobs[0].job.native_array and len(ex.jobs) == 5


def test_await_a_plain_job_and_task(local):
    """``await`` works on any Job or Task (not only an Executor's): job.py's __await__ delegates here."""
    import asyncio

    import cluster_core as cc

    async def main():
        job = cc.submit("echo plain")
        tasks = cc.map(len, ["ab", "abc"])
        return await job, [await t for t in tasks]

    assert asyncio.run(main()) == ("plain\n", [2, 3])
