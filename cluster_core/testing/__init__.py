"""Test helpers for cluster-core and for backend plugins, and an opt-in pytest plugin.

Installing cluster-core changes no other project's pytest run: the fixtures load only where asked for,
with ``-p cluster_core.testing`` on the command line, ``addopts = "-p cluster_core.testing"`` in the
pytest configuration, or ``pytest_plugins = ["cluster_core.testing"]`` in the root ``conftest.py``.
The conformance kit (:mod:`cluster_core.testing.conformance`) is imported by a backend's own tests.
"""

from .plugin import cluster_config  # noqa: F401  (the plugin's fixtures, for -p cluster_core.testing)
