#!/usr/bin/env bash
# Stop what ci/openpbs/up.sh started, by PID: the server (which stops its PostgreSQL), pbs_sched,
# pbs_mom and pbs_comm from their lock files, each checked against its executable path; then the
# private PostgreSQL from its postmaster.pid and pbs_ds_monitor by exact executable path, if left.
# Never by process name (Torque runs a pbs_mom and a pbs_sched too). PBS_HOME (jobs, history, database)
# stays; UNINSTALL=1 removes /opt/pbs, /var/spool/pbs, /etc/pbs.conf and /etc/init.d/pbs.
set -uo pipefail
PBS_EXEC=/opt/pbs
PBS_HOME=/var/spool/pbs
[ "$(id -u)" = 0 ] || { echo "openpbs-down: must run as root" >&2; exit 1; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
exe_of() { readlink "/proc/$1/exe" 2>/dev/null; }
stop() {  # stop NAME PID EXE-PREFIX SIGNAL
  local name=$1 pid=$2 want=$3 sig=$4 t0=$SECONDS
  alive "$pid" || return 0
  case "$(exe_of "$pid")" in
    "$want"*) ;;
    *) echo "pid $pid ($name) runs $(exe_of "$pid"), not $want: left alone"; return 0 ;;
  esac
  kill "-$sig" "$pid"
  for _ in $(seq 300); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then echo "$name ($pid) ignored SIG$sig for 30s, sending SIGKILL"; kill -9 "$pid"; fi
  echo "stopped $name ($pid) in $((SECONDS - t0))s"
}
lockpid() { head -1 "$PBS_HOME/$1" 2>/dev/null | tr -dc 0-9; }
stop pbs_server "$(lockpid server_priv/server.lock)" "$PBS_EXEC/sbin/pbs_server" TERM
stop pbs_sched "$(lockpid sched_priv/sched.lock)" "$PBS_EXEC/sbin/pbs_sched" TERM
stop pbs_mom "$(lockpid mom_priv/mom.lock)" "$PBS_EXEC/sbin/pbs_mom" TERM
stop pbs_comm "$(lockpid server_priv/comm.lock)" "$PBS_EXEC/sbin/pbs_comm" TERM
stop postgres "$(lockpid datastore/postmaster.pid)" /usr/lib/postgresql/ INT  # fast shutdown
for d in /proc/[0-9]*; do
  [ "$(exe_of "${d#/proc/}")" = "$PBS_EXEC/sbin/pbs_ds_monitor" ] && stop pbs_ds_monitor "${d#/proc/}" "$PBS_EXEC/sbin/pbs_ds_monitor" TERM
done
if [ "${UNINSTALL:-0}" = 1 ]; then
  rm -rf "$PBS_EXEC" "$PBS_HOME" /etc/pbs.conf /etc/init.d/pbs /etc/profile.d/pbs.sh /etc/profile.d/pbs.csh
  echo "removed $PBS_EXEC, $PBS_HOME, /etc/pbs.conf and /etc/init.d/pbs"
fi
exit 0
