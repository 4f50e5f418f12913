"""One measurement in a fresh process: ``python workers.py SPEC.json``.

The spec names the workload (``kind``), the number of jobs (``n``), a private scratch directory
(``dir``) and where to write the result (``out``): ``{"seconds": wall, "extra": {...}}``. Imports of the
tool under test happen before the clock starts; everything after (backend loading, starting a runner,
pool or server, submitting, waiting, reading every result back and checking it) is timed.

Only the standard library is imported at module level: this file runs under the project's interpreter
(cluster-core, ProcessPoolExecutor, xargs, the parsers) and under the peers' (submitit, fyrd).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from tiny import square  # noqa: E402  (the function every function row runs)

clock = time.perf_counter


def expect(values, n):
    want = [square(i) for i in range(n)]
    if list(values) != want:
        raise AssertionError(f"wrong results: {list(values)[:5]}... != {want[:5]}...")


# --- shell jobs ---------------------------------------------------------------------------------------

def shell_command(i: int) -> str:
    return f"echo job {i}"


def shell_cluster_core(spec):
    import cluster_core as cc
    n, jobdir = spec["n"], Path(spec["dir"]) / "jobs"
    t0 = clock()
    jobs = [cc.submit(shell_command(i), backend="local", jobdir=jobdir) for i in range(n)]
    t1 = clock()
    ok = cc.wait(jobs)
    t2 = clock()
    if not ok:
        raise AssertionError("not every shell job completed")
    if jobs[-1].stdout != f"job {n - 1}\n":
        raise AssertionError(f"unexpected stdout {jobs[-1].stdout!r}")
    return t2 - t0, {"submit_seconds": t1 - t0, "wait_seconds": t2 - t1}


def shell_xargs(spec):
    n, cores = spec["n"], spec["cores"]
    lines = "".join(shell_command(i) + "\n" for i in range(n))
    out_path = Path(spec["dir"]) / "xargs.out"
    t0 = clock()
    with open(out_path, "wb") as out:
        subprocess.run(["xargs", "-P", str(cores), "-d", "\n", "-n", "1", "bash", "-c"], input=lines.encode(),
                       stdout=out, check=True)
    t1 = clock()
    got = out_path.read_text().splitlines()
    if len(got) != n:
        raise AssertionError(f"xargs printed {len(got)} lines for {n} commands")
    return t1 - t0, {}


# --- function jobs ------------------------------------------------------------------------------------

def function_cluster_core(spec):
    import cluster_core as cc
    n, jobdir = spec["n"], Path(spec["dir"]) / "jobs"
    t0 = clock()
    tasks = cc.map(square, range(n), backend="local", jobdir=jobdir)
    t1 = clock()
    values = cc.get(tasks)
    t2 = clock()
    expect(values, n)
    return t2 - t0, {"submit_seconds": t1 - t0, "wait_seconds": t2 - t1}


def function_process_pool(spec):
    from concurrent.futures import ProcessPoolExecutor
    n = spec["n"]
    t0 = clock()
    with ProcessPoolExecutor(max_workers=spec["cores"]) as pool:
        values = list(pool.map(square, range(n)))
    t1 = clock()
    expect(values, n)
    return t1 - t0, {}


def function_submitit(spec):
    import submitit
    n = spec["n"]
    executor = submitit.LocalExecutor(folder=Path(spec["dir"]) / "submitit")
    executor.update_parameters(timeout_min=60)
    t0 = clock()
    jobs = executor.map_array(square, range(n))
    t1 = clock()
    values = [job.result() for job in jobs]
    t2 = clock()
    expect(values, n)
    return t2 - t0, {"submit_seconds": t1 - t0, "wait_seconds": t2 - t1}


def function_fyrd(spec):
    import fyrd
    n, out = spec["n"], Path(spec["dir"]) / "fyrd"
    out.mkdir(parents=True, exist_ok=True)
    t0 = clock()
    jobs = [fyrd.submit(square, (i,), qtype="local", outpath=str(out), scriptpath=str(out),
                        clean_files=True, clean_outputs=True) for i in range(n)]
    t1 = clock()
    values = [job.get() for job in jobs]
    t2 = clock()
    expect(values, n)
    try:  # stop its queue server (the harness kills the process group as well)
        fyrd.batch_systems.local.kill_queue()
    except Exception:
        pass
    return t2 - t0, {"submit_seconds": t1 - t0, "wait_seconds": t2 - t1}


# --- Slurm --------------------------------------------------------------------------------------------

SLURM_COMMANDS = ("sbatch", "squeue", "sacct", "scontrol")


def _calls(shims, before=None):
    now = dict(shims.calls())
    return {c: now.get(c, 0) - (before or {}).get(c, 0) for c in SLURM_COMMANDS}


def _shims(work: Path):
    """Counting PATH shims for the Slurm commands. Loaded by path: the peers' interpreter runs this too,
    and cluster_core/testing/shims.py needs only the standard library."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_cc_shims", BENCH.parent / "cluster_core" / "testing" / "shims.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ShimDir(work / "shims").count(*SLURM_COMMANDS)


