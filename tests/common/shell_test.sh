# Sourced by the bash tests (tests/faults/netns_two_hosts_test.sh, tests/slurm/slurm_job_test.sh):
# where agave's source and binaries are, CTest's skip and failure exits, and Debian's
# Fashion-MNIST (what tests/common/fashion_mnist.h is to the C++ tests).
# shellcheck shell=bash

readonly SKIP=77
src=${AGAVE_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
bin_dir=${AGAVE_BIN_DIR:-$src/build/bin}
# shellcheck disable=SC2034  # used by the scripts that source this file
trainer=$bin_dir/agave_trainer
readonly fashion_mnist=/usr/share/datasets/fashion-mnist

skip() {
  echo "SKIPPED: $*"
  exit "$SKIP"
}
fail() {
  echo "FAILED: $*"
  exit 1
}
# The tiny model's run, data and model sections (the model of tests/common/tiny_config.h), its
# runs and shards under folder $1; a test appends its train, eval and other sections.
tiny_model_yaml() {
  cat <<EOF
run: {name: tiny, output_dir: $1/runs, seed: 3}
data: {dataset: fashion_mnist, shards: $1/fmnist}
model:
  vae: {depth: 1, width: 8, latent_channels: 2, latent_resolution: 7}
  pixelcnn: {nr_resnet: 1, nr_filters: 8, nr_logistic_mix: 2, dropout: 0.0}
aux: {resolution: 7, color_bins: 32}
EOF
}
require_fashion_mnist() {
  [ -f "$fashion_mnist/train-images-idx3-ubyte.gz" ] ||
    skip "Debian's dataset-fashion-mnist is not installed"
}
# Removes the network namespaces "$@" and every process still in them: a daemon or rank that
# outlived a test would keep its namespace alive.
remove_netns() {
  local ns pid
  for ns in "$@"; do
    ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
# A test's end, exit code $1, scratch folder $2: after a failure every *.log there is printed;
# then the folder is removed, or kept and named when AGAVE_NETNS_KEEP is set.
finish_scratch() {
  local f
  if [ "$1" -ne 0 ] && [ "$1" -ne "$SKIP" ]; then
    for f in "$2"/*.log; do
      [ -f "$f" ] || continue
      echo "===== $f"
      cat "$f"
    done
  fi
  if [ -n "${AGAVE_NETNS_KEEP:-}" ]; then echo "kept $2"; else rm -rf "$2"; fi
}
