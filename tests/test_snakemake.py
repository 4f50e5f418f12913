"""Snakemake's cluster-generic executor driving the `cluster` CLI with no wrapper script, on the local
backend and on the real Slurm: the three command lines the README gives (submit, status, cancel).

Snakemake runs the submit and status commands through a shell and the cancel command without one (hence
the one-word ``cluster-cancel``); it reads the job id from the first line the submit command prints.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster_core.testing.gate import in_ci

snakemake = shutil.which("snakemake", path=os.path.dirname(sys.executable))
if snakemake is None and not in_ci():
    pytest.skip("snakemake is not installed in this environment (ci/test.sh installs the test extras)",
                allow_module_level=True)

BACKENDS = [pytest.param("local", marks=pytest.mark.plugins),
            pytest.param("slurm", marks=[pytest.mark.slurm, pytest.mark.plugins])]  # gated in conftest.py


WORKFLOW = """
rule all:
    input: "c.txt"

rule a:
    output: "a.txt"
    threads: 2
    resources: mem_mb=700
    shell: "echo a > {output}"

rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "cat {input} > {output}; echo b >> {output}"

rule c:
    input: "b.txt"
    output: "c.txt"
    shell: "cat {input} > {output}; echo c >> {output}"

rule broken:
    output: "never.txt"
    shell: "echo about to fail >&2; exit 3"

rule slow:
    output: "slow{i}.txt"
    shell: "sleep 300; touch {output}"

rule slow_all:
    input: expand("slow{i}.txt", i=range(3))
"""


def submit_cmd(backend: str) -> str:
    return f"cluster submit --backend {backend} --name smk-{{rule}} --cores {{threads}} --mem {{resources.mem_mb}}"


def run_snakemake(workdir: Path, backend: str, *targets: str, wait: bool = True, status_every: int = 1):
    args = [snakemake, "--snakefile", str(workdir / "Snakefile"), "--directory", str(workdir),
            "--executor", "cluster-generic", "--jobs", "4", "--latency-wait", "5",
            "--seconds-between-status-checks", str(status_every), "--max-status-checks-per-second", "20",
            # each job runs Snakemake itself (over 100 MB resident), and the local backend and Slurm enforce mem
            "--default-resources", "mem_mb=600",
            "--cluster-generic-submit-cmd", submit_cmd(backend),
            "--cluster-generic-status-cmd", "cluster-status --format snakemake",
            "--cluster-generic-cancel-cmd", "cluster-cancel", *targets]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    if not wait:
        return subprocess.Popen(args, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    return subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def workflow(tmp_path, monkeypatch, cluster_config, request):
    backend = request.param
    monkeypatch.setenv("CLUSTER_LOCAL_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CLUSTER_LOCAL_THREADS", "2")
    monkeypatch.delenv("CLUSTER_BACKEND", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Snakefile").write_text(WORKFLOW)
    yield tmp_path, backend
    if backend == "local":
        import cluster_local
        cluster_local.shutdown_runner(tmp_path / "state")


def interrupt_main_thread(pid: int) -> None:
    """Ctrl-C for Snakemake, delivered to its main thread (tgkill). A process-directed SIGINT reaches any
    of Snakemake's threads; when it lands on one of its status-check threads, its main thread, blocked on
    a semaphore, never sees it and the workflow goes on (Snakemake 9.27, seen here in 4 of 12 tries)."""
    import ctypes
    import platform
    number = {"x86_64": 234, "aarch64": 131}[platform.machine()]  # SYS_tgkill
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, pid, pid, int(signal.SIGINT)) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


def between_status_rounds(pid: int, deadline: float) -> None:
    """Return once Snakemake has run a round of status checks and finished it. Snakemake 9 takes the jobs
    out of its active list while it checks them, so an interrupt during a round leaves those jobs
    uncancelled (snakemake-interface-executor-plugins 9.4, RemoteExecutor._wait_for_jobs); after a round
    it waits --seconds-between-status-checks (10 s here) before the next one."""
    import psutil
    parent = psutil.Process(pid)
    seen, quiet_since = False, None
    while True:
        assert time.monotonic() < deadline, "Snakemake ran no round of status checks"
        checking = any("cluster-status" in " ".join(c.cmdline()) for c in _children(parent))
        seen = seen or checking
        if seen and not checking:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.0:
                return
        else:
            quiet_since = None
        time.sleep(0.05)


def _children(parent):
    import psutil
    out = []
    for child in parent.children(recursive=True):
        try:
            child.cmdline()
            out.append(child)
        except psutil.Error:
            pass
    return out


def recorded(name: str, backend: str):
    import cluster_core as cc
    from cluster_core.queue import reset_trackers
    reset_trackers(backend)
    return cc.jobs(name=name, backend=backend)


@pytest.mark.parametrize("workflow", BACKENDS, indirect=True)
def test_workflow_with_dependencies_threads_and_memory(workflow):
    workdir, backend = workflow
    proc = run_snakemake(workdir, backend)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (workdir / "c.txt").read_text() == "a\nb\nc\n"
    [a] = recorded("smk-a", backend)
    assert a.state.value == "completed"
    assert a._registry_record.options["cores"] == 2 and a._registry_record.options["mem"] == 700
    assert {j.name for j in recorded("smk-*", backend)} == {"smk-a", "smk-b", "smk-c"}


@pytest.mark.parametrize("workflow", BACKENDS, indirect=True)
def test_failing_rule_is_reported_failed(workflow):
    workdir, backend = workflow
    proc = run_snakemake(workdir, backend, "never.txt")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    [job] = recorded("smk-broken", backend)
    assert job.state.value == "failed" and job.exitcode not in (0, None)
    assert "Error in rule broken" in out and job.id in out


@pytest.mark.parametrize("workflow", BACKENDS, indirect=True)
def test_interrupt_cancels_every_submitted_job(workflow):
    workdir, backend = workflow
    proc = run_snakemake(workdir, backend, "slow_all", wait=False, status_every=10)
    deadline = time.monotonic() + 120
    jobs = []
    while len(jobs) < 3 or not all(j.state.value in ("pending", "running") for j in jobs):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read() if proc.poll() else "timeout"
        time.sleep(0.5)
        jobs = recorded("smk-slow", backend)
    between_status_rounds(proc.pid, deadline)
    interrupt_main_thread(proc.pid)
    out, _ = proc.communicate(timeout=120)
    import cluster_core as cc
    try:
        assert cc.wait([j.id for j in jobs], timeout=60, backend=backend) is False
    except cc.WaitTimeout:
        pytest.fail(f"the jobs were not cancelled; Snakemake said:\n{out}")
    states = {j.id: (j.state.value, j.record.reason if j.record else None) for j in recorded("smk-slow", backend)}
    assert {s for s, _ in states.values()} == {"cancelled"}, f"{states}\n{out}"
