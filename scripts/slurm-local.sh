#!/usr/bin/env bash
# A throw-away one-node Slurm cluster on this machine, for tests: munged + slurmctld + slurmd as
# root, everything (config, keys, sockets, state, logs) in one folder.
#
#   scripts/slurm-local.sh start [DIR]   start; prints DIR; waits until the node is idle
#   scripts/slurm-local.sh env DIR       prints `export SLURM_CONF=...` for eval
#   scripts/slurm-local.sh stop DIR      cancel jobs, stop the daemons, kill what they left, rm DIR
#   scripts/slurm-local.sh logs DIR      prints the daemons' logs (for failed tests)
#
# Several clusters can run side by side (tests in parallel): each gets its own munge socket,
# its own ports and its own state. Daemons are started directly (no systemd in containers).
# Environment: AGAVE_SLURM_CPUS (default 2), AGAVE_SLURM_GPUS (fake GPU GRES count, default 2),
# AGAVE_SLURM_KEEP=1 keeps DIR on stop, AGAVE_SLURM_START_TIMEOUT (seconds, default 60).
set -euo pipefail

die() {
  echo "slurm-local: $*" >&2
  exit 1
}

usage() {
  sed -n '5,9p' "$0" | sed 's/^# *//' >&2
  exit 2
}

# Every process the cluster starts inherits this marker (daemons, slurmstepd, job tasks that
# keep the submitter's environment), so stop can find exactly ours and nothing else.
marker() { echo "AGAVE_SLURM_INSTANCE=$1"; }

free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 30000))
    if ! ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
      echo "$port"
      return 0
    fi
  done
  die "no free TCP port found"
}

write_config() {
  local dir=$1 node=$2 cpus=$3 gpus=$4 ctld_port=$5 slurmd_port=$6
  local gres_line="" gres_types=""
  if [ "$gpus" -gt 0 ]; then
    # GPUs without device files: Slurm schedules --gpus-per-node against the count, so the real
    # GPU job scripts run unchanged on a machine without GPUs.
    gres_types="GresTypes=gpu"
    gres_line="Gres=gpu:$gpus"
    # slurmd counts GPUs by their device files (character devices); /dev/null stands in for them.
    mkdir -p "$dir/dev"
    local i
    for ((i = 0; i < gpus; i++)); do ln -sf /dev/null "$dir/dev/gpu$i"; done
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/gpu[0-%s]\n' \
      "$node" "$dir" "$((gpus - 1))" >"$dir/gres.conf"
  fi
  cat >"$dir/slurm.conf" <<EOF
ClusterName=agavelocal
SlurmctldHost=$node
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
JobRequeue=1
ReturnToService=2
KillWait=30
MinJobAge=600
MailProg=/bin/true
PlugStackConfig=$dir/plugstack.conf
$gres_types
NodeName=$node CPUs=$cpus $gres_line State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  # An empty plugin stack: the system's /etc/slurm/plugstack.conf is not ours to depend on.
  : >"$dir/plugstack.conf"
}

node_state() {
  sinfo -h -N -o '%T' 2>/dev/null | head -n1
}

start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (munged, slurmctld and slurmd run as root here)"
  local b
  for b in munged slurmctld slurmd sinfo sbatch scontrol; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found (Debian packages slurm-wlm and munge)"
  done
  local dir=${1:-}
  if [ -z "$dir" ]; then dir=$(mktemp -d /tmp/agave-slurm.XXXXXX); fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
  chmod 700 "$dir" "$dir/munge"

  local node cpus gpus
  node=$(hostname -s)
  cpus=${AGAVE_SLURM_CPUS:-2}
  gpus=${AGAVE_SLURM_GPUS:-2}
  write_config "$dir" "$node" "$cpus" "$gpus" "$(free_port)" "$(free_port)"

  local m
  m=$(marker "$dir")
  export SLURM_CONF=$dir/slurm.conf

  # A fresh random key: a cluster of one host needs no shared key.
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  # --force: munged refuses root and loose folder permissions without it.
  env "$m" munged --force \
    --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" \
    --log-file="$dir/log/munged.log" ||
    die "munged did not start; see $dir/log/munged.log"

  env "$m" slurmctld -c -f "$SLURM_CONF" || die "slurmctld did not start; see $dir/log/slurmctld.log"
  env "$m" slurmd -f "$SLURM_CONF" || die "slurmd did not start; see $dir/log/slurmd.log"

  local timeout=${AGAVE_SLURM_START_TIMEOUT:-60} waited=0 state=""
  while [ "$waited" -lt "$((timeout * 2))" ]; do
    state=$(node_state || true)
    case $state in
      idle | idle~ | mixed) break ;;
      inval* | fail*) break ;;
      down* | drain*)
        # ReturnToService=2 should bring it back; nudge it in case the first registration raced.
        scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
    waited=$((waited + 1))
  done
  case $state in
    idle | idle~ | mixed) ;;
    *)
      echo "slurm-local: node $node is '${state:-unknown}' after ${timeout}s" >&2
      logs "$dir" >&2 || true
      stop "$dir" || true
      exit 1
      ;;
  esac
  echo "$dir"
}

