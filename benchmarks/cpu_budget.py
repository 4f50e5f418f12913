"""Where the CPU of the local rows goes, without a profiler: ``python benchmarks/cpu_budget.py [N] [--kinds shell,function]``.

Starts a runner (in the foreground, as a submitter would start it: with the marker slot, so function tasks
run warm) on a private state dir and job-record root, submits N shell jobs (``cc.submit`` in a loop) or a
``cc.map`` of N tiny function tasks, waits for them (``cc.wait`` / ``cc.get``), and reports per job the CPU
of each party: the submitter while submitting, the runner itself, the jobs (the runner's children: bash,
or its warm workers, reaped or still alive), and the waiting side in all; then a timeline from the state
database: when the first job started, when the last one was submitted and ended, and when the wait
returned. profile_local.py says which functions cost; this says which process, at full speed (cProfile
inflates Python-side costs ~1.5x and the timings with them).

On a machine with C cores the wall time is at least the sum of the CPU over C; what it exceeds that by is
waiting (a job slot idle, the runner's start, a late poll).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from profile_local import start_runner, stop_runner  # noqa: E402
from tiny import square  # noqa: E402

CORES = os.cpu_count() or 1


def budget(kind: str, n: int) -> dict:
    import psutil
    work = Path(tempfile.mkdtemp(prefix=f"cpu-budget-{kind}-"))
    state = work / "state"
    state.mkdir()
    os.environ.update(CLUSTER_LOCAL_DIR=str(state), CLUSTER_LOCAL_THREADS=str(CORES),
                      CLUSTER_CORE_REGISTRY=str(work / "records"))
    runner = start_runner(state, work / "runner.log")
    try:
        import cluster_core as cc
        cc.submit("true", backend="local", jobdir=work / "warm-up", hold=True)  # imports, not measured
        proc = psutil.Process(runner.pid)
        before = proc.cpu_times()
        epoch, p0, t0 = time.time(), time.process_time(), time.perf_counter()
        if kind == "shell":
            jobs = [cc.submit(f"echo job {i}", backend="local", jobdir=work / "jobs") for i in range(n)]
        else:
            jobs = cc.map(square, range(n), backend="local", jobdir=work / "jobs")
        p1, t1 = time.process_time(), time.perf_counter()
        if kind == "shell":
            assert cc.wait(jobs)
        else:
            assert cc.get(jobs) == [square(i) for i in range(n)]
        p2, t2 = time.process_time(), time.perf_counter()
        after = proc.cpu_times()
        alive = 0.0  # warm workers still alive: their CPU is not in the runner's children times yet
        for child in proc.children(recursive=True):
            try:
                times = child.cpu_times()
                alive += times.user + times.system
            except psutil.Error:
                pass
        db = sqlite3.connect(str(state / "jobs.db"))
        first_start, last_submit, last_end = db.execute(
            "SELECT min(start_time), max(submit_time), max(end_time) FROM jobs WHERE name != 'true'").fetchone()
        db.close()
        ms = lambda seconds: round(seconds / n * 1e3, 3)  # noqa: E731
        return {
            "n": n, "wall_s": round(t2 - t0, 3), "submit_s": round(t1 - t0, 3), "wait_s": round(t2 - t1, 3),
            "cpu_per_job_ms": {
                "submitter (while submitting)": ms(p1 - p0),
                "runner itself": ms(after.user + after.system - before.user - before.system),
                "jobs (the runner's children: bash, or warm workers)": ms(
                    after.children_user + after.children_system - before.children_user - before.children_system
                    + alive),
                "waiting side (cc.wait / cc.get)": ms(p2 - p1),
            },
            "timeline_s": {"first job started": round(first_start - epoch, 3),
                           "last job submitted": round(last_submit - epoch, 3),
                           "last job ended": round(last_end - epoch, 3),
                           "wait returned": round(t2 - t0, 3)},
        }
    finally:
        stop_runner(state, runner)
        if not os.environ.get("CPU_BUDGET_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, nargs="?", default=1000)
    p.add_argument("--kinds", default="shell,function")
    a = p.parse_args(argv)
    for kind in a.kinds.split(","):
        r = budget(kind, a.n)
        print(f"{kind}, N={r['n']}: {r['wall_s']} s ({r['submit_s']} s submitting, {r['wait_s']} s waiting after)")
        for party, value in r["cpu_per_job_ms"].items():
            print(f"  CPU per job, {party}: {value} ms")
        print("  timeline: " + ", ".join(f"{k} +{v} s" for k, v in r["timeline_s"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
