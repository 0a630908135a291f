#!/usr/bin/env bash
# Two "hosts" on one machine: two network namespaces joined by a veth pair on a test subnet
# (198.18.0.0/24, RFC 2544 benchmarking space), each with its own hostname (UTS namespace).
# mpirun runs in the first one and starts its daemon in the second through an rsh agent that is
# `ip netns exec` instead of ssh; MPI traffic goes over TCP on the veth pair only. Checks:
#   - each rank runs in its own namespace, on its own address (a probe command);
#   - agave_trainer --dry-run sees two hosts, one rank on each (hostname, local rank 0/1);
#   - a tiny Fashion-MNIST run trains 6 steps on both, in sync, with its gradients crossing the
#     veth, and writes a complete checkpoint: manifest + 2 shards whose SHA-256 match.
# The namespaces, the veth pair and any process left in them are removed on every exit.
# Exit 77 (CTest's skip) with the reason when not root, without iproute2, or when network
# namespaces cannot be created here (containers without CAP_SYS_ADMIN).
# Environment: AGAVE_SOURCE_DIR, AGAVE_BIN_DIR (where agave_trainer is), AGAVE_NETNS_KEEP=1
# keeps the scratch folder (config, logs, run) and prints its path.
set -euo pipefail

# shellcheck source=tests/common/shell_test.sh
. "$(dirname "$0")/../common/shell_test.sh"
started=$(date +%s)

[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces"
for b in ip unshare mpirun python3 sha256sum; do
  command -v "$b" >/dev/null 2>&1 || skip "$b not found"
done
[ -x "$trainer" ] || skip "$trainer not built"
require_fashion_mnist

# Names unique to this run, so that concurrent runs do not collide (interface names <= 15).
id=$$
ns_a=agave-a-$id
ns_b=agave-b-$id
veth_a=agv${id}a
veth_b=agv${id}b
addr_a=198.18.0.1
addr_b=198.18.0.2
subnet=198.18.0.0/24
work=$(mktemp -d /tmp/agave-netns-test.XXXXXX)

cleanup() {
  local rc=$?
  remove_netns "$ns_a" "$ns_b"
  ip link del "$veth_a" 2>/dev/null || true
  finish_scratch "$rc" "$work"
  echo "(netns two hosts: $(($(date +%s) - started)) s)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns_a" 2>"$work/netns.err" || skip "ip netns add not permitted: $(cat "$work/netns.err")"
ip netns add "$ns_b"
ip link add "$veth_a" type veth peer name "$veth_b"
ip link set "$veth_a" netns "$ns_a"
ip link set "$veth_b" netns "$ns_b"
ip -n "$ns_a" addr add "$addr_a/24" dev "$veth_a"
ip -n "$ns_b" addr add "$addr_b/24" dev "$veth_b"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "$veth_a" up
ip -n "$ns_b" link set "$veth_b" up

# The rsh agent: mpirun calls it as `agent HOST COMMAND...` (as it would call ssh) to start its
# daemon on HOST; here HOST is an address, the "host" its namespace with its own hostname.
cat >"$work/agent.sh" <<EOF
#!/bin/sh
host=\$1
shift
case \$host in
  $addr_a) ns=$ns_a name=agave-host-a ;;
  $addr_b) ns=$ns_b name=agave-host-b ;;
  *) echo "agent: unknown host \$host" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" unshare --uts /bin/sh -c "hostname \$name && \$*"
EOF
chmod +x "$work/agent.sh"
printf '%s slots=1\n%s slots=1\n' "$addr_a" "$addr_b" >"$work/hosts"

# shellcheck source=scripts/mpi-env.sh
. "$src/scripts/mpi-env.sh"
# mpirun on "host a": in its namespace, with its hostname.
on_a() {
  timeout 180 ip netns exec "$ns_a" unshare --uts /bin/sh -c 'hostname agave-host-a && exec "$@"' \
    sh "$@"
}
# shellcheck disable=SC2054  # "tcp,self" is one argument
mpi=(mpirun --hostfile "$work/hosts" -np 2 --map-by node
  --mca plm_rsh_agent "$work/agent.sh"
  --mca btl tcp,self --mca btl_tcp_if_include "$subnet" --mca oob_tcp_if_include "$subnet")
[ "$(id -u)" -ne 0 ] || mpi+=(--allow-run-as-root)

