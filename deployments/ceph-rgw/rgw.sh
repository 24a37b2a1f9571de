#!/usr/bin/env bash
# A throwaway one-node Ceph (Pacific, Debian's packages) serving S3 through the RADOS Gateway on
# loopback, for the S3 benchmark:
#   deployments/ceph-rgw/rgw.sh up DATA_DIR PORT   install when missing (root), bootstrap under
#                                                  DATA_DIR, start mon + osd + radosgw, print
#                                                  "ready http://127.0.0.1:PORT"
#   deployments/ceph-rgw/rgw.sh down DATA_DIR      stop what `up` started (exit 0 when nothing runs)
#   deployments/ceph-rgw/rgw.sh install            only install the packages (when missing)
# One ceph-mon and one ceph-osd (memstore: objects live in the OSD's memory) on 127.0.0.1, no
# cephx, pools of size 1, no ceph-mgr. Everything (ceph.conf, keyring, mon and osd data, pid
# files, admin sockets, logs) lives under DATA_DIR; /etc/ceph and /var/lib/ceph are not used.
# S3 user: access key "helixflow", secret "helixflow-secret" (uid "bench").
# Running `up` again leaves running daemons alone (a stopped radosgw is restarted). Objects live
# only in the OSD's memory: after `down` (or a lost mon or osd) the next `up` makes a fresh,
# empty cluster in DATA_DIR (logs are kept, appended).
# Knobs (environment): RGW_MEMSTORE_GIB (OSD capacity, default 6), RGW_MON_PORT (msgr v2 port of
# the mon, default: first free from 3300; v1 uses the next free one).
set -euo pipefail

ACCESS_KEY=helixflow
SECRET_KEY=helixflow-secret
RGW_NAME=client.rgw.bench

die() { echo "rgw.sh: $*" >&2; exit 1; }

usage() {
  echo "usage: $0 up DATA_DIR PORT | down DATA_DIR | install" >&2
  exit 2
}

# The pid in $1 runs and is the daemon $2 (guards against a reused pid).
alive() {
  local pid
  [ -f "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
  # A killed daemon stays a zombie until init reaps it.
  case "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" in Z|X|"") return 1 ;; esac
}

port_busy() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

free_port() {
  local p=$1
  while port_busy "$p" || [ "$p" = "${2:-}" ]; do
    p=$((p + 1))
    [ "$p" -lt 65535 ] || die "no free port from $1"
  done
  echo "$p"
}

show_log() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    echo "---- last lines of $f" >&2
    tail -n 30 "$f" >&2
  done
}

install() {
  local b missing=()
  for b in ceph-mon ceph-osd radosgw; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
  done
  for b in ceph radosgw-admin monmaptool ceph-authtool; do
    command -v "$b" >/dev/null 2>&1 || { missing+=(ceph-common); break; }
  done
  command -v ss >/dev/null 2>&1 || missing+=(iproute2)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v uuidgen >/dev/null 2>&1 || missing+=(uuid-runtime)
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "need root to install ${missing[*]} (apt-get), or install them yourself"
  echo "rgw.sh: installing ${missing[*]} (apt-get)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    ceph-mon ceph-osd radosgw ceph-common iproute2 curl uuid-runtime >/dev/null \
    || die "apt-get install of ceph-mon ceph-osd radosgw ceph-common failed"
}

ceph_() { timeout 30 ceph -c "$CONF" --connect-timeout 20 "$@"; }

write_conf() {
  local fsid=$1 v2=$2 v1=$3 port=$4 gib=$5
  cat > "$CONF.tmp" <<CONF
# Written by deployments/ceph-rgw/rgw.sh: a throwaway one-node cluster on loopback.
[global]
fsid = $fsid
mon_initial_members = a
mon_host = [v2:127.0.0.1:$v2,v1:127.0.0.1:$v1]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
# OSD ports: clear of Slurm (6817-6819) and of 8000-8999.
ms_bind_port_min = 7100
ms_bind_port_max = 7300
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# Without cephx there is no "secure" connection mode; daemons of the client type (radosgw)
# ask the mon for "secure" only by default and then never connect.
ms_mon_client_mode = crc secure
mon_warn_on_insecure_global_id_reclaim_allowed = false
keyring = $DATA/keyring
run_dir = $DATA/run
crash_dir = $DATA/crash
pid_file = $DATA/run/\$name.pid
admin_socket = $DATA/run/\$cluster-\$name.asok
log_file = $DATA/log/\$name.log
mon_cluster_log_file = $DATA/log/cluster.log
mon_data = $DATA/mon/\$cluster-\$id
osd_data = $DATA/osd/\$cluster-\$id
rgw_data = $DATA/rgw/\$cluster-\$id
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1

[mon]
mon_data_avail_crit = 1

[osd]
osd_objectstore = memstore
memstore_device_bytes = $((gib << 30))

[client]
# Command-line clients (ceph, radosgw-admin): one admin socket per process, log to DATA_DIR.
admin_socket = $DATA/run/\$cluster-\$name.\$pid.asok
# Overwritten objects are garbage-collected after a minute, not two hours (memory-backed OSD).
rgw_gc_obj_min_wait = 60
rgw_gc_processor_period = 60
rgw_gc_processor_max_time = 60

[$RGW_NAME]
# Give up (and let rgw.sh report it) after 2 minutes rather than 5 when the cluster is not there.
client_mount_timeout = 60
rgw_init_timeout = 120
admin_socket = $DATA/run/\$cluster-\$name.asok
rgw_frontends = beast endpoint=127.0.0.1:$port
rgw_dns_name = 127.0.0.1
CONF
  mv "$CONF.tmp" "$CONF"
}

