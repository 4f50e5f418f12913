#!/usr/bin/env bash
# Stop the Grid Engine cell that ci/sge/up.sh started: ask the daemons to shut down (qconf -ke, -km),
# then wait for their pids, SIGKILL after 20 s. Idempotent. Packages stay installed (gridengine shares
# libmunge2 with Slurm: never purge munge); ci/sge/up.sh starts the cell again in a few seconds.
set -uo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
[ "$(id -u)" = 0 ] || { echo "sge-down: must run as root" >&2; exit 1; }
H=$(hostname)
pids=$(pgrep -x sge_execd; pgrep -u sgeadmin -x sge_qmaster)
[ -n "$pids" ] || { echo "sge-down: not running"; rm -f /run/gridengine/ci-*.pid; exit 0; }
command -v qconf >/dev/null && {
  timeout 10 qconf -ke "$H" >/dev/null 2>&1
  timeout 10 qconf -km >/dev/null 2>&1
}
for p in $pids; do
  for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then kill -9 "$p" 2>/dev/null; echo "sge-down: killed $p" >&2; fi
done
rm -f /run/gridengine/ci-*.pid
echo "sge-down: stopped"
