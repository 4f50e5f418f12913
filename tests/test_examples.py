"""Every script in examples/ runs as a user would run it (a subprocess, on the local backend) and prints
what it says it prints. A new example needs its expected lines here."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# per script: regular expressions, each of which must match a line of its stdout
EXPECTED = {
    "first_jobs.py": [r"^submitted shell job \S+ and function job \S+ to the local backend$",
                      r"^hello from job \S+ on \S+$",
                      r"^function job returned 13\.0 \(computed on \S+\), exit code 0, ran [\d.]+ s$"],
    "parameter_sweep.py": [r"^submitted 9 tasks as array \S+$",
                           *(rf"^rate={rate} seed={seed} hits=\d+$" for rate in ("0.1", "0.5", "0.9")
                             for seed in range(3)),
                           r"^best: rate=0\.9 seed=\d$"],
    "failing_task.py": [r"^get raised ZeroDivisionError: division by zero$",
                        r"^  note: \(raised in job \S+ .*\binvert\b.*\)$",
                        r"^  note: 1 of 4 jobs failed \(\S+\); get\(\.\.\., return_exceptions=True\) returns every",
                        r"^task 0: completed, result 0\.25$", r"^task 1: completed, result 0\.5$",
                        r"^task 2: failed, exit code 1: ZeroDivisionError$", r"^task 3: completed, result 1\.0$",
                        r"^kept 3 of 4 results: \[0\.25, 0\.5, 1\.0\]$"],
    "dependency_chain.py": [r"^submitted prepare=\S+ total=\S+ evens=\S+ merge=\S+$",
                            r"^merge says: sum 5050, even numbers 50$",
                            *(rf"^{name}: completed, exit code 0$" for name in ("prepare", "total", "evens", "merge"))],
}

SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_every_example_has_expectations():
    assert set(SCRIPTS) == set(EXPECTED), "a script in examples/ without expected output here, or the reverse"


@pytest.mark.plugins
@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script, tmp_path):
    cluster_local = pytest.importorskip("cluster_local", reason="the local backend (cluster-local) is not installed")
    state = tmp_path / "state"
    env = dict(os.environ, CLUSTER_BACKEND="local", CLUSTER_LOCAL_DIR=str(state), CLUSTER_LOCAL_THREADS="2",
               CLUSTER_CORE_CONFIG=str(tmp_path / "config.ini"), CLUSTER_CORE_REGISTRY=str(tmp_path / "records"))
    try:
        proc = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
    finally:
        cluster_local.shutdown_runner(state)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    missing = [pattern for pattern in EXPECTED[script] if not any(re.search(pattern, line) for line in lines)]
    assert not missing, f"{script} printed no line matching {missing}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    # the examples clean up after themselves: no job script is left behind
    assert not list(tmp_path.glob("cluster_jobs/*.sh")), sorted(p.name for p in tmp_path.glob("cluster_jobs/*"))
