#!/usr/bin/env bash
# Bring up a real single-node Slurm 22.05 (Debian 12 packages) for tests, as root, without systemd:
# munged -> mariadbd -> slurmdbd -> slurmctld -> slurmd -> slurmrestd. Idempotent: a second run starts
# nothing new unless the generated config changed (then the Slurm daemons are restarted).
#
# Environment:
#   MIN_JOB_AGE=5        seconds a finished job stays in squeue before only sacct knows it
#   DEF_MEM_PER_CPU=1024 MB a job gets per CPU when it asks for no memory (CR_Core_Memory needs it)
#   UP_TIMEOUT=60        seconds to wait for the node to come up idle
#   TEST_USER=cctest     a normal user for tests (created if missing; empty to skip)
#   SLURM_DBPASS         password of the slurmdbd MariaDB user (test-only)
#   ACCOUNT_USERS        more users to give an association (accounts "ci", "other"); only users with
#                        one may submit (AccountingStorageEnforce=associations,qos)
#   RESTD_LISTEN=127.0.0.1:6820  where slurmrestd listens (TCP); it also listens on RESTD_SOCKET
#   RESTD_SOCKET=/run/slurmrestd/slurmrestd.socket
#
# What the tests rely on: partitions "debug" (default, no limit) and "second" (MaxTime 1 hour), sacct,
# DependencyParameters=kill_invalid_depend, EnforcePartLimits=ALL, OverMemoryKill, MinJobAge, and
# slurmrestd (REST API openapi/v0.0.38 + dbv0.0.38) with JWT authentication: `scontrol token` gives a
# token (the key is $JWT_KEY, in slurm.conf and slurmdbd.conf as AuthAltTypes=auth/jwt); requests carry
# X-SLURM-USER-NAME and X-SLURM-USER-TOKEN. slurmrestd runs as the unprivileged user "slurmrestd" (it
# refuses root and SlurmUser). Logs: /var/log/slurm. Stop with ci/slurm/down.sh.
#
# Torque wrappers (slurm-wlm-torque) are deliberately not installed: the package Conflicts with
# gridengine-client, which another CI step installs, and apt would silently remove one of them.
set -Eeuo pipefail
MIN_JOB_AGE=${MIN_JOB_AGE:-5}
DEF_MEM_PER_CPU=${DEF_MEM_PER_CPU:-1024}
UP_TIMEOUT=${UP_TIMEOUT:-60}
TEST_USER=${TEST_USER-cctest}
DBPASS=${SLURM_DBPASS:-cluster-core-ci}
LOGDIR=/var/log/slurm
RESTD_LISTEN=${RESTD_LISTEN:-127.0.0.1:6820}
RESTD_SOCKET=${RESTD_SOCKET:-/run/slurmrestd/slurmrestd.socket}
RESTD_PID=/run/slurmrestd/slurmrestd.pid
# the JWT signing key lives in StateSaveLocation, readable by SlurmUser only
JWT_KEY=/var/spool/slurmctld/jwt_hs256.key
export DEBIAN_FRONTEND=noninteractive
# the daemons inherit the working directory: slurmrestd exits at its next job update ("getcwd failed") once
# the checkout this ran from is deleted, so start everything from /
cd /

T0=$EPOCHREALTIME
log() { printf '[slurm-up %6.2fs] %s\n' "$(awk "BEGIN{print $EPOCHREALTIME-$T0}")" "$*"; }
die() {
  echo "slurm-up: FAILED: $*" >&2
  for f in "$LOGDIR"/slurmctld.log "$LOGDIR"/slurmd.log "$LOGDIR"/slurmdbd.log "$LOGDIR"/mariadbd.out \
           "$LOGDIR"/slurmrestd.log /var/log/munge/munged.log; do
    [ -s "$f" ] && { echo "---- last lines of $f" >&2; tail -n 25 "$f" >&2; }
  done
  exit 1
}
trap 'die "command failed at line $LINENO: $BASH_COMMAND"' ERR
[ "$(id -u)" = 0 ] || { echo "slurm-up: must run as root" >&2; exit 1; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || die "$what did not happen within ${secs}s"
    sleep 0.1
  done
}
stop_pid() {  # stop_pid PIDFILE: SIGTERM the process named in PIDFILE and wait for it to exit
  alive "$1" || return 0
  local p; p=$(cat "$1"); kill "$p"
  for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
}

