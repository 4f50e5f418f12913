"""The benchmark suite end to end in smoke mode (tiny N, one repeat, short peer timeouts), so it never rots.

Checks that the outputs exist and are well formed, and that cluster-core's own rows and the baselines
finished; peers may fail or time out (that is a "did not finish" cell). Timings are never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent

pytestmark = pytest.mark.slow

MUST_FINISH = [("import", "cluster-core"), ("cli", "cluster --help"), ("cli", "python -c pass"),
               ("parse", "squeue"), ("parse", "qstat-x"), ("shell", "cluster-core"), ("shell", "xargs"),
               ("function", "cluster-core"), ("function", "ProcessPoolExecutor")]
PEERS = [("import", "submitit"), ("import", "fyrd"), ("function", "submitit"), ("function", "fyrd")]


def test_smoke_run_writes_table_json_and_plot(tmp_path):
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if k not in ("CLUSTER_BACKEND", "CLUSTER_CORE_CONFIG")}
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]

    data = json.loads((out / "results.json").read_text())
    assert data["mode"] == "smoke" and data["machine"]["cores"] >= 1
    assert set(data["peers"]) >= {"submitit", "fyrd", "matplotlib"}
    results = {(r["row"], r["tool"], r["n"]): r for r in data["results"]}
    rows = {(row, tool) for row, tool, _ in results}
    for key in MUST_FINISH + PEERS:
        assert key in rows, f"no {key} cell"
    for (row, tool, n), r in results.items():
        assert r["status"] in ("ok", "dnf"), r
        if r["status"] == "ok":
            assert r["samples"] and all(isinstance(s, float) and s >= 0 for s in r["samples"])
            assert r["min"] <= r["median"] <= r["max"]
            if n:
                assert r["per_job"]["median"] == pytest.approx(r["median"] / n)
        else:
            assert r["reason"], r
        if (row, tool) in MUST_FINISH:
            assert r["status"] == "ok", f"{row}/{tool} did not finish: {r.get('reason')}"
    slurm = [r for r in data["results"] if r["row"] == "slurm"]
    assert {r["tool"] for r in slurm} == {"cluster-core", "cluster-core one by one", "submitit", "raw-array"}
    for r in slurm:
        if r["status"] == "ok":
            assert r["extra"]["sbatch"]["median"] >= 1 and "scheduler_calls_waiting" in r["extra"]
    # Slurm over its commands against slurmrestd, at tiny N (dnf, with the reason, where Slurm is not up)
    transport = {r["tool"]: r for r in data["results"] if r["row"] == "transport"}
    assert set(transport) == {"commands", "rest"}
    if transport["commands"]["status"] == "ok":
        assert transport["commands"]["extra"]["forks_per_poll"]["min"] >= 1  # squeue, at least
    if transport["rest"]["status"] == "ok":
        extra = transport["rest"]["extra"]
        assert extra["forks_per_poll"]["max"] == 0 and extra["http_requests_per_poll"]["min"] >= 1
    assert not [r for r in data["results"] if r["row"] == "scale"], "the scale rows are off in smoke mode"
    assert all(t["result"] in ("met", "missed", "not measured") for t in data["targets"])
    assert len(data["targets"]) == 10
    ready = results[("import", "cluster-core", None)]
    assert ready["status"] == "ok" and ready["extra"]["bare_import"]["median"] <= ready["median"]

    table = (out / "results.md").read_text()
    assert "| target | measured (medians) | limit | result |" in table
    assert "| row | tool | N | median | min – max | per job | notes |" in table
    assert "| transport | N jobs | wall per poll (median) |" in table
    body = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(body) >= len(data["results"]) + len(data["targets"])

    if data["peers"]["matplotlib"]["ok"]:
        assert data["plot"]["status"] == "ok", data["plot"]
        assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert data["plot"]["status"] in ("ok", "failed")


def test_scale_rows_at_tiny_n(tmp_path):
    """The scale rows (off in smoke mode) at tiny N: cc.map submitted held, polled, cancelled and removed."""
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if k not in ("CLUSTER_BACKEND", "CLUSTER_CORE_CONFIG")}
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--smoke", "--no-peers", "--only", "scale",
                           "--scale-ns", "5,20", "--slurm-scale-ns", "5", "--out", str(out),
                           "--scratch", str(tmp_path / "scratch")],
                          capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "results.json").read_text())
    scale = {(r["tool"], r["n"]): r for r in data["results"] if r["row"] == "scale"}
    assert set(scale) == {("local", 5), ("local", 20), ("slurm", 5)}
    for (tool, n), r in scale.items():
        if tool == "local":
            assert r["status"] == "ok", r.get("reason")
        if r["status"] != "ok":
            assert r["reason"], r
            continue
        extra = r["extra"]
        assert r["per_job"]["median"] == pytest.approx(r["median"] / n)
        assert extra["rss_peak_submit_mib"]["min"] >= extra["rss_after_import_mib"]["max"] > 0
        assert extra["polls"]["min"] >= 1 and extra["queries_per_poll"]["max"] == 1  # one query for all tasks
        if tool == "slurm":
            assert extra["submit forks sbatch"]["median"] == extra["array_jobs"]["median"] == 1
    assert not list((tmp_path / "scratch").iterdir()), "the run left files in its scratch directory"
    table = (out / "results.md").read_text()
    assert "| backend | N tasks | submit (median) |" in table


def test_cpu_budget_reports_every_party_for_both_rows(tmp_path):
    """benchmarks/cpu_budget.py end to end at tiny N: both rows finish and every party's CPU is reported
    (the figures themselves are not asserted)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CLUSTER_BACKEND", "CLUSTER_CORE_CONFIG")}
    proc = subprocess.run([sys.executable, str(BENCH / "cpu_budget.py"), "5"], capture_output=True, text=True,
                          timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for kind in ("shell", "function"):
        assert f"{kind}, N=5:" in proc.stdout
    for party in ("submitter", "runner itself", "jobs (the runner's children", "waiting side"):
        assert proc.stdout.count(f"CPU per job, {party}") == 2, proc.stdout
    assert proc.stdout.count("wait returned +") == 2


def test_design_floor_runs_both_sides(tmp_path):
    """benchmarks/design_floor.py end to end at tiny N: xargs and the library-free skeleton both run their
    jobs (the skeleton checks the last job's output itself) and the ratio is written (not asserted)."""
    proc = subprocess.run([sys.executable, str(BENCH / "design_floor.py"), "4", "--repeats", "1", "--settle", "0",
                           "--scratch", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x xargs" in proc.stdout and "CPU per job: submitter" in proc.stdout
    result = json.loads((tmp_path / "design_floor.json").read_text())
    assert result["n"] == 4 and len(result["floor"]) == 1 and result["ratio"] > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("design-floor-")]  # its files are removed
