"""The pure parsers, on output captured from a real Slurm 22.05 (see fixtures/README.md)."""

from __future__ import annotations

import re

import pytest

from cluster_core.backend import (QueueJob, State, SubmitError, error_summary, job_id_from_output,
                                  keyword_for_error, merge_records as merge)
from cluster_slurm import parse
from cluster_slurm.parse import (STATE_MAP, exit_from_pair, exit_from_status, expand_hostlist, map_state,
                                 parse_sacct, parse_squeue)


def parse_sbatch(out):
    return job_id_from_output(out, parse.SBATCH_ID, "sbatch")


def summary_of(stderr):
    return error_summary(stderr, strip=parse.SBATCH_ERROR_PREFIXES)


def by_id(jobs):
    out = {}
    for job in jobs:
        assert job.id not in out or out[job.id] == job, f"two different rows for {job.id}"
        out[job.id] = job
    return out


# --- states and exit codes --------------------------------------------------------------------------

def test_every_slurm_state_is_mapped():
    slurm_22_05_states = """BOOT_FAIL CANCELLED COMPLETED COMPLETING CONFIGURING DEADLINE FAILED NODE_FAIL
        OUT_OF_MEMORY PENDING PREEMPTED REQUEUED REQUEUE_FED REQUEUE_HOLD RESIZING RESV_DEL_HOLD REVOKED
        RUNNING SIGNALING SPECIAL_EXIT STAGE_OUT STOPPED SUSPENDED TIMEOUT""".split()
    assert set(slurm_22_05_states) == set(STATE_MAP)
    for raw in slurm_22_05_states:
        assert map_state(raw) is not State.UNKNOWN


@pytest.mark.parametrize("raw, reason, state", [
    ("PENDING", "Resources", State.PENDING),
    ("PENDING", "JobHeldUser", State.HELD),
    ("PENDING", "JobHeldAdmin", State.HELD),
    ("PENDING", "job requeued in held state", State.HELD),
    ("CANCELLED by 0", None, State.CANCELLED),
    ("CANCELLED+", None, State.CANCELLED),
    ("cancelled", None, State.CANCELLED),
    ("OUT_OF_MEMORY", None, State.OUT_OF_MEMORY),
    ("BOOT_FAIL", None, State.NODE_FAIL),
    ("DEADLINE", None, State.TIMEOUT),
    ("REQUEUE_HOLD", None, State.HELD),
    ("SPECIAL_EXIT", "job requeued in held state", State.HELD),
    ("RESV_DEL_HOLD", None, State.HELD),
    ("REQUEUED", None, State.PENDING),
    ("STOPPED", None, State.SUSPENDED),
    ("STAGE_OUT", None, State.COMPLETING),
    ("SOMETHING_NEW", None, State.UNKNOWN),
])
def test_map_state(raw, reason, state):
    assert map_state(raw, reason) is state


@pytest.mark.parametrize("state, status, code", [
    (State.COMPLETED, "0", 0),
    (State.FAILED, "768", 3),       # exit 3
    (State.FAILED, "9", 137),       # killed by SIGKILL (OverMemoryKill)
    (State.FAILED, "11", 139),      # SIGSEGV
    (State.TIMEOUT, "15", 143),
    (State.CANCELLED, "0", None),   # not recorded
    (State.RUNNING, "0", None),     # not finished: no exit code yet
    (State.FAILED, "junk", None),
])
def test_exit_from_status(state, status, code):
    assert exit_from_status(state, status) == code


@pytest.mark.parametrize("state, pair, code", [
    (State.COMPLETED, "0:0", 0),
    (State.FAILED, "7:0", 7),
    (State.FAILED, "0:9", 137),
    (State.TIMEOUT, "0:0", None),    # sacct keeps no status for TIMEOUT (squeue has 0:15)
    (State.CANCELLED, "0:0", None),
    (State.CANCELLED, "0:15", 143),
    (State.PENDING, "0:0", None),
    (State.FAILED, "", None),
])
def test_exit_from_pair(state, pair, code):
    assert exit_from_pair(state, pair) == code


@pytest.mark.parametrize("out, job_id", [("123\n", "123"), ("123;ci\n", "123"),
                                         ("sbatch: warning: x\n45\n", "45")])
