#!/usr/bin/env bash
# Prepares, here, what scripts/gpu-check.sh needs on the device machine, which has CUDA,
# PyTorch's LibTorch and NCCL but none of our Debian libraries, no network and no ../shared:
# - .device/debs: the .deb files of the libraries the build needs (Debian's mirror is reachable
#   here); gpu-check.sh unpacks them there with `dpkg -x` into a private prefix;
# - .device/cifar-mini: the first 128 records of each CIFAR-10 binary batch (768 images,
#   2.4 MB) from $AGAVE_CIFAR10 (default ../shared/data/cifar10), so agave_trainer can train
#   the CIFAR-default model there (the whole data set, 176 MB, is over what a device call
#   carries).
# Both are git-ignored (.device/) and travel with `carry: [.device]`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.device/debs
mkdir -p "$out"
# Headers and the shared libraries they link against (no daemons, no docs).
packages=(
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common libpmix2 libhwloc15 libevent-2.1-7
  libevent-core-2.1-7 libevent-pthreads-2.1-7 libfabric1 libucx0 libibverbs1 librdmacm1
  libnl-3-200 libnl-route-3-200 libpsm2-2 libpsm-infinipath1 libmunge2 libxnvctrl0
  libhdf5-dev libhdf5-103-1 libhdf5-hl-100 libsz2 libaec0 libaec-dev
  libyaml-cpp-dev libyaml-cpp0.7
  prometheus-cpp-dev libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0
  libprometheus-cpp-push1.0 libcivetweb1
  libcli11-dev libfmt-dev libfmt9 nlohmann-json3-dev libgtest-dev libgmock-dev googletest
)
cd "$out"
echo "gpu-deps: downloading ${#packages[@]} packages into $out"
apt-get download "${packages[@]}"
du -sh .
cd - >/dev/null
mini=.device/cifar-mini
src=${AGAVE_CIFAR10:-../shared/data/cifar10}  # as the tests: tests/common/cifar10.h
mkdir -p "$mini"
for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin \
         test_batch.bin; do
  head -c $((128 * 3073)) "$src/$f" >"$mini/$f"   # 3073-byte records: label + 3x32x32
done
cp "$src/batches.meta.txt" "$mini/"
du -sh .device/debs "$mini"
