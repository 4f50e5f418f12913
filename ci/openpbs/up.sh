#!/usr/bin/env bash
# Bring up a real single-node OpenPBS (master, reporting pbs_version 23.06.06) for tests, as root,
# without systemd: pbs_comm, pbs_server (with its private PostgreSQL 15 on 25007), pbs_sched, pbs_mom;
# node "$(hostname -s)", queue workq, job history on (qstat -x). Idempotent: a second run starts only
# the daemons that are not running and re-applies the server settings.
#
# Installs /opt/pbs from the prebuilt tarball in the research directory beside the repository
# (shared/research/openpbs/openpbs-master-debian12-bin.tar.gz; built with --prefix=/opt/pbs, not
# relocatable), or with OPENPBS_FROM_SOURCE=1 builds it from openpbs-master-src.tar.gz there (~2 min).
#
# Environment:
#   RESEARCH_DIR              where openpbs/ lives (default: ../../../shared/research from this
#                             script, then /work/shared/research)
#   OPENPBS_FROM_SOURCE=1     build from the source tarball instead of extracting the binaries
#   TEST_USER=pbstest         the normal user tests submit as (OpenPBS mishandles root jobs)
#   UP_TIMEOUT=90             seconds to wait for the server and the node
#
# Ports: 25001 server, 25002/25003 mom, 25007 PostgreSQL, 25010 pbs_comm (PBS_PORT_BASE=25000).
# Clients read /etc/pbs.conf; the commands are only in /opt/pbs/bin (not on PATH: Torque and Grid
# Engine also have a qsub; this script removes the /etc/profile.d/pbs.* that pbs_postinstall adds),
# and tests point the backend there with CLUSTER_TORQUE_BIN=/opt/pbs/bin.
# PBS's TPP layer ignores loopback addresses, so when the host name resolves only to 127.x this script
# appends "<eth0 address> <host>" to /etc/hosts (the name still resolves to 127.0.0.1 first).
# Daemons are found through their lock files and exact executable paths, never by name.
# Logs: /var/spool/pbs/{server,sched,mom,comm}_logs. Stop with ci/openpbs/down.sh.
set -Eeuo pipefail
PBS_EXEC=/opt/pbs
PBS_HOME=/var/spool/pbs
BASE=25000
TEST_USER=${TEST_USER:-pbstest}
UP_TIMEOUT=${UP_TIMEOUT:-90}
NODE=$(hostname -s)
export DEBIAN_FRONTEND=noninteractive
unset PBS_DEFAULT PBS_SERVER PBS_CONF_FILE
here=$(cd "$(dirname "$0")" && pwd)
Q=$PBS_EXEC/bin

T0=$EPOCHREALTIME
log() { printf '[openpbs-up %6.2fs] %s\n' "$(awk "BEGIN{print $EPOCHREALTIME-$T0}")" "$*"; }
show_logs() { tail_logs "$PBS_HOME/server_logs" "$PBS_HOME/sched_logs" "$PBS_HOME/mom_logs" "$PBS_HOME/comm_logs" -- "$PBS_HOME/spool/db_start.log" /tmp/openpbs-up-*.log; }
die() { trap - ERR; echo "openpbs-up: FAILED: $*" >&2; show_logs; exit 1; }
trap 'die "command failed at line $LINENO: $BASH_COMMAND"' ERR
[ "$(id -u)" = 0 ] || { echo "openpbs-up: must run as root" >&2; exit 1; }
APT_LOG=/tmp/openpbs-up-apt.log
. "$here/../lib.sh"

any_running() { for p in /proc/[0-9]*; do readlink "$p/exe" 2>/dev/null; done | grep -q "^$PBS_EXEC/"; }

