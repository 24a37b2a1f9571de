#!/usr/bin/env bash
# A one-machine Slurm cluster for development and CI: munged + slurmctld + slurmd.
#   deployments/local-slurm/slurm.sh up       install when missing (root), configure, start, wait for idle
#   deployments/local-slurm/slurm.sh down     stop the daemons
#   deployments/local-slurm/slurm.sh status   sinfo
# Config, state and logs live under HELIXFLOW_SLURM_STATE (default .helixflow/slurm); the
# config is also copied to /etc/slurm/slurm.conf so plain sbatch/squeue find it.
# Running `up` twice is fine: running daemons are left alone.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
STATE="${HELIXFLOW_SLURM_STATE:-$ROOT/.helixflow/slurm}"
CONF="$STATE/slurm.conf"
NODE="$(hostname -s)"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
     && command -v sbatch >/dev/null; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || { echo "need root to install slurm-wlm and munge" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

write_conf() {
  local cpus mem
  cpus="$(nproc)"
  # Leave 1 GiB to the system; Slurm refuses a node that reports less than RealMemory.
  mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
  mkdir -p "$STATE/ctld" "$STATE/d" "$STATE/log"
  cat > "$CONF.tmp" <<CONF
# Written by deployments/local-slurm/slurm.sh for $NODE ($cpus CPUs, $mem MiB).
ClusterName=helixflow
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
# A node whose slurmd stops is declared down (and its jobs NODE_FAIL) after 10 s, not 5 min.
SlurmdTimeout=10
SlurmctldTimeout=10
InactiveLimit=0
KillWait=2
OverTimeLimit=0
# Finished jobs stay visible to scontrol for 10 minutes: there is no accounting here.
MinJobAge=600
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  mv "$CONF.tmp" "$CONF"
  mkdir -p /etc/slurm
  cp "$CONF" /etc/slurm/slurm.conf
}

start_munge() {
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "munged did not start" >&2
    exit 1
  fi
}

wait_idle() {
  for _ in $(seq 1 120); do
    state="$(SLURM_CONF="$CONF" sinfo -h -n "$NODE" -o %T 2>/dev/null || true)"
    case "$state" in
      idle|mixed|allocated) return 0 ;;
      down*|drain*) SLURM_CONF="$CONF" scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  echo "node $NODE not idle (state: ${state:-none}); logs in $STATE/log" >&2
  tail -5 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
  exit 1
}

up() {
  install
  write_conf
  start_munge
  if alive "$STATE/slurmctld.pid"; then
    SLURM_CONF="$CONF" scontrol reconfigure >/dev/null 2>&1 || true
  else
    slurmctld -f "$CONF"
  fi
  alive "$STATE/slurmd.pid" || slurmd -f "$CONF"
  wait_idle
  echo "slurm up: node $NODE idle; SLURM_CONF=$CONF"
}

stop() {
  local pidfile="$STATE/$1.pid"
  alive "$pidfile" || return 0
  local pid; pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

down() {
  stop slurmd
  stop slurmctld
  echo "slurm down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) SLURM_CONF="$CONF" sinfo ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