# ceph-mon refuses to start on a file system with less than mon_data_avail_crit (1% here) free,
# and says so only deep in its log: name it.
low_space() {
  local pct
  pct=$(df -P "$DATA" | awk 'NR == 2 {print int($4 * 100 / $2)}')
  [ "${pct:-100}" -le 1 ] && echo " (the file system of $DATA has ${pct}% free; ceph-mon needs more than 1%)"
  return 0
}

conf_get() { sed -n "s/^$1 = //p" "$CONF" | head -n 1; }

start_mon() {
  alive "$DATA/run/mon.a.pid" ceph-mon && return 0
  rm -f "$DATA/run/mon.a.pid"
  ceph-mon -c "$CONF" -i a >>"$DATA/log/mon.a.out" 2>&1 \
    || { show_log "$DATA/log/mon.a.out" "$DATA/log/mon.a.log"; die "ceph-mon did not start$(low_space)"; }
  local i
  for i in $(seq 1 60); do
    ceph_ mon stat >/dev/null 2>&1 && return 0
    sleep 1
  done
  show_log "$DATA/log/mon.a.out" "$DATA/log/mon.a.log"
  die "ceph-mon does not answer after 60 s"
}

start_osd() {
  alive "$DATA/run/osd.0.pid" ceph-osd || {
    rm -f "$DATA/run/osd.0.pid"
    ceph-osd -c "$CONF" -i 0 >>"$DATA/log/osd.0.out" 2>&1 \
      || { show_log "$DATA/log/osd.0.out" "$DATA/log/osd.0.log"; die "ceph-osd did not start"; }
  }
  local i up
  for i in $(seq 1 120); do
    up="$(ceph_ osd dump 2>/dev/null | awk '$1 == "osd.0" {print $2}')" || true
    [ "$up" = up ] && return 0
    alive "$DATA/run/osd.0.pid" ceph-osd || break
    sleep 1
  done
  show_log "$DATA/log/osd.0.out" "$DATA/log/osd.0.log"
  die "osd.0 not up (state: ${up:-unknown}); logs in $DATA/log"
}

bootstrap() {
  local port=$1 v2 v1 fsid uuid id
  v2="$(free_port "${RGW_MON_PORT:-3300}")"
  v1="$(free_port "$((v2 + 1))")"
  fsid="$(uuidgen)"
  rm -rf "$DATA/mon" "$DATA/osd" "$DATA/rgw" "$DATA/run" "$DATA/crash" "$DATA/keyring" "$DATA/monmap" \
    "$DATA/bootstrapped"
  mkdir -p "$DATA"/{mon/ceph-a,osd/ceph-0,run,log,crash,rgw}
  write_conf "$fsid" "$v2" "$v1" "$port" "${RGW_MEMSTORE_GIB:-6}"
  ceph-authtool --create-keyring "$DATA/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DATA/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$v2,v1:127.0.0.1:$v1]" "$DATA/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DATA/monmap" --keyring "$DATA/keyring" \
    >>"$DATA/log/mon.a.out" 2>&1 || { show_log "$DATA/log/mon.a.out"; die "ceph-mon --mkfs failed"; }
  start_mon
  uuid="$(uuidgen)"
  id="$(ceph_ osd new "$uuid")" || die "ceph osd new failed"
  [ "$id" = 0 ] || die "expected osd id 0, got '$id'"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >>"$DATA/log/osd.0.out" 2>&1 \
    || { show_log "$DATA/log/osd.0.out" "$DATA/log/osd.0.log"; die "ceph-osd --mkfs failed"; }
  touch "$DATA/bootstrapped"
}

