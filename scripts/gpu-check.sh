#!/usr/bin/env bash
# The GPU check, run on the device machine (one H200, CUDA, PyTorch with its CUDA LibTorch and
# NCCL; no network, none of our Debian packages):
#   run: scripts/gpu-deps.sh here first, then on the device:
#   bash scripts/gpu-check.sh            (carry .device/debs)
# It unpacks the carried .debs into a private prefix, configures the project against PyTorch's
# CUDA LibTorch with NCCL, builds, runs the CUDA tests (NCCL at world size 1), trains the
# CIFAR-default model for a fixed number of steps and prints images/s, GPU memory and the ratio
# to the same-size model's forward+backward in PyTorch Python (bench/torch_reference.py).
# Everything it prints goes to $OUT/gpu-check.log as well.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/agave-gpu-check}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
steps=${GPU_CHECK_STEPS:-30}
start=$(date +%s)

prefix=$PWD/.device/prefix
if compgen -G ".device/debs/*.deb" >/dev/null; then
  mkdir -p "$prefix"
  for deb in .device/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
  echo "gpu-check: unpacked $(ls .device/debs/*.deb | wc -l) packages into $prefix"
fi
multiarch=$prefix/usr/lib/x86_64-linux-gnu
export PATH=$prefix/usr/bin:$PATH
export LD_LIBRARY_PATH=$multiarch:$multiarch/openmpi/lib:$multiarch/hdf5/serial:${LD_LIBRARY_PATH:-}
# A relocated Open MPI finds its help files and components through OPAL_PREFIX.
export OPAL_PREFIX=$prefix/usr/lib/x86_64-linux-gnu/openmpi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
nccl_root=$(python3 -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) + "/nccl" if False else list(nvidia.nccl.__path__)[0])' 2>/dev/null || echo /usr/local/cuda)
echo "gpu-check: torch $(python3 -c 'import torch; print(torch.__version__, torch.version.cuda)'), NCCL from $nccl_root"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr;$multiarch/cmake" \
  -DMPI_HOME="$multiarch/openmpi" -DHDF5_ROOT="$multiarch/hdf5/serial" \
  -DNCCL_ROOT="$nccl_root" -DAGAVE_WARNINGS_AS_ERRORS=ON -DAGAVE_BUILD_BENCH=ON
cmake --build build-gpu -j "$(nproc)" --target agave_trainer agave_cluster_tests bench_train_step
echo "gpu-check: build took $(( $(date +%s) - start )) s"

echo "gpu-check: CUDA tests (NCCL, world size 1)"
mpirun -np 1 build-gpu/bin/agave_cluster_tests --gtest_filter='Nccl*:MpiCommunicator.*:GradientBucketer.*'

echo "gpu-check: CIFAR-default model, $steps steps on cuda:0"
build-gpu/bin/bench_train_step --config configs/cifar10_agave.yaml --device cuda --batch 64 \
  --steps "$steps" | tee "$out/agave.txt"
python3 bench/torch_reference.py --steps "$steps" | tee "$out/torch.txt"
python3 - "$out/agave.txt" "$out/torch.txt" <<'PY'
import re, sys
def ips(path):
    m = re.findall(r"([0-9.]+) images/s|images/s: ([0-9.]+)", open(path).read())
    m = [a or b for a, b in m]
    return float(m[-1]) if m else float("nan")
a, t = ips(sys.argv[1]), ips(sys.argv[2])
print(f"gpu-check: agave {a:.1f} images/s, PyTorch Python {t:.1f} images/s, ratio {a / t:.2f}")
PY
echo "gpu-check: done in $(( $(date +%s) - start )) s"
