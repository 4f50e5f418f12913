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
from typing import Optional

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


# --- Slurm transports: one poll of N waiting jobs over the commands or over slurmrestd ---------------------

class ForkCounter:
    """Counts the processes this process starts while active: every ``subprocess`` child (by program name)
    and any direct ``os.fork`` / ``os.posix_spawn[p]``. A counter around the real calls, nothing replaced."""

    def __init__(self):
        self.count = 0
        self.programs: dict[str, int] = {}
        self._inside = False

    def _note(self, program) -> None:
        self.count += 1
        name = Path(str(program)).name
        self.programs[name] = self.programs.get(name, 0) + 1

    def __enter__(self):
        import os
        import subprocess
        counter = self
        self._saved = [(subprocess.Popen, "_execute_child", subprocess.Popen._execute_child)]
        original = subprocess.Popen._execute_child

        def execute_child(popen, args, *rest, **kw):
            first = args if isinstance(args, (str, bytes)) else (list(args) or ["?"])[0]
            counter._note(first.split()[0] if isinstance(first, str) and " " in first else first)
            counter._inside = True  # subprocess may use os.posix_spawn itself: one child, counted once
            try:
                return original(popen, args, *rest, **kw)
            finally:
                counter._inside = False

        subprocess.Popen._execute_child = execute_child
        for name in ("fork", "posix_spawn", "posix_spawnp"):
            fn = getattr(os, name, None)
            if fn is None:
                continue
            self._saved.append((os, name, fn))

            def wrapped(*a, _fn=fn, _name=name, **kw):
                if not counter._inside:
                    counter._note(a[0] if a and _name != "fork" else "fork")
                return _fn(*a, **kw)

            setattr(os, name, wrapped)
        return self

    def __exit__(self, *exc):
        for owner, name, fn in reversed(self._saved):
            setattr(owner, name, fn)
        return False

    def since(self, before: dict) -> dict:
        return {k: v - before.get(k, 0) for k, v in self.programs.items() if v - before.get(k, 0)}


RPC_LINE = re.compile(r"^\s*([A-Z][A-Z0-9_]+)\s+\(\s*\d+\)\s+count:(\d+)", re.M)
#: The statistics requests themselves (sdiag's and sacctmgr's own RPCs), never counted.
RPC_OWN = ("REQUEST_STATS_INFO", "DBD_GET_STATS")
SINCE = "data since"
#: The message types a read-only query can cause (the rest, job starts and ends, are others' jobs at work).
RPC_QUERY = re.compile(r"^(REQUEST_\w*INFO\w*|REQUEST_PING|REQUEST_AUTH_TOKEN|DBD_GET_\w+|SLURM_PERSIST_INIT|"
                       r"DBD_FINI)$")


def rpc_counts(args) -> Optional[dict]:
    """The "Remote Procedure Call statistics by message type" of ``sdiag`` (slurmctld) or ``sacctmgr show
    stats`` (slurmdbd): {message type: count}; None when they cannot be read."""
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    if "statistics by message type" not in out:
        return None
    section = out.split("statistics by message type", 1)[1].split("statistics by user", 1)[0]
    counts = {m.group(1): int(m.group(2)) for m in RPC_LINE.finditer(section)}
    since = re.search(r"^Data since\s+(.*)$", out, re.M)  # changes when the daemon restarts or sdiag -r
    counts[SINCE] = since.group(1).strip() if since else ""
    return counts


def rpc_snapshot() -> dict:
    return {"slurmctld": rpc_counts(["sdiag"]), "slurmdbd": rpc_counts(["sacctmgr", "show", "stats"])}


def rpc_diff(before: dict, after: dict) -> dict:
    out = {}
    for daemon in ("slurmctld", "slurmdbd"):
        a, b = before.get(daemon), after.get(daemon)
        if a is None or b is None or a[SINCE] != b[SINCE]:  # statistics reset meanwhile: no figure
            out[daemon] = None
            continue
        out[daemon] = {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)
                       if k not in RPC_OWN and k != SINCE and b.get(k, 0) != a.get(k, 0)}
    return out


