"""How calls.py talks to Slurm, with the commands replaced by captured answers (no scheduler needed)."""

from __future__ import annotations


import pytest

from cluster_core.commands import Result
from cluster_core.errors import SchedulerError, SubmitError
from cluster_core.records import State
from cluster_slurm import calls


class FakeSlurm:
    """Stands in for cluster_core.commands.run: records each call, answers from a table."""

    def __init__(self, answers):
        self.answers = answers  # command name -> (rc, stdout, stderr) or a callable(args)
        self.calls: list[list[str]] = []

    def __call__(self, args, **kwargs):
        args = [str(a) for a in args]
        self.calls.append(args)
        answer = self.answers[args[0]]
        rc, out, err = answer(args) if callable(answer) else answer
        if "-j" in args and args[0] in ("squeue", "sacct"):
            out = _only(out, args[args.index("-j") + 1].split(","))
        if rc and kwargs.get("check", True):
            raise SchedulerError(f"{args[0]} failed (exit {rc}): {err}", command=args, returncode=rc,
                                 output=err + out)
        return Result(tuple(args), rc, out, err, 0.01)

    def names(self):
        return [c[0] for c in self.calls]


def _only(text: str, ids: list[str]) -> str:
    """The lines of a captured squeue/sacct output about these ids, as the real -j filter gives."""
    keep = []
    for line in text.splitlines(keepends=True):
        f = line.split("|")
        shown = f[0].split(".")[0]
        if {shown, shown.split("_")[0], f[1].split(".")[0]} & set(ids):
            keep.append(line)
    return "".join(keep)


@pytest.fixture
def fake(monkeypatch):
    def install(**answers):
        f = FakeSlurm(answers)
        monkeypatch.setattr(calls, "run", f)
        return f
    return install


def test_one_squeue_then_one_sacct_for_the_forgotten(fake, fixture_text, manifest):
    live = fixture_text("squeue-live.txt")
    f = fake(squeue=(0, live, ""), sacct=(0, fixture_text("sacct-all.txt"), ""))
    gone = manifest["dep_parent_fails"]  # submitted after this snapshot: only sacct knows it
    ids = [manifest["running"], gone, manifest["timeout"], "99999999"]
    jobs = {j.id: j for j in calls.parse_queue(ids, None, None)}
    assert f.names() == ["squeue", "sacct"]
    assert f.calls[0][-2:] == ["-j", ",".join(ids)]
    sacct_ids = f.calls[1][f.calls[1].index("-j") + 1].split(",")
    assert sacct_ids == [gone, "99999999"]
    assert jobs[manifest["running"]].state is State.RUNNING
    assert jobs[manifest["timeout"]].state is State.RUNNING
    assert jobs[gone].state is State.FAILED and jobs[gone].exitcode == 1
    assert "99999999" not in jobs   # unknown everywhere: left out


def test_all_ids_gone_from_squeue(fake, fixture_text, manifest):
    f = fake(squeue=(1, "", "slurm_load_jobs error: Invalid job id specified\n"),
             sacct=(0, fixture_text("sacct-all.txt"), ""))
    jobs = calls.parse_queue([manifest["timeout"]], None, None)
    assert f.names() == ["squeue", "sacct"]
    assert [(j.id, j.state) for j in jobs] == [(manifest["timeout"], State.TIMEOUT)]


def test_sacct_disabled_returns_what_squeue_knew(fake, fixture_text, manifest):
    fake(squeue=(0, fixture_text("squeue-finished.txt"), ""),
         sacct=(1, "", "Slurm accounting storage is disabled\n"))
    jobs = {j.id: j for j in calls.parse_queue([manifest["completed"], "424242"], None, None)}
    assert set(jobs) == {manifest["completed"]}