# ---------- 1. packages ----------
pkgs=(munge slurm-client slurmctld slurmd slurmdbd mariadb-server slurmrestd slurm-wlm-jwt-plugin curl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_install() { apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"; }
  if ! apt_install >/tmp/slurm-up-apt.log 2>&1; then
    apt-get -o DPkg::Lock::Timeout=900 update -q >>/tmp/slurm-up-apt.log 2>&1
    apt_install >>/tmp/slurm-up-apt.log 2>&1 || { tail -n 30 /tmp/slurm-up-apt.log >&2; die "apt-get install failed"; }
  fi
fi
log "packages ok ($(dpkg-query -W -f='${Version}' slurmctld))"

# ---------- 2. munge ----------
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
  stop_pid /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged --force
  wait_for 10 "munged answering" munge_ok
fi
log "munge ok (pid $(cat /run/munge/munged.pid))"

# ---------- 3. config ----------
H=$(hostname -s)
getent hosts "$H" >/dev/null || echo "127.0.0.1 $H" >> /etc/hosts
NODELINE=$(slurmd -C | head -n 1)   # NodeName=.. CPUs=.. Boards=.. ... RealMemory=..
install -d -m 0755 /etc/slurm
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld "$LOGDIR"
install -d -m 0755 /var/spool/slurmd
# JWT key for slurmrestd's clients (scontrol token): 32+ random bytes, SlurmUser's, 0600. Made once:
# a new key would invalidate every token handed out.
if [ ! -s "$JWT_KEY" ]; then
  dd if=/dev/urandom of="$JWT_KEY" bs=32 count=1 status=none
fi
chown slurm:slurm "$JWT_KEY"; chmod 0600 "$JWT_KEY"
SLURM_CONF=$(cat <<CONF
# generated by cluster-core ci/slurm/up.sh; edit the script, not this file
ClusterName=ci
SlurmctldHost=$H
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
# JSON Web Tokens for slurmrestd's clients (scontrol token), beside munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWT_KEY
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
# no cgroups here (containers/gVisor): track processes by parent pid, no task confinement
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
# memory is enforced by polling RSS every second (a killed job ends FAILED with ExitCode 0:9)
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
# reject unknown accounts and QOS at submit (users need an association: see step 6)
AccountingStorageEnforce=associations,qos
# reject at submit what the partition can never run (too many CPUs or nodes) instead of pending forever
EnforcePartLimits=ALL
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without DefMemPerCPU every job would take the whole node's memory under CR_Core_Memory
DefMemPerCPU=$DEF_MEM_PER_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
# a job whose afterok parent failed is cancelled instead of pending forever (DependencyNeverSatisfied).
# Since Slurm 20.11 this lives here; in SchedulerParameters it is silently ignored (measured on 22.05).
DependencyParameters=kill_invalid_depend
MinJobAge=$MIN_JOB_AGE
# the scale benchmark holds a 10 000-task map; slurmctld refuses (times out) past MaxJobCount (10 000 by
# default), counting finished jobs younger than MinJobAge too
MaxJobCount=50000
# a requeued job starts again once its job credential expired: 10 s here instead of 120 (the checkpoint
# tests requeue jobs several times)
AuthInfo=cred_expire=10
# a job of the "urgent" partition preempts (requeues) jobs of the others. A preempted batch job gets SIGCONT
# and SIGTERM, then SIGKILL KillWait seconds later (2 here): its time to save itself. (Measured on 22.05:
# GraceTime only delays that, and preempt_send_user_signal sends no --signal=B: to the batch shell.)
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
ReturnToService=2
KillWait=2
InactiveLimit=0
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=30
$NODELINE State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP PriorityTier=1
# a second partition with a 1-hour limit, to test --partition and a time limit refused at submit
PartitionName=second Nodes=$H Default=NO MaxTime=01:00:00 State=UP PriorityTier=1
# jobs here preempt the others' (the checkpoint tests), and are never preempted themselves
PartitionName=urgent Nodes=$H Default=NO MaxTime=01:00:00 State=UP PriorityTier=10 PreemptMode=OFF
CONF
)
DBD_CONF=$(cat <<CONF
AuthType=auth/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWT_KEY
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
LogFile=$LOGDIR/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
CONF
)
write_if_changed() {  # write_if_changed FILE CONTENT OWNER MODE -> exit 0 when the file changed
  if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then return 1; fi
  printf '%s\n' "$2" > "$1"; chown "$3" "$1"; chmod "$4" "$1"; return 0
}
# A changed config leaves a mark until the daemons have been restarted, so a run that fails half-way
# still restarts them next time.
RESTART_SLURM=/run/cluster-core-slurm.restart; RESTART_DBD=/run/cluster-core-slurmdbd.restart
write_if_changed /etc/slurm/slurm.conf "$SLURM_CONF" root:root 0644 && touch "$RESTART_SLURM"
# slurmdbd refuses a config that is not owned by SlurmUser with mode 0600
write_if_changed /etc/slurm/slurmdbd.conf "$DBD_CONF" slurm:slurm 0600 && touch "$RESTART_DBD"
SLURM_CHANGED=0; DBD_CHANGED=0
[ -e "$RESTART_SLURM" ] && SLURM_CHANGED=1
[ -e "$RESTART_DBD" ] && DBD_CHANGED=1
log "config ok (slurm.conf changed: $SLURM_CHANGED, slurmdbd.conf changed: $DBD_CHANGED)"

# ---------- 4. accounting: MariaDB + slurmdbd ----------
install -d -o mysql -g root -m 0755 /run/mysqld
[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
if ! mariadb-admin ping >/dev/null 2>&1; then
  setsid /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid \
    </dev/null >"$LOGDIR/mariadbd.out" 2>&1 &
  wait_for 30 "mariadbd answering ping" mariadb-admin ping
fi
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
  ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
log "mariadb ok (pid $(cat /run/mysqld/mysqld.pid))"
[ $DBD_CHANGED = 1 ] && stop_pid /run/slurmdbd.pid && rm -f "$RESTART_DBD"
dbd_port() { (exec 3<>/dev/tcp/127.0.0.1/6819); }
if ! alive /run/slurmdbd.pid; then
  /usr/sbin/slurmdbd
  wait_for 30 "slurmdbd listening on port 6819" dbd_port
fi
log "slurmdbd ok (pid $(cat /run/slurmdbd.pid))"

# ---------- 5. slurmctld + slurmd ----------
if [ $SLURM_CHANGED = 1 ]; then
  # AccountingStorageType and node definitions need a real restart, not `scontrol reconfigure`
  stop_pid /run/slurmd.pid
  stop_pid /run/slurmctld.pid
  rm -f "$RESTART_SLURM"
fi
alive /run/slurmctld.pid || /usr/sbin/slurmctld
alive /run/slurmd.pid || /usr/sbin/slurmd
node_state() { sinfo -h -n "$H" -o %T 2>/dev/null | head -n 1; }
state=""; end=$((SECONDS + UP_TIMEOUT))
while [ $SECONDS -lt $end ]; do
  state=$(node_state || true)
  case "$state" in
    idle|mixed|allocated|completing) break ;;
    drain*|down*|fail*) scontrol update nodename="$H" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.1
done
case "$state" in
  idle|mixed|allocated|completing) ;;
  *) die "node $H is '${state:-unknown}' after ${UP_TIMEOUT}s, not idle ($(scontrol show node "$H" 2>&1 | grep -o 'Reason=.*' || true))" ;;
