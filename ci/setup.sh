#!/usr/bin/env bash
# Create ./.venv (once) and install cluster-core with every backend plugin under plugins/, editable, and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      # Debian's python3 needs python3-venv for `python3 -m venv`
      apt-get -o DPkg::Lock::Timeout=600 install -y -q python3-venv >/dev/null \
        || { apt-get update -q >/dev/null; apt-get install -y -q python3-venv >/dev/null; }
      "$PY" -m venv .venv
    else
      echo "setup: '$PY -m venv' failed; on Debian run: sudo apt-get install python3-venv" >&2
      exit 1
    fi
  fi
fi
log=.venv/pip-install.log
editables=(-e .)
for plugin in plugins/*/pyproject.toml; do editables+=(-e "$(dirname "$plugin")"); done
if ! { .venv/bin/python -m pip install -q --upgrade pip &&
       .venv/bin/python -m pip install -q "${editables[@]}" pytest; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup: pip install failed (log above, also in $log)" >&2
  exit 1
fi
