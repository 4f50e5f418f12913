#!/usr/bin/env bash
# Bring up a real single-node Torque 6.1.3 for tests, as root, without systemd:
# trqauthd -> pbs_server -> pbs_mom -> pbs_sched, node "$(hostname)" with np = nproc, queue "batch".
# Idempotent: a second run starts only what is not running and re-applies the server settings.
#
# Installs /opt/torque from the prebuilt tarball in the research directory beside the repository
# (shared/research/torque/torque-6.1-debian12-bin.tar.gz; Debian 12, rpath $ORIGIN/../lib, stripped),
# or with TORQUE_FROM_SOURCE=1 builds it from torque-6.1.3-src.tar.gz there (4-10 minutes on 2 cores;
# the build tree stays in /opt/src/torque-6.1.3).
#
# Environment:
#   RESEARCH_DIR             where torque/ lives (default: ../../../shared/research from this script,
#                            then /work/shared/research)
#   TORQUE_FROM_SOURCE=1     build from the source tarball instead of extracting the binaries
#   TORQUE_KEEP_COMPLETED=120  seconds a finished job stays in qstat as C (then "Unknown Job Id")
#   TEST_USER=pbstest        the normal user tests submit as (qsub refuses root); created if missing
#   UP_TIMEOUT=60            seconds to wait for the node to be free
#
# Ports: pbs_server 15001, pbs_mom 15002/15003, pbs_sched 15004 (Torque's defaults). Clients find the
# server through /var/spool/torque/server_name, never /etc/pbs.conf (OpenPBS's), so both coexist; the
# commands are only in /opt/torque/bin (not on PATH: OpenPBS and Grid Engine also have a qsub), and
# tests point the backend there with CLUSTER_TORQUE_BIN=/opt/torque/bin. Daemons are found by their
# exact executable path, never by name (OpenPBS also runs a pbs_mom and a pbs_sched).
# Logs: /var/spool/torque/{server,mom,sched}_logs. Stop with ci/torque/down.sh.
set -Eeuo pipefail
PREFIX=/opt/torque
PBS_HOME=/var/spool/torque
KEEP=${TORQUE_KEEP_COMPLETED:-120}
TEST_USER=${TEST_USER:-pbstest}
UP_TIMEOUT=${UP_TIMEOUT:-60}
VERSION=6.1.3
HOST=$(hostname)
NP=$(nproc)
export DEBIAN_FRONTEND=noninteractive
unset PBS_DEFAULT PBS_SERVER  # another PBS's settings must not leak into Torque's clients
here=$(cd "$(dirname "$0")" && pwd)

T0=$EPOCHREALTIME
log() { printf '[torque-up %6.2fs] %s\n' "$(awk "BEGIN{print $EPOCHREALTIME-$T0}")" "$*"; }
show_logs() { tail_logs "$PBS_HOME/server_logs" "$PBS_HOME/mom_logs" "$PBS_HOME/sched_logs" -- /tmp/torque-up-*.log; }
die() { trap - ERR; echo "torque-up: FAILED: $*" >&2; show_logs; exit 1; }
trap 'die "command failed at line $LINENO: $BASH_COMMAND"' ERR
[ "$(id -u)" = 0 ] || { echo "torque-up: must run as root" >&2; exit 1; }
APT_LOG=/tmp/torque-up-apt.log
. "$here/../lib.sh"


