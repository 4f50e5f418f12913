"""The local backend's code as a whole: each module stays small enough to hold one concern (DESIGN.md: the
runner in parts). That it imports nothing of the core but cluster_core.backend and cluster_core.hookspecs
is checked for every bundled plugin by tests/test_backend.py."""

from __future__ import annotations

from pathlib import Path

import cluster_local

PACKAGE = Path(cluster_local.__file__).parent


def test_no_module_is_much_over_400_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert len(sizes) > 10 and "scheduler.py" in sizes and "supervisor.py" in sizes
    assert {name: n for name, n in sizes.items() if n > 420} == {}
