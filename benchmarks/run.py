"""cluster-core against its peers, in one run on one machine: ``.venv/bin/python benchmarks/run.py``.

Writes ``results.json`` (every figure with min/median/max over repeats, and the raw samples),
``results.md`` (the tables) and ``plot.png`` (wall time against N for the local rows) to ``--out``
(default ``benchmarks/results/``). ``--smoke`` runs everything once with tiny N and short timeouts.

Every measurement runs in a fresh process of its own session, with a private scratch directory, an empty
cluster-core config and its own local-scheduler state dir; a run that fails or outlives its timeout
becomes a "did not finish" cell with the reason, and its processes are killed (its process group, the
local runner it started, its Slurm jobs).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402
import report  # noqa: E402

CORES = os.cpu_count() or 1


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def stats(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


# --- machine ------------------------------------------------------------------------------------------

def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _command(args: list[str]) -> Optional[str]:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal:")), 0)
    os_name = next((line.split("=", 1)[1].strip().strip('"') for line in _read("/etc/os-release").splitlines()
                    if line.startswith("PRETTY_NAME=")), platform.system())
    return {"host": platform.node(), "os": os_name, "kernel": platform.release(), "cpu": cpu, "cores": CORES,
            "memory_gib": round(mem_kb / 2 ** 20, 1), "python": platform.python_version(),
            "python_executable": sys.executable, "slurm": _command(["sbatch", "--version"]),
            "load_average_at_start": list(os.getloadavg()), "cluster_core": source()}


def source() -> str:
    """Which cluster-core was measured: the commit of the checkout (and whether its code was modified)."""
    commit = _command(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"])
    if not commit:
        return os.environ.get("BENCH_SOURCE") or f"{ROOT} (not a git checkout)"
    dirty = _command(["git", "-C", str(ROOT), "status", "--porcelain", "--", "cluster_core", "plugins"])
    return f"commit {commit}" + (" with uncommitted changes to cluster_core/ or plugins/" if dirty else "")


def slurm_up() -> tuple[bool, str]:
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return False, "Slurm commands are not installed (ci/slurm/up.sh)"
    out = _command(["scontrol", "ping"])
    if not out or " is UP" not in out:
        return False, f"no Slurm controller answers: {out or 'scontrol ping failed'}"
    return True, out.splitlines()[0]


def scancel_name(name: str) -> None:
    """Cancel every job of this name (the benchmark's own: each run's names are unique)."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(["scancel", "--name", name], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def settle_disk(scratch: Path, quiet_ms: float = 0.05, limit: float = 120.0) -> float:
    """Wait until creating a file in ``scratch`` is quick again, and return what it cost (ms per file). On
    this project's VM, creating a small file costs 0.02 ms on a quiet disk but 0.3-0.8 ms for a minute or
    more after thousands of files were deleted: the root file system is ext4 without a journal, whose inode
    allocator then skips every recently freed inode it finds (``recently_deleted`` in ``find_inode_bit``,
    seen with ``perf record``), which would be charged to whichever tool runs next. Every tool starts on a
    quiet disk; what its own files cost it stays in its figure. Probe files are never deleted (deleting
    is what upsets the disk)."""
    deadline = time.monotonic() + limit
    while True:
        # in a new directory, as each sample's job directory is: ext4 places a new directory's inodes
        # in another block group, often the one just emptied by deletions
        probe = Path(tempfile.mkdtemp(prefix="disk-probe-", dir=scratch))
        # small files with data, as job scripts and exit files are; the first tens are quick even on
        # a busy disk (the journal has room), so the cost is that of the last 100 of 200
        for i in range(200):
            if i == 100:
                t0 = time.perf_counter()
            fd = os.open(probe / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b"0 1 2 end\n" * 10)
            os.close(fd)
        cost = (time.perf_counter() - t0) / 100 * 1000
        if cost <= quiet_ms or time.monotonic() > deadline:
            return round(cost, 3)
        time.sleep(3.0)