def _slurm_extra(submitting, waiting, **more):
    return {"sbatch": submitting["sbatch"] + waiting["sbatch"], "squeue_waiting": waiting["squeue"],
            "sacct_waiting": waiting["sacct"],
            "scheduler_calls_waiting": waiting["squeue"] + waiting["sacct"] + waiting["sbatch"],
            "scontrol": submitting["scontrol"] + waiting["scontrol"], **more}


def slurm_cluster_core(spec, one_by_one=False):
    """``cc.map`` on Slurm, then every result: with one ``cc.get(tasks)``, or (``one_by_one``) with
    ``[t.get() for t in tasks]`` as users write it, which must cost no more scheduler calls."""
    import cluster_core as cc
    from cluster_core.queue import tracker
    n, work = spec["n"], Path(spec["dir"])
    with _shims(work) as shims:
        t0 = clock()
        tasks = cc.map(square, range(n), backend="slurm", jobdir=work / "jobs", mem="100M", name=spec["name"])
        t1 = clock()
        submitting = _calls(shims)
        polls_before = tracker("slurm").queries
        values = [t.get() for t in tasks] if one_by_one else cc.get(tasks)
        t2 = clock()
        waiting = _calls(shims, submitting)
        polls = tracker("slurm").queries - polls_before
    expect(values, n)
    return t2 - t0, _slurm_extra(submitting, waiting, submit_seconds=t1 - t0, polls=polls,
                                 array_jobs=len({t.job.id for t in tasks}))


def slurm_cluster_core_one_by_one(spec):
    return slurm_cluster_core(spec, one_by_one=True)


def slurm_submitit(spec):
    """submitit on the same Slurm: ``AutoExecutor.map_array``, then ``job.result()`` for each."""
    import submitit
    n, work = spec["n"], Path(spec["dir"])
    with _shims(work) as shims:
        executor = submitit.AutoExecutor(folder=work / "submitit", cluster="slurm")
        executor.update_parameters(slurm_mem="100M", timeout_min=30, name=spec["name"])
        t0 = clock()
        jobs = executor.map_array(square, range(n))
        t1 = clock()
        submitting = _calls(shims)
        values = [job.result() for job in jobs]
        t2 = clock()
        waiting = _calls(shims, submitting)
    expect(values, n)
    return t2 - t0, _slurm_extra(submitting, waiting, submit_seconds=t1 - t0,
                                 array_jobs=len({job.job_id.split("_")[0] for job in jobs}))


def slurm_raw_array(spec):
    """What a user writes by hand: one ``sbatch --array --wait`` running the same function per task."""
    n, work = spec["n"], Path(spec["dir"])
    results = work / "results"
    results.mkdir(parents=True)
    code = (f"import sys; sys.path.insert(0, {str(BENCH)!r}); from tiny import square; "
            f"i = int(sys.argv[1]); open({str(results)!r} + f'/{{i}}', 'w').write(repr(square(i)))")
    script = work / "array.sh"
    script.write_text("#!/bin/bash\n"
                      f"exec {shlex.quote(sys.executable)} -c {shlex.quote(code)} \"$SLURM_ARRAY_TASK_ID\"\n")
    with _shims(work) as shims:
        t0 = clock()
        subprocess.run(["sbatch", "--parsable", "--wait", f"--array=0-{n - 1}", "--mem=100M",
                        f"--job-name={spec['name']}", "-o", str(work / "%A_%a.out"), str(script)],
                       check=True, stdout=subprocess.DEVNULL)
        values = [int((results / str(i)).read_text()) for i in range(n)]
        t1 = clock()
        calls = _calls(shims)
    expect(values, n)
    return t1 - t0, {"sbatch": calls["sbatch"], "squeue_waiting": calls["squeue"], "sacct_waiting": calls["sacct"],
                     "scheduler_calls_waiting": calls["squeue"] + calls["sacct"], "scontrol": calls["scontrol"],
                     "array_jobs": 1}


