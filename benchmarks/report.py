"""Tables, targets and the plot from a run's results (``results.json``, written by run.py).

``python report.py [--compact] results.json`` prints the Markdown again; ``python report.py plot results.json out.png``
draws the plot (needs matplotlib: run.py runs it with the peers' interpreter, where it is installed).
Only the standard library is imported at module level.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Optional

ROW_TITLES = {
    "import": "Import time (fresh interpreter each time)",
    "cli": "Command-line start-up",
    "parse": "Parsing scheduler output",
    "shell": "N trivial shell jobs, local",
    "function": "N tiny Python-function jobs, local",
    "slurm": "N function jobs on Slurm",
}


def fmt(seconds: Optional[float]) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


#: benchmarks/run.py's floor under the import row (the same name there)
STACK = "stack alone (attrs, logging, pathlib, pickle, json)"


def find(data: dict, row: str, tool: str, n=None) -> Optional[dict]:
    for r in data["results"]:
        if r["row"] == row and r["tool"] == tool and (n is None or r["n"] == n):
            return r
    return None


def ok(entry: Optional[dict]) -> bool:
    return bool(entry) and entry.get("status") == "ok"


def largest(data: dict, row: str) -> Optional[int]:
    ns = [r["n"] for r in data["results"] if r["row"] == row and r["n"] is not None]
    return max(ns) if ns else None


# --- targets ------------------------------------------------------------------------------------------

def _target(name, measured, limit, met, detail=""):
    return {"target": name, "measured": measured, "limit": limit,
            "met": met, "result": "not measured" if met is None else ("met" if met else "missed"), "detail": detail}


def _missing(entry: Optional[dict], what: str) -> str:
    if entry is None:
        return f"{what}: not run"
    return f"{what}: {entry.get('reason') or 'no figure'}"


def targets(data: dict) -> list[dict]:
    out = []
    # 1. import
    cc, sub = find(data, "import", "cluster-core"), find(data, "import", "submitit")
    name = ("ready to submit (`import cluster_core as cc; cc.submit; cc.Job; cc.wait; cc.get`) ≤ 0.5 × "
            "`import submitit; submitit.AutoExecutor`")
    if ok(cc) and ok(sub):
        ratio = cc["median"] / sub["median"]
        heavy = [m for m in cc.get("heavy_modules_loaded", [])
                 if m.split(".")[0] in ("subprocess", "pluggy") or m == "importlib.metadata"
                 or (m.startswith("cluster_") and not m.startswith("cluster_core"))]  # any backend plugin
        lazy = "no plugin, entry-point scan or subprocess module loaded" if not heavy else \
            f"loaded at import: {', '.join(heavy)}"
        floor = find(data, "import", STACK)
        below = f"; the {STACK} is {floor['median'] / sub['median']:.2f}× of it" if ok(floor) else ""
        out.append(_target(name, f"{fmt(cc['median'])} vs {fmt(sub['median'])}: {ratio:.2f}×", "≤ 0.50×",
                           ratio <= 0.5 and not heavy,
                           (lazy if ratio <= 0.5 else f"{lazy}; {ratio / 0.5:.1f}× over the limit") + below))
    else:
        out.append(_target(name, "–", "≤ 0.50×", None, _missing(cc if not ok(cc) else sub, "import")))
    # 2. shell jobs, 3. function jobs: at most LIMIT times the baseline at the largest N
    for row, baseline, limit, what in (("shell", "xargs", 2, "shell jobs ≤ 2 × `xargs -P <cores>`"),
                                       ("function", "ProcessPoolExecutor", 5,
                                        "function jobs ≤ 5 × ProcessPoolExecutor")):
        n = largest(data, row)
        cc, base = find(data, row, "cluster-core", n), find(data, row, baseline, n)
        name = f"{n or 'N'} {what}"
        if ok(cc) and ok(base):
            ratio = cc["median"] / base["median"]
            out.append(_target(name, f"{fmt(cc['median'])} vs {fmt(base['median'])}: {ratio:.1f}×", f"≤ {limit}×",
                               ratio <= limit, "" if ratio <= limit else f"{ratio / limit:.1f}× over the limit"))
        else:
            out.append(_target(name, "–", f"≤ {limit}×", None, _missing(cc if not ok(cc) else base, row)))
    # the per-job cost stays flat as N grows (from N=100 to the largest N measured)
    for row in ("shell", "function"):
        runs = sorted((r for r in data["results"] if r["row"] == row and r["tool"] == "cluster-core" and ok(r)
                       and r["n"] and r["n"] >= 100), key=lambda r: r["n"])
        name = f"{row} jobs: per-job cost flat as N grows"
        if len(runs) >= 2:
            first, last = runs[0], runs[-1]
            growth = last["per_job"]["median"] / first["per_job"]["median"]
            out.append(_target(name, ", ".join(f"N={r['n']:,}: {fmt(r['per_job']['median'])}" for r in runs) +
                               f" ({growth:.2f}× from N={first['n']:,} to N={last['n']:,})", "≤ 1.50×",
                               growth <= 1.5))
        else:
            out.append(_target(name, "–", "≤ 1.50×", None, f"{row}: fewer than two N ≥ 100 measured"))
    n = largest(data, "function")
    cc = find(data, "function", "cluster-core", n)
    name = f"{n or 'N'} function jobs ≥ 50× faster per job than submitit.LocalExecutor"
    subs = [r for r in data["results"] if r["row"] == "function" and r["tool"] == "submitit" and ok(r)]
    sub = next((r for r in subs if r["n"] == n), None) or (max(subs, key=lambda r: r["n"]) if subs else None)
    if ok(cc) and sub:
        speedup = sub["per_job"]["median"] / cc["per_job"]["median"]
        at = "" if sub["n"] == n else f" (submitit at N={sub['n']}: it did not finish N={n})"
        out.append(_target(name, f"{fmt(cc['per_job']['median'])} vs {fmt(sub['per_job']['median'])} per job: "
                                 f"{speedup:.1f}× faster{at}", "≥ 50×", speedup >= 50,
                           "" if speedup >= 50 else f"{50 / speedup:.0f}× short of it"))
    else:
        out.append(_target(name, "–", "≥ 50×", None,
                           _missing(cc if not ok(cc) else find(data, "function", "submitit", n), "function")))
    # 4. Slurm
    slurm = [r for r in data["results"] if r["row"] == "slurm" and r["tool"] == "cluster-core"]
    raws = {r["n"]: r for r in data["results"] if r["row"] == "slurm" and r["tool"] == "raw-array"}
    max_array = data.get("machine", {}).get("slurm_max_array_size") or 1001
    done = [r for r in slurm if ok(r)]
    name = "Slurm: N elements → one sbatch per MaxArraySize chunk"
    if done:
        pairs = [(r["n"], r["extra"]["sbatch"]["max"], math.ceil(r["n"] / max_array)) for r in done]
        good = all(got == want for _, got, want in pairs)
        out.append(_target(name, ", ".join(f"N={n}: {got:g}" for n, got, _ in pairs), f"ceil(N/{max_array})", good))
    else:
        out.append(_target(name, "–", f"ceil(N/{max_array})", None, _missing(slurm[0] if slurm else None, "slurm")))
    name = "Slurm: wall ≤ 1.1 × raw `sbatch --array`"
    both = [(r, raws.get(r["n"])) for r in done if ok(raws.get(r["n"]))]
    if both:
        parts = [f"N={r['n']}: {r['median'] / raw['median']:.2f}×" for r, raw in both]
        worst = max(r["median"] / raw["median"] for r, raw in both)
        big = max(both, key=lambda p: p[0]["n"])
        big_ratio = big[0]["median"] / big[1]["median"]
        out.append(_target(name, ", ".join(parts), "≤ 1.10×", worst <= 1.1,
                           "" if worst <= 1.1 else f"worst {worst:.2f}×; at the largest N {big_ratio:.2f}×"))
    else:
        out.append(_target(name, "–", "≤ 1.10×", None, "no pair of Slurm figures"))
    name = "Slurm: scheduler calls while waiting independent of N"
    if done:
        parts = [f"N={r['n']}: {r['extra']['scheduler_calls_waiting']['median']:g} calls in "
                 f"{r['extra']['polls']['median']:g} polls" for r in done]
        good = all(r["extra"]["scheduler_calls_waiting"]["max"] <= 2 * max(1, r["extra"]["polls"]["max"]) for r in done)
        out.append(_target(name, "; ".join(parts), "≤ 1 squeue + 1 sacct per poll, for all N tasks", good,
                           "polls grow with the time waited, not with N"))
    else:
        out.append(_target(name, "–", "per poll, not per job", None, "no Slurm figures"))
    # reading N results one at a time costs no more scheduler calls than one cc.get of all of them
    name = "Slurm: `[t.get() for t in tasks]` makes no more scheduler calls than `cc.get(tasks)`"
    pairs = [(r, find(data, "slurm", "cluster-core one by one", r["n"]), find(data, "slurm", "submitit", r["n"]))
             for r in done]
    pairs = [(r, one, sub) for r, one, sub in pairs if ok(one)]
    if pairs:
        def calls(e):
            return e["extra"]["scheduler_calls_waiting"]["median"]
        parts = [f"N={r['n']}: {calls(one):g} one by one, {calls(r):g} all at once" +
                 (f", submitit {calls(sub):g}" if ok(sub) else "") for r, one, sub in pairs]
        good = all(calls(one) <= calls(r) * 1.25 + 2 for r, one, _ in pairs)  # polls follow the time waited
        out.append(_target(name, "; ".join(parts), "≤ all at once (± the time waited)", good,
                           "squeue + sacct while waiting"))
    else:
        out.append(_target(name, "–", "≤ all at once", None, "no one-by-one Slurm figures"))
    return out


# --- Markdown -----------------------------------------------------------------------------------------

def _cell(entry: dict) -> tuple[str, str, str]:
    if not ok(entry):
        return "did not finish", "", ""
    spread = f"{fmt(entry['min'])} – {fmt(entry['max'])}"
    per = fmt(entry["per_job"]["median"]) if entry.get("per_job") else ""
    return fmt(entry["median"]), spread, per


def _notes(entry: dict, compact: bool = False) -> str:
    notes = []
    extra = entry.get("extra") or {}
    if entry["row"] == "import" and ok(entry):
        if "bare_import" in extra:
            notes.append(f"the import alone {fmt(extra['bare_import']['median'])}")
        if "process_wall" in extra:
            notes.append(f"process {fmt(extra['process_wall']['median'])}")
        if "python_c_pass_wall" in extra:
            notes.append(f"`python -c pass` {fmt(extra['python_c_pass_wall']['median'])}")
        notes.append(f"{entry.get('modules_loaded')} modules")
    if entry["row"] == "slurm" and ok(entry):
        notes.append(f"sbatch {extra['sbatch']['median']:g}, squeue+sacct while waiting "
                     f"{extra['scheduler_calls_waiting']['median']:g}")
        if "polls" in extra:
            notes.append(f"{extra['polls']['median']:g} polls")
    if entry["row"] == "parse" and ok(entry):
        notes.append(f"{extra['input_bytes']['median'] / 2 ** 20:.1f} MiB from {extra['real_records']['median']:g} "
                     f"captured records")
    if entry["row"] in ("shell", "function") and ok(entry) and "submit_seconds" in extra:
        notes.append(f"submitting {fmt(extra['submit_seconds']['median'])}")
    creates = entry.get("create_ms") or []
    if creates and not compact:
        notes.append(f"file create {max(creates):.2f} ms at start")
    loads = entry.get("load_1min") or []
    if loads:
        notes.append(f"machine load {min(loads):.1f}" + (f"–{max(loads):.1f}" if max(loads) > min(loads) else ""))
    if not ok(entry) and entry.get("reason"):
        notes.append(entry["reason"])
    elif entry.get("note") and not compact:
        notes.append(entry["note"])
    return "; ".join(n.replace("|", "\\|") for n in notes)


def machine_line(data: dict) -> str:
    m = data["machine"]
    return (f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']} (kernel {m['kernel']}), "
            f"Python {m['python']}" + (f", {m['slurm']}" if m.get("slurm") else "") +
            (f"; cluster-core {m['cluster_core']}" if m.get("cluster_core") else ""))


def _x(entry: dict, key: str, how: str = "median") -> Optional[float]:
    value = (entry.get("extra") or {}).get(key)
    return value.get(how) if isinstance(value, dict) else None


def _num(value: Optional[float], digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:g}" if float(value).is_integer() else f"{value:.{digits}f}"


def _load(entry: dict) -> str:
    loads = entry.get("load_1min") or []
    if not loads:
        return ""
    low, high = f"{min(loads):.1f}", f"{max(loads):.1f}"
    return f"machine load {low}" + (f"–{high}" if high != low else "")


def _esc(text: str) -> str:
    """Text for a Markdown table cell."""
    return text.replace("|", "\\|")


def _spread(entry: dict, key: str) -> str:
    """The median, and the min – max over the runs when they differ."""
    median, low, high = _x(entry, key), _x(entry, key, "min"), _x(entry, key, "max")
    if median is None:
        return "–"
    return _num(median) + (f" ({_num(low)} – {_num(high)})" if high != low else "")


def _rpc_types(entry: dict, daemon: str) -> str:
    parts = [(k.split(" ", 1)[1], v["median"]) for k, v in (entry.get("extra") or {}).items()
             if k.startswith(daemon + " ") and isinstance(v, dict)]
    return ", ".join(f"{k} {_num(v)}" for k, v in sorted(parts, key=lambda p: -p[1]))


def transport_table(data: dict, compact: bool = False) -> list[str]:
    """Slurm over its commands against slurmrestd: one poll (``parse_queue``) of N waiting jobs."""
    entries = [r for r in data["results"] if r["row"] == "transport"]
    if not entries:
        return []
    lines = ["", "Slurm transport: one poll (the backend's `parse_queue`) of N held jobs, `slurm.transport = commands` "
             "against `rest`. RPCs are those slurmctld (`sdiag`) and slurmdbd (`sacctmgr show stats`) counted over "
             "all polls, minus what they counted over an idle window as long (others' calls), per poll (median over "
             "the runs, min – max beside it); an idle window on slurmdbd includes the 3 RPCs of `sacctmgr show "
             "stats`' own connection.", "",
             "| transport | N jobs | wall per poll (median) | min – max | per job | processes forked per poll | "
             "HTTP requests per poll | slurmctld RPCs per poll | slurmdbd RPCs per poll | notes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for entry, n, median, spread, per in _finished(entries, lines, 6):
        notes = []
        for daemon in ("slurmctld", "slurmdbd"):
            types = _rpc_types(entry, daemon)
            if types:
                notes.append(f"{daemon}: {types}")
            idle = _x(entry, f"{daemon}_rpcs_idle_window")
            if idle:
                notes.append(f"{daemon} idle window {_num(idle)} RPCs")
        forks = [(k.split(" ", 1)[1], v["median"]) for k, v in entry["extra"].items() if k.startswith("forks ")]
        if forks:
            notes.append("forks: " + ", ".join(f"{k} {_num(v)}" for k, v in forks))
        if _x(entry, "http_bytes_per_poll"):
            notes.append(f"answer {_x(entry, 'http_bytes_per_poll') / 2 ** 20:.2f} MiB a poll, "
                         f"{fmt(_x(entry, 'rest_request_seconds_per_poll'))} of the wall in the request "
                         "(send, wait, read, JSON decode)")
        base = find(data, "transport", "commands", entry["n"])
        if entry["tool"] != "commands" and ok(base):
            notes.append(f"{entry['median'] / base['median']:.2f}× the commands' wall")
        if _load(entry):
            notes.append(_load(entry))
        if entry.get("note") and not compact:
            notes.append(entry["note"])
        lines.append(f"| {entry['tool']} | {n} | {median} | {spread} | {per} | {_num(_x(entry, 'forks_per_poll'))} | "
                     f"{_num(_x(entry, 'http_requests_per_poll'))} | {_spread(entry, 'slurmctld_rpcs_per_poll')} | "
                     f"{_spread(entry, 'slurmdbd_rpcs_per_poll')} | "
                     f"{_esc('; '.join(notes))} |")
    return lines


def _finished(entries: list, lines: list[str], blanks: int):
    """(entry, N as shown, median, spread, per item) of each entry that finished; a row saying "did not
    finish" (with ``blanks`` empty cells before its reason) goes into ``lines`` for each other one."""
    for entry in entries:
        n = "" if entry["n"] is None else f"{entry['n']:,}"
        if not ok(entry):
            lines.append(f"| {entry['tool']} | {n} | did not finish |" + "  |" * blanks
                         + f" {_esc(entry.get('reason') or '')} |")
            continue
        yield (entry, n, *_cell(entry))


