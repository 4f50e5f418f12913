#!/usr/bin/env bash
# Stop what ci/slurm/up.sh started, by PID file, in reverse order: slurmrestd, slurmd, slurmctld,
# slurmdbd, mariadbd, munged. PURGE=1 also drops the accounting database and wipes Slurm state and logs.
# KEEP_MUNGE=1 leaves munged running (Grid Engine uses munge too when installed alongside).
set -uo pipefail
[ "$(id -u)" = 0 ] || { echo "slurm-down: must run as root" >&2; exit 1; }
stop() {  # stop NAME PIDFILE
  local f=$2 p t0=$SECONDS
  [ -s "$f" ] || return 0
  p=$(cat "$f")
  if kill -0 "$p" 2>/dev/null; then
    kill "$p"
    for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then echo "$1 ($p) ignored SIGTERM for 15s, sending SIGKILL"; kill -9 "$p"; fi
    echo "stopped $1 ($p) in $((SECONDS - t0))s"
  fi
  rm -f "$f"
}
# cancel what is left so no slurmstepd outlives slurmd
if [ -s /run/slurmctld.pid ] && kill -0 "$(cat /run/slurmctld.pid)" 2>/dev/null; then
  ids=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
  [ -n "$ids" ] && { echo "cancelling jobs: $ids"; scancel $ids 2>/dev/null || true; }
  for _ in $(seq 100); do [ -z "$(squeue -h -t PD,R,CG,S -o %i 2>/dev/null)" ] && break; sleep 0.1; done
fi
stop slurmrestd /run/slurmrestd/slurmrestd.pid
rm -f /run/slurmrestd/slurmrestd.socket
stop slurmd    /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
stop slurmdbd  /run/slurmdbd.pid
if [ "${PURGE:-0}" = 1 ] && mariadb-admin ping >/dev/null 2>&1; then
  mariadb -e "DROP DATABASE IF EXISTS slurm_acct_db" && echo "dropped slurm_acct_db"
fi
stop mariadbd  /run/mysqld/mysqld.pid
[ "${KEEP_MUNGE:-0}" = 1 ] || stop munged /run/munge/munged.pid
left=$(pgrep -x slurmstepd 2>/dev/null | tr '\n' ' ')
[ -n "$left" ] && echo "warning: slurmstepd still running: $left"
if [ "${PURGE:-0}" = 1 ]; then
  rm -rf /var/spool/slurmctld/* /var/spool/slurmd/* /var/log/slurm/*
  echo "purged Slurm state and logs"
fi
exit 0