def transport_poll(spec, mode):
    """``parse_queue`` of the N job ids the harness submitted held, ``polls`` times, with Slurm reached over
    its commands or over slurmrestd (``slurm.transport``); per poll: wall time, processes forked, and
    the RPCs slurmctld and slurmdbd counted (sdiag / sacctmgr show stats before and after all polls,
    minus what they counted over an idle window as long, in which others' calls show), of the kinds a
    query can cause (RPC_QUERY: job starts and ends in the same window are others' jobs at work)."""
    import os
    work = Path(spec["dir"])
    config = work / "transport.ini"
    config.write_text(f"[slurm]\ntransport = {mode}\n")
    os.environ["CLUSTER_CORE_CONFIG"] = str(config)
    from cluster_core import plugins
    from cluster_slurm import rest
    if rest.use_rest() != (mode == "rest"):
        raise AssertionError(f"slurm.transport={mode} did not take")
    backend = plugins.backend("slurm")
    ids, polls = [str(i) for i in spec["ids"]], spec.get("polls", 5)
    want = set(ids)

    def check(records):
        mine = [r for r in records if r.id in want]
        if {r.id for r in mine} != want:
            raise AssertionError(f"parse_queue knew {len({r.id for r in mine})} of the {len(want)} jobs")
        if any(r.state.finished for r in mine):
            raise AssertionError("a job that should be waiting (held) has ended")

    check(backend.parse_queue(ids))  # warm-up: the plugin, its imports, the JWT (scontrol token)
    samples, forks, requests = [], [], []
    before = rpc_snapshot()
    w0 = clock()
    with ForkCounter() as fc, _HttpCounter() as http, _Timed(rest.Client, "_once") as requesting:
        for _ in range(polls):
            f0, r0 = fc.count, http.count
            t0 = clock()
            records = backend.parse_queue(ids)
            samples.append(clock() - t0)
            forks.append(fc.count - f0)
            requests.append(http.count - r0)
            check(records)
    window = clock() - w0
    after = rpc_snapshot()
    time.sleep(window)  # as long a window with no poll: what others' calls (and the snapshots) cost
    idle = rpc_snapshot()
    programs = fc.programs
    polled, quiet = rpc_diff(before, after), rpc_diff(after, idle)
    extra = {"polls": polls, "forks_per_poll": max(forks), "http_requests_per_poll": max(requests),
             "window_seconds": window}
    if http.count:
        extra["http_bytes_per_poll"] = http.bytes / polls
        # the REST client's requests (send, slurmrestd's answer, JSON decode); the rest is reading the jobs
        extra["rest_request_seconds_per_poll"] = requesting.seconds / polls
    for program, count in programs.items():
        extra[f"forks {program}"] = count / polls
    for daemon in ("slurmctld", "slurmdbd"):
        if polled[daemon] is None or quiet[daemon] is None:
            continue
        net = {k: max(0, v - quiet[daemon].get(k, 0)) for k, v in polled[daemon].items() if RPC_QUERY.match(k)}
        extra[f"{daemon}_rpcs_per_poll"] = sum(net.values()) / polls
        extra[f"{daemon}_rpcs_idle_window"] = sum(v for k, v in quiet[daemon].items() if RPC_QUERY.match(k))
        extra[f"{daemon}_other_rpcs_window"] = sum(v for k, v in polled[daemon].items() if not RPC_QUERY.match(k))
        for k, v in net.items():
            if v:
                extra[f"{daemon} {k}"] = v / polls
    return samples, extra


class _HttpCounter:
    """Counts the HTTP requests this process sends and the bytes of the answers (``http.client``), around
    the real calls."""

    def __init__(self):
        self.count = 0
        self.bytes = 0

    def __enter__(self):
        import http.client
        counter = self
        self._request, self._read = http.client.HTTPConnection.request, http.client.HTTPResponse.read
        request, read = self._request, self._read

        def counted_request(conn, *a, **kw):
            counter.count += 1
            return request(conn, *a, **kw)

        def counted_read(resp, *a, **kw):
            data = read(resp, *a, **kw)
            counter.bytes += len(data or b"")
            return data

        http.client.HTTPConnection.request = counted_request
        http.client.HTTPResponse.read = counted_read
        return self

    def __exit__(self, *exc):
        import http.client
        http.client.HTTPConnection.request, http.client.HTTPResponse.read = self._request, self._read
        return False


class _Timed:
    """Adds up the time spent in one method (the REST client's request: send, wait, read, decode JSON)."""

    def __init__(self, owner, name):
        self.owner, self.name, self.seconds = owner, name, 0.0

    def __enter__(self):
        timed, original = self, getattr(self.owner, self.name)
        self._original = original

        def wrapped(*a, **kw):
            t0 = clock()
            try:
                return original(*a, **kw)
            finally:
                timed.seconds += clock() - t0

        setattr(self.owner, self.name, wrapped)
        return self

    def __exit__(self, *exc):
        setattr(self.owner, self.name, self._original)
        return False