def scale_table(data: dict, compact: bool = False) -> list[str]:
    """``cc.map`` of many held tasks: submission time, per-task cost as N grows, memory, queries per poll."""
    entries = [r for r in data["results"] if r["row"] == "scale"]
    if not entries:
        return []
    lines = ["", "Scale: `cc.map(square, range(N), hold=True)` in a fresh process (the tasks never run), then "
             "tracker polls, then one `cc.cancel`. Peak RSS is the process's `ru_maxrss` once the map returned; "
             "beside it, how much its resident set grew during the map (the peak may date from the imports).", "",
             "| backend | N tasks | submit (median) | min – max | per task | peak RSS (resident growth) | "
             "submissions | polls | scheduler queries per poll | processes forked per poll | poll wall | cancel | "
             "notes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for entry, n, median, spread, per in _finished(entries, lines, 9):
        rss, growth = _x(entry, "rss_peak_submit_mib", "max"), _x(entry, "resident_growth_mib", "max")
        sbatch = _x(entry, "submit forks sbatch")
        submissions = f"{_num(sbatch)} sbatch" if sbatch is not None else "one batch"
        notes = [f"arrays {_num(_x(entry, 'array_jobs'))}"] if entry["tool"] != "local" else []
        forks = [(k.split(" ", 2)[2], v["median"]) for k, v in entry["extra"].items() if k.startswith("poll forks ")]
        if forks:
            notes.append("per poll: " + ", ".join(f"{k} {_num(v)}" for k, v in forks))
        if _load(entry):
            notes.append(_load(entry))
        creates = entry.get("create_ms") or []
        if creates and not compact:
            notes.append(f"file create {max(creates):.2f} ms at start")
        if entry.get("note") and not compact:
            notes.append(entry["note"])
        memory = ("–" if rss is None else f"{rss:.0f} MiB") + (" (–)" if growth is None else f" (+{growth:.1f} MiB)")
        text = _esc("; ".join(notes))
        lines.append(f"| {entry['tool']} | {n} | {median} | {spread} | {per} | {memory} | {submissions} | "
                     f"{_num(_x(entry, 'polls'))} | {_num(_x(entry, 'queries_per_poll'))} | "
                     f"{_num(_x(entry, 'forks_per_poll'))} | {fmt(_x(entry, 'poll_seconds'))} | "
                     f"{fmt(_x(entry, 'cancel_seconds'))} | {text} |")
    for tool in ("local", "slurm"):
        runs = sorted((r for r in entries if r["tool"] == tool and ok(r) and r["n"]), key=lambda r: r["n"])
        if len(runs) >= 2:
            growth = runs[-1]["per_job"]["median"] / runs[0]["per_job"]["median"]
            lines.append(f"\n{tool}: per-task submit cost " + ", ".join(
                f"N={r['n']:,}: {fmt(r['per_job']['median'])}" for r in runs) +
                f" ({growth:.2f}× from N={runs[0]['n']:,} to N={runs[-1]['n']:,}).")
    return lines


def markdown(data: dict, compact: bool = False) -> str:
    """The run as Markdown: a line on the machine, the targets, every figure (``compact``: without the
    description of each workload, for the README)."""
    lines = [f"Run {data['started']} ({data['mode']}, {data['duration_seconds']:.0f} s) on {machine_line(data)}; "
             f"load average (1, 5, 15 min) {', '.join(f'{x:.2f}' for x in data['machine']['load_average_at_start'])} "
             f"at the start, {', '.join(f'{x:.2f}' for x in data.get('load_average_at_end', []))} at the end.",
             ""]
    peer = ", ".join(f"{name} {s['version']}" if s.get("ok") else f"{name}: unavailable ({s.get('error')})"
                     for name, s in data["peers"].items() if name != "matplotlib")
    lines += [f"Peers (own venv `benchmarks/.venv-peers`): {peer}.", ""]
    lines += ["| target | measured (medians) | limit | result |", "|---|---|---|---|"]
    for t in data["targets"]:
        detail = f" ({t['detail']})" if t["detail"] else ""
        lines.append(f"| {t['target']} | {t['measured']} | {t['limit']} | **{t['result']}**{detail} |")
    lines += ["", "| row | tool | N | median | min – max | per job | notes |", "|---|---|---|---|---|---|---|"]
    for row in ROW_TITLES:
        for entry in [r for r in data["results"] if r["row"] == row]:
            median, spread, per = _cell(entry)
            n = "" if entry["n"] is None else f"{entry['n']:,}"
            lines.append(f"| {ROW_TITLES[row]} | {entry['tool']} | {n} | {median} | {spread} | {per} | "
                         f"{_notes(entry, compact)} |")
    lines += transport_table(data, compact)
    lines += scale_table(data, compact)
    counts: dict[str, list[int]] = {}
    for r in data["results"]:
        if ok(r):
            counts.setdefault(r["row"], []).append(len(r.get("samples") or []))
    lines += ["", "Samples per figure: " + ", ".join(
        f"{row} {min(k)}" + (f"–{max(k)}" if max(k) > min(k) else "") for row, k in counts.items()) +
        " (a cell stops repeating once it has spent its time budget; every sample is in results.json)."]
    return "\n".join(lines) + "\n"


# --- the plot -----------------------------------------------------------------------------------------

def plot(results_json: Path, png: Path, peer_python: Path) -> dict:
    """Draw with the peers' interpreter (matplotlib lives there), else this one; never raises."""
    errors = []
    for python in (peer_python, Path(sys.executable)):
        if not Path(python).exists():
            continue
        try:
            proc = subprocess.run([str(python), str(Path(__file__).resolve()), "plot", str(results_json), str(png)],
                                  capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            errors.append(f"{python}: timed out")
            continue
        if proc.returncode == 0 and png.exists():
            return {"status": "ok", "path": str(png)}
        errors.append(f"{python}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return {"status": "failed", "error": "; ".join(errors) or "no interpreter"}


def draw(data: dict, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=90)
    styles = {"cluster-core": ("C0", "o"), "xargs": ("C2", "s"), "ProcessPoolExecutor": ("C2", "s"),
              "submitit": ("C1", "^"), "fyrd": ("C3", "v")}
    for ax, row in zip(axes, ("shell", "function")):
        tools = list(dict.fromkeys(r["tool"] for r in data["results"] if r["row"] == row))
        for tool in tools:
            entries = sorted((r for r in data["results"] if r["row"] == row and r["tool"] == tool),
                             key=lambda r: r["n"])
            good = [r for r in entries if ok(r)]
            failed = [r["n"] for r in entries if not ok(r)]
            color, marker = styles.get(tool, ("C4", "x"))
            label = tool + (f" (did not finish at N={failed[0]:,})" if failed else "")
            if not good:
                ax.plot([], [], color=color, marker=marker, label=label)
                continue
            xs = [r["n"] for r in good]
            ys = [r["median"] for r in good]
            err = [[r["median"] - r["min"] for r in good], [r["max"] - r["median"] for r in good]]
            ax.errorbar(xs, ys, yerr=err, color=color, marker=marker, capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N jobs")
        ax.set_ylabel("wall time (s), median, min–max")
        ax.set_title(ROW_TITLES[row])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    m = data["machine"]
    fig.suptitle(f"cluster-core vs peers, {data['started'][:10]}: {m['cores']} cores, {m['cpu']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(png)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "plot":
        draw(json.loads(Path(argv[1]).read_text()), Path(argv[2]))
        return 0
    compact = "--compact" in argv
    paths = [a for a in argv if a != "--compact"]
    data = json.loads(Path(paths[0]).read_text())
    data["targets"] = targets(data)  # judged again by this version of the rules
    print(markdown(data, compact=compact))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
