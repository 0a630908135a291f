#!/usr/bin/env bash
# agave_elastic loses one of three "hosts" (network namespaces on a bridge, each with its own
# hostname; mpirun's rsh agent is `ip netns exec`, MPI over TCP on the bridge only, as in
# netns_two_hosts_test.sh) and continues on the other two. Variant (argument):
#   partition  host c's port is taken off the bridge after the step-20 checkpoint: its rank and
#              daemon live on, unreachable; mpirun waits for that daemon until killed;
#   kill       every process of host c is SIGKILLed and its port taken off (a crashed node);
#   below-min  the partition with --ranks 3:3: two hosts left are too few;
#   budget     the partition with --max-restarts 0: no restart left.
# The two negative variants pass when agave_elastic exits 1 with one error line within
# cluster.timeout_seconds + 10 s of the fault, after one generation, leaving no process behind.
# 3 hosts x 1 rank, a tiny Fashion-MNIST config, batch 6, 40 steps, checkpoints every 10. Pass:
#   - generation 2 logs its first step within 20 s of the fault, on hosts a and b, 2 ranks,
#     resuming from the newest complete checkpoint before the fault; exactly one restart; exit 0;
#   - every tensor of the final checkpoint, and summary.json (but its wall-clock seconds), are
#     bit-identical to a plain `mpirun -np 2` resume of a copy of that checkpoint;
#   - no process is left in host a's and b's namespaces.
# The namespaces, veths and every process in them are removed on every exit. Exit 77 (CTest's
# skip) with the reason when not root, without iproute2, or without network namespaces.
# Environment: AGAVE_SOURCE_DIR, AGAVE_BIN_DIR, AGAVE_NETNS_KEEP=1 keeps the scratch folder.
set -euo pipefail

# shellcheck source=tests/common/shell_test.sh
. "$(dirname "$0")/../common/shell_test.sh"
started=$(date +%s)
variant=${1:-partition}
ranks=2:3 restarts=2
case $variant in
  partition | kill) ;;
  below-min) ranks=3:3 ;;
  budget) restarts=0 ;;
  *) fail "unknown variant '$variant' (partition, kill, below-min or budget)" ;;
esac

[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces"
for b in ip unshare mpirun python3 timeout; do
  command -v "$b" >/dev/null 2>&1 || skip "$b not found"
done
elastic=$bin_dir/agave_elastic
[ -x "$trainer" ] || skip "$trainer not built"
[ -x "$elastic" ] || skip "$elastic not built"
/usr/bin/python3 -c 'import h5py' 2>/dev/null || skip "python3-h5py not installed"
require_fashion_mnist

id=$$
hosts=(a b c)
ns_br=agave-br-$id
subnet=198.18.1.0/24
work=$(mktemp -d /tmp/agave-netns-elastic.XXXXXX)
ns_of() { echo "agave-$1-$id"; }
addr_of() { case $1 in a) echo 198.18.1.1 ;; b) echo 198.18.1.2 ;; c) echo 198.18.1.3 ;; esac; }

cleanup() {
  local rc=$?
  remove_netns "$(ns_of a)" "$(ns_of b)" "$(ns_of c)" "$ns_br"
  finish_scratch "$rc" "$work"
  echo "(netns elastic, $variant: $(($(date +%s) - started)) s)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The bridge lives in a namespace of its own; each host's veth has its peer there, as its port.
ip netns add "$ns_br" 2>"$work/netns.err" || skip "ip netns add not permitted: $(cat "$work/netns.err")"
ip -n "$ns_br" link add br0 type bridge
ip -n "$ns_br" link set br0 up
for h in "${hosts[@]}"; do
  ns=$(ns_of "$h")
  ip netns add "$ns"
  ip link add "agv$id$h" type veth peer name "agv${id}p$h"
  ip link set "agv$id$h" netns "$ns"
  ip link set "agv${id}p$h" netns "$ns_br"
  ip -n "$ns_br" link set "agv${id}p$h" master br0 up
  ip -n "$ns" addr add "$(addr_of "$h")/24" dev "agv$id$h"
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "agv$id$h" up
done

cat >"$work/agent.sh" <<EOF
#!/bin/sh
host=\$1
shift
case \$host in
  $(addr_of a)) h=a ;;
  $(addr_of b)) h=b ;;
  $(addr_of c)) h=c ;;
  *) echo "agent: unknown host \$host" >&2; exit 255 ;;
