#!/usr/bin/env bash
# Build the documentation site with every warning an error (mkdocs build --strict) into site/ (git-ignored).
# The pinned doc tools (docs/requirements.txt) and cluster-core itself (editable: the hooks read its CLI
# parser and public names) go into their own venv, .venv-docs, never into the system's site-packages.
# Extra arguments go to mkdocs build (e.g. --site-dir DIR); --install-only makes the venv and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-docs
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get -o DPkg::Lock::Timeout=600 install -y -q python3-venv >/dev/null \
        || { apt-get update -q >/dev/null; apt-get install -y -q python3-venv >/dev/null; }
      "$PY" -m venv "$VENV"
    else
      echo "ci/docs.sh: '$PY -m venv' failed; on Debian run: sudo apt-get install python3-venv" >&2
      exit 1
    fi
  fi
fi
log=$VENV/pip-install.log
# reinstall only when the pins or the project's own dependencies changed (a stamp holds what it was made from)
stamp=$(cat docs/requirements.txt pyproject.toml)
if [ "$stamp" != "$(cat "$VENV/installed.stamp" 2>/dev/null)" ]; then
  if ! { "$VENV/bin/python" -m pip install -q --upgrade pip &&
         "$VENV/bin/python" -m pip install -q -r docs/requirements.txt -e .; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "ci/docs.sh: pip install failed (log above, also in $log)" >&2
    exit 1
  fi
  printf '%s' "$stamp" > "$VENV/installed.stamp"
fi
if [ "${1:-}" = --install-only ]; then
  exit 0  # the tools only (ci/test.sh: tests/test_docs.py then builds the site, strict, and checks it)
fi
# mkdocs 1.x prints a banner about Material for MkDocs' end of life (noted in CHANGELOG.md); not a warning
export NO_MKDOCS_2_WARNING=1
exec "$VENV/bin/python" -m mkdocs build --strict --clean "$@"
