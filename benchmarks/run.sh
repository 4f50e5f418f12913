#!/usr/bin/env bash
# The benchmark suite, one command: bash benchmarks/run.sh [run.py options, e.g. --smoke or --out DIR]
#
# cluster-core is measured as users get it: a regular (non-editable) install of this checkout and its
# plugins into benchmarks/.venv-bench (an editable install adds ~15 ms to every interpreter start through
# setuptools' import finder, which every function job and every `cluster` command would pay). The peers go
# into benchmarks/.venv-peers (run.py makes it). Both are gitignored and reused on the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=benchmarks/.venv-bench
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
pkgs=(.)
for plugin in plugins/*/pyproject.toml; do pkgs+=("$(dirname "$plugin")"); done
log=$VENV/pip-install.log
# dependencies once, then always this checkout's code (same version number, so reinstall it by force)
if ! { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${pkgs[@]}" &&
       "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "${pkgs[@]}"; } \
     >"$log" 2>&1; then
  cat "$log" >&2
  echo "benchmarks/run.sh: installing cluster-core into $VENV failed (log above)" >&2
  exit 1
fi
exec "$VENV/bin/python" benchmarks/run.py "$@"