esac
exec ip netns exec "agave-\$h-$id" unshare --uts /bin/sh -c "hostname agave-host-\$h && \$*"
EOF
chmod +x "$work/agent.sh"
# Discovery as a scheduler's node list would do it: the hosts whose port is on the bridge.
cat >"$work/discover.sh" <<EOF
#!/bin/sh
for h in a b c; do
  case \$h in a) addr=$(addr_of a) ;; b) addr=$(addr_of b) ;; c) addr=$(addr_of c) ;; esac
  ip -n $ns_br link show "agv${id}p\$h" | grep -q 'master br0' && echo "\$addr slots=1"
done
exit 0
EOF
chmod +x "$work/discover.sh"

# shellcheck source=scripts/mpi-env.sh
. "$src/scripts/mpi-env.sh"
{
  tiny_model_yaml "$work"
  cat <<EOF
train: {batch_size: 6, steps: 40}
eval: {importance_samples: 2, subset: 6, final_subset: 6, batch_size: 6, sample_images: 0}
checkpoint: {every: 10, keep: 10}
monitoring: {log_every: 1, progress: plain, prometheus: false}
cluster: {timeout_seconds: 3, threads_per_rank: 1}
EOF
} >"$work/tiny.yaml"
mpirun_cmd="mpirun --mca plm_rsh_agent $work/agent.sh --mca btl tcp,self \
--mca btl_tcp_if_include $subnet --mca oob_tcp_if_include $subnet"
stamp() { while IFS= read -r l; do printf '%s %s\n' "$(date +%s.%N)" "$l"; done; }

# agave_elastic on host a, as a user would start it there.
(
  cd "$work"
  rc=0
  timeout 240 ip netns exec "$(ns_of a)" unshare --uts /bin/sh -c 'hostname agave-host-a && exec "$@"' \
    sh "$elastic" --ranks "$ranks" --max-restarts "$restarts" --discover "$work/discover.sh" --grace 1 \
    --state-dir "$work/state" \
    --mpirun "$mpirun_cmd" -- "$trainer" "$work/tiny.yaml" 2>&1 || rc=$? # not set -e's exit
  echo "agave_elastic exit $rc"
) | stamp >"$work/elastic.log" &

latest() { cat "$work/runs/tiny/checkpoints/latest" 2>/dev/null || true; }
for _ in $(seq 1200); do
  [ "$(latest)" != step-00000020 ] || break
  sleep 0.1
done
[ "$(latest)" = step-00000020 ] || fail "no step-20 checkpoint within 120 s"
fault_at=$(date +%s.%N)
if [ "$variant" = kill ]; then
  for pid in $(ip netns pids "$(ns_of c)"); do kill -9 "$pid" 2>/dev/null || true; done
fi
ip -n "$ns_br" link set "agv${id}pc" nomaster
before_fault=$(latest)
echo "fault ($variant) on host c at $(grep -o 'step [0-9]*/40' "$work/elastic.log" | tail -1); newest checkpoint $before_fault"

# Not `wait`: the cut-off host's rank lives on, holding the log pipe open.
for _ in $(seq 2400); do
  ! grep -q 'agave_elastic exit' "$work/elastic.log" || break
  sleep 0.1
