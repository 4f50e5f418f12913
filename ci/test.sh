#!/usr/bin/env bash
# Run the whole test suite: set up ./.venv, start the real schedulers the tests use (when root), run pytest.
# Extra arguments go to pytest. CLUSTER_TEST_DOCS=0 skips installing the documentation tools.
# CLUSTER_TEST_SCHEDULERS=0 skips starting schedulers; their tests then
# skip with a reason (outside CI) or fail (with CI=true, where every scheduler must be up).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
# the test-only dependencies (Snakemake for the workflow-engine tests)
if ! .venv/bin/python -m pip install -q -e ".[test]" > .venv/pip-test.log 2>&1; then
  cat .venv/pip-test.log >&2
  echo "ci/test.sh: installing the test dependencies failed (log above, also in .venv/pip-test.log)" >&2
  exit 1
fi
# Every scheduler with a ci/<name>/up.sh, in this order (Slurm first: the others share its munge).
if [ "$(id -u)" = 0 ] && [ "${CLUSTER_TEST_SCHEDULERS:-1}" != 0 ]; then
  for sched in slurm sge torque openpbs; do
    if [ -f "ci/$sched/up.sh" ]; then
      echo "ci/test.sh: starting $sched" >&2
      bash "ci/$sched/up.sh"
    fi
  done
elif [ "${CI:-}" = true ]; then
  echo "ci/test.sh: CI needs root to start the schedulers" >&2
  exit 1
fi
# the documentation's tools, in their own venv: tests/test_docs.py builds the site with every warning an
# error and checks it (without them it skips)
if [ "${CLUSTER_TEST_DOCS:-1}" != 0 ]; then
  bash ci/docs.sh --install-only
fi
exec .venv/bin/python -m pytest -rs "$@"