# ---------- 1. the installation ----------
installed_version() { "$Q/qstat" --version 2>/dev/null | awk -F' = ' '/pbs_version/{print $2}'; }
build_from_source() {  # the recipe of shared/research/openpbs/openpbs-build.sh (master needs libcjson)
  local src=$1 work=/opt/src/openpbs-master stage=/opt/src/openpbs-master-stage
  apt_install gcc g++ make libtool autoconf automake pkg-config libhwloc-dev libx11-dev libxt-dev \
    libedit-dev libical-dev libncurses-dev perl postgresql-server-dev-all postgresql-contrib python3-dev \
    tcl-dev tk-dev swig libexpat1-dev libssl-dev libxext-dev libxft-dev libcjson-dev expat
  log "building OpenPBS from $src (about 2 minutes)"
  rm -rf "$work" "$stage"; mkdir -p "$work"
  tar -xzf "$src" -C "$work" --strip-components=1
  (
    cd "$work"
    export PATH=/usr/sbin:/usr/bin:/sbin:/bin  # Debian's python3.11, not a pyenv shim
    ./autogen.sh
    CFLAGS="-g -O2 -Wno-error" ./configure --prefix=$PBS_EXEC --with-python=/usr --with-database-port=$((BASE + 7))
    make -j"$(nproc)"
    make install DESTDIR="$stage"
  ) >/tmp/openpbs-up-build.log 2>&1 || die "the build failed (log /tmp/openpbs-up-build.log)"
  rm -rf "$PBS_EXEC"; cp -a "$stage$PBS_EXEC" "$PBS_EXEC"
}
if [ -z "$(installed_version)" ] || [ "${OPENPBS_FROM_SOURCE:-0}" = 1 ]; then
  ! any_running || die "$PBS_EXEC is to be (re)installed but OpenPBS daemons are running; run ci/openpbs/down.sh first"
  R=$(research_dir openpbs) || die "no research directory with openpbs/ (set RESEARCH_DIR)"
  if [ "${OPENPBS_FROM_SOURCE:-0}" = 1 ]; then
    build_from_source "$R/openpbs/openpbs-master-src.tar.gz"
  else
    tgz=$R/openpbs/openpbs-master-debian12-bin.tar.gz
    [ -s "$tgz" ] || die "$tgz is missing (or set OPENPBS_FROM_SOURCE=1 to build from source)"
    log "extracting $tgz"
    rm -rf "$PBS_EXEC"; tar -C / -xzf "$tgz"
  fi
fi
# runtime: postgresql-15 gives initdb/postgres (and the pg_config wrapper pbs_db_env reads); Tk/X11
# libraries because pbs_tclsh and friends link them
apt_install postgresql-15 libpq5 libcjson1 libpython3.11 libical3 libhwloc15 libedit2 libexpat1 libssl3 \
  libtcl8.6 libtk8.6 libxft2 libxss1
if ldd "$PBS_EXEC/sbin/pbs_server.bin" "$PBS_EXEC/sbin/pbs_mom" "$Q/qstat" "$Q/qsub" 2>/dev/null | grep -q 'not found'; then
  ldd "$PBS_EXEC/sbin/pbs_server.bin" "$Q/qstat" 2>&1 | grep 'not found' >&2 || true
  die "unresolved shared libraries in $PBS_EXEC"
fi
VERSION=$(installed_version)
[ -n "$VERSION" ] || die "$Q/qstat --version printed no pbs_version"
log "OpenPBS $VERSION installed in $PBS_EXEC"

# ---------- 2. the normal user that submits ----------
if ! id -u "$TEST_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash -K UID_MIN=1000 "$TEST_USER"
  log "created user $TEST_USER (uid $(id -u "$TEST_USER"))"
fi
[ "$(id -u "$TEST_USER")" -ge 1000 ] || die "user $TEST_USER has uid $(id -u "$TEST_USER"), below 1000"

# ---------- 3. host name, pbs.conf, PBS_HOME ----------
if ! getent ahostsv4 "$NODE" | awk '{print $1}' | grep -qv '^127\.'; then
  IP=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -1 || true)
  [ -n "$IP" ] || IP=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -v -e '^127\.' -e : | head -1 || true)
  [ -n "$IP" ] || die "$NODE resolves only to loopback and there is no other IPv4 address (PBS needs one)"
  log "appending '$IP $NODE' to /etc/hosts (PBS ignores loopback addresses)"
  echo "$IP $NODE  # added by ci/openpbs/up.sh: PBS ignores loopback-only host names" >>/etc/hosts