pid_of() {
  local f=$1
  [ -s "$f" ] && cat "$f"
}

# kill_and_wait SIGNAL SECONDS PID...: signal, then wait until gone or the time is up.
kill_and_wait() {
  local sig=$1 seconds=$2
  shift 2
  local p
  for p in "$@"; do kill "-$sig" "$p" 2>/dev/null || true; done
  local i
  for ((i = 0; i < seconds * 10; i++)); do
    local alive=0
    for p in "$@"; do
      if kill -0 "$p" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" -eq 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# The processes carrying this cluster's marker, except this script and its parents.
marked_pids() {
  local m=$1 p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = "$$" ] && continue
    [ "$p" = "$BASHPID" ] && continue
    if tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qxF "$m"; then echo "$p"; fi
  done
}

stop() {
  local dir=${1:-}
  [ -n "$dir" ] || usage
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  export SLURM_CONF=$dir/slurm.conf
  local ctld slurmd munged
  ctld=$(pid_of "$dir/slurmctld.pid" || true)
  slurmd=$(pid_of "$dir/slurmd.pid" || true)
  munged=$(pid_of "$dir/munge/munged.pid" || true)

  # Jobs first, while the daemons can still end them in order.
  if [ -n "$ctld" ] && kill -0 "$ctld" 2>/dev/null; then
    local ids
    ids=$(timeout 10 squeue -h -o '%A' 2>/dev/null || true)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086  # one argument per job id
      timeout 10 scancel $ids 2>/dev/null || true
      for _ in $(seq 1 50); do
        [ -z "$(timeout 5 squeue -h -t running,completing -o '%A' 2>/dev/null || true)" ] && break
        sleep 0.2
      done
    fi
  fi

  # All at once: with the jobs gone, none of them needs the others to shut down.
  local daemons=() p
  for p in "$slurmd" "$ctld" "$munged"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then daemons+=("$p"); fi
  done
  if [ ${#daemons[@]} -gt 0 ] && ! kill_and_wait TERM 10 "${daemons[@]}"; then
    kill_and_wait KILL 5 "${daemons[@]}" || true
  fi

  # Whatever is left of jobs (slurmstepd, tasks): ours by the marker, by id.
  local left
  mapfile -t left < <(marked_pids "$(marker "$dir")")
  if [ ${#left[@]} -gt 0 ]; then
    kill_and_wait TERM 3 "${left[@]}" || kill_and_wait KILL 3 "${left[@]}" || true
  fi

  if [ "${AGAVE_SLURM_KEEP:-0}" != 1 ]; then rm -rf "$dir"; fi
}

logs() {
  local dir=${1:-}
  [ -n "$dir" ] || usage
  local f
  for f in "$dir"/log/*.log; do
    [ -f "$f" ] || continue
    echo "===== $f (last 40 lines)"
    tail -n 40 "$f"
  done
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  start) start "$@" ;;
  stop) stop "$@" ;;
  env)
    [ -n "${1:-}" ] || usage
    printf 'export SLURM_CONF=%q\nexport %s\n' "$1/slurm.conf" "$(marker "$1")"
    ;;
  logs) logs "$@" ;;
  *) usage ;;
esac
