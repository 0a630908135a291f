#!/usr/bin/env bash
# A throw-away Slurm cluster on this machine, for tests: munged + slurmctld + slurmd (one node, or
# several in network namespaces) as root, everything (config, keys, sockets, state, logs) in one folder.
#
#   scripts/slurm-local.sh start [DIR]   start; prints DIR; waits until the node is idle
#   scripts/slurm-local.sh env DIR       prints `export SLURM_CONF=...` for eval
#   scripts/slurm-local.sh stop DIR      cancel jobs, stop the daemons, kill what they left, rm DIR
#   scripts/slurm-local.sh logs DIR      prints the daemons' logs (for failed tests)
#   scripts/slurm-local.sh nodes DIR     prints one line per node: NAME NETNS ADDRESS (several nodes)
#   scripts/slurm-local.sh lose DIR NODE  node NODE fails: link down, all its processes killed
#
# Several clusters can run side by side (tests in parallel): each gets its own munge socket,
# its own ports and its own state. Daemons are started directly (no systemd in containers).
# Environment: AGAVE_SLURM_CPUS (default 2), AGAVE_SLURM_GPUS (fake GPU GRES count, default 2),
# AGAVE_SLURM_KEEP=1 keeps DIR on stop, AGAVE_SLURM_START_TIMEOUT (seconds, default 60).
#
# AGAVE_SLURM_NODES=N (N > 1) starts N nodes, one slurmd per network namespace, each with its
# own hostname (node1..nodeN, a UTS namespace), address (on a bridge in 198.19.X.0/24, X free)
# and /etc/hosts (a mount namespace), so that a node can be lost for real: its link cut or its
# processes killed. slurmctld stays in this namespace, on the bridge's address. The slurmds run
# under `nsenter --net` (not `ip netns exec`, which remounts /sys: slurmd then finds no cgroup
# fs). AGAVE_SLURM_SLURMD_TIMEOUT (seconds, default 300; 5 for tests) is how long a silent node
# stays up; the node's CPUs and GPUs default to 1 each.
set -euo pipefail

die() {
  echo "slurm-local: $*" >&2
  exit 1
}