done
grep 'agave_elastic' "$work/elastic.log" | cut -d' ' -f2-
# A host's daemon ends once it sees mpirun's connection close: give it 10 s.
no_process_left() {
  local h left
  for h in a b; do
    for _ in $(seq 100); do
      left=$(ip netns pids "$(ns_of "$h")")
      [ -n "$left" ] || break
      sleep 0.1
    done
    [ -z "$left" ] || fail "processes left on host $h: $(ps -o pid,args -p "$(echo "$left" | paste -sd,)")"
  done
}
if [ "$variant" = below-min ] || [ "$variant" = budget ]; then
  grep -q '^[0-9.]* agave_elastic exit 1$' "$work/elastic.log" || fail "agave_elastic did not exit 1"
  [ "$(grep -c 'agave_elastic: error: ' "$work/elastic.log")" -eq 1 ] || fail "not exactly one error line"
  [ "$(grep -c 'agave_elastic: generation ' "$work/elastic.log")" -eq 1 ] || fail "a generation was started again"
  expected='no rank count in 3..3'
  [ "$variant" = below-min ] || expected='restart budget of 0 spent'
  grep -q "agave_elastic: error: .*$expected" "$work/elastic.log" || fail "the error line does not say '$expected'"
  ended=$(grep 'agave_elastic exit' "$work/elastic.log" | cut -d' ' -f1)
  delay=$(python3 -c "print(f'{$ended - $fault_at:.1f}')")
  echo "agave_elastic ended $delay s after the fault"
  python3 -c "import sys; sys.exit(0 if $ended - $fault_at <= 3 + 10 else 1)" ||
    fail "agave_elastic ended $delay s after the fault (> cluster.timeout_seconds + 10 s)"
  no_process_left
  echo "PASSED after $(($(date +%s) - started)) s"
  exit 0
fi
grep -q '^[0-9.]* agave_elastic exit 0$' "$work/elastic.log" || fail "agave_elastic did not exit 0"
[ "$(grep -c 'agave_elastic: generation ' "$work/elastic.log")" -eq 2 ] || fail "not exactly one restart"
gen2=$(grep 'agave_elastic: generation 2: ' "$work/elastic.log")
resume_step=$((10#${before_fault#step-}))
echo "$gen2" | grep -q "hosts $(addr_of a), $(addr_of b)[ ,].*2 rank(s), resuming from step $resume_step;" ||
  fail "generation 2 is not 2 ranks on a and b from step $resume_step: $gen2"
grep -q "resumed from .*$before_fault at step $resume_step (written by 3 rank(s), now 2" "$work/elastic.log" ||
  fail "the trainer did not resume $before_fault's 3-rank checkpoint on 2 ranks"
first_step=$(awk -v g="$(echo "$gen2" | cut -d' ' -f1)" '$1 > g && / step [0-9]+\/40 / {print $1; exit}' "$work/elastic.log")
[ -n "$first_step" ] || fail "generation 2 logged no step"
delay=$(python3 -c "print(f'{$first_step - $fault_at:.1f}')")
echo "generation 2's first step $delay s after the fault"
python3 -c "import sys; sys.exit(0 if $first_step - $fault_at <= 20 else 1)" ||
  fail "generation 2's first step came $delay s after the fault (> 20 s)"
no_process_left

! ls -d "$work"/.agave-elastic.* 2>/dev/null || fail "agave_elastic left its state folder"
# Both ranks that timed out waiting for host c reported it (each waits 1 s after writing its
# report before it aborts the job, so the other's is not cut short): the vote had two voices.
if [ "$variant" = partition ]; then
  for r in 0 1; do
    [ -f "$work/state/failures-1/failure-rank-$r.json" ] || fail "rank $r wrote no failure report"
  done
fi

# The reference: a plain 2-rank resume of a copy of that checkpoint.
mkdir -p "$work/copy"
cp -r "$work/runs/tiny/checkpoints/$before_fault" "$work/copy/"
mpirun -np 2 --oversubscribe "$trainer" "$work/tiny.yaml" --set "run.output_dir=$work/ref" \
  --resume "$work/copy/$before_fault" >"$work/reference.log" 2>&1 || fail "the reference resume failed"
"$src/tests/trainer/compare_checkpoints.py" "$work/runs/tiny/checkpoints/step-00000040" \
  "$work/ref/tiny/checkpoints/step-00000040" || fail "the final checkpoints differ"
python3 - "$work/runs/tiny/summary.json" "$work/ref/tiny/summary.json" <<'EOF' || fail "summary.json differs"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for s in (a, b):
    s.pop("seconds")
assert a == b, (a, b)
print("summary.json identical but its seconds")
EOF
echo "PASSED after $(($(date +%s) - started)) s"