def test_parse_sbatch(out, job_id):
    assert parse_sbatch(out) == job_id


def test_parse_sbatch_without_id():
    with pytest.raises(SubmitError, match="no job id"):
        parse_sbatch("Submitted batch job\n")


@pytest.mark.parametrize("text, hosts", [
    ("vm", ("vm",)), ("", ()), ("None assigned", ()), ("(null)", ()),
    ("n[01-03,7],gpu1", ("n01", "n02", "n03", "n7", "gpu1")),
    ("a[1-2]b,c", ("a1b", "a2b", "c")),
])
def test_expand_hostlist(text, hosts):
    assert expand_hostlist(text) == hosts


def test_job_id_pattern():
    for good in ("1", "12_3", "12_[1-3]", "12_[0-9%2]", "7+1"):
        assert parse.JOB_ID_RE.match(good)
    for bad in ("", "abc", "1;rm", "-1", "1 2", "1,2"):
        assert not parse.JOB_ID_RE.match(bad)


# --- squeue -----------------------------------------------------------------------------------------

def test_squeue_format_is_what_the_fixtures_used(fixture_text):
    line = fixture_text("squeue-live.txt").splitlines()[0]
    assert len(line.split("|")) >= len(parse.SQUEUE_FIELDS)
    assert parse.SQUEUE_FORMAT.startswith("JobArrayID:|,JobID:|,") and parse.SQUEUE_FORMAT.endswith(",Name:")


def test_squeue_finished_jobs(fixture_text, manifest):
    jobs = by_id(parse_squeue(fixture_text("squeue-finished.txt")))
    ok = jobs[manifest["completed"]]
    assert (ok.state, ok.exitcode, ok.raw_state, ok.name, ok.user) == (State.COMPLETED, 0, "COMPLETED",
                                                                       "completed", "root")
    assert ok.partition == "debug" and ok.cores == 1 and ok.nodes == ("vm",)
    assert ok.submit_time <= ok.start_time <= ok.end_time
    bad = jobs[manifest["failed_exit3"]]
    assert (bad.state, bad.exitcode, bad.reason) == (State.FAILED, 3, "NonZeroExitCode")
    segv = jobs[manifest["killed_segv"]]
    assert (segv.state, segv.exitcode) == (State.FAILED, 139)
    # OverMemoryKill without cgroups: FAILED, killed by signal 9 - not OUT_OF_MEMORY at this level
    oom = jobs[manifest["oom"]]
    assert (oom.state, oom.exitcode, oom.raw_state, oom.reason) == (State.FAILED, 137, "FAILED",
                                                                    "JobLaunchFailure")
    odd = manifest["name with |pipe and 'quotes' $(x)"]
    assert jobs[odd].name == "name with |pipe and 'quotes' $(x)"


def test_squeue_array_tasks(fixture_text, manifest):
    jobs = parse_squeue(fixture_text("squeue-finished.txt"))
    arr = manifest["array_ok"]
    tasks = sorted((j for j in jobs if j.array_id == arr), key=lambda j: j.task_id)
    assert [(j.id, j.task_id, j.state) for j in tasks] == [(f"{arr}_{i}", i, State.COMPLETED) for i in range(3)]
    mixed = manifest["array_mixed"]
    codes = {j.task_id: j.exitcode for j in jobs if j.array_id == mixed}
    assert codes == {0: 0, 1: 1, 2: 2}


def test_squeue_live_queue(fixture_text, manifest):
    jobs = by_id(parse_squeue(fixture_text("squeue-live.txt")))
    running = jobs[manifest["running"]]
    assert running.state is State.RUNNING and running.start_time and running.end_time is None
    assert running.exitcode is None and running.nodes == ("vm",)
    pending = jobs[manifest["pending_resources"]]
    # squeue prints an expected start time for pending jobs: not reported as a start
    assert (pending.state, pending.reason, pending.start_time, pending.nodes) == (State.PENDING, "Resources",
                                                                                  None, ())
    assert jobs[manifest["held_user"]].state is State.HELD
    assert jobs[manifest["held_admin"]].state is State.HELD
    assert (jobs[manifest["held_admin"]].raw_state, jobs[manifest["held_admin"]].reason) == ("PENDING",
                                                                                           "JobHeldAdmin")
    assert (jobs[manifest["dependency"]].state, jobs[manifest["dependency"]].reason) == (State.PENDING,
                                                                                       "Dependency")
    assert (jobs[manifest["begin_later"]].state, jobs[manifest["begin_later"]].reason) == (State.PENDING,
                                                                                         "BeginTime")
    # the collapsed pending array "N_[0-5%2]" is the array itself, pending
    arr = manifest["array_pending"]
    assert (jobs[arr].state, jobs[arr].array_id, jobs[arr].task_id) == (State.PENDING, arr, None)
    assert jobs[manifest["timeout"]].state is State.RUNNING


