#!/usr/bin/env bash
# Bring up a real single-host Grid Engine cell (Son of Grid Engine 8.1.9, Debian 12 packages
# gridengine-master/exec/client) for tests, as root, without systemd: sge_qmaster -> sge_execd.
# Idempotent: a second run installs and starts nothing new and re-applies the configuration (qconf
# changes take effect without a restart; only a changed host_aliases restarts the daemons).
#
# Environment:
#   SGE_SLOTS=$(nproc)   slots of the one queue all.q
#   UP_TIMEOUT=60        seconds to wait for the qmaster and for the exec host to report load
#   SGE_SMOKE=1          submit one job with `qsub -sync y` at the end and check its output
#
# What the tests rely on: queue all.q (shell_start_mode posix_compliant, so qsub -S picks the shell),
# parallel environment "smp" ($pe_slots), a second queue "second.q" on the same host (to test -q; the
# host caps both queues together at SGE_SLOTS),
# global config min_uid/min_gid 0 (root may run jobs), accounting flushed every second (qacct sees a
# finished job ~1 s after it ends), scheduler interval 1 s, h_vmem/h_rt enforced by execd.
#
# Pitfalls handled (shared/research/pbs-sge.md, Part B):
# - commlib insists that a host's name resolve identically both ways; /etc/hosts here maps 127.0.0.1
#   to "localhost runsc vm", so host_aliases names `hostname` the canonical name of all of them;
# - Debian's gridengine depends on libmunge2 (shared with Slurm): never purge munge;
# - slurm-wlm-torque Conflicts with gridengine-client: refuse rather than let apt remove it;
# - the init scripts kill by name (start-stop-daemon --exec): start and stop the daemons by pid.
# Logs: /var/spool/gridengine/qmaster/messages and /var/spool/gridengine/execd/*/messages (the daemons
# name their spool directory after the first name of 127.0.0.1, "localhost" here).
# Stop with ci/sge/down.sh.
set -Eeuo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
SLOTS=${SGE_SLOTS:-$(nproc)}
UP_TIMEOUT=${UP_TIMEOUT:-60}
H=$(hostname)
COMMON=$SGE_ROOT/$SGE_CELL/common
SPOOL=/var/spool/gridengine
STATE=/run/gridengine
export DEBIAN_FRONTEND=noninteractive

