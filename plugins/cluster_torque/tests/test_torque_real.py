"""The core's conformance kit, and what it does not cover yet, on a real Torque 6.1.3 and a real OpenPBS
(ci/torque/up.sh, ci/openpbs/up.sh), both dialects, as a normal user: Torque's qsub refuses root and
OpenPBS mishandles root jobs. Run as root (CI runs pytest as root), these tests skip, and
test_torque_real_as_user.py runs this module again as the user pbstest; run as a normal user, they run.

Both servers live on one machine with clashing command names, so each class points the backend at its
server's commands with $CLUSTER_TORQUE_BIN (/opt/torque/bin or /opt/pbs/bin); the dialect is detected.
Without the server they skip with one line, except under CI=true, where they fail.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

import cluster_core as cc
from cluster_core import State, plugins, queue
from cluster_core.testing.conformance import BackendConformance, wait_for
from cluster_torque import dialect, ids
from torque_testlib import REAL_SERVERS, in_ci, server_status


if os.geteuid() == 0:
    pytest.skip("as root: test_torque_real_as_user.py runs these tests as pbstest (Torque's qsub refuses root, "
                "OpenPBS mishandles root jobs)", allow_module_level=True)


def _square(x):
    return x * x


def _use(monkeypatch, key: str) -> None:
    name, bindir, *_ = REAL_SERVERS[key]
    up, reason = server_status(key)
    if not up:
        if in_ci():
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    monkeypatch.setenv("CLUSTER_TORQUE_BIN", bindir)
    monkeypatch.delenv("CLUSTER_TORQUE_DIALECT", raising=False)
    # both servers hand out ids like 5.vm: nothing learnt about one may leak into the other
    dialect.reset()
    plugins.reset()
    queue.reset_trackers()


class RealServer(BackendConformance):
    """The kit plus arrays, map(), cancelling queued and held jobs, array dependencies, id spellings."""

    server = ""
    backend = "torque"
    timeout = 90.0
    time_limit = "5s"  # moms check walltime every poll: Torque kills within ~10 s, OpenPBS ~10-20 s
    time_limit_sleep = 120

    @pytest.fixture
    def backend_ready(self, cluster_config, monkeypatch):
        _use(monkeypatch, self.server)
        yield True
        queue.reset_trackers()

    def test_dialect_is_detected_from_this_servers_qstat(self):
        _, bindir, expected, version, _ = REAL_SERVERS[self.server]
        flavour = dialect.detected(refresh=True)
        assert (flavour.dialect, flavour.version) == (expected, version)
        assert dialect.current() == expected

    def test_array_tasks_have_their_own_outputs_and_exit_codes(self):
        job = self.submit('echo "task $CLUSTER_TASK_ID"; exit $(( CLUSTER_TASK_ID % 2 * 3 ))', array="0-3")
        assert job.native_array and ids.parse(job.id).is_array_parent  # one submission: N[].server
        assert job.wait(timeout=self.timeout * 2) is False
        assert [t.exitcode for t in job.tasks] == [0, 3, 0, 3]
        assert [t.state for t in job.tasks] == [State.COMPLETED, State.FAILED] * 2
        assert [t.stdout for t in job.tasks] == [f"task {i}\n" for i in range(4)]
        assert {ids.parse(t.id).task_id for t in job.tasks} == {0, 1, 2, 3}

    def test_map_is_one_array(self):
        tasks = cc.map(_square, range(5), backend=self.backend)
        assert [t.get(timeout=self.timeout * 2) for t in tasks] == [0, 1, 4, 9, 16]
        assert len({t.job.id for t in tasks}) == 1

    def test_map_split_at_the_array_limit(self, monkeypatch):
        """Chunks of 2, 2 and 1: the last is one plain job, since PBS Pro refuses a one-index array."""
        be = plugins.backend(self.backend)
        monkeypatch.setattr(be, "max_array_size", lambda: 2)
        tasks = cc.map(_square, [3, 4, 5, 6, 7], backend=self.backend)
        assert [t.get(timeout=self.timeout * 2) for t in tasks] == [9, 16, 25, 36, 49]
        assert len({t.job.id for t in tasks}) == 3
        assert not ids.parse(tasks[-1].id).is_subjob and ids.parse(tasks[0].id).is_subjob

    def test_cancel_queued_and_held_jobs(self):
        marker = self.tmp / "ran"
        later = (dt.datetime.now() + dt.timedelta(hours=2)).replace(microsecond=0).isoformat()
        waiting = self.submit(f"touch '{marker}'", begin=later)
        held = self.submit(f"touch '{marker}'", hold=True)
        wait_for(lambda: waiting.state is State.PENDING and held.state is State.HELD, self.timeout,
                 "one job waiting for its start time and one held")
        be = cc.get_backend(self.backend)
        # one query answers for both (no exit file could stand in for a job that never ran)
        assert [r.state for r in be.parse_queue([waiting.id, held.id])] == [State.PENDING, State.HELD]
        assert be.cancel([waiting.id, held.id]) is True
        cc.wait([waiting, held], timeout=self.timeout)
        assert (waiting.state, held.state) == (State.CANCELLED, State.CANCELLED)
        assert not marker.exists()
        assert be.cancel([waiting.id, held.id]) is True  # ids that already ended are not an error

    def test_cancel_a_running_array(self):
        started = self.tmp / "started"
        job = self.submit(f"touch '{started}.'$CLUSTER_TASK_ID; sleep 300", array="0-1")
        wait_for(lambda: (self.tmp / "started.0").exists() and (self.tmp / "started.1").exists(),
                 self.timeout, "both tasks to start")
        job.cancel()
        assert job.wait(timeout=self.timeout) is False
        assert [t.state for t in job.tasks] == [State.CANCELLED, State.CANCELLED]

    def test_dependency_on_an_array(self):
        log = self.tmp / "order.log"
        array = self.submit(f"sleep 1; echo task$CLUSTER_TASK_ID >> '{log}'", array="0-1")
        after = self.submit(f"echo after >> '{log}'", depends=array)
        assert cc.wait([array, after], timeout=self.timeout * 2) is True
        assert sorted(log.read_text().split()[:2]) == ["task0", "task1"]
        assert log.read_text().split()[2:] == ["after"]

    def test_workdir_with_a_backslash(self):
        """Torque drops a backslash from -d (the job could not start); the job script's own cd serves."""
        odd = self.tmp / "back\\slash 'dir'"
        odd.mkdir()
        job = self.submit("pwd", workdir=str(odd))
        assert job.wait(timeout=self.timeout) is True
        assert job.stdout == f"{odd}\n"

    def test_every_spelling_of_a_finished_jobs_id(self):
        job = self.submit("exit 4")
        job.wait(timeout=self.timeout)
        jid = ids.parse(job.id)
        spellings = [job.id, jid.seq, f"{jid.seq}.{jid.short_server}"]
        records = cc.get_backend(self.backend).parse_queue(spellings)
        assert sorted(r.id for r in records) == sorted(set(spellings))
        assert {(r.state, r.exitcode) for r in records} == {(State.FAILED, 4)}


@pytest.mark.torque
class TestTorqueConformance(RealServer):
    server = "torque"


@pytest.mark.openpbs
class TestOpenPBSConformance(RealServer):
    server = "openpbs"