usage() {
  sed -n '5,11p' "$0" | sed 's/^# *//' >&2
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

# write_config DIR NODES CPUS GPUS CTLD_PORT SLURMD_PORT [CTLD_ADDR]: NODES is one node's name,
# or $dir/nodes's lines (NAME NETNS ADDRESS) for several.
write_config() {
  local dir=$1 nodes=$2 cpus=$3 gpus=$4 ctld_port=$5 slurmd_port=$6 ctld_addr=${7:-}
  local node names
  node=$(hostname -s)
  names=$(echo "$nodes" | awk '{print $1}' | paste -sd,)
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
      "$names" "$dir" "$((gpus - 1))" >"$dir/gres.conf"
  fi
  local ctld_host=$node node_lines="" slurmd_files="slurmd" spool=$dir/spool tmp_fs="" timeout=${AGAVE_SLURM_SLURMD_TIMEOUT:-300}
  if [ -n "$ctld_addr" ]; then
    ctld_host="$node($ctld_addr)"
    # One slurmd per node, sharing this folder: each its own pid file, log and spool.
    slurmd_files="slurmd-%n"
    spool=$dir/spool/%n
    # The nodes share one file system: PMIx's per-step folders (under TmpFS) must not collide.
    tmp_fs="TmpFS=$dir/tmp/%n"
    local name ns addr
    while read -r name ns addr; do
      node_lines+="NodeName=$name NodeHostname=$name NodeAddr=$addr CPUs=$cpus $gres_line State=UNKNOWN"$'\n'
    done <<<"$nodes"
  else
    node_lines="NodeName=$node CPUs=$cpus $gres_line State=UNKNOWN"
  fi
  cat >"$dir/slurm.conf" <<EOF
ClusterName=agavelocal
SlurmctldHost=$ctld_host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/$slurmd_files.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/$slurmd_files.log
SlurmdTimeout=$timeout
$tmp_fs
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
$node_lines
PartitionName=local Nodes=$names Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  # An empty plugin stack: the system's /etc/slurm/plugstack.conf is not ours to depend on.
  : >"$dir/plugstack.conf"
}

# make_network DIR COUNT: COUNT network namespaces on a bridge with a free 198.19.X.0/24 (the
# bridge .254, node I .I); writes DIR/network (BRIDGE ADDRESS) and DIR/nodes (NAME NETNS ADDRESS).
make_network() {
  local dir=$1 count=$2 x="" i
  for i in $(seq 1 200); do
    i=$((1 + RANDOM % 254))
    if ! ip -4 -o addr show | grep "198\.19\.$i\." >/dev/null; then
      x=$i
      break
    fi
  done
  [ -n "$x" ] || die "no free 198.19.X.0/24 subnet found"
  # Interface names are at most 15 characters; the process id keeps them unique per cluster.
  local id=$$ bridge=agsb$$
  echo "$bridge 198.19.$x.254" >"$dir/network"
  ip link add "$bridge" type bridge
  ip addr add "198.19.$x.254/24" dev "$bridge"
  ip link set "$bridge" up
  : >"$dir/nodes"
  for ((i = 1; i <= count; i++)); do
    local ns=agave-slurm-$id-$i
    echo "node$i $ns 198.19.$x.$i" >>"$dir/nodes"
    mkdir -p "$dir/spool/node$i" "$dir/tmp/node$i"
    ip netns add "$ns"
    ip link add "agsv${id}n$i" type veth peer name "agsp${id}n$i"
    ip link set "agsv${id}n$i" master "$bridge" up
    ip link set "agsp${id}n$i" netns "$ns"
    ip -n "$ns" addr add "198.19.$x.$i/24" dev "agsp${id}n$i"
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "agsp${id}n$i" up
  done
  # Each node's view of the names: the controller (this host's name) and every node.
  {
    echo "127.0.0.1 localhost"
    echo "198.19.$x.254 $(hostname -s)"
    awk '{print $3, $1}' "$dir/nodes"
  } >"$dir/hosts"
}

# start_slurmd DIR MARKER NAME NETNS: slurmd as node NAME in its namespace, with its hostname and
# its /etc/hosts (a private mount namespace, so the host's file stays untouched).
start_slurmd() {
  local dir=$1 m=$2 name=$3 ns=$4
  # shellcheck disable=SC2016  # expanded by the node's shell
  nsenter --net="/var/run/netns/$ns" unshare --uts --mount --propagation private \
    sh -c 'mount --bind "$1/hosts" /etc/hosts && hostname "$2" && exec env "$3" slurmd -f "$1/slurm.conf" -N "$2"' \
    sh "$dir" "$name" "$m"
}

# all_nodes_idle COUNT: prints the states when not all COUNT nodes are idle yet.
all_nodes_idle() {
  local states
  states=$(sinfo -h -N -o '%N %T' 2>/dev/null | sort -u)
  [ "$(echo "$states" | grep -c ' idle$')" -eq "$1" ] && return 0
  if [ -n "$states" ]; then echo "$states" | paste -sd' '; else echo "no answer from sinfo"; fi
  return 1
}

start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (munged, slurmctld and slurmd run as root here)"
  local b count=${AGAVE_SLURM_NODES:-1}
  for b in munged slurmctld slurmd sinfo sbatch scontrol; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found (Debian packages slurm-wlm and munge)"
  done
  if [ "$count" -gt 1 ]; then
    for b in ip nsenter unshare; do command -v "$b" >/dev/null 2>&1 || die "$b not found"; done
  fi
  local dir=${1:-}
  if [ -z "$dir" ]; then dir=$(mktemp -d /tmp/agave-slurm.XXXXXX); fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
  chmod 700 "$dir" "$dir/munge"
  # Whatever fails from here on (a namespace, a daemon) leaves nothing behind.
  # shellcheck disable=SC2064  # dir is fixed now
  trap "stop '$dir' >/dev/null 2>&1 || true" EXIT

  local node cpus gpus ctld_addr=""
  node=$(hostname -s)
  cpus=${AGAVE_SLURM_CPUS:-2}
  gpus=${AGAVE_SLURM_GPUS:-2}
  if [ "$count" -gt 1 ]; then
    cpus=${AGAVE_SLURM_CPUS:-1}
    gpus=${AGAVE_SLURM_GPUS:-1}
    make_network "$dir" "$count"
    ctld_addr=$(awk '{print $2}' "$dir/network")
    node=$(cat "$dir/nodes")
  fi
  write_config "$dir" "$node" "$cpus" "$gpus" "$(free_port)" "$(free_port)" "$ctld_addr"

  local m
  m=$(marker "$dir")
  export SLURM_CONF=$dir/slurm.conf

  # A fresh random key: every node shares this host's munged (its socket is a file).
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  # --force: munged refuses root and loose folder permissions without it.
  env "$m" munged --force \
    --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" \
    --log-file="$dir/log/munged.log" ||
    die "munged did not start; see $dir/log/munged.log"

  env "$m" slurmctld -c -f "$SLURM_CONF" || die "slurmctld did not start; see $dir/log/slurmctld.log"
  if [ "$count" -gt 1 ]; then
    local name ns addr
    while read -r name ns addr; do
      start_slurmd "$dir" "$m" "$name" "$ns" || die "slurmd $name did not start; see $dir/log/slurmd-$name.log"
    done <"$dir/nodes"
  else
    env "$m" slurmd -f "$SLURM_CONF" || die "slurmd did not start; see $dir/log/slurmd.log"
  fi

  local timeout=${AGAVE_SLURM_START_TIMEOUT:-60} waited=0 state="" idle=0
  while [ "$waited" -lt "$((timeout * 2))" ]; do
    if state=$(all_nodes_idle "$count"); then
      idle=1
      break
    fi
    case $state in
      *inval* | *fail*) break ;;
      *down* | *drain*)
        # ReturnToService=2 should bring them back; nudge in case the first registration raced.
        scontrol update NodeName="$(sinfo -h -N -o '%N' | sort -u | paste -sd,)" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
    waited=$((waited + 1))
  done
  if [ "$idle" != 1 ]; then
    echo "slurm-local: nodes not idle after ${timeout}s: ${state:-unknown}" >&2
    logs "$dir" >&2 || true
    exit 1
  fi
  trap - EXIT
  echo "$dir"
}