# 1. Where the ranks land: namespace, address and hostname of each.
# shellcheck disable=SC2016  # expanded by the rank's shell, on its host
on_a "${mpi[@]}" sh -c 'echo "rank $OMPI_COMM_WORLD_RANK $(hostname) $(readlink /proc/self/ns/net) $(ip -4 -o addr show | grep -o "198\.18\.0\.[0-9]*")"' \
  >"$work/probe.log" 2>&1 || fail "the probe command did not run on both hosts"
sort "$work/probe.log"
r0=$(grep '^rank 0 ' "$work/probe.log") || fail "no line from rank 0"
r1=$(grep '^rank 1 ' "$work/probe.log") || fail "no line from rank 1"
[ "$(echo "$r0" | awk '{print $3, $5}')" = "agave-host-a $addr_a" ] || fail "rank 0 is not on host a: $r0"
[ "$(echo "$r1" | awk '{print $3, $5}')" = "agave-host-b $addr_b" ] || fail "rank 1 is not on host b: $r1"
[ "$(echo "$r0" | awk '{print $4}')" != "$(echo "$r1" | awk '{print $4}')" ] ||
  fail "both ranks are in the same network namespace"

# 2. The trainer's own view of the placement.
{
  tiny_model_yaml "$work"
  cat <<EOF
train: {batch_size: 4, steps: 6}
eval: {importance_samples: 2, subset: 4, final_subset: 4, batch_size: 4, sample_images: 0}
checkpoint: {every: 3, keep: 2}
monitoring: {log_every: 1, progress: plain, prometheus: false}
# One thread each: both "hosts" share this machine's cores, but each rank is alone on its node
# and would otherwise take every core.
cluster: {timeout_seconds: 60, threads_per_rank: 1}
EOF
} >"$work/tiny.yaml"
on_a "${mpi[@]}" "$trainer" --dry-run "$work/tiny.yaml" >"$work/dry-run.log" 2>&1 ||
  fail "agave_trainer --dry-run failed"
grep '^rank ' "$work/dry-run.log"
grep -q '^rank 0 (agave-host-a, local 0/1)' "$work/dry-run.log" || fail "dry run: rank 0 not alone on agave-host-a"
grep -q '^rank 1 (agave-host-b, local 0/1)' "$work/dry-run.log" || fail "dry run: rank 1 not alone on agave-host-b"

# 3. Training and a checkpoint across the two hosts.
rx_bytes() { ip -n "$ns_b" -s -j link show "$veth_b" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["bytes"])'; }
rx_before=$(rx_bytes)
t0=$(date +%s)
on_a "${mpi[@]}" "$trainer" "$work/tiny.yaml" >"$work/train.log" 2>&1 || fail "training across the two hosts failed"
rx=$(($(rx_bytes) - rx_before))
echo "trained in $(($(date +%s) - t0)) s; host b received $rx bytes over the veth"
grep -q '2 replica(s) in sync after 6 step(s)' "$work/train.log" || fail "the two ranks did not train 6 steps in sync"
# Parameters of the tiny model are ~20 KB; 6 all-reduces of the gradients alone pass that.
[ "$rx" -gt 100000 ] || fail "only $rx bytes crossed the veth: the ranks did not talk over it"
ckpt=$work/runs/tiny/checkpoints/step-00000006
[ "$(cat "$work/runs/tiny/checkpoints/latest")" = step-00000006 ] || fail "latest is not step-00000006"
ls "$ckpt"
[ "$(ls "$ckpt" | tr '\n' ' ')" = "manifest.json shard-00000-of-00002.h5 shard-00001-of-00002.h5 " ] ||
  fail "$ckpt: not manifest.json + 2 shards"
python3 - "$ckpt" <<'EOF' || fail "$ckpt: shards do not match the manifest"
import hashlib, json, os, sys
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
assert m["world_size"] == 2 and m["step"] == 6 and len(m["shards"]) == 2, m
for s in m["shards"]:
    data = open(os.path.join(d, s["file"]), "rb").read()
    assert len(data) == s["bytes"] and hashlib.sha256(data).hexdigest() == s["sha256"], s["file"]
print("manifest: step", m["step"], "world_size", m["world_size"], "both shard checksums match")
EOF
echo "PASSED after $(($(date +%s) - started)) s"