esac
cluster_registered() { sacctmgr -n -P list cluster format=cluster | grep -qx ci; }
wait_for 30 "cluster 'ci' registered in slurmdbd" cluster_registered
wait_for 10 "sacct answering" sacct -n -X -S now
log "slurm up: node $H $state (slurmctld $(cat /run/slurmctld.pid), slurmd $(cat /run/slurmd.pid))"

# ---------- 6. a normal user for tests, and accounts ----------
if [ -n "$TEST_USER" ] && ! id -u "$TEST_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$TEST_USER"
  log "created user $TEST_USER"
fi
# With AccountingStorageEnforce=associations only users with an association may submit: give root,
# the test user and $ACCOUNT_USERS the default account "ci" (and a second account "other").
for acct in ci other; do
  sacctmgr -n -P list account "$acct" format=account | grep -qx "$acct" \
    || sacctmgr -i add account "$acct" cluster=ci description="$acct" organization=cluster-core >/dev/null
done
for u in root $TEST_USER ${ACCOUNT_USERS:-}; do
  id -u "$u" >/dev/null 2>&1 || continue
  sacctmgr -n -P list assoc user="$u" account=other format=user | grep -qx "$u" \
    || sacctmgr -i add user "$u" account=ci,other cluster=ci >/dev/null