def test_squeue_down_raises(fake):
    fake(squeue=(1, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"))
    with pytest.raises(SchedulerError, match="Unable to contact"):
        calls.parse_queue(["1"], None, None)


def test_long_id_lists_are_chunked(fake):
    f = fake(squeue=(0, "", ""), sacct=(0, "", ""))
    calls.parse_queue([str(i) for i in range(1, 1201)], None, None)
    assert f.names() == ["squeue", "squeue", "squeue", "sacct"]


def test_invalid_ids_are_left_out(fake):
    f = fake(squeue=(0, "", ""), sacct=(0, "", ""))
    assert calls.parse_queue(["abc", "1;rm -rf /", ""], None, None) == []
    assert f.calls == []


def test_listing_by_user_and_partition(fake, fixture_text):
    f = fake(squeue=(0, fixture_text("squeue-live.txt"), ""))
    jobs = calls.parse_queue(None, "root", "debug")
    assert f.names() == ["squeue"] and f.calls[0][-4:] == ["-u", "root", "-p", "debug"]
    assert len(jobs) == len(fixture_text("squeue-live.txt").splitlines())


def test_array_asks_sacct_for_purged_tasks(fake, fixture_text, manifest):
    arr = manifest["array_pending"]
    live = "".join(ln + "\n" for ln in fixture_text("squeue-live.txt").splitlines() if ln.startswith(arr))
    f = fake(squeue=(0, live, ""), sacct=(0, fixture_text("sacct-all.txt"), ""))
    jobs = {j.id: j for j in calls.parse_queue([arr], None, None)}
    assert f.names() == ["squeue", "sacct"]
    # the collapsed pending rest: one row for the array, no task id (the core applies it to the rest)
    assert jobs[arr].state is State.PENDING and jobs[arr].task_id is None
    # sacct's finished tasks (captured later) are added, its stale pending rows are not
    assert jobs[f"{arr}_0"].state is State.COMPLETED and jobs[f"{arr}_0"].task_id == 0
    assert all(j.array_id == arr for j in jobs.values())


def test_max_array_size(fake):
    fake(scontrol=(0, "MaxArraySize            = 40001\nMaxJobCount = 10000\n", ""))
    assert calls.max_array_size() == 40001
    fake(scontrol=(1, "", "slurm_load_ctl_conf error: Unable to contact slurm controller\n"))
    assert calls.max_array_size() == 1001


def test_submit_parses_id_and_passes_words_only_without_directives(fake, tmp_path):
    script = tmp_path / "job.sh"
    f = fake(sbatch=(0, "77;ci\n", ""))
    assert calls.submit(script, {"name": "a b", "cores": 2}) == "77"
    sbatch, parsable, comment, *rest = f.calls[-1]
    assert [sbatch, parsable, *rest] == ["sbatch", "--parsable", str(script)]
    assert comment.startswith("--comment=cluster-core:")  # finds the job again after a lost answer
    assert calls.submit(script, {"name": "a b", "cores": 2}, ["--job-name=a b", "--cpus-per-task=2"]) == "77"
    assert f.calls[-1][3:] == ["--job-name=a b", "--cpus-per-task=2", str(script)]
    assert f.calls[-1][2] != comment  # a token per submission


def test_the_core_hands_submit_the_rendered_words_without_its_own_keywords(fake, tmp_path):
    """The core renders the options for a user's own script (no directives in it) and strips modules and
    jobdir, which only its job script acts on: sbatch gets exactly the words render_options gives."""
    from cluster_core import plugins
    slurm = plugins.backend("slurm")
    f = fake(sbatch=(0, "78\n", ""))
    script = tmp_path / "job.sh"
    options = {"name": "a b", "cores": 2, "modules": ("gcc",), "jobdir": str(tmp_path)}
    assert slurm.submit(script, options, directives_in_script=False) == "78"
    assert f.calls[-1][3:] == ["--job-name=a b", "--cpus-per-task=2", str(script)]
    assert slurm.submit(script, options, directives_in_script=True) == "78"
    assert f.calls[-1][3:] == [str(script)]


def test_submit_refusal_names_the_keyword(fake, tmp_path):
    fake(sbatch=(1, "", "sbatch: error: invalid partition specified: nope\n"
                        "sbatch: error: Batch job submission failed: Invalid partition name specified\n"))
    with pytest.raises(SubmitError, match="Invalid partition name specified") as err:
        calls.submit(tmp_path / "job.sh", {"partition": "nope"})
    assert err.value.keyword == "partition" and err.value.returncode == 1


def test_submit_gives_up_on_a_controller_that_stays_away(monkeypatch, tmp_path):
    def down(args, **kwargs):
        raise SchedulerError("sbatch failed (exit 1): Unable to contact slurm controller", command=list(args),
                             returncode=1, output="Unable to contact slurm controller", transient=True)
    monkeypatch.setattr(calls, "run", down)
    monkeypatch.setattr(calls, "SUBMIT_BACKOFF", 0.0)
    with pytest.raises(SubmitError, match="could not submit") as err:
        calls.submit(tmp_path / "job.sh", {})
    assert err.value.transient and err.value.keyword is None


def test_cancel_one_call_and_finished_ids_are_fine(fake):
    f = fake(scancel=(1, "", "scancel: error: Kill job error on job id 5: Job/step already completing or completed\n"))
    assert calls.cancel(["5", "6"]) is True
    assert f.calls == [["scancel", "5", "6"]]


def test_cancel_other_errors_raise(fake):
    fake(scancel=(1, "", "scancel: error: Kill job error on job id 5: Access/permission denied\n"))
    with pytest.raises(SchedulerError, match="permission"):
        calls.cancel(["5"])


@pytest.mark.parametrize("stderr", [  # what scontrol 22.05 printed here on 2026-12-02
    "Job has already finished for job 8159\nslurm_suspend error: Job has already finished\n",
    "Job has already finished for job 8252\n8253_0-2: Job has already finished\nslurm_suspend error: No error\n",
    "Invalid job id specified for job 99999999\nslurm_suspend error: Invalid job id specified\n",
])
def test_release_one_call_and_ended_ids_are_fine(fake, stderr):
    f = fake(scontrol=(1, "", stderr))
    assert calls.release(["8252", "8253"]) is True
    assert f.calls == [["scontrol", "release", "8252,8253"]]


def test_release_other_errors_raise(fake):
    fake(scontrol=(1, "", "slurm_suspend error: Access/permission denied\n"))
    with pytest.raises(SchedulerError, match="permission"):
        calls.release(["5"])


def test_detect_without_commands(monkeypatch):
    monkeypatch.setattr(calls, "which", lambda name: None)
    det = calls.detect()
    assert not det.available and "sbatch not found" in det.reason


def test_detect_controller_down(monkeypatch, fake):
    monkeypatch.setattr(calls, "which", lambda name: f"/usr/bin/{name}")
    # real output of `scontrol ping` with no slurmctld listening (rc 1, in ~10 ms)
    fake(scontrol=(1, "Slurmctld(primary) at vm is DOWN\n*****************************************\n"
                      "** RESTORE SLURMCTLD DAEMON TO SERVICE **\n*****************************************\n", ""))
    det = calls.detect()
    assert not det.available and "Slurmctld(primary) at vm is DOWN" in det.reason


def test_detect_up(monkeypatch, fake):
    monkeypatch.setattr(calls, "which", lambda name: f"/usr/bin/{name}")
    fake(scontrol=(0, "Slurmctld(primary) at vm is UP\n", ""))
    assert calls.detect().available


def test_detect_hung_controller(monkeypatch):
    monkeypatch.setattr(calls, "which", lambda name: f"/usr/bin/{name}")

    def hung(args, **kwargs):
        raise SchedulerError("scontrol did not answer within 3 s", command=list(args), transient=True)
    monkeypatch.setattr(calls, "run", hung)
    det = calls.detect()
    assert not det.available and "did not answer" in det.reason
