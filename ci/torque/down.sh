#!/usr/bin/env bash
# Stop what ci/torque/up.sh started: pbs_sched, pbs_mom, pbs_server, trqauthd, each found by its exact
# executable path under /opt/torque (never by name: OpenPBS runs a pbs_mom and a pbs_sched too).
# Jobs still queued stay in the server database and run again at the next start.
# PURGE=1 also deletes the job state and logs (the server database and its settings are kept);
# UNINSTALL=1 removes /opt/torque and /var/spool/torque altogether.
set -uo pipefail
PREFIX=/opt/torque
PBS_HOME=/var/spool/torque
[ "$(id -u)" = 0 ] || { echo "torque-down: must run as root" >&2; exit 1; }
. "$(dirname "$0")/../lib.sh"
for d in pbs_sched pbs_mom pbs_server trqauthd; do
  pids=$(pids_of "$PREFIX/sbin/$d" | tr '\n' ' ')
  [ -n "${pids// /}" ] || continue
  t0=$SECONDS
  kill $pids 2>/dev/null
  for _ in $(seq 100); do [ -z "$(pids_of "$PREFIX/sbin/$d")" ] && break; sleep 0.1; done
  left=$(pids_of "$PREFIX/sbin/$d" | tr '\n' ' ')
  if [ -n "${left// /}" ]; then echo "$d ($left) ignored SIGTERM for 10s, sending SIGKILL"; kill -9 $left; fi
  echo "stopped $d ($pids) in $((SECONDS - t0))s"
done
rm -f /tmp/trqauthd-unix
if [ "${UNINSTALL:-0}" = 1 ]; then
  rm -rf "$PREFIX" "$PBS_HOME" && echo "removed $PREFIX and $PBS_HOME"
elif [ "${PURGE:-0}" = 1 ]; then
  rm -rf "$PBS_HOME"/server_priv/jobs/* "$PBS_HOME"/server_priv/arrays/* "$PBS_HOME"/mom_priv/jobs/* \
         "$PBS_HOME"/spool/* "$PBS_HOME"/undelivered/* "$PBS_HOME"/*_logs/*
  echo "purged Torque jobs and logs"
fi
exit 0
