"""Faults injected into the real Torque 6.1.3 and OpenPBS 23.06 (ci/torque/up.sh, ci/openpbs/up.sh): a qsub
that creates the job and loses its answer, qstat failing while it is asked whether the job exists, and
qsub/qstat that fail, lose their answer or hang at random. Nothing may be lost or run twice.

The shims (cluster_core.testing.shims) wrap the server's own commands and print its own transient
messages; the backend finds them through $CLUSTER_TORQUE_BIN, as a site would point it at its commands.
As root these tests skip, and test_torque_real_as_user.py runs this module again as the user pbstest
(Torque's qsub refuses root, OpenPBS mishandles root jobs).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import uuid

import pytest

import cluster_core as cc
from cluster_core import plugins, queue
from cluster_core.testing.faults import submit_under_faults
from cluster_core.testing.shims import ShimDir
from cluster_torque import client, dialect
from torque_testlib import REAL_SERVERS, in_ci, server_status

if os.geteuid() == 0:
    pytest.skip("as root: test_torque_real_as_user.py runs these tests as pbstest (Torque's qsub refuses root, "
                "OpenPBS mishandles root jobs)", allow_module_level=True)

# what each server's qsub and qstat print when the connection breaks (messages of libtorque / libpbs)
QSUB_LOST = {"torque": "qsub: submit error (End of File)", "openpbs": "qsub: End of File"}
QSTAT_DOWN = {"torque": "qstat: cannot connect to server vm (errno=111) Connection refused",
              "openpbs": "Connection refused\nqstat: cannot connect to server vm (errno=15010)"}


class FaultsOnARealServer:
    server = ""
    timeout = 120.0

    @pytest.fixture(autouse=True)
    def real_server(self, cluster_config, tmp_path, monkeypatch):
        name, bindir, expected, _, _ = REAL_SERVERS[self.server]
        up, reason = server_status(self.server)
        if not up:
            if in_ci():
                pytest.fail(f"CI=true but {reason}", pytrace=False)
            pytest.skip(reason)
        monkeypatch.chdir(tmp_path)  # job files go to ./cluster_jobs
        monkeypatch.setenv("CLUSTER_TORQUE_BIN", bindir)
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")  # the shims wrap these
        dialect.reset()
        plugins.reset()
        queue.reset_trackers()
        assert dialect.detected(refresh=True).dialect == expected  # detected once, before any shim
        self.bindir = bindir
        self.tmp = tmp_path
        yield
        queue.reset_trackers()
        dialect.reset()

    @contextlib.contextmanager
    def commands(self, shims: ShimDir, monkeypatch):
        """The backend runs the shims' qsub, qstat and qdel while the block runs."""
        shims.count("qdel")
        with shims:
            monkeypatch.setenv("CLUSTER_TORQUE_BIN", str(shims.dir))
            try:
                yield shims
            finally:
                monkeypatch.setenv("CLUSTER_TORQUE_BIN", self.bindir)

    def jobs_named(self, name: str) -> int:
        """How many jobs of this name the server lists (finished ones included: Torque's keep_completed,
        OpenPBS's history)."""
        qstat = os.path.join(self.bindir, "qstat")
        if self.server == "torque":
            out = subprocess.run([qstat, "-x"], capture_output=True, text=True, check=True).stdout
            return out.count(f"<Job_Name>{name}</Job_Name>")
        out = subprocess.run([qstat, "-f", "-w", "-x"], capture_output=True, text=True, check=True).stdout
        return len(re.findall(rf"^\s+Job_Name = {re.escape(name)}$", out, re.MULTILINE))

    def test_lost_answer_while_qstat_fails_is_not_submitted_twice(self, monkeypatch):
        """qsub creates the job and loses its answer, and the qstat that should tell whether the job exists
        fails too: its failure is no "no", so the job is asked about again, found, and not duplicated."""
        ran = self.tmp / "ran"
        name = f"once{uuid.uuid4().hex[:8]}"
        shims = ShimDir(self.tmp / "shims").lose_answer("qsub", QSUB_LOST[self.server]) \
            .fail_first("qstat", 1, QSTAT_DOWN[self.server])
        with self.commands(shims, monkeypatch):
            job = cc.submit(f"echo once >> '{ran}'", backend="torque", name=name)
            calls = shims.calls()
        assert calls["qsub"] == 1 and calls["qstat"] >= 2
        assert job.wait(timeout=self.timeout) is True
        assert ran.read_text() == "once\n"
        assert self.jobs_named(name) == 1

    def test_qstat_that_never_answers_gives_up_without_a_second_copy(self, monkeypatch):
        monkeypatch.setattr(client, "CHECK_PATIENCE", 3.0, raising=False)
        name = f"never{uuid.uuid4().hex[:8]}"
        shims = ShimDir(self.tmp / "shims").lose_answer("qsub", QSUB_LOST[self.server]) \
            .fail("qstat", stderr=QSTAT_DOWN[self.server])
        with self.commands(shims, monkeypatch):
            with pytest.raises(cc.SubmitError, match="not submitted again") as err:
                cc.submit("true", backend="torque", name=name, hold=True)
            assert shims.calls()["qsub"] == 1
        assert err.value.transient and "CLUSTER_CORE_TOKEN=" in str(err.value)
        assert self.jobs_named(name) == 1  # the one job that was created
        token = re.search(r"CLUSTER_CORE_TOKEN=\w+", str(err.value)).group(0)
        found = client.find_by_token(dialect.current(), token.split("=", 1)[1], "test")
        assert found  # findable by the token the message names
        subprocess.run([os.path.join(self.bindir, "qdel"), found], capture_output=True)

    def test_the_token_keeps_the_jobs_own_variables(self, monkeypatch):
        """The token rides in the job's -v, of which both servers keep only the last: the job's own export=
        variables, and -V, still reach it."""
        monkeypatch.setenv("CC_FROM_SUBMITTER", "seen")
        job = cc.submit('echo "$ONE $TWO"', backend="torque", export=("ONE=1", "TWO=2"))
        everything = cc.submit('echo "$CC_FROM_SUBMITTER"', backend="torque", export=("ALL",))
        assert cc.wait([job, everything], timeout=self.timeout) is True
        assert (job.stdout, everything.stdout) == ("1 2\n", "seen\n")

    @pytest.mark.slow
    def test_flaky_and_hanging_commands_lose_nothing_and_run_nothing_twice(self, monkeypatch):
        """30% of qsub/qstat calls fail with the server's own message (a third of qsub's after it created
        the job), 10% hang past the command timeout: every job runs exactly once and ends completed, no
        refused one runs, and the wait neither gives up nor hangs."""
        monkeypatch.setattr(client, "QUERY_TIMEOUT", 3.0)
        monkeypatch.setattr(client, "SUBMIT_TIMEOUT", 3.0)
        monkeypatch.setattr(client, "BACKOFF", 0.2)
        log = self.tmp / "ran.log"
        run = uuid.uuid4().hex[:6]
        shims = ShimDir(self.tmp / "shims")
        shims.flaky("qsub", 20, QSUB_LOST[self.server], lose_percent=10, hang_percent=10, hang_seconds=5, seed=1)
        shims.flaky("qstat", 30, QSTAT_DOWN[self.server], hang_percent=10, hang_seconds=5, seed=2)
        with self.commands(shims, monkeypatch):
            outcome = submit_under_faults(20, log, shims, backend="torque", name=f"flakyx{run}-")
        outcome.assert_each_ran_once(submit_command="qsub")
        assert all(self.jobs_named(f"flakyx{run}-{i}") == 0 for i in outcome.refused)


@pytest.mark.torque
class TestTorqueFaults(FaultsOnARealServer):
    server = "torque"


@pytest.mark.openpbs
class TestOpenPBSFaults(FaultsOnARealServer):
    server = "openpbs"