T0=$EPOCHREALTIME
log() { printf '[sge-up %6.2fs] %s\n' "$(awk "BEGIN{print $EPOCHREALTIME-$T0}")" "$*"; }
die() {
  echo "sge-up: FAILED: $*" >&2
  for f in "$SPOOL"/qmaster/messages "$SPOOL"/execd/*/messages /tmp/qmaster_messages \
           /tmp/execd_messages ${APT_LOG:-}; do
    [ -s "$f" ] && { echo "---- last lines of $f" >&2; tail -n 25 "$f" >&2; }
  done
  exit 1
}
trap 'die "command failed at line $LINENO: $BASH_COMMAND"' ERR
[ "$(id -u)" = 0 ] || { echo "sge-up: must run as root" >&2; exit 1; }

poll() {  # poll SECONDS COMMAND...: until COMMAND succeeds; false after SECONDS
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  poll "$secs" "$@" || die "$what did not happen within ${secs}s"
}
qmaster_pid() { { pgrep -u sgeadmin -x sge_qmaster || true; } | head -n 1; }
execd_pid() { { pgrep -x sge_execd || true; } | head -n 1; }
qmaster_up() { timeout 10 qconf -sh >/dev/null 2>&1; }
q() {  # qconf quietly (it reports every change on stderr); its message when it fails
  local out; out=$(qconf "$@" 2>&1) || die "qconf $*: $out"
}
stop_pid() {  # stop_pid PID: SIGTERM and wait (a qmaster's controlled shutdown takes up to ~10 s)
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill "$1" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

# ---------- 1. packages ----------
pkgs=(gridengine-common gridengine-master gridengine-exec gridengine-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if dpkg-query -W -f='${Status}' slurm-wlm-torque 2>/dev/null | grep -q 'ok installed'; then
    die "slurm-wlm-torque is installed and Conflicts with gridengine-client; apt would remove it. Remove it first (Slurm itself does not need it)."
  fi
  log "installing ${missing[*]}"
  # debconf templates are shared/gridengine* (not gridengine/cell): configure a cell named
  # $SGE_CELL with this host as master, so the master's postinst runs init_cluster
  for p in gridengine-common gridengine-master; do
    printf '%s shared/gridengineconfig boolean true\n%s shared/gridenginecell string %s\n%s shared/gridenginemaster string %s\n' \
      "$p" "$p" "$SGE_CELL" "$p" "$H"
  done | debconf-set-selections
  APT_LOG=/tmp/sge-up-apt.log
  apt_install() { apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${pkgs[@]}" </dev/null; }
  if ! apt_install >/tmp/sge-up-apt.log 2>&1; then
    apt-get -o DPkg::Lock::Timeout=900 update -q >>/tmp/sge-up-apt.log 2>&1
    apt_install >>/tmp/sge-up-apt.log 2>&1 || die "apt-get install failed"
  fi
fi
if [ ! -f "$COMMON/bootstrap" ]; then
  # installed without a configured cell (shared/gridengineconfig false): make one now
  log "initialising cell $SGE_CELL"
  /usr/share/gridengine/scripts/init_cluster "$SGE_ROOT" "$SGE_CELL" "$SPOOL/spooldb" sgeadmin \
    >/tmp/sge-up-init.log 2>&1 || { tail -n 30 /tmp/sge-up-init.log >&2; die "init_cluster failed"; }
fi
log "packages ok ($(dpkg-query -W -f='${Version}' gridengine-master))"

# ---------- 2. one canonical host name ----------
# commlib compares the name a client sends with the name its address resolves to; with 127.0.0.1
# mapped to several names the qmaster answers "access denied (client IP resolved to host name
# "localhost". This is not identical to clients host name "vm")". host_aliases fixes it without
# touching /etc/hosts: the first word is the canonical name, the others are aliases for it.
IP=$(getent hosts "$H" | awk '{print $1; exit}')
[ -n "$IP" ] || die "host name $H does not resolve (add it to /etc/hosts)"
ALIASES=$( { echo "$H"; echo localhost;
             awk -v ip="$IP" '$1==ip || $1=="127.0.0.1" {for(i=2;i<=NF;i++) print $i}' /etc/hosts; } |
           awk '!seen[$0]++' | tr '\n' ' ' | sed 's/ $//')
ALIASES_CHANGED=0
if [ "$(cat "$COMMON/host_aliases" 2>/dev/null)" != "$ALIASES" ]; then
  printf '%s\n' "$ALIASES" > "$COMMON/host_aliases"; ALIASES_CHANGED=1
fi
[ "$(cat "$COMMON/act_qmaster" 2>/dev/null)" = "$H" ] || { echo "$H" > "$COMMON/act_qmaster"; ALIASES_CHANGED=1; }
install -d -o sgeadmin -g sgeadmin -m 0755 "$STATE"
chown sgeadmin:sgeadmin "$COMMON/host_aliases" "$COMMON/act_qmaster"
if [ $ALIASES_CHANGED = 1 ] && [ -n "$(qmaster_pid)" ]; then
  log "host_aliases changed: restarting the daemons"
  stop_pid "$(execd_pid)"
  stop_pid "$(qmaster_pid)"
fi
log "host names ok (host_aliases: $ALIASES)"

# ---------- 3. qmaster ----------
QMASTER_STARTED=0
if ! qmaster_up; then
  stop_pid "$(qmaster_pid)"  # a qmaster that runs but does not answer
  /usr/sbin/sge_qmaster
  wait_for "$UP_TIMEOUT" "sge_qmaster answering qconf" qmaster_up
  QMASTER_STARTED=1
fi
qmaster_pid > "$STATE/ci-qmaster.pid"
log "qmaster ok (pid $(cat "$STATE/ci-qmaster.pid"))"

# ---------- 4. configuration, all through files (qconf -M*/-A*, no editor) ----------
CFG=$(mktemp -d)
trap 'rm -rf "$CFG"' EXIT
# global: root may run jobs (min_uid 1000 by default), load reports every 5 s, accounting flushed
# every second (qacct reads the accounting file, written only at a flush; 15 s by default), and
# no login shells: by default a posix_compliant queue starts bash as "-bash", which reads the
# submitter's profile; root's profile here runs `pyenv rehash`, whose lock file a killed job leaves
# behind, and every later job then waits 60 s for it.
# `qconf -Mconf` takes the config's name from the file name, so the file must be called "global".
# (qconf -sconf continues long values on lines ending in "\"; join them first, and drop stray lines
# whose first word is not an attribute name, which an earlier sed of a continued line could leave.)
qconf -sconf global | sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' |
  awk '$1 !~ /=/' | sed -e 's/^#global://' -e '/^$/d' \
  -e 's/^min_uid .*/min_uid                      0/' \
  -e 's/^min_gid .*/min_gid                      0/' \
  -e 's/^load_report_time .*/load_report_time             00:00:05/' \
  -e 's/^login_shells .*/login_shells                 none/' \
  -e 's/^reporting_params .*/reporting_params             accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:01/' \
  > "$CFG/global"
