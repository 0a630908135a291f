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
require_fashion_mnist() {
  [ -f "$fashion_mnist/train-images-idx3-ubyte.gz" ] ||
    skip "Debian's dataset-fashion-mnist is not installed"
}