done
log "accounts ok: $(sacctmgr -n -P list assoc format=user,account | grep -v '^|' | tr '\n' ' ')"

# ---------- 7. slurmrestd (REST API with JWT) ----------
# It must not run as root or SlurmUser: a user of its own, which it switches to after binding.
id -u slurmrestd >/dev/null 2>&1 \
  || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin slurmrestd
install -d -o slurmrestd -g slurmrestd -m 0755 "$(dirname "$RESTD_SOCKET")" "$(dirname "$RESTD_PID")"
touch "$LOGDIR/slurmrestd.log"; chown slurmrestd:slurmrestd "$LOGDIR/slurmrestd.log"
restd_ok() {  # the REST API answers a token-authenticated ping over TCP and the socket
  local tok; tok=$(scontrol token username=root lifespan=60 2>/dev/null | sed -n 's/^SLURM_JWT=//p')
  [ -n "$tok" ] || return 1
  local h=(-fsS --max-time 5 -H "X-SLURM-USER-NAME: root" -H "X-SLURM-USER-TOKEN: $tok")
  curl "${h[@]}" "http://$RESTD_LISTEN/slurm/v0.0.38/ping" | grep -q '"ping": "UP"' \
    && curl "${h[@]}" --unix-socket "$RESTD_SOCKET" http://localhost/slurm/v0.0.38/ping | grep -q '"ping": "UP"'
}
# slurmrestd reads slurm.conf at start: a changed one needs a new slurmrestd
[ $SLURM_CHANGED = 1 ] && stop_pid "$RESTD_PID"
if ! alive "$RESTD_PID" || ! restd_ok; then
  stop_pid "$RESTD_PID"
  rm -f "$RESTD_SOCKET"
  # SLURM_JWT=daemon: authenticate to slurmctld/slurmdbd with each client's token, not munge
  SLURM_JWT=daemon setsid /usr/sbin/slurmrestd -u slurmrestd -g slurmrestd -a rest_auth/jwt \
    -s openapi/v0.0.38,openapi/dbv0.0.38 "$RESTD_LISTEN" "unix:$RESTD_SOCKET" \
    </dev/null >>"$LOGDIR/slurmrestd.log" 2>&1 &
  echo $! > "$RESTD_PID"
  wait_for 30 "slurmrestd answering a ping with a token on $RESTD_LISTEN and $RESTD_SOCKET" restd_ok
fi
log "slurmrestd ok (pid $(cat "$RESTD_PID"), http://$RESTD_LISTEN and unix:$RESTD_SOCKET)"
log "done"