# lose DIR NODE: node NODE fails as a machine does: its link goes down and every process on it
# (slurmd, step daemons, ranks) is killed at once.
lose() {
  local dir=${1:-} name=${2:-} ns="" n a
  [ -n "$name" ] || usage
  while read -r n a _; do [ "$n" = "$name" ] && ns=$a; done <"$dir/nodes"
  [ -n "$ns" ] || die "no node $name in $dir/nodes"
  ip -n "$ns" link set "$(ip -n "$ns" -o link show | awk -F': ' '$2 ~ /^agsp/ {print $2}' | cut -d@ -f1)" down
  local pids
  mapfile -t pids < <(ip netns pids "$ns")
  if [ ${#pids[@]} -gt 0 ]; then kill -9 "${pids[@]}" 2>/dev/null || true; fi
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
    if tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -xF "$m" >/dev/null; then echo "$p"; fi
  done
}

stop() {
  local dir=${1:-}
  [ -n "$dir" ] || usage
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  export SLURM_CONF=$dir/slurm.conf
  local ctld slurmd=() munged f
  ctld=$(pid_of "$dir/slurmctld.pid" || true)
  for f in "$dir"/slurmd.pid "$dir"/slurmd-*.pid; do
    if [ -f "$f" ]; then slurmd+=("$(pid_of "$f" || true)"); fi
  done
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
  for p in "${slurmd[@]}" "$ctld" "$munged"; do
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
  remove_network "$dir"

  if [ "${AGAVE_SLURM_KEEP:-0}" != 1 ]; then rm -rf "$dir"; fi
}

# remove_network DIR: the nodes' namespaces (with any process still in one), veths and bridge.
remove_network() {
  local dir=$1 name ns pids bridge=""
  [ -f "$dir/nodes" ] || return 0
  [ -f "$dir/network" ] && bridge=$(awk '{print $1}' "$dir/network")
  while read -r name ns _; do
    ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
    if [ ${#pids[@]} -gt 0 ]; then kill_and_wait KILL 3 "${pids[@]}" || true; fi
    ip netns del "$ns" 2>/dev/null || echo "slurm-local: could not delete namespace $ns ($name)" >&2
  done <"$dir/nodes"
  [ -n "$bridge" ] || return 0
  # The veths by name: a namespace outlives its name while the kernel still holds it (a closing
  # connection of a killed rank), and its veth pair with it.
  local veth
  for veth in $(ip -o link show 2>/dev/null | grep -o "agsv${bridge#agsb}n[0-9]*" | sort -u); do
    ip link del "$veth" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
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
  nodes) cat "${1:?usage: $0 nodes DIR}/nodes" ;;
  lose) lose "$@" ;;
  *) usage ;;
esac