def transport_commands(spec):
    return transport_poll(spec, "commands")


def transport_rest(spec):
    return transport_poll(spec, "rest")


# --- scale: cc.map of many tasks, submitted held ------------------------------------------------------------

def _rss_mib() -> float:
    """This process's peak resident set so far (``ru_maxrss``, KiB on Linux), in MiB."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _resident_mib() -> float:
    """This process's resident set now (/proc/self/statm), in MiB; 0 where there is no /proc."""
    import os
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def scale_map(spec, backend_name):
    """``cc.map(square, range(N), hold=True)``: the submission timed, this fresh process's peak RSS
    (ru_maxrss) and resident set after the imports and after the submission, then ``polls`` forced tracker polls (the
    backend's queries and the processes they fork counted), then one ``cc.cancel`` of every task. The
    tasks never run: held, they cost the scheduler nothing while their submission and polls are measured."""
    import cluster_core as cc
    from cluster_core import plugins
    from cluster_core.queue import tracker
    n, work = spec["n"], Path(spec["dir"])
    options = dict(backend=backend_name, jobdir=work / "jobs", hold=True, name=spec["name"])
    if backend_name == "slurm":
        options["mem"] = "100M"
    backend = plugins.backend(backend_name)
    calls = {"parse_queue": 0}
    original = backend.parse_queue

    def counted(*a, **kw):  # the backend's own method, counted
        calls["parse_queue"] += 1
        return original(*a, **kw)

    backend.parse_queue = counted
    rss_before, resident_before = _rss_mib(), _resident_mib()
    with ForkCounter() as fc:
        t0 = clock()
        tasks = cc.map(square, range(n), **options)
        t1 = clock()
        rss_submitted, resident_submitted = _rss_mib(), _resident_mib()
        submit_programs = dict(fc.programs)
        track = tracker(backend_name)
        queries0, forks0, programs0 = track.queries, fc.count, dict(fc.programs)
        calls["parse_queue"] = 0
        poll_seconds = []
        for _ in range(spec.get("polls", 3)):
            p0 = clock()
            track.refresh(force=True)
            poll_seconds.append(clock() - p0)
        polls = track.queries - queries0
        poll_forks = fc.count - forks0
        poll_programs = fc.since(programs0)
        known = [track.record(t._track_key) for t in tasks[:: max(1, n // 100)]]  # what the polls learnt
        if any(rec is None or rec.state.finished for rec in known):
            raise AssertionError("a held task has no record or has ended after the polls")
        c0 = clock()
        cc.cancel(tasks)
        cancel_seconds = clock() - c0
    if len(tasks) != n:
        raise AssertionError(f"cc.map gave {len(tasks)} tasks for {n} elements")
    if polls < 1:
        raise AssertionError("the tracker made no query")
    extra = {"submit_seconds": t1 - t0, "rss_after_import_mib": rss_before, "rss_peak_submit_mib": rss_submitted,
             "rss_submit_growth_mib": rss_submitted - rss_before, "rss_peak_end_mib": _rss_mib(),
             # the peak may have been set before the map (imports): the resident set's growth shows what
             # the N tasks hold once submitted
             "resident_before_mib": resident_before, "resident_submitted_mib": resident_submitted,
             "resident_growth_mib": resident_submitted - resident_before,
             "polls": polls, "queries_per_poll": calls["parse_queue"] / polls, "forks_per_poll": poll_forks / polls,
             "poll_seconds": statistics_median(poll_seconds), "cancel_seconds": cancel_seconds,
             "array_jobs": len({t.job.id for t in tasks})}
    for program, count in poll_programs.items():
        extra[f"poll forks {program}"] = count / polls
    for program, count in submit_programs.items():
        extra[f"submit forks {program}"] = count
    return t1 - t0, extra


def statistics_median(values):
    import statistics
    return statistics.median(values) if values else 0.0


def scale_local(spec):
    return scale_map(spec, "local")


def scale_slurm(spec):
    return scale_map(spec, "slurm")


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
    "transport/commands": transport_commands,
    "transport/rest": transport_rest,
    "scale/local": scale_local,
    "scale/slurm": scale_slurm,
}


def main(argv):
    spec = json.loads(Path(argv[0]).read_text())
    seconds, extra = WORKLOADS[spec["kind"]](spec)
    Path(spec["out"]).write_text(json.dumps({"seconds": seconds, "extra": extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