# --- parsers ------------------------------------------------------------------------------------------

def _renumber(text: str, offset: int) -> str:
    return re.sub(r"^\d+", lambda m: str(int(m.group()) + offset), text)


def squeue_input(jobs: int) -> tuple[str, int]:
    """``jobs`` real squeue rows: every captured row of the plugin's fixtures, replicated with new ids."""
    fixtures = BENCH.parent / "plugins" / "cluster_slurm" / "tests" / "fixtures"
    from cluster_slurm.parse import SQUEUE_FIELDS
    rows = []
    for name in ("squeue-live.txt", "squeue-finished.txt", "squeue-observed.txt"):
        for line in (fixtures / name).read_text().splitlines():
            if line.count("|") >= len(SQUEUE_FIELDS) - 1:
                rows.append(line.split("|", 3))
    out = []
    k = 0
    while len(out) < jobs:
        offset = 10_000 * (k + 1)  # captured ids are below 10,000: every row gets an id of its own
        shown, raw, array_job, rest = rows[k % len(rows)]
        out.append("|".join((_renumber(shown, offset), _renumber(raw, offset), _renumber(array_job, offset), rest)))
        k += 1
    return "\n".join(out) + "\n", len(rows)


def qstat_input(jobs: int) -> tuple[str, int]:
    """One Torque ``qstat -x -t`` document of ``jobs`` real <Job> records (the captured ones, new ids)."""
    fixtures = BENCH.parent / "plugins" / "cluster_torque" / "tests" / "fixtures" / "torque"
    records = []
    for path in sorted(fixtures.glob("qstat_x_*.xml")):
        records += re.findall(r"<Job>.*?</Job>", path.read_text(), re.DOTALL)
    out = []
    k = 0
    while len(out) < jobs:
        offset = 10_000 * (k + 1)
        rec = records[k % len(records)]
        out.append(re.sub(r"<Job_Id>(\d+)", lambda m: f"<Job_Id>{int(m.group(1)) + offset}", rec, count=1))
        k += 1
    return '<?xml version="1.0"?>\n<Data>' + "".join(out) + "</Data>\n", len(records)


def parse_rows(spec, make_input, parse):
    n, repeats = spec["n"], spec.get("inner_repeats", 1)
    text, real = make_input(n)
    parsed = parse(text)  # warm-up (regex and import caches), and a check
    if len(parsed) != n or len({j.id for j in parsed}) != n:
        raise AssertionError(f"parsed {len(parsed)} jobs ({len({j.id for j in parsed})} ids) of {n}")
    samples = []
    for _ in range(repeats):
        t0 = clock()
        parse(text)
        samples.append(clock() - t0)
    return samples, {"input_bytes": len(text.encode()), "real_records": real}


def parse_squeue(spec):
    from cluster_slurm.parse import parse_squeue as parse
    return parse_rows(spec, squeue_input, parse)


def parse_qstat(spec):
    from cluster_torque.parse import parse_torque_xml as parse
    return parse_rows(spec, qstat_input, parse)


WORKLOADS = {
    "shell/cluster-core": shell_cluster_core,
    "shell/xargs": shell_xargs,
    "function/cluster-core": function_cluster_core,
    "function/ProcessPoolExecutor": function_process_pool,
    "function/submitit": function_submitit,
    "function/fyrd": function_fyrd,
    "slurm/cluster-core": slurm_cluster_core,
    "slurm/cluster-core one by one": slurm_cluster_core_one_by_one,
    "slurm/submitit": slurm_submitit,
    "slurm/raw-array": slurm_raw_array,
    "parse/squeue": parse_squeue,
    "parse/qstat-x": parse_qstat,
}


def main(argv):
    spec = json.loads(Path(argv[0]).read_text())
    seconds, extra = WORKLOADS[spec["kind"]](spec)
    Path(spec["out"]).write_text(json.dumps({"seconds": seconds, "extra": extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
