#!/usr/bin/env bash
# Installs every Debian package that agave's build, tests and quickstart need.
# Idempotent: packages already installed are skipped; apt-get update runs only when
# something is missing (a fresh machine's package lists may be empty or stale).
set -euo pipefail

PACKAGES=(
  # build
  cmake g++ ninja-build pkg-config
  libtorch-dev libopenmpi-dev openmpi-bin libhdf5-dev libyaml-cpp-dev
  prometheus-cpp-dev libgtest-dev libgmock-dev
  libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev libssl-dev libpng-dev zlib1g-dev
  # data: the embedded default data set; h5py to check shards are readable by Python users
  dataset-fashion-mnist python3 python3-h5py python3-numpy
  # PyTorch: scripts/agave_to_torch.py, python/agave_model.py and their test
  python3-torch
  # servers used by the integration tests
  slurm-wlm munge prometheus
  # tools the tests and docs use
  gnuplot-nox curl procps ca-certificates
)

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps: not root and no sudo; run as root or install sudo" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    continue
  fi
  missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: missing ${#missing[@]} package(s): ${missing[*]}"
echo "install-deps: apt-get update"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
echo "install-deps: apt-get install ${missing[*]}"
# Services installed here (munge, slurm, prometheus) must not be started by the package
# scripts inside containers without an init system; tests start what they need themselves.
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