# --- running one measurement --------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        args.scratch.mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=args.scratch))
        self.config = self.scratch / "cluster-config.ini"  # never written: defaults only
        self.results: list[dict] = []
        self.failed_at: dict[tuple, str] = {}  # (row, tool) -> why larger N are not run

    def env(self, work: Path) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUSTER_", "PYTHON", "SLURM_"))}
        home = work / "home"
        home.mkdir(parents=True, exist_ok=True)
        env.update(CLUSTER_CORE_CONFIG=str(self.config), PYTHONPATH=str(BENCH), HOME=str(home),
                   CLUSTER_LOCAL_DIR=str(work / "state"), CLUSTER_LOCAL_THREADS=str(CORES))
        return env

    def worker(self, python: str, spec: dict, work: Path, timeout: float) -> tuple[Optional[dict], Optional[str]]:
        """Run workers.py once; (result, None) or (None, why it did not finish)."""
        spec = dict(spec, dir=str(work), out=str(work / "result.json"), cores=CORES)
        spec_path = work / "spec.json"
        spec_path.write_text(json.dumps(spec))
        out_path, err_path = work / "worker.out", work / "worker.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen([python, str(BENCH / "workers.py"), str(spec_path)], stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, cwd=str(work), env=self.env(work),
                                        start_new_session=True)
            except OSError as exc:
                return None, f"could not start {python}: {exc}"
            timed_out = False
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            # its process group: daemons and helpers it left behind (fyrd's server, submitit's controllers)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if timed_out:
            return None, f"did not finish within {timeout:g} s"
        result_path = work / "result.json"
        if proc.returncode != 0 or not result_path.exists():
            tail = [line for line in err_path.read_text(errors="replace").strip().splitlines() if line.strip()]
            why = tail[-1] if tail else f"exit code {proc.returncode}"
            return None, f"failed: {why[:300]}"
        return json.loads(result_path.read_text()), None

    def cell(self, row: str, tool: str, n: Optional[int], python: Optional[str], *, timeout: float,
             spec: Optional[dict] = None, cleanup: Optional[Callable[[Path, dict], None]] = None,
             unavailable: Optional[str] = None, note: str = "") -> dict:
        """One (row, tool, N) figure to measure; run it with :meth:`measure`."""
        return {"row": row, "tool": tool, "n": n, "unit": "s", "note": note, "samples": [], "extra": {},
                "_run": dict(python=python, timeout=timeout, spec=spec or {}, cleanup=cleanup,
                             unavailable=unavailable)}

    def measure(self, cells: list[dict], repeats: int, budget: float) -> None:
        """Run the cells of one (row, N) round-robin, ``repeats`` rounds (a cell drops out once it has
        spent ``budget`` seconds), so a disturbance of the machine hits every tool alike."""
        active = []
        for entry in cells:
            self.results.append(entry)
            run = entry["_run"]
            skip = run["unavailable"] or self.failed_at.get((entry["row"], entry["tool"]))
            if not skip:
                skip = self._predicted_too_slow(entry, run["timeout"])
            if skip:
                entry.update(status="dnf", reason=skip)
                log(f"{entry['row']} {entry['tool']} N={entry['n']}: not run ({skip})")
            else:
                entry.update(_extras=[], _spent=0.0)
                active.append(entry)
        for _ in range(repeats):
            for entry in list(active):
                self._sample(entry)
                if entry.get("status") == "dnf" or entry["_spent"] > budget:
                    active.remove(entry)
            if not active:
                break
        for entry in cells:
            self._finish(entry)

    def _predicted_too_slow(self, entry: dict, timeout: float) -> Optional[str]:
        """A cell whose tool already took so long per job at a smaller N that this N cannot finish."""
        smaller = [r for r in self.results if r["row"] == entry["row"] and r["tool"] == entry["tool"]
                   and r.get("status") == "ok" and r["n"] and entry["n"] and r["n"] < entry["n"]]
        if not smaller:
            return None
        last = max(smaller, key=lambda r: r["n"])
        predicted = last["min"] / last["n"] * entry["n"]
        if predicted <= timeout:
            return None
        return (f"not run: at N={last['n']:,} it took {last['min'] / last['n']:.2f} s per job, so N={entry['n']:,} "
                f"would take about {predicted:.0f} s, over the {timeout:g} s timeout")

    def _sample(self, entry: dict) -> None:
        run = entry["_run"]
        row, tool, n = entry["row"], entry["tool"], entry["n"]
        work = Path(tempfile.mkdtemp(prefix=f"{row}-{tool}-{n}-", dir=self.scratch))
        spec = dict(run["spec"], kind=f"{row}/{tool}", n=n, name=f"ccbench-{uuid.uuid4().hex[:8]}")
        started = time.monotonic()
        if row in ("shell", "function") or (row, tool) == ("scale", "local"):  # files by the thousand
            entry.setdefault("create_ms", []).append(settle_disk(self.scratch, limit=self.args.settle))
        entry.setdefault("load_1min", []).append(round(os.getloadavg()[0], 2))  # others' load on the machine
        try:
            result, reason = self.worker(run["python"], spec, work, run["timeout"])
        finally:
            if run["cleanup"] is not None:
                with contextlib.suppress(Exception):
                    run["cleanup"](work, spec)
            # the sample's files stay until the whole run ends: on ext4, creating files goes up to 20x
            # slower for a while after thousands were deleted (the allocator skips recently freed inodes),
            # which would slow whichever tool ran next
        entry["_spent"] += time.monotonic() - started
        if result is None:
            entry.update(status="dnf", reason=reason)
            if "did not finish within" in reason:
                self.failed_at[(row, tool)] = f"not run: did not finish at N={n:,}" if n else "not run"
            log(f"{row} {tool} N={n}: DID NOT FINISH ({reason})")
            return
        seconds = result["seconds"]
        entry["samples"] += seconds if isinstance(seconds, list) else [seconds]
        entry["_extras"].append(result.get("extra") or {})

    def _finish(self, entry: dict) -> None:
        entry.pop("_run", None)
        extras = entry.pop("_extras", [])
        entry.pop("_spent", None)
        if entry.get("status") == "dnf":
            if entry["samples"]:
                entry["partial_samples"], entry["samples"] = entry["samples"], []
            return
        entry.update(status="ok", **stats(entry["samples"]))
        numeric = sorted({k for e in extras for k, v in e.items() if isinstance(v, (int, float))})
        entry["extra"] = {k: stats([e[k] for e in extras if k in e]) for k in numeric}
        if entry["n"]:
            entry["per_job"] = {k: entry[k] / entry["n"] for k in ("min", "median", "max")}
        log(f"{entry['row']} {entry['tool']} N={entry['n']}: median {entry['median']:.4f} s over "
            f"{len(entry['samples'])} (min {entry['min']:.4f}, max {entry['max']:.4f})")

    # --- rows -------------------------------------------------------------------------------------

    def fresh(self, args: list[str], env: dict, timeout: float) -> tuple[float, subprocess.CompletedProcess]:
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=str(self.scratch))
        return time.perf_counter() - t0, proc

    def fresh_or_error(self, args: list, env: dict, errors: dict, name: str) -> Optional[tuple]:
        """:meth:`fresh` with a 60 s timeout; None, with the reason in ``errors[name]``, when it hangs or
        fails."""
        try:
            wall, proc = self.fresh(args, env, 60)
        except subprocess.TimeoutExpired:
            errors[name] = "did not finish within 60 s"
            return None
        if proc.returncode != 0:
            errors[name] = f"exit code {proc.returncode}: {(proc.stderr.strip().splitlines() or ['?'])[-1][:300]}"
            return None
        return wall, proc

    def imports(self, pstatus: dict) -> None:
        """Row 1: being ready to submit in a fresh interpreter (the import plus the names a first submission
        touches), timed inside it, with the bare import alone beside it; also the process's wall time."""
        a = self.args
        env = self.env(self.scratch / "imports")
        probe = ("import time; t0 = time.perf_counter(); import {m}; t1 = time.perf_counter(); import sys, json; "
                 "at_import = sorted(m for m in sys.modules if m.split('.')[0] in ('importlib', 'subprocess', "
                 "'pluggy', 'cloudpickle', 'psutil', 'platformdirs', 'attrs', 'cattrs') and '.' not in m "
                 "or m == 'importlib.metadata' or m.startswith('cluster_') and not m.startswith('cluster_core')); "
                 "n_import = len(sys.modules); t2 = time.perf_counter(); {ready}; t3 = time.perf_counter(); "
                 "print(json.dumps({{'seconds': t1 - t0 + t3 - t2, 'import_seconds': t1 - t0, "
                 "'modules': len(sys.modules), 'modules_at_import': n_import, 'loaded': at_import}}))")
        tools = [("cluster-core", sys.executable, "cluster_core",
                  "cc = cluster_core; cc.submit; cc.Job; cc.wait; cc.get", None),
                 ("submitit", str(peers.python()), "submitit", "submitit.AutoExecutor", pstatus.get("submitit")),
                 ("fyrd", str(peers.python()), "fyrd", "fyrd.submit; fyrd.Job; fyrd.wait; fyrd.get",
                  pstatus.get("fyrd")),
                 # the floor under cluster-core's figure: the packages its submission path cannot do without
                 (report.STACK, sys.executable, "attrs", "import logging, pathlib, pickle, json", None)]
        samples: dict[str, dict[str, list]] = {t[0]: {"import": [], "bare": [], "wall": [], "info": []}
                                               for t in tools}
        baseline: dict[str, list] = {sys.executable: [], str(peers.python()): []}
        errors: dict[str, str] = {}
        for name, python, module, _ready, status in tools:
            if status is not None and not status.get("ok"):
                errors[name] = status.get("error") or "not installed"
        for _ in range(a.import_repeats):
            for python in baseline:
                if Path(python).exists():
                    with contextlib.suppress(Exception):
                        baseline[python].append(self.fresh([python, "-c", "pass"], env, 60)[0])
            for name, python, module, ready, _status in tools:
                if name in errors:
                    continue
                ran = self.fresh_or_error([python, "-c", probe.format(m=module, ready=ready)], env, errors, name)
                if ran is None:
                    continue
                wall, proc = ran
                info = json.loads(proc.stdout.strip().splitlines()[-1])
                samples[name]["import"].append(info.pop("seconds"))
                samples[name]["bare"].append(info.pop("import_seconds"))
                samples[name]["wall"].append(wall)
                samples[name]["info"].append(info)
        for name, python, module, ready, _status in tools:
            entry = {"row": "import", "tool": name, "n": None, "unit": "s", "samples": samples[name]["import"],
                     "note": f"`import {module}; {ready}` timed inside a fresh "
                             f"`{Path(python).parent.parent.name}` interpreter", "extra": {}}
            if name in errors or not entry["samples"]:
                entry.update(status="dnf", reason=errors.get(name, "no sample"))
            else:
                entry.update(status="ok", **stats(entry["samples"]))
                base = baseline.get(python) or []
                entry["extra"] = {"process_wall": stats(samples[name]["wall"]),
                                  "bare_import": stats(samples[name]["bare"])}
                if base:
                    entry["extra"]["python_c_pass_wall"] = stats(base)
                last = samples[name]["info"][-1]
                entry["modules_loaded"] = last["modules"]
                entry["modules_at_import"] = last["modules_at_import"]
                entry["heavy_modules_loaded"] = last["loaded"]
            self.results.append(entry)
            log(f"import {name}: {entry.get('median', entry.get('reason'))}")

    def cli(self, pstatus: dict) -> None:
        """Row 2: ``cluster --help`` against ``python -c pass`` (and ``fyrd --help``), process wall time."""
        env = self.env(self.scratch / "cli")
        bindir = Path(sys.executable).parent
        cluster = bindir / "cluster" if (bindir / "cluster").exists() else shutil.which("cluster")
        fyrd_ok = pstatus.get("fyrd", {}).get("ok")
        commands = [("cluster --help", [str(cluster), "--help"] if cluster else None, None),
                    ("python -c pass", [sys.executable, "-c", "pass"], None),
                    ("fyrd --help", [str(peers.VENV / "bin" / "fyrd"), "--help"],
                     None if fyrd_ok else (pstatus.get("fyrd", {}).get("error") or "fyrd not installed"))]
        samples = {name: [] for name, _, _ in commands}
        errors = {name: why for name, args, why in commands if why or args is None}
        if cluster is None:
            errors["cluster --help"] = "no `cluster` command beside the interpreter or on PATH"
        for _ in range(self.args.import_repeats):
            for name, args, _ in commands:
                if name in errors:
                    continue
                ran = self.fresh_or_error(args, env, errors, name)
                if ran is not None:
                    samples[name].append(ran[0])
        for name, _args, _ in commands:
            entry = {"row": "cli", "tool": name, "n": None, "unit": "s", "samples": samples[name],
                     "note": "process wall time", "extra": {}}
            if name in errors or not samples[name]:
                entry.update(status="dnf", reason=errors.get(name, "no sample"))
            else:
                entry.update(status="ok", **stats(samples[name]))
            self.results.append(entry)

    def local_rows(self, pstatus: dict, rows: set) -> None:
        a = self.args
        peer_py = str(peers.python())

        def peer_missing(name):
            s = pstatus.get(name) or {}
            return None if s.get("ok") else f"not installed or not importable: {s.get('error') or 'skipped'}"

        def shut_local(work: Path, spec: dict) -> None:
            state = work / "state"
            if state.exists():
                import cluster_local
                cluster_local.shutdown_runner(state, timeout=30)

        for n in a.ns if "shell" in rows else ():
            self.measure([
                self.cell("shell", "cluster-core", n, sys.executable, timeout=a.timeout, cleanup=shut_local,
                          note="`cc.submit(cmd, backend='local')` per job, then `cc.wait(jobs)`"),
                self.cell("shell", "xargs", n, sys.executable, timeout=a.timeout,
                          note=f"`xargs -P {CORES} -n 1 bash -c` over the same command lines"),
            ], a.repeats, a.budget)
        for n in a.ns if "function" in rows else ():
            self.measure([
                self.cell("function", "cluster-core", n, sys.executable, timeout=a.timeout, cleanup=shut_local,
                          note="`cc.map(square, range(N), backend='local')`, then `cc.get(tasks)`"),
                self.cell("function", "ProcessPoolExecutor", n, sys.executable, timeout=a.timeout,
                          note=f"`ProcessPoolExecutor({CORES}).map`, pool start included"),
                self.cell("function", "submitit", n, peer_py, timeout=a.peer_timeout,
                          unavailable=peer_missing("submitit"),
                          note="`LocalExecutor.map_array`, then `job.result()` for each"),
                self.cell("function", "fyrd", n, peer_py, timeout=a.peer_timeout, unavailable=peer_missing("fyrd"),
                          note="`fyrd.submit(square, (i,), qtype='local')` per job, then `job.get()`; "
                               "its server runs at least 4 jobs at once"),
            ], a.repeats, a.budget)

    def slurm_rows(self, info: dict, pstatus: dict) -> None:
        a = self.args
        up, why = (False, "skipped (--no-slurm)") if a.no_slurm else slurm_up()
        if up:
            config = _command(["scontrol", "show", "config"]) or ""
            for line in config.splitlines():
                if line.startswith("MaxArraySize"):
                    info["slurm_max_array_size"] = int(line.split("=", 1)[1])

        def scancel(work: Path, spec: dict) -> None:
            subprocess.run(["scancel", "--name", spec["name"]], capture_output=True, timeout=30)

        def scancel_all(work: Path, spec: dict) -> None:  # submitit names its jobs itself at times
            scancel(work, spec)
            subprocess.run(["scancel", "--name", "submitit"], capture_output=True, timeout=30)

        peer_py = str(peers.python())
        submitit_ok = pstatus.get("submitit", {}).get("ok")
        for n in a.slurm_ns:
            common = dict(timeout=a.slurm_timeout, cleanup=scancel, unavailable=None if up else why)
            self.measure([
                self.cell("slurm", "cluster-core", n, sys.executable, **common,
                          note="`cc.map(square, range(N), backend='slurm')` (one sbatch per MaxArraySize chunk), "
                               "then `cc.get(tasks)`"),
                self.cell("slurm", "cluster-core one by one", n, sys.executable, **common,
                          note="the same `cc.map`, then `[t.get() for t in tasks]`"),
                self.cell("slurm", "submitit", n, peer_py, timeout=a.slurm_timeout, cleanup=scancel_all,
                          unavailable=(why if not up else None if submitit_ok else "submitit not installed"),
                          note="`AutoExecutor(cluster='slurm').map_array(square, range(N))`, then "
                               "`job.result()` for each"),
                self.cell("slurm", "raw-array", n, sys.executable, **common,
                          note="`sbatch --wait --array=0-(N-1)` of a script running the same function per task"),
            ], a.repeats, a.budget)

    def parse_rows(self) -> None:
        a = self.args
        spec = {"inner_repeats": a.parse_repeats}
        self.measure([
            self.cell("parse", "squeue", a.parse_jobs, sys.executable, timeout=a.timeout, spec=spec,
                      note="`cluster_slurm.parse.parse_squeue` of the captured rows, replicated with new ids"),
            self.cell("parse", "qstat-x", a.parse_jobs, sys.executable, timeout=a.timeout, spec=spec,
                      note="`cluster_torque.parse.parse_torque_xml` of one `qstat -x -t` document of the captured "
                           "<Job> records, replicated with new ids"),
        ], 1, 0)

    def transport_rows(self) -> None:
        """Slurm over its commands (squeue + sacct forks) against slurmrestd (``slurm.transport=rest``):
        for N jobs submitted held by the harness (one ``sbatch -H --wrap`` each, cancelled afterwards),
        each worker polls them ``--transport-polls`` times with the backend's ``parse_queue``; the two
        transports run round-robin over the same jobs."""
        a = self.args
        up, why = self.slurm_ready() if a.transport_ns else (False, "")
        for n in a.transport_ns:
            name = f"ccbench-held-{uuid.uuid4().hex[:8]}"
            work = Path(tempfile.mkdtemp(prefix=f"transport-held-{n}-", dir=self.scratch))
            ids, unavailable = ([], why) if not up else self.submit_held(n, name, work)
            try:
                spec = {"ids": ids, "polls": a.transport_polls}
                common = dict(timeout=a.slurm_timeout, spec=spec, unavailable=unavailable)
                self.measure([
                    self.cell("transport", "commands", n, sys.executable, **common,
                              note="`slurm.transport = commands`: `parse_queue` of the N ids (squeue, 500 ids a "
                                   "call; sacct only for ids squeue does not know)"),
                    self.cell("transport", "rest", n, sys.executable, **common,
                              note="`slurm.transport = rest`: `parse_queue` of the N ids (one GET /jobs of "
                                   "slurmrestd; slurmdbd only for ids slurmctld does not know)"),
                ], a.repeats, a.budget)
            finally:
                if ids:
                    scancel_name(name)

    def slurm_ready(self) -> tuple[bool, str]:
        """:func:`slurm_up`, asked again for up to a minute when the controller does not answer (it may be
        restarting); a controller found down stays down for the rest of the run (waited for once)."""
        if self.args.no_slurm:
            return False, "skipped (--no-slurm)"
        if getattr(self, "_slurm_down", None):
            return False, self._slurm_down
        up, why = slurm_up()
        deadline = time.monotonic() + 60
        while not up and "no Slurm controller answers" in why and time.monotonic() < deadline:
            time.sleep(10)
            up, why = slurm_up()
        if not up:
            self._slurm_down = why
        return up, why

    def submit_held(self, n: int, name: str, work: Path) -> tuple[list[str], Optional[str]]:
        """N held one-line jobs (``sbatch -H --wrap true``, output to /dev/null): their ids, or why not."""
        ids: list[str] = []
        t0 = time.monotonic()
        args = ["sbatch", "--parsable", "-H", f"--job-name={name}", "--mem=100M", "--time=1", "-o", "/dev/null",
                "-e", "/dev/null", "--wrap", "true"]
        for i in range(n):
            try:
                proc = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=str(work),
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return ids, f"sbatch -H of job {i + 1} of {n} did not answer within 60 s"
            if proc.returncode != 0:
                return ids, f"sbatch -H of job {i + 1} of {n} failed: {proc.stderr.strip()[:300]}"
            ids.append(proc.stdout.strip().split(";")[0])
        log(f"transport: {n} held jobs submitted in {time.monotonic() - t0:.1f} s ({name})")
        return ids, None

    def scale_rows(self) -> None:
        """``cc.map`` of N tasks submitted held (they never run), local and on Slurm: the submission's
        wall time and per-task cost as N grows, the submitting process's peak RSS, the tracker's queries
        and forks per poll, then one ``cc.cancel``; each sample's job directory is deleted afterwards."""
        a = self.args

        def remove_jobs(work: Path, spec: dict) -> None:
            shutil.rmtree(work / "jobs", ignore_errors=True)

        def local_cleanup(work: Path, spec: dict) -> None:
            state = work / "state"
            if state.exists():
                import cluster_local
                cluster_local.shutdown_runner(state, timeout=30)
            remove_jobs(work, spec)
            shutil.rmtree(state, ignore_errors=True)

        def slurm_cleanup(work: Path, spec: dict) -> None:
            scancel_name(spec["name"])
            remove_jobs(work, spec)

        spec = {"polls": a.scale_polls}
        for n in a.scale_ns:
            self.measure([self.cell("scale", "local", n, sys.executable, timeout=a.timeout, spec=spec,
                                    cleanup=local_cleanup,
                                    note="`cc.map(square, range(N), backend='local', hold=True)`")],
                         a.repeats, a.budget)
        up, why = self.slurm_ready() if a.slurm_scale_ns else (False, "")
        for n in a.slurm_scale_ns:
            self.measure([self.cell("scale", "slurm", n, sys.executable, timeout=a.slurm_timeout, spec=spec,
                                    cleanup=slurm_cleanup, unavailable=None if up else why,
                                    note="`cc.map(square, range(N), backend='slurm', mem='100M', hold=True)`: "
                                         "one sbatch per MaxArraySize chunk")],
                         a.repeats, a.budget)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny N, one repeat, short timeouts (what CI runs)")
    p.add_argument("--out", type=Path, default=BENCH / "results", help="output directory (default %(default)s)")
    p.add_argument("--scratch", type=Path, default=BENCH / "results",
                   help="where the runs' job and state directories go, in a directory of their own removed at "
                        "the end (default %(default)s: on the project's disk, as a user's job directory "
                        "would be; /tmp of a machine that runs many tests can be far slower to create files in)")
    p.add_argument("--ns", help="N for the local rows (default 100,1000,10000; smoke 4)")
    p.add_argument("--slurm-ns", help="N for the Slurm rows (default 10,100,1000; smoke 3)")
    p.add_argument("--repeats", type=int, help="repeats per cell (default 3; smoke 1)")
    p.add_argument("--import-repeats", type=int, help="fresh interpreters per import/CLI figure (default 30)")
    p.add_argument("--budget", type=float, help="seconds after which a cell stops repeating (default 150)")
    p.add_argument("--timeout", type=float, help="timeout of one cluster-core/baseline run (default 600)")
    p.add_argument("--peer-timeout", type=float, help="timeout of one submitit/fyrd run (default 600; smoke 30)")
    p.add_argument("--slurm-timeout", type=float, help="timeout of one Slurm run (default 1200; smoke 120)")
    p.add_argument("--parse-jobs", type=int, help="jobs in the parsed outputs (default 10000; smoke 500)")
    p.add_argument("--parse-repeats", type=int, help="timed parses (default 10; smoke 1)")
    p.add_argument("--transport-ns", help="held Slurm jobs polled over the commands and over slurmrestd "
                                          "(default 1000; smoke 3)")
    p.add_argument("--transport-polls", type=int, help="timed polls per transport run (default 10; smoke 3)")
    p.add_argument("--scale-ns", help="N of the local scale row, cc.map submitted held (default "
                                      "1000,10000,100000; smoke: none)")
    p.add_argument("--slurm-scale-ns", help="N of the Slurm scale row, cc.map submitted held (default "
                                            "100,1000,10000; smoke: none)")
    p.add_argument("--scale-polls", type=int, help="tracker polls after each scale submission (default 3)")
    p.add_argument("--no-peers", action="store_true", help="do not install or run the peers")
    p.add_argument("--no-slurm", action="store_true", help="skip the Slurm rows")
    p.add_argument("--only", help="comma-separated rows to run: "
                                  "import,cli,parse,shell,function,slurm,transport,scale")
    p.add_argument("--settle", type=float, help="longest wait for a quiet disk before a local-row sample, in "
                                                "seconds (default 120; smoke 0: one probe, no wait)")
    a = p.parse_args(argv)
    smoke = a.smoke
    defaults = dict(ns="4" if smoke else "100,1000,10000", slurm_ns="3" if smoke else "10,100,1000",
                    repeats=1 if smoke else 3, import_repeats=2 if smoke else 30, budget=0 if smoke else 150,
                    timeout=120 if smoke else 600, peer_timeout=30 if smoke else 600,
                    slurm_timeout=120 if smoke else 1200, parse_jobs=500 if smoke else 10_000,
                    parse_repeats=1 if smoke else 10, settle=0 if smoke else 120,
                    transport_ns="3" if smoke else "1000", transport_polls=3 if smoke else 10,
                    scale_ns="" if smoke else "1000,10000,100000", slurm_scale_ns="" if smoke else "100,1000,10000",
                    scale_polls=3)
    for key, value in defaults.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    for key in ("ns", "slurm_ns", "transport_ns", "scale_ns", "slurm_scale_ns"):
        setattr(a, key, [int(x) for x in str(getattr(a, key)).split(",") if x.strip()])
    a.only = set(a.only.split(",")) if a.only else {"import", "cli", "parse", "shell", "function", "slurm",
                                                     "transport", "scale"}
    return a


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    a.out.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    bench = Bench(a)
    info = machine()
    log(f"{'smoke' if a.smoke else 'full'} run on {info['host']}: {info['cpu']}, {info['cores']} cores, "
        f"{info['memory_gib']} GiB; output in {a.out}")
    if a.no_peers:
        pstatus = {name: {"ok": False, "error": "--no-peers"} for name in peers.PEERS}
    else:
        pstatus = peers.ensure(timeout=300 if a.smoke else 900, log=log)
    for name, s in pstatus.items():
        log(f"peer {name}: {s.get('version') if s.get('ok') else 'UNAVAILABLE: ' + str(s.get('error'))}")
    try:
        if "import" in a.only:
            bench.imports(pstatus)
        if "cli" in a.only:
            bench.cli(pstatus)
        if "parse" in a.only:
            bench.parse_rows()
        if {"shell", "function"} & a.only:
            bench.local_rows(pstatus, a.only)
        if "slurm" in a.only:
            bench.slurm_rows(info, pstatus)
        if "transport" in a.only:
            bench.transport_rows()
        if "scale" in a.only:
            bench.scale_rows()
    finally:
        shutil.rmtree(bench.scratch, ignore_errors=True)
    data = {
        "schema": 1,
        "mode": "smoke" if a.smoke else "full",
        "started": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.monotonic() - t0, 1),
        "load_average_at_end": list(os.getloadavg()),
        "command": " ".join([Path(sys.executable).name, "benchmarks/run.py", *(argv or sys.argv[1:])]),
        "machine": info,
        "config": {k: (sorted(v) if isinstance(v, set) else str(v) if isinstance(v, Path) else v)
                   for k, v in vars(a).items()},
        "peers": pstatus,
        "results": bench.results,
    }
    data["targets"] = report.targets(data)
    data["plot"] = {"status": "pending"}
    (a.out / "results.json").write_text(json.dumps(data, indent=1, default=_jsonable) + "\n")
    data["plot"] = report.plot(a.out / "results.json", a.out / "plot.png", peers.python())
    (a.out / "results.json").write_text(json.dumps(data, indent=1, default=_jsonable) + "\n")
    (a.out / "results.md").write_text(report.markdown(data))
    log(f"done in {data['duration_seconds']} s: {a.out / 'results.md'}, results.json, plot.png")
    print(report.markdown(data))
    return 0


def _jsonable(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
