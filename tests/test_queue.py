"""The poll schedule of ``Tracker.wait``: how late a wait's end is seen, and how many polls it costs."""

import pytest

from cluster_core.queue import next_pause


def schedule(base: float, until: float, finishing=lambda t: False) -> list[float]:
    """Poll times of a wait lasting ``until`` seconds; ``finishing(t)``: a job ended before the poll at t."""
    t, pause, polls = 0.0, base, [0.0]
    while t < until:
        t += pause
        polls.append(t)
        pause = next_pause(pause, base, t, finishing(t))
    return polls


@pytest.mark.parametrize("base", [0.05, 2.0])
def test_the_end_is_seen_within_a_tenth_of_the_wait(base):
    for end in (0.5, 5, 30, 100, 400, 3600):
        polls = schedule(base, end)
        seen = next(t for t in polls if t >= end)
        assert seen - end <= max(base, min(10 * base, 0.1 * seen)) + 1e-9, (end, seen)


def test_polls_grow_with_the_log_of_the_wait_then_linearly_at_ten_intervals():
    polls = schedule(2.0, 3600)
    gaps = [b - a for a, b in zip(polls, polls[1:])]
    assert max(gaps) == pytest.approx(20.0) and min(gaps) == pytest.approx(2.0)
    assert 180 <= len(polls) <= 3600 / 20 + 40  # ~3 a minute once waiting is long, never per job
    assert len(schedule(2.0, 60)) <= 25


def test_jobs_that_keep_finishing_are_followed_at_the_pace_reached():
    # nothing for 100 s, then one job ends before every poll: the pause stops growing
    polls = schedule(2.0, 300, finishing=lambda t: t > 100)
    gaps = [b - a for a, b in zip(polls, polls[1:])]
    later = [g for a, g in zip(polls, gaps) if a > 110]
    assert later and max(later) == pytest.approx(min(later))


def test_a_reused_job_id_is_a_new_job(toy, tmp_path):
    """A scheduler that hands out an id again (a new state dir, a reinstalled cluster) gets a new job: what
    was known of the old one under that id is not served for it (its end was served without a query)."""
    from cluster_core.queue import tracker
    track = tracker("toy")
    old_exit = tmp_path / "old.exit"
    old_exit.write_text("3 1 2 end\n")
    track.track("77.toy", old_exit, since=1.0)
    track.refresh(force=True)
    assert track.is_done("77.toy")
    track.track("77.toy", tmp_path / "new.exit", since=2.0)
    assert not track.is_done("77.toy")


def test_a_failure_settled_from_its_exit_file_is_refined_too(toy, tmp_path):
    """A job the scheduler has already forgotten ends by its exit file; the backend's refine_failure still
    reads its stderr (a job killed for memory read as plain FAILED when the poll came late)."""
    import attrs

    import cluster_core as cc
    from cluster_core import State, hookimpl, plugins
    from toy_backend import ToyBackend

    class Forgetful(ToyBackend):
        @hookimpl
        def parse_queue(self, job_ids, user, partition):  # finished jobs are forgotten at once
            return [r for r in super().parse_queue(job_ids, user, partition) if not r.state.finished]

        @hookimpl
        def refine_failure(self, record, stderr):
            return attrs.evolve(record, state=State.OUT_OF_MEMORY) if "MemoryError" in stderr else None

    plugins.register(Forgetful("forgetful"), name="forgetful")
    job = cc.submit("python3 -c 'raise MemoryError'", backend="forgetful", jobdir=tmp_path / "jobs")
    assert job.wait(timeout=60) is False
    assert job.state is State.OUT_OF_MEMORY and job.exitcode == 1


def test_a_costly_query_spaces_the_next_one_in_proportion(toy, tmp_path, monkeypatch):
    """A query about many jobs costs CPU in proportion: the next waits QUERY_COST_FACTOR times as long, so a
    wait on ten thousand jobs does not spend its time (and the jobs' CPU) asking (fake clocks)."""
    import time

    from cluster_core import queue
    clock, cpu = [1000.0], [5.0]
    monkeypatch.setattr(queue.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(queue.time, "thread_time", lambda: cpu[0])
    track = queue.tracker("toy")
    real = track.backend.parse_queue

    def slow(*args, **kwargs):
        clock[0] += 3.0  # this query "takes" 3 s, all of it CPU
        cpu[0] += 3.0
        return real(*args, **kwargs)
    monkeypatch.setattr(track.backend, "parse_queue", slow)
    track.track("91.toy", tmp_path / "none.exit", since=time.time())  # unknown, not lost: stays open
    track.refresh(force=True)
    assert track.queries == 1 and not track.is_done("91.toy")
    assert track.due_in() == pytest.approx(queue.QUERY_COST_FACTOR * 3.0)
    clock[0] += queue.QUERY_COST_FACTOR * 3.0 - 1.0
    track.refresh()
    assert track.queries == 1  # not due yet, although the poll interval has long passed
    clock[0] += 1.0
    track.refresh()
    assert track.queries == 2


def test_jobs_that_ended_do_not_space_the_next_query(toy, tmp_path, monkeypatch):
    """Settling the jobs that ended in a poll and saving their outcomes is done once per job: however long
    it took, the next query is spaced by what the next one costs (this one's share for the jobs still
    open), so the last jobs' end is seen at the poll interval, not seconds late (fake clocks)."""
    import time

    from cluster_core import queue, registry
    clock, cpu = [1000.0], [5.0]
    monkeypatch.setattr(queue.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(queue.time, "thread_time", lambda: cpu[0])
    track = queue.tracker("toy")
    real = track.backend.parse_queue

    def query(*args, **kwargs):  # 1 s of CPU for every job asked about
        clock[0] += len(args[0] if args else kwargs["job_ids"])
        cpu[0] += len(args[0] if args else kwargs["job_ids"])
        return real(*args, **kwargs)

    def save(*args, **kwargs):  # saving the ended jobs' outcomes: 40 s of CPU, once
        clock[0] += 40.0
        cpu[0] += 40.0
    monkeypatch.setattr(track.backend, "parse_queue", query)
    monkeypatch.setattr(registry, "record_outcomes_many", save)
    for i in range(9):  # nine ended (their exit files say so), one has not
        (tmp_path / f"{i}.exit").write_text("0 1 2 end\n")
        track.track(f"{i}.toy", tmp_path / f"{i}.exit", since=time.time(), owner=(f"{i}.toy", None))
    track.track("9.toy", tmp_path / "9.exit", since=time.time(), owner=("9.toy", None))
    track.refresh(force=True)
    assert sum(track.is_done(f"{i}.toy") for i in range(10)) == 9
    # the next query asks about one job (1 s): due 1 + QUERY_COST_FACTOR s after the last one started,
    # long past, so at the poll interval; counting the 40 s of saving would have put it 200 s away
    assert track.due_in() <= track.backend.info.poll_interval
    clock[0] += track.due_in()
    track.refresh()
    assert track.queries == 2