# ---------- 1. the installation ----------
installed_version() { "$PREFIX/bin/qstat" --version 2>/dev/null | awk '/^Version:/{print $2}'; }
build_from_source() {  # the recipe of shared/research/torque/torque-build.sh, staged with DESTDIR
  local src=$1 work=/opt/src/torque-$VERSION stage=/opt/src/torque-$VERSION-stage f
  apt_install build-essential autoconf2.69 automake libtool pkg-config libxml2-dev libssl-dev libboost-dev \
    flex bison patchelf file
  log "building Torque $VERSION from $src (4-10 minutes; log /tmp/torque-up-build.log)"
  rm -rf "$work" "$stage"; mkdir -p "$work"
  tar -xzf "$src" -C "$work" --strip-components=1
  (
    cd "$work"
    # Debian's autoconf 2.71 breaks Torque's configure (its pthread check fails under CC=g++): use 2.69
    export AUTOCONF=autoconf2.69 AUTOHEADER=autoheader2.69 AUTOM4TE=autom4te2.69
    mkdir -p m4; libtoolize -c -f; aclocal; autoconf2.69 -f; autoheader2.69 -f; automake -a -c -f
    ./configure --prefix=$PREFIX --with-server-home=$PBS_HOME --disable-gui --without-tcl --disable-cpuset \
      --disable-gcc-warnings --with-default-server="$HOST"
    # gcc 12 needs -fpermissive for 6.1.3; Torque compiles *.c with g++, so CFLAGS must carry it too
    local flags="-g -D_LARGEFILE64_SOURCE -fstack-protector -Wformat -Wformat-security -fpermissive"
    make -j"$NP" CFLAGS="$flags" CXXFLAGS="$flags"
    make install DESTDIR="$stage"  # staged: make install also writes /etc/profile.d, init.d, ld.so.conf.d
  ) >/tmp/torque-up-build.log 2>&1 || die "the build failed (log /tmp/torque-up-build.log)"
  cp -a "$stage$PBS_HOME" "$stage$PREFIX/share/torque-spool-skel"
  for f in "$stage$PREFIX"/sbin/* "$stage$PREFIX"/bin/*; do
    [ -L "$f" ] || ! file "$f" | grep -q ELF && continue
    strip --strip-debug "$f"
    readelf -d "$f" | grep -q 'NEEDED.*libtorque' && patchelf --set-rpath '$ORIGIN/../lib' "$f"
  done
  rm -f "$stage$PREFIX"/lib/*.a "$stage$PREFIX"/lib/*.la
  rm -rf "$PREFIX"; cp -a "$stage$PREFIX" "$PREFIX"
}

if [ "$(installed_version)" != "$VERSION" ] || [ "${TORQUE_FROM_SOURCE:-0}" = 1 ]; then
  running_any=$(for p in /proc/[0-9]*; do readlink "$p/exe" 2>/dev/null; done | grep -c "^$PREFIX/" || true)
  [ "$running_any" = 0 ] || die "$PREFIX is to be (re)installed but Torque daemons are running; run ci/torque/down.sh first"
  R=$(research_dir torque) || die "no research directory with torque/ (set RESEARCH_DIR)"
  if [ "${TORQUE_FROM_SOURCE:-0}" = 1 ]; then
    build_from_source "$R/torque/torque-$VERSION-src.tar.gz"
  else
    tgz=$R/torque/torque-6.1-debian12-bin.tar.gz
    [ -s "$tgz" ] || die "$tgz is missing (or set TORQUE_FROM_SOURCE=1 to build from source)"
    log "extracting $tgz"
    rm -rf "$PREFIX"; tar -C / -xzf "$tgz"
  fi
fi
# runtime libraries (libxml2 pulls libicu72/liblzma5/zlib1g; readline is for qmgr)
apt_install libxml2 libstdc++6 libgcc-s1 libreadline8 libtinfo6
if ldd "$PREFIX"/sbin/* "$PREFIX"/bin/* 2>/dev/null | grep -q 'not found'; then
  ldd "$PREFIX"/sbin/pbs_server "$PREFIX"/bin/qstat 2>&1 | grep 'not found' >&2 || true
  die "unresolved shared libraries in $PREFIX"
fi
[ "$(installed_version)" = "$VERSION" ] || die "$PREFIX/bin/qstat --version does not say $VERSION"
log "Torque $VERSION installed in $PREFIX"

getent hosts "$HOST" >/dev/null || die "the host name $HOST does not resolve (add it to /etc/hosts)"

# ---------- 2. the normal user that submits (Torque's qsub refuses root) ----------
if ! id -u "$TEST_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash -K UID_MIN=1000 "$TEST_USER"
  log "created user $TEST_USER (uid $(id -u "$TEST_USER"))"
fi
[ "$(id -u "$TEST_USER")" -ge 1000 ] || die "user $TEST_USER has uid $(id -u "$TEST_USER"), below 1000"

# ---------- 3. spool and mom config ----------
if [ ! -d "$PBS_HOME/server_priv" ]; then
  [ -d "$PREFIX/share/torque-spool-skel" ] || die "no $PBS_HOME and no skeleton in $PREFIX/share/torque-spool-skel"
  log "creating $PBS_HOME from the skeleton"
  mkdir -p "$(dirname "$PBS_HOME")"; cp -a "$PREFIX/share/torque-spool-skel" "$PBS_HOME"
fi
echo "$HOST" >"$PBS_HOME/server_name"
# $usecp: outputs are delivered by cp (no scp); status every 10 s; walltime checked every 5 s
cat >"$PBS_HOME/mom_priv/config.new" <<EOF
\$pbsserver $HOST
\$logevent 255
\$usecp *:/ /
\$status_update_time 10
\$check_poll_time 5
EOF
mom_config_changed=0
if cmp -s "$PBS_HOME/mom_priv/config.new" "$PBS_HOME/mom_priv/config"; then
  rm -f "$PBS_HOME/mom_priv/config.new"
else
  mv "$PBS_HOME/mom_priv/config.new" "$PBS_HOME/mom_priv/config"; mom_config_changed=1
fi

# ---------- 4. daemons ----------
running() { [ -n "$(pids_of "$PREFIX/sbin/$1")" ]; }
start() {  # start DAEMON [ARGS]: daemonises itself; keep our stdio (pytest's pipes) out of it
  (cd / && setsid "$PREFIX/sbin/$1" "${@:2}" </dev/null >>"/tmp/torque-up-$1.log" 2>&1) ||
    die "$1 ${*:2} exited with $?"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local secs=$1 what=$2; local end=$((SECONDS + secs)); shift 2
  until "$@"; do [ $SECONDS -lt $end ] || die "$what within ${secs}s"; sleep 0.2; done
}
qmgr() { "$PREFIX/bin/qmgr" "$@"; }

if ! running trqauthd; then
  log "starting trqauthd"; rm -f /tmp/trqauthd-unix; start trqauthd
fi
if ! running pbs_server; then
  if [ ! -s "$PBS_HOME/server_priv/serverdb" ]; then
    log "creating the server database"
    start pbs_server -t create -f
    wait_for "$UP_TIMEOUT" "pbs_server -t create did not listen on 15001" port_open 15001
    # -t create wipes server_priv/nodes, and a node created on a live server stays down until a
    # restart: stop this first server and write the nodes file before the real start
    qmgr -c "set server scheduling = True" >/dev/null
    "$PREFIX/bin/qterm" -t quick
    wait_for 20 "the first pbs_server did not stop" eval '! running pbs_server'
  fi
  grep -q "^$HOST " "$PBS_HOME/server_priv/nodes" 2>/dev/null || echo "$HOST np=$NP" >"$PBS_HOME/server_priv/nodes"
  log "starting pbs_server"; start pbs_server
  wait_for "$UP_TIMEOUT" "pbs_server did not listen on 15001" port_open 15001
fi
wait_for "$UP_TIMEOUT" "pbs_server did not answer qstat -B" eval '"$PREFIX/bin/qstat" -B >/dev/null 2>&1'
qmgr -c "list queue batch" >/dev/null 2>&1 || qmgr -c "create queue batch queue_type = Execution"
settings=(
  "set queue batch resources_default.nodes = 1"
  "set queue batch resources_default.walltime = 01:00:00"
  "set queue batch enabled = True"
  "set queue batch started = True"
  "set server default_queue = batch"
  "set server scheduling = True"
  "set server keep_completed = $KEEP"
  "set server managers = root@$HOST"
  "set server managers += root@localhost"
  "set server operators = root@$HOST"
  "set server operators += root@localhost"
  "set server scheduler_iteration = 5"
  # must exceed the mom's status_update_time, or the node flaps to down
  "set server node_check_rate = 150"
  "set server job_stat_rate = 10"
  "set server query_other_jobs = True"
  "set server mom_job_sync = True"
)
for s in "${settings[@]}"; do qmgr -c "$s" >/dev/null || die "qmgr -c '$s' failed"; done

if running pbs_mom && [ "$mom_config_changed" = 1 ]; then
  log "mom config changed: restarting pbs_mom"; kill $(pids_of "$PREFIX/sbin/pbs_mom")
  wait_for 20 "pbs_mom did not stop" eval '! running pbs_mom'
fi
running pbs_mom || { log "starting pbs_mom"; start pbs_mom; }
running pbs_sched || { log "starting pbs_sched"; start pbs_sched; }

# ---------- 5. the node ----------
node_state() { "$PREFIX/bin/pbsnodes" "$HOST" 2>/dev/null | awk '/^ *state =/{print $3; exit}'; }
node_up() { case "$(node_state)" in free|job-exclusive) return 0 ;; *) return 1 ;; esac; }
end=$((SECONDS + UP_TIMEOUT))
until node_up; do
  [ $SECONDS -lt $end ] || die "node $HOST is '$(node_state)', not free, after ${UP_TIMEOUT}s: $("$PREFIX/bin/pbsnodes" "$HOST" 2>&1 | tr -s ' \n' ' ')"
  sleep 0.2
done
log "Torque $VERSION up: server $HOST:15001, node $HOST np=$NP, keep_completed=${KEEP}s, submit as $TEST_USER with CLUSTER_TORQUE_BIN=$PREFIX/bin"
