"""Capture real squeue/sacct/sbatch output for the parser tests from a running Slurm (ci/slurm/up.sh).

    python plugins/cluster_slurm/tests/capture_fixtures.py [outdir]

Submits one job per state it can produce, records each command's output verbatim with the exact formats
the plugin uses (cluster_slurm.parse.SQUEUE_FORMAT / SACCT_FORMAT), and writes manifest.json mapping
each scenario to its job id. Takes about two minutes (the TIMEOUT job needs the 1-minute minimum limit
plus slurmctld's ~30 s sweep). Not a test: run by hand when the formats or the Slurm version change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cluster_slurm.parse import SACCT_FORMAT, SQUEUE_FORMAT

HERE = Path(__file__).parent
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "fixtures"
WORK = Path(tempfile.mkdtemp(prefix="slurm-capture-"))
ids: dict[str, str] = {}
log: list[str] = []


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, cwd=WORK)
    if check and proc.returncode:
        raise SystemExit(f"{args} failed: {proc.stderr}")
    return proc


def sbatch(scenario: str, *args: str, wrap: str = "true") -> str:
    proc = sh("sbatch", "--parsable", f"--job-name={scenario}", f"--output={WORK}/%x-%A_%a.out",
              "--mem=100M", *args, "--wrap", wrap)
    ids[scenario] = proc.stdout.strip().split(";")[0]
    return ids[scenario]


def squeue(*args: str) -> str:
    return sh("squeue", "-h", "-t", "all", "-O", SQUEUE_FORMAT, *args, check=False).stdout


observed: dict[tuple, str] = {}
stop = threading.Event()


def observe() -> None:
    """Poll the whole queue every 0.2 s; keep each job's row the first time it shows a new state or
    reason, so short-lived states (COMPLETING, TIMEOUT before the purge) get caught too."""
    while not stop.is_set():
        for line in squeue().splitlines():
            f = line.split("|")
            observed.setdefault((f[0], f[4], f[5]), line + "\n")
        time.sleep(0.2)


def state_of(job_id: str) -> str:
    return sh("squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T", check=False).stdout.strip()


def wait(cond, what: str, timeout: float = 150.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def save(name: str, text: str) -> None:
    (OUT / name).write_text(text)
    print(f"wrote {name}: {len(text.splitlines())} lines")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=observe, daemon=True).start()
    finished_lines: list[str] = []

    # 1. the TIMEOUT job first: it takes a CPU for 60-90 s while the rest runs on the other
    sbatch("timeout", "--time=1", wrap="sleep 300")

    # 2. jobs that end by themselves; catch each one's squeue row as soon as it has ended
    sbatch("completed")
    sbatch("failed_exit3", wrap="echo bye; exit 3")
    sbatch("killed_segv", wrap="kill -SEGV $$")
    sbatch("oom", "--mem=50M", wrap="python3 -c 'b = bytearray(400 * 2**20); import time; time.sleep(10)'")
    sbatch("array_ok", "--array=0-2")
    sbatch("array_mixed", "--array=0-2", wrap="exit $SLURM_ARRAY_TASK_ID")
    sbatch("name with |pipe and 'quotes' $(x)")
    for scenario in ("completed", "failed_exit3", "killed_segv", "oom", "array_ok", "array_mixed",
                     "name with |pipe and 'quotes' $(x)"):
        job = ids[scenario]
        wait(lambda: all(s in ("COMPLETED", "FAILED", "CANCELLED", "OUT_OF_MEMORY")
                         for s in state_of(job).split()) and state_of(job), f"{scenario} to end")
        finished_lines.append(squeue("-j", job))
    save("squeue-finished.txt", "".join(finished_lines))

    # 3. a live queue: one running job fills the second CPU, the rest waits for various reasons
    running = sbatch("running", wrap="sleep 300")
    wait(lambda: state_of(running) == "RUNNING", "running to start")
    sbatch("pending_resources", wrap="sleep 1")
    sbatch("held_user", "--hold")
    admin = sbatch("held_admin")
    sh("scontrol", "hold", admin)
    sbatch("dependency", f"--dependency=afterok:{running}")
    sbatch("begin_later", "--begin=now+1hour")
    sbatch("array_pending", "--array=0-5%2", wrap="sleep 1")
    time.sleep(2)  # let the scheduler assign pending reasons (two scheduling cycles)
    save("squeue-live.txt", squeue())

    # 4. suspend / resume; requeue; requeue-hold; special exit
    sh("scontrol", "suspend", running)
    wait(lambda: state_of(running) == "SUSPENDED", "suspend")
    save("squeue-suspended.txt", squeue("-j", running))
    sh("scontrol", "resume", running)
    wait(lambda: state_of(running) == "RUNNING", "resume")
    sh("scontrol", "requeuehold", running)       # back to pending, held (Slurm delays its restart ~2 min)
    wait(lambda: state_of(running) == "PENDING", "requeue-hold")
    save("squeue-requeue-hold.txt", squeue("-j", running))
    special = sbatch("special_exit", wrap="sleep 300")
    wait(lambda: state_of(special) == "RUNNING", "special_exit to start")
    sh("scontrol", "requeuehold", "State=SpecialExit", special)
    wait(lambda: state_of(special) == "SPECIAL_EXIT", "special exit")
    save("squeue-special-exit.txt", squeue("-j", special))
    sh("scancel", special)
    requeue = sbatch("requeued", wrap="sleep 300")
    wait(lambda: state_of(requeue) == "RUNNING", "requeued to start")
    sh("scontrol", "requeue", requeue)
    save("squeue-requeued.txt", squeue("-j", requeue))
    wait(lambda: state_of(requeue) == "PENDING", "requeued to pend")
    save("squeue-requeued-pending.txt", squeue("-j", requeue))

    # 5. cancel the running (held/special-exit) job and pending ones; a dependency on a failed parent
    for scenario in ("running", "pending_resources", "held_user", "held_admin", "begin_later",
                     "array_pending", "requeued"):
        sh("scancel", ids[scenario], check=False)
    running2 = sbatch("cancelled_running", wrap="sleep 300")
    wait(lambda: state_of(running2) == "RUNNING", "cancelled_running to start")
    sh("scancel", running2)
    parent = sbatch("dep_parent_fails", wrap="exit 1")
    sbatch("dep_child", f"--dependency=afterok:{parent}", "--kill-on-invalid-dep=yes")
    for scenario in ("cancelled_running", "dep_parent_fails", "dep_child", "dependency"):
        job = ids[scenario]
        wait(lambda: state_of(job) in ("COMPLETED", "FAILED", "CANCELLED"), f"{scenario} to end")
    # (their squeue rows are in squeue-observed.txt: squeue forgets a job MinJobAge after it ended)
    # 6. the TIMEOUT job (caught by the observer before squeue forgets it), then sacct for everything
    job = ids["timeout"]
    wait(lambda: any(k[0] == job and k[1] == "TIMEOUT" for k in observed), "the time limit", timeout=200)
    stop.set()
    save("squeue-observed.txt", "".join(observed.values()))
    all_ids = ",".join(dict.fromkeys(ids.values()))
    time.sleep(2)  # slurmdbd catches up
    save("sacct-all.txt", sh("sacct", "-X", "-n", "-P", "-o", SACCT_FORMAT, "-j", all_ids).stdout)
    save("sacct-steps.txt", sh("sacct", "-n", "-P", "-o", SACCT_FORMAT, "-j",
                               ",".join(ids[s] for s in ("completed", "oom", "timeout", "array_mixed"))).stdout)

    # 7. what the commands say about ids they do not know, and sbatch's refusals
    lines = []
    for args in (["squeue", "-h", "-t", "all", "-j", "99999999"], ["sacct", "-X", "-n", "-P", "-j", "99999999"],
                 ["scancel", "99999999"], ["scancel", ids["completed"]]):
        proc = sh(*args, check=False)
        lines.append(f"$ {' '.join(args)}\n[rc={proc.returncode}]\n[stdout]\n{proc.stdout}[stderr]\n{proc.stderr}\n")
    save("unknown-ids.txt", "".join(lines))
    errors = []
    for args in (["--partition=nope"], ["--mem=100G"], ["--mem-per-cpu=100G"], ["--account=nope"],
                 ["--qos=nope"], ["--partition=second", "--time=2:00:00"], ["--time=abc"],
                 ["--reservation=nope"], ["--constraint=nofeat"], ["--gres=gpu:1"], ["--gpus=1"],
                 ["--licenses=foo"], ["--cpus-per-task=64"], ["--nodes=5"], ["--ntasks=5"],
                 ["--dependency=afterok:abc"], ["--array=0-99999999"], ["--begin=garbage"],
                 ["--mail-type=BAD"]):
        proc = sh("sbatch", "--parsable", *args, "--wrap", "true", check=False)
        if proc.returncode == 0:
            sh("scancel", proc.stdout.strip(), check=False)
        errors.append(f"$ sbatch --parsable {' '.join(args)} --wrap true\n[rc={proc.returncode}]\n"
                      f"[stdout]\n{proc.stdout}[stderr]\n{proc.stderr}\n")
    save("sbatch-errors.txt", "".join(errors))
    capture_array_lag()
    ids["_slurm_version"] = sh("sinfo", "--version").stdout.strip()
    ids["_tz"] = time.strftime("%Z")
    save("manifest.json", json.dumps(ids, indent=1) + "\n")


def capture_array_lag() -> None:
    """squeue and sacct side by side, every 0.1 s, while a short array runs: slurmdbd lags behind."""
    job = sbatch("array_lag", "--array=0-2", wrap="exit $SLURM_ARRAY_TASK_ID")
    snapshots: list[tuple[str, str]] = []
    end = time.monotonic() + 6
    while time.monotonic() < end:
        pair = (squeue("-j", job), sh("sacct", "-X", "-n", "-P", "-o", SACCT_FORMAT, "-j", job).stdout)
        if not snapshots or snapshots[-1] != pair:
            snapshots.append(pair)
        time.sleep(0.1)
    save("array-lag-squeue.txt", "\n".join(sq for sq, _ in snapshots))
    save("sacct-array-lag.txt", "\n".join(sa for _, sa in snapshots))


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("note: scontrol hold/suspend/requeue need root or an operator account", file=sys.stderr)
    main()
