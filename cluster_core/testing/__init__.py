"""Test helpers for cluster-core and for backend plugins (a pytest plugin, loaded automatically)."""
