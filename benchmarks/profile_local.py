"""Where the time of the local rows goes: ``python benchmarks/profile_local.py [N] [--out DIR]``.

Runs N shell jobs and N function jobs (``cc.map``) on a private local-scheduler state dir with the runner
started in the foreground under cProfile, the submitting process profiled too, and reports per job:

- the submitter's cost, split into building the Job, writing its files, the database insert, the poke of
  the runner and the rest (cProfile, cumulative times of the functions that do each);
- the runner's cost, split into spawning, the database, waiting on select and the rest;
- a timeline from the database and the exit files: how long each job held a slot, how much of that the
  command itself ran, how idle the slots were, and how long ``wait`` took to notice the last end;
- for function jobs, what one task's process costs: bash, the interpreter, the imports, the whole task;
- the waiting side: polls made, and the cost of one poll.

Run it with the interpreter being measured (``benchmarks/.venv-bench/bin/python`` after run.sh, for the
figures users get). It writes ``profile.json`` and the cProfile files to ``--out``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from tiny import square  # noqa: E402

CORES = os.cpu_count() or 1

# cumulative time of these functions = the cost of one part (file name fragment, function name)
SUBMIT_PARTS = {
    "Job(): keywords, config, names": [("cluster_core/job.py", "__init__")],
    "write script (+ pickle)": [("cluster_core/job.py", "_write_files")],
    "local submit_job total": [("cluster_local/submit.py", "submit_jobs")],
    "  sqlite (BEGIN, INSERT, COMMIT)": [("~", "<method 'execute' of 'sqlite3.Connection' objects>")],
    "  environment to JSON": [("cluster_local/submit.py", "job_environment"), ("cluster_local/store.py", "to_json")],
    "  poke the runner (socket)": [("cluster_local/client.py", "ensure_runner")],
    "tracker.track": [("cluster_core/queue.py", "track")],
}
RUNNER_PARTS = {
    "spawn (posix_spawn of bash)": [("cluster_local/supervisor.py", "spawn")],
    "database writes (_flush)": [("cluster_local/journal.py", "flush")],
    "read new jobs (_load_new)": [("cluster_local/runner.py", "_load_new")],
    "start: read rows for starts (_start minus spawn)": [("cluster_local/runner.py", "_start")],
    "reap + record an end (_reap)": [("cluster_local/supervisor.py", "reap")],
    "accept/handle pokes (_accept, _client)": [("cluster_local/server.py", "_accept"), ("cluster_local/server.py", "_client")],
    "select (idle or waiting)": [("selectors.py", "select")],
    "sqlite execute (all)": [("~", "<method 'execute' of 'sqlite3.Connection' objects>")],
    "whole loop (_loop)": [("cluster_local/runner.py", "_loop")],
}


def cumulative(stats: pstats.Stats, file_part: str, func: str) -> float:
    """Cumulative seconds of the functions named ``func`` in files ending with ``file_part`` ("~": builtins)."""
    return sum(ct for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items()
               if name == func and filename.replace("\\", "/").endswith(file_part))


def breakdown(stats: pstats.Stats, parts: dict, n: int) -> dict:
    out = {}
    for label, specs in parts.items():
        seconds = sum(cumulative(stats, *spec) for spec in specs)
        out[label] = {"total_s": round(seconds, 4), "per_job_ms": round(seconds / n * 1e3, 3)}
    return out


def top(stats: pstats.Stats, limit: int = 15) -> list:
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:limit]
    return [{"function": f"{Path(f).name}:{line}({name})", "calls": nc, "self_s": round(tt, 4),
             "cumulative_s": round(ct, 4)} for (f, line, name), (_cc, nc, tt, ct, _callers) in rows]


def timed(args: list, repeats: int = 15, env=None) -> dict:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        samples.append(time.perf_counter() - t0)
    return {"median_ms": round(statistics.median(samples) * 1e3, 2), "min_ms": round(min(samples) * 1e3, 2)}


def start_runner(state: Path, log: Path, python_options: tuple[str, ...] = ()) -> subprocess.Popen:
    """A runner for ``state`` in the foreground (``python_options`` go before ``-m``, e.g. cProfile's), as a
    submitter would start it; returns once it listens."""
    from cluster_local.settings import MARKER, marker_slot, state_key
    env = dict(os.environ, CLUSTER_LOCAL_DIR=str(state), CLUSTER_LOCAL_THREADS=str(CORES))
    # the room in its environment where warm workers show their job's marker, as a submitter gives it: a
    # runner without it runs every function job's script (a new interpreter), which the benchmark does not
    env[MARKER] = marker_slot(state_key(state))
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, *python_options, "-m", "cluster_local.runner", "--foreground",
                                 str(state)], stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    sock = state / "runner.sock"
    deadline = time.monotonic() + 30
    while not sock.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"the runner did not start: {log.read_text()}")
        time.sleep(0.01)
    return proc


def stop_runner(state: Path, proc: subprocess.Popen) -> None:
    import cluster_local
    cluster_local.shutdown_runner(state, timeout=30)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)


def timeline(jobs, state: Path, wait_returned_epoch: float) -> dict:
    import sqlite3
    from cluster_core.script import read_exit_file
    db = sqlite3.connect(str(state / "jobs.db"))
    rows = {str(r[0]): r[1:] for r in db.execute("SELECT id, submit_time, start_time, end_time FROM jobs")}
    held, command, spawn_to_script, end_to_record = [], [], [], []
    starts, ends = [], []
    for job in jobs:
        submit, start, end = rows[str(job.id)]
        ended = read_exit_file(job.files.exit)
        held.append(end - start)
        starts.append(start)
        ends.append(end)
        if ended and ended.start and ended.end:
            command.append(ended.end - ended.start)
            spawn_to_script.append(ended.start - start)
            end_to_record.append(end - ended.end)
    span = max(ends) - min(starts)
    med = lambda xs: round(statistics.median(xs) * 1e3, 3) if xs else None  # noqa: E731
    return {
        "slot_held_per_job_ms": med(held),
        "script_body_per_job_ms (exit-file start to end, in bash)": med(command),
        "runner start to script's first line_ms (fork, exec, bash start)": med(spawn_to_script),
        "script end to runner's record_ms (exit trap, reap, commit)": med(end_to_record),
        "first start to last end_s": round(span, 3),
        "slot use (sum of held / (cores * span))": round(sum(held) / (CORES * span), 3) if span > 0 else None,
        "last end to wait()/get() returning (get: reading every result)_ms": round((wait_returned_epoch - max(ends)) * 1e3, 1),
    }


def run_kind(kind: str, n: int, out: Path) -> dict:
    import cluster_core as cc
    from cluster_core.queue import tracker

    work = Path(tempfile.mkdtemp(prefix=f"profile-{kind}-"))
    state = work / "state"
    state.mkdir()
    os.environ["CLUSTER_LOCAL_DIR"] = str(state)
    os.environ["CLUSTER_LOCAL_THREADS"] = str(CORES)
    # job records of their own: the user's registry holds earlier jobs under the same ids (a fresh state
    # dir counts from 1 again), whose outcome files every new record would delete, a cost that is not the
    # submission's (and records nobody asked for in the user's registry)
    os.environ["CLUSTER_CORE_REGISTRY"] = str(work / "records")
    runner = start_runner(state, out / f"runner-{kind}.log", ("-m", "cProfile", "-o", str(out / f"runner-{kind}.prof")))
    try:
        track = tracker("local")
        queries_before = track.queries
        sub_prof, wait_prof = cProfile.Profile(), cProfile.Profile()
        t0 = time.perf_counter()
        sub_prof.enable()
        if kind == "shell":
            jobs = [cc.submit(f"echo job {i}", backend="local", jobdir=work / "jobs") for i in range(n)]
        else:
            jobs = cc.map(square, range(n), backend="local", jobdir=work / "jobs")
        sub_prof.disable()
        t1 = time.perf_counter()
        wait_prof.enable()
        if kind == "shell":
            assert cc.wait(jobs)
        else:
            assert cc.get(jobs) == [square(i) for i in range(n)]
        wait_prof.disable()
        t2 = time.perf_counter()
        returned = time.time()
        polls = track.queries - queries_before
        line = timeline(jobs, state, returned)  # a map task on the local backend is a job of its own id
        # one task's process, alone, for function jobs
        pieces = {}
        if kind == "function":
            script = jobs[0].job.files.for_task(0).script
            pieces = {
                "bash -c true": timed(["bash", "-c", "true"]),
                "python -c pass": timed([sys.executable, "-c", "pass"]),
                "python -c 'import cluster_core.runner'": timed([sys.executable, "-c", "import cluster_core.runner"]),
                "python -c 'import cluster_core.runner, cloudpickle'":
                    timed([sys.executable, "-c", "import cluster_core.runner, cloudpickle"]),
                "one whole task script (bash + python -m cluster_core.runner)": timed(["bash", str(script)]),
            }
    finally:
        stop_runner(state, runner)
    sub_prof.dump_stats(str(out / f"submit-{kind}.prof"))
    wait_prof.dump_stats(str(out / f"wait-{kind}.prof"))
    sub_stats = pstats.Stats(str(out / f"submit-{kind}.prof"))
    wait_stats = pstats.Stats(str(out / f"wait-{kind}.prof"))
    result = {
        "n": n,
        "wall_s": round(t2 - t0, 3),
        "submit_s": round(t1 - t0, 3),
        "wait_s": round(t2 - t1, 3),
        "submitter_per_job_ms": breakdown(sub_stats, SUBMIT_PARTS, n),
        "submitter_top_self": top(sub_stats),
        "waiting": {"polls": polls, "per_poll_ms": round(cumulative(wait_stats, "cluster_core/queue.py", "refresh")
                                                         / max(1, polls) * 1e3, 3),
                    "parse_queue_per_poll_ms": round(cumulative(wait_stats, "cluster_local/control.py", "job_rows")
                                                     / max(1, polls) * 1e3, 3),
                    "exit_file_reads": sum(nc for (f, _l, name), (_c, nc, *_r) in wait_stats.stats.items()
                                           if name == "read_exit_file"),
                    "sleeping_s": round(cumulative(wait_stats, "~", "<built-in method time.sleep>"), 3)},
        "timeline": line,
        "task_process": pieces,
    }
    runner_prof = out / f"runner-{kind}.prof"
    if runner_prof.exists():
        rstats = pstats.Stats(str(runner_prof))
        result["runner_per_job_ms"] = breakdown(rstats, RUNNER_PARTS, n)
        result["runner_top_self"] = top(rstats)
    shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, nargs="?", default=1000)
    p.add_argument("--out", type=Path, default=BENCH / "results" / "profile")
    p.add_argument("--kinds", default="shell,function")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    os.environ["CLUSTER_CORE_CONFIG"] = str(a.out / "empty-config.ini")
    os.environ.pop("CLUSTER_BACKEND", None)
    report = {"python": sys.executable, "cores": CORES, "load_average_at_start": list(os.getloadavg())}
    kinds = a.kinds.split(",")
    if len(kinds) == 1:
        report[kinds[0]] = run_kind(kinds[0], a.n, a.out)
    else:  # one process per kind: job ids restart in each fresh state dir, and a process's tracker caches ends
        for kind in kinds:
            subprocess.run([sys.executable, __file__, str(a.n), "--out", str(a.out), "--kinds", kind],
                           check=True, stdout=subprocess.DEVNULL)
            report[kind] = json.loads((a.out / "profile.json").read_text())[kind]
    report["load_average_at_end"] = list(os.getloadavg())
    (a.out / "profile.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