fi
conf=$(mktemp)
cat >"$conf" <<EOF
PBS_SERVER=$NODE
PBS_START_SERVER=1
PBS_START_SCHED=1
PBS_START_COMM=1
PBS_START_MOM=1
PBS_EXEC=$PBS_EXEC
PBS_HOME=$PBS_HOME
PBS_CORE_LIMIT=unlimited
PBS_SCP=/usr/bin/scp
PBS_BATCH_SERVICE_PORT=$((BASE + 1))
PBS_BATCH_SERVICE_PORT_DIS=$((BASE + 1))
PBS_MOM_SERVICE_PORT=$((BASE + 2))
PBS_MANAGER_SERVICE_PORT=$((BASE + 3))
PBS_DATA_SERVICE_PORT=$((BASE + 7))
PBS_COMM_NAME=$NODE:$((BASE + 10))
PBS_LEAF_ROUTERS=$NODE:$((BASE + 10))
PBS_LEAF_NAME=$NODE
PBS_MOM_NODE_NAME=$NODE
EOF
if ! cmp -s "$conf" /etc/pbs.conf; then
  ! any_running || die "/etc/pbs.conf differs from what this script writes while OpenPBS runs; run ci/openpbs/down.sh first"
  log "writing /etc/pbs.conf"; install -m 0644 "$conf" /etc/pbs.conf
fi
rm -f "$conf"
if [ ! -f "$PBS_HOME/pbs_environment" ] || [ ! -f /etc/init.d/pbs ]; then
  log "running pbs_postinstall"
  "$PBS_EXEC/libexec/pbs_postinstall" </dev/null >/tmp/openpbs-up-postinstall.log 2>&1 ||
    die "pbs_postinstall failed (log /tmp/openpbs-up-postinstall.log)"
fi
rm -f /etc/profile.d/pbs.sh /etc/profile.d/pbs.csh  # they add /opt/pbs/bin to every login PATH
chmod 4755 "$PBS_EXEC/sbin/pbs_iff" "$PBS_EXEC/sbin/pbs_rcp"  # non-root clients authenticate through it

# ---------- 4. daemons ----------
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
lockpid() { head -1 "$PBS_HOME/$1" 2>/dev/null | tr -dc 0-9; }
all_up() {
  alive "$(lockpid server_priv/server.lock)" && alive "$(lockpid mom_priv/mom.lock)" &&
    alive "$(lockpid sched_priv/sched.lock)" && alive "$(lockpid server_priv/comm.lock)"
}
if all_up; then
  log "daemons already running"
else
  # the init script starts only what is not running (it checks the lock files too); the first start
  # runs pbs_habitat: initdb of the private database, queue workq, the node
  log "starting PBS daemons"
  (cd / && setsid "$PBS_EXEC/libexec/pbs_init.d" start </dev/null >/tmp/openpbs-up-start.log 2>&1) ||
    die "pbs_init.d start failed (log /tmp/openpbs-up-start.log)"
fi
end=$((SECONDS + UP_TIMEOUT))
until "$Q/qstat" -B >/dev/null 2>&1; do
  [ $SECONDS -lt $end ] || die "the server did not answer qstat -B within ${UP_TIMEOUT}s"
  sleep 0.3
done
settings=(
  "set server flatuid = True"  # the client host reads as localhost, the server as $NODE: no ruserok
  "set server job_history_enable = True"
  "set server job_history_duration = 24:00:00"
)
for s in "${settings[@]}"; do "$Q/qmgr" -c "$s" || die "qmgr -c '$s' failed"; done
"$Q/pbsnodes" "$NODE" >/dev/null 2>&1 || "$Q/qmgr" -c "create node $NODE"

# ---------- 5. the node ----------
node_state() { "$Q/pbsnodes" "$NODE" 2>/dev/null | awk -F' = ' '/^ *state = /{print $2; exit}'; }
until case "$(node_state)" in free|job-busy|job-exclusive) true ;; *) false ;; esac; do
  [ $SECONDS -lt $end ] || die "node $NODE is '$(node_state)', not free, after ${UP_TIMEOUT}s"
  sleep 0.3
done
log "OpenPBS $VERSION up: server $NODE:$((BASE + 1)), node $NODE free, job history on, submit as $TEST_USER with CLUSTER_TORQUE_BIN=$Q"
