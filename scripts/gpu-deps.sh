#!/usr/bin/env bash
# Downloads (here, where Debian's mirror is reachable) the .deb files the GPU build needs on the
# device machine, which has CUDA, PyTorch's LibTorch and NCCL but none of our Debian libraries
# and no network. They land in .device/debs (git-ignored) and travel with `carry`;
# scripts/gpu-check.sh unpacks them there with `dpkg -x` into a private prefix.
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