start_rgw() {
  local port=$1 pidf="$DATA/run/$RGW_NAME.pid" i code
  # A running gateway on another port (an earlier `up DATA_DIR OTHER_PORT`) is restarted.
  if alive "$pidf" radosgw && [ "$(cat "$DATA/run/rgw.port" 2>/dev/null)" != "$port" ]; then
    stop_daemon "$RGW_NAME" radosgw 100
  fi
  if ! alive "$pidf" radosgw; then
    rm -f "$pidf"
    port_busy "$port" && die "port $port is in use by another process"
    echo "$port" > "$DATA/run/rgw.port"
    radosgw -c "$CONF" -n "$RGW_NAME" >>"$DATA/log/$RGW_NAME.out" 2>&1 \
      || { show_log "$DATA/log/$RGW_NAME.out" "$DATA/log/$RGW_NAME.log"; die "radosgw did not start"; }
  fi
  # The first start creates RGW's pools (and waits for their PGs), so allow a few minutes.
  for i in $(seq 1 300); do
    code="$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null)" || true
    [ -n "$code" ] && [ "$code" != 000 ] && return 0
    sleep 1
    [ $((i % 5)) = 0 ] && ! alive "$pidf" radosgw && break
  done
  show_log "$DATA/log/$RGW_NAME.out" "$DATA/log/$RGW_NAME.log"
  die "radosgw does not answer on http://127.0.0.1:$port"
}

make_user() {
  timeout 60 radosgw-admin -c "$CONF" user info --uid=bench >/dev/null 2>&1 && return 0
  timeout 60 radosgw-admin -c "$CONF" user create --uid=bench --display-name=bench \
    --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >/dev/null 2>"$DATA/log/user-create.err" \
    || { show_log "$DATA/log/user-create.err"; die "radosgw-admin user create failed"; }
}

up() {
  local port=$1
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "PORT must be a port number, got '$port'"
  install
  mkdir -p "$DATA"
  DATA="$(cd "$DATA" && pwd)"
  CONF="$DATA/ceph.conf"
  if ! { alive "$DATA/run/$RGW_NAME.pid" radosgw && [ "$(cat "$DATA/run/rgw.port" 2>/dev/null)" = "$port" ]; } \
     && port_busy "$port"; then
    die "port $port is in use by another process; choose another PORT"
  fi
  if [ -f "$DATA/bootstrapped" ] && alive "$DATA/run/mon.a.pid" ceph-mon && alive "$DATA/run/osd.0.pid" ceph-osd; then
    # Running: rewrite ceph.conf (this script's settings, for radosgw) with the cluster's fsid and
    # mon ports; the mon and the osd are left alone.
    local fsid v2 v1
    fsid="$(conf_get fsid)"
    v2="$(conf_get mon_host | sed -n 's/.*v2:127\.0\.0\.1:\([0-9]*\).*/\1/p')"
    v1="$(conf_get mon_host | sed -n 's/.*v1:127\.0\.0\.1:\([0-9]*\).*/\1/p')"
    [ -n "$fsid" ] && [ -n "$v2" ] && [ -n "$v1" ] || die "$CONF: no fsid or mon_host; remove $DATA for a fresh cluster"
    write_conf "$fsid" "$v2" "$v1" "$port" "${RGW_MEMSTORE_GIB:-6}"
  else
    # Not running (never started, stopped, or half-made): the memstore OSD kept nothing, so stop
    # what is left and make a fresh cluster.
    down
    bootstrap "$port"
  fi
  start_mon
  start_osd
  start_rgw "$port"
  make_user
  echo "ready http://127.0.0.1:$port"
}

# Stop the daemon named $1 (pid file $DATA/run/$1.pid, command name $2): SIGTERM, then SIGKILL
# after $3/5 seconds.
stop_daemon() {
  local pidf="$DATA/run/$1.pid" pid i
  alive "$pidf" "$2" || { rm -f "$pidf"; return 0; }
  pid="$(cat "$pidf")"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 "${3:-300}"); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidf"; return 0; }
    sleep 0.2
  done
  echo "rgw.sh: $1 (pid $pid) did not stop; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidf"
}

down() {
  [ -d "$DATA" ] || return 0
  DATA="$(cd "$DATA" && pwd)"
  # radosgw hangs in its shutdown when the mon or the osd is gone: do not wait long for it then.
  if alive "$DATA/run/mon.a.pid" ceph-mon && alive "$DATA/run/osd.0.pid" ceph-osd; then
    stop_daemon "$RGW_NAME" radosgw 100
  else
    stop_daemon "$RGW_NAME" radosgw 10
  fi
  stop_daemon osd.0 ceph-osd 300
  stop_daemon mon.a ceph-mon 150
}

case "${1:-}" in
  up)
    [ $# -eq 3 ] || usage
    DATA=$2
    up "$3"
    ;;
  down)
    [ $# -eq 2 ] || usage
    DATA=$2
    down
    echo "down"
    ;;
  install)
    [ $# -eq 1 ] || usage
    install
    ;;
  *) usage ;;
esac