q -Mconf "$CFG/global"
# scheduler: a run every second, and right after a submission or a job's end
qconf -ssconf | sed -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
  -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' \
  -e 's/^flush_finish_sec .*/flush_finish_sec                  1/' > "$CFG/sconf"
q -Msconf "$CFG/sconf"
qconf -sh 2>/dev/null | grep -qx "$H" || q -ah "$H"
qconf -ss 2>/dev/null | grep -qx "$H" || q -as "$H"
printf 'hostname %s\nload_scaling NONE\ncomplex_values slots=%s\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' \
  "$H" "$SLOTS" > "$CFG/exechost"
if qconf -sel 2>/dev/null | grep -qx "$H"; then q -Me "$CFG/exechost"; else q -Ae "$CFG/exechost"; fi
printf 'group_name @allhosts\nhostlist %s\n' "$H" > "$CFG/@allhosts"
if qconf -shgrpl 2>/dev/null | grep -qx @allhosts; then q -Mhgrp "$CFG/@allhosts"; else q -Ahgrp "$CFG/@allhosts"; fi
cat > "$CFG/smp" <<'PE'
pe_name            smp
slots              9999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    $pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
PE
if qconf -spl 2>/dev/null | grep -qx smp; then q -Mp "$CFG/smp"; else q -Ap "$CFG/smp"; fi
queue_conf() {  # queue_conf NAME SEQ: a batch queue on every host, limits INFINITY (jobs set their own)
  cat <<Q
qname                 $1
hostlist              @allhosts
seq_no                $2
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH
ckpt_list             NONE
pe_list               smp
rerun                 FALSE
slots                 $SLOTS
tmpdir                /tmp
shell                 /bin/sh
prolog                NONE
epilog                NONE
shell_start_mode      posix_compliant
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  INFINITY
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
Q
}
queue_conf all.q 0 > "$CFG/all.q"
queue_conf second.q 10 > "$CFG/second.q"
for q in all.q second.q; do
  if qconf -sql 2>/dev/null | grep -qx "$q"; then q -Mq "$CFG/$q"; else q -Aq "$CFG/$q"; fi
done
log "configuration ok (queues all.q, second.q with $SLOTS slots each; PE smp)"

# ---------- 5. execd ----------
# An execd that outlived its qmaster gives up registering ("abort qmaster registration due to
# communication errors") and never reports again: restart it with a new qmaster.
if [ $QMASTER_STARTED = 1 ] && [ -n "$(execd_pid)" ]; then
  log "qmaster was restarted: restarting execd"
  stop_pid "$(execd_pid)"
fi
[ -n "$(execd_pid)" ] || /usr/sbin/sge_execd
host_reports() {  # the exec host has sent a load report: qhost's LOAD column is a number, not "-"
  qhost -h "$H" 2>/dev/null | awk -v h="$H" '$1==h && $7 ~ /^[0-9.]+$/ {ok=1} END {exit !ok}'
}
if ! poll 20 host_reports; then
  log "exec host $H does not report: restarting execd"
  stop_pid "$(execd_pid)"
  /usr/sbin/sge_execd
  wait_for "$UP_TIMEOUT" "exec host $H reporting load" host_reports
fi
execd_pid > "$STATE/ci-execd.pid"
# a queue instance left in error state (E) by an earlier broken run takes no jobs: clear it
qmod -c "*@$H" >/dev/null 2>&1 || true
log "execd ok (pid $(cat "$STATE/ci-execd.pid")): $(qhost -h "$H" | tail -n 1 | tr -s ' ')"

# ---------- 6. smoke test ----------
if [ "${SGE_SMOKE:-1}" = 1 ]; then
  d=$(mktemp -d)
  printf '#!/bin/bash\necho "smoke-ok $JOB_ID"\n' > "$d/smoke.sh"
  jid=$(timeout "$UP_TIMEOUT" qsub -terse -sync y -S /bin/bash -N smoke -wd "$d" -o "$d/out" -j y "$d/smoke.sh" | head -n 1) \
    || die "smoke job did not finish (qsub -sync y)"
  grep -q smoke-ok "$d/out" || die "smoke job $jid wrote no output: $(cat "$d/out" 2>/dev/null)"
  rm -rf "$d"
  log "smoke job $jid ok"
fi
log "done"
