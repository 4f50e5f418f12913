"""mypy --strict on every package and on the examples, as a user's type checker sees them (py.typed ships)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["cluster_core", *(str(p.parent) for p in sorted((ROOT / "plugins").glob("cluster_*/cluster_*/__init__.py"))),
           "examples"]


@pytest.mark.slow
def test_mypy_strict_is_clean(tmp_path):
    pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), *TARGETS],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