@pytest.mark.parametrize("name, scenario, state, raw", [
    ("squeue-suspended.txt", "running", State.SUSPENDED, "SUSPENDED"),
    ("squeue-requeue-hold.txt", "running", State.HELD, "PENDING"),
    ("squeue-special-exit.txt", "special_exit", State.HELD, "SPECIAL_EXIT"),
    ("squeue-requeued.txt", "requeued", State.COMPLETING, "COMPLETING"),
    ("squeue-requeued-pending.txt", "requeued", State.PENDING, "PENDING"),
])
def test_squeue_single_states(fixture_text, manifest, name, scenario, state, raw):
    (job,) = parse_squeue(fixture_text(name))
    assert (job.id, job.state, job.raw_state) == (manifest[scenario], state, raw)


def test_squeue_every_observed_row(fixture_text, manifest):
    """Every distinct (job, state, reason) squeue showed while the capture ran."""
    text = fixture_text("squeue-observed.txt")
    jobs = parse_squeue(text)
    assert len(jobs) == len(text.splitlines())
    assert all(j.state is not State.UNKNOWN for j in jobs)
    seen = {(j.id, j.state) for j in jobs}
    timeout = [j for j in jobs if j.id == manifest["timeout"] and j.state is State.TIMEOUT]
    assert timeout and timeout[0].reason == "TimeLimit" and timeout[0].exitcode == 143
    assert (manifest["dependency"], State.CANCELLED) in seen    # DependencyParameters=kill_invalid_depend
    assert (manifest["dep_child"], State.CANCELLED) in seen     # --kill-on-invalid-dep=yes
    assert (manifest["dep_parent_fails"], State.FAILED) in seen
    assert (manifest["cancelled_running"], State.CANCELLED) in seen
    assert any(j.state is State.COMPLETING for j in jobs)
    states = {j.raw_state for j in jobs}
    assert {"PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "SPECIAL_EXIT"} <= states


def test_squeue_skips_lines_that_do_not_fit():
    assert parse_squeue("\nslurm_load_jobs error: Invalid job id specified\n1|2|3\n") == []


# --- sacct ------------------------------------------------------------------------------------------

def test_sacct_allocations(fixture_text, manifest):
    jobs = by_id(parse_sacct(fixture_text("sacct-all.txt")))
    expect = {
        "completed": (State.COMPLETED, 0, "COMPLETED"),
        "failed_exit3": (State.FAILED, 3, "FAILED"),
        "killed_segv": (State.FAILED, 139, "FAILED"),
        "oom": (State.FAILED, 137, "FAILED"),
        "timeout": (State.TIMEOUT, None, "TIMEOUT"),
        "cancelled_running": (State.CANCELLED, None, "CANCELLED by 0"),
        "held_user": (State.CANCELLED, None, "CANCELLED by 0"),
        "dep_parent_fails": (State.FAILED, 1, "FAILED"),
        "dep_child": (State.CANCELLED, None, "CANCELLED"),
        "dependency": (State.CANCELLED, None, "CANCELLED"),
    }
    for scenario, (state, code, raw) in expect.items():
        job = jobs[manifest[scenario]]
        assert (job.state, job.exitcode, job.raw_state) == (state, code, raw), scenario
    held = jobs[manifest["held_user"]]
    assert held.start_time is None and held.nodes == () and held.end_time  # cancelled before it started
    odd = manifest["name with |pipe and 'quotes' $(x)"]
    assert jobs[odd].name == "name with |pipe and 'quotes' $(x)"
    mixed = manifest["array_mixed"]
    assert {jobs[f"{mixed}_{i}"].exitcode for i in range(3)} == {0, 1, 2}
    assert jobs[f"{mixed}_1"].array_id == mixed and jobs[f"{mixed}_1"].task_id == 1


def test_sacct_skips_step_rows(fixture_text):
    jobs = parse_sacct(fixture_text("sacct-steps.txt"))
    assert jobs and all("." not in j.id for j in jobs)
    assert len(jobs) == sum(1 for line in fixture_text("sacct-steps.txt").splitlines()
                            if "." not in line.split("|")[0])


# --- the research captures (other formats: states and exit codes only) ------------------------------

def _rows(text: str) -> list[dict]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = lines[0].split("|")
    return [dict(zip(header, ln.split("|"))) for ln in lines[1:]]


@pytest.mark.parametrize("name", ["research/sacct-steps-oom-exit7.txt",
                                  "research/sacct-steps-timeout-cancel-oom.txt"])
def test_research_sacct_states_and_codes(fixture_text, name):
    expected = {"228": (State.FAILED, 137), "229": (State.FAILED, 7), "231": (State.CANCELLED, None),
                "230_0": (State.COMPLETED, 0), "6": (State.TIMEOUT, None), "7": (State.CANCELLED, None),
                "8": (State.FAILED, 137)}
    for row in _rows(fixture_text(name)):
        state = map_state(row["State"])
        assert state is not State.UNKNOWN
        if row["JobID"] in expected:
            assert (state, exit_from_pair(state, row["ExitCode"])) == expected[row["JobID"]]


def test_research_sacct_x(fixture_text):
    got = [(f[0], map_state(f[1]), exit_from_pair(map_state(f[1]), f[2]))
           for f in (ln.split("|") for ln in fixture_text("research/sacct-x-timeout-cancel-oom.txt").splitlines())]
    assert got == [("6", State.TIMEOUT, None), ("7", State.CANCELLED, None), ("8", State.FAILED, 137)]


def test_research_squeue_pipe(fixture_text):
    rows = _rows(fixture_text("research/squeue-pipe-live.txt")) + \
        _rows(fixture_text("research/squeue-pipe-finished.txt"))
    got = {r["JOBID"]: map_state(r["STATE"], r["REASON"]) for r in rows}
    assert got == {"2": State.PENDING, "3_[0-2]": State.PENDING, "1": State.COMPLETED, "3_1": State.COMPLETED}
    assert parse._array_fields("3_[0-2]", "", "") == ("3", "3", None)
    assert parse._array_fields("3_1", "", "") == ("3_1", "3", 1)


# --- sbatch errors ----------------------------------------------------------------------------------

def _blocks(text: str):
    for block in text.split("$ ")[1:]:
        cmd = block.splitlines()[0]
        rc = int(re.search(r"\[rc=(\d+)\]", block).group(1))
        stderr = block.split("[stderr]\n", 1)[1]
        yield cmd, rc, stderr


SBATCH_KEYWORDS = {
    "--partition=nope": ("partition", {"partition": "nope"}),
    "--mem=100G": ("mem", {"mem": 102400}),
    "--mem-per-cpu=100G": ("mem_per_cpu", {"mem_per_cpu": 102400}),
    "--account=nope": ("account", {"account": "nope"}),
    "--qos=nope": ("qos", {"qos": "nope"}),
    "--partition=second --time=2:00:00": ("time", {"partition": "second", "time": 7200}),
    "--time=abc": ("time", {}),
    "--reservation=nope": ("reservation", {"reservation": "nope"}),
    "--constraint=nofeat": ("features", {"features": ("nofeat",)}),
    "--gres=gpu:1": ("gres", {"gres": "gpu:1"}),
    "--gpus=1": ("gpus", {"gpus": 1}),
    "--licenses=foo": ("licenses", {"licenses": ("foo",)}),
    "--cpus-per-task=64": ("cores", {"cores": 64}),
    "--nodes=5": ("nodes", {"nodes": 5}),
    "--ntasks=5": ("tasks", {"tasks": 5}),
    "--dependency=afterok:abc": ("depends", {}),
    "--array=0-99999999": ("array", {"array": "0-99999999"}),
    "--begin=garbage": ("begin", {"begin": "garbage"}),
    "--mail-type=BAD": ("notify", {}),
}


def test_sbatch_errors_name_the_keyword(fixture_text):
    seen = set()
    for cmd, rc, stderr in _blocks(fixture_text("sbatch-errors.txt")):
        args = cmd.removeprefix("sbatch --parsable ").removesuffix(" --wrap true")
        keyword, options = SBATCH_KEYWORDS[args]
        assert rc != 0, f"sbatch accepted {args}"
        assert keyword_for_error(stderr, parse.SUBMIT_ERRORS, options) == keyword, (args, stderr)
        summary = summary_of(stderr)
        assert "sbatch: error:" not in summary and summary
        seen.add(args)
    assert seen == set(SBATCH_KEYWORDS)


def test_error_summary():
    assert summary_of("sbatch: error: invalid partition specified: nope\n"
                               "sbatch: error: Batch job submission failed: Invalid partition name specified\n") \
        == "invalid partition specified: nope; Invalid partition name specified"


# --- squeue + sacct, arrays -------------------------------------------------------------------------

def test_merge_prefers_squeue_and_adds_only_finished_tasks_of_live_arrays(fixture_text, manifest):
    live = parse_squeue(fixture_text("squeue-live.txt"))
    old = parse_sacct(fixture_text("sacct-all.txt"))
    merged = by_id(merge(live, old))
    running = manifest["running"]
    assert merged[running].state is State.RUNNING          # squeue wins over sacct's later CANCELLED
    arr = manifest["array_pending"]
    assert merged[arr].state is State.PENDING              # squeue's pending remainder stays
    # sacct's finished tasks of an array squeue still shows are added
    assert merged[f"{arr}_0"].state is State.COMPLETED
    assert merged[manifest["oom"]].state is State.FAILED   # only sacct knows it: added


def test_scontrol_config():
    config = parse.parse_scontrol_config("Configuration data as of 2026-11-25T14:00:00\n"
                                         "MaxArraySize            = 1001\n"
                                         "SchedulerParameters     = sched_interval=1,bf_interval=1\n")
    assert config == {"MaxArraySize": "1001", "SchedulerParameters": "sched_interval=1,bf_interval=1"}


def test_merge_ignores_sacct_lagging_behind_a_live_array(fixture_text, manifest):
    """Just after an array ended, slurmdbd still shows it as one plain row ("N|N|FAILED|2:0|...|allocation")."""
    arr = manifest["array_lag"]
    squeue_snaps = fixture_text("array-lag-squeue.txt").split("\n\n")
    sacct_snaps = fixture_text("sacct-array-lag.txt").split("\n\n")
    lagging = next(s for s in sacct_snaps if s.strip() and f"{arr}_" not in s)
    (plain,) = parse_sacct(lagging)
    assert (plain.id, plain.task_id, plain.state) == (arr, None, State.FAILED)
    live = parse_squeue(squeue_snaps[-1])
    merged = by_id(merge(live, parse_sacct(lagging)))
    assert set(merged) == {f"{arr}_0", f"{arr}_1", f"{arr}_2"}
    assert [merged[f"{arr}_{i}"].exitcode for i in range(3)] == [0, 1, 2]
    # while squeue shows the pending rest collapsed, it is one row for the array itself
    (rest,) = parse_squeue(squeue_snaps[0])
    assert (rest.id, rest.array_id, rest.task_id, rest.state) == (arr, arr, None, State.PENDING)


def test_memory_kill_message_refines_failed_to_out_of_memory(fixture_text):
    from cluster_slurm.parse import refine_oom
    stderr = fixture_text("research/messages.txt")  # slurmstepd's real OverMemoryKill lines
    failed = QueueJob(id="227", state=State.FAILED, exitcode=137, reason="JobLaunchFailure")
    refined = refine_oom(failed, stderr)
    assert refined.state is State.OUT_OF_MEMORY and refined.exitcode == 137
    assert refine_oom(failed, "Traceback: ValueError\n") is None
    assert refine_oom(QueueJob(id="1", state=State.TIMEOUT), stderr) is None


def test_task_ids_both_ways():
    from cluster_slurm import plugin
    assert plugin.task_id("274", 3) == "274_3"
    assert plugin.parse_task_id("274_3") == ("274", 3)
    for other in ("274", "274_[1-3]", "274+1", "x_1"):
        assert plugin.parse_task_id(other) is None
