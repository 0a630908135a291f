#!/usr/bin/env bash
# The GPU check, run on the device machine (one H200; its image has CUDA 13.0's nvcc and
# python3 with torch 2.11.0+cu130 and the nvidia-* wheels; no network, none of our Debian
# packages):
#   here first:  scripts/gpu-deps.sh     (.deb files and a 768-image CIFAR-10 sample, .device/)
#   on device:   bash scripts/gpu-check.sh          (carry .device)
# It builds with the same install script and configuration as CI's second build
# (scripts/install-torch2.sh, `cmake --preset cuda`: pip LibTorch 2.x, CUDA ON, NCCL ON; on the
# device the install script finds the pinned torch already there and wraps that interpreter),
# then runs:
#   1. the CUDA tests: agave_cluster_tests (NCCL communicator at world size 1, the MPI ones
#      beside it) and every test binary's *Cuda*/*Gpu* tests, which GTEST_SKIP without a GPU;
#   2. agave_trainer on the CIFAR-default config with cluster.backend=nccl on cuda:0 (mpirun
#      -np 1, the carried CIFAR sample, batch 64), a few joint steps, its images/s from
#      metrics.jsonl;
#   3. the bare step (bench_train_step, batch 64) against PyTorch 2.x eager and torch.compile of
#      bench/torch_reference.py on the same GPU, bf16 autocast + channels_last.
# Everything it prints goes to $OUT/gpu-check.log as well. GPU_CHECK_STEPS (default 30) sets
# the timed steps of 3.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/agave-gpu-check}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
steps=${GPU_CHECK_STEPS:-30}
start=$(date +%s)
stage() { echo "gpu-check: [$(( $(date +%s) - start )) s] $*"; }

prefix=$PWD/.device/prefix
if compgen -G ".device/debs/*.deb" >/dev/null; then
  mkdir -p "$prefix"
  for deb in .device/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
  stage "unpacked $(ls .device/debs/*.deb | wc -l) packages into $prefix"
fi
multiarch=$prefix/usr/lib/x86_64-linux-gnu
export PATH=$prefix/usr/bin:$PATH
export LD_LIBRARY_PATH=$multiarch:$multiarch/openmpi/lib:$multiarch/hdf5/serial:${LD_LIBRARY_PATH:-}
# A relocated Open MPI finds its help files and components through OPAL_PREFIX.
export OPAL_PREFIX=$prefix/usr/lib/x86_64-linux-gnu/openmpi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# The same install script as CI. If the device image moved on from the pinned torch, accept its
# torch 2.x with CUDA rather than lose the session (the log says which version was used).
AGAVE_TORCH2_ACCEPT_SYSTEM=1 scripts/install-torch2.sh >/dev/null
py=$PWD/.venv-torch2/bin/python
cuda_root=/usr/local/cuda
[[ -x $cuda_root/bin/nvcc ]] || cuda_root=$(dirname "$(dirname "$(command -v nvcc)")")
stage "torch $("$py" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)'), nvcc in $cuda_root"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# The same configuration as CI (`cmake --preset cuda`), plus where the unpacked .debs live.
cmake --preset cuda -B build-gpu -DAGAVE_TORCH_PYTHON="$py" -DAGAVE_CUDA_ROOT="$cuda_root" \
  -DCMAKE_PREFIX_PATH="$prefix/usr;$multiarch/cmake" \
  -DMPI_HOME="$multiarch/openmpi" -DHDF5_ROOT="$multiarch/hdf5/serial"
cmake --build build-gpu -j "$(nproc)"
stage "configured and built every target"

stage "CUDA tests (NCCL at world size 1)"
fails=0
mpirun -np 1 build-gpu/tests/bin/agave_cluster_tests || fails=$((fails + 1))
for t in build-gpu/tests/bin/agave_*_tests; do
  [[ $t = */agave_cluster_tests ]] && continue
  filter=$("$t" --gtest_list_tests | awk '/^[^ ]/ {s=$1} /^  / {n=s $1; if (n ~ /Cuda|Gpu|CUDA|GPU/) print n}' | paste -sd: -)
  [[ -n $filter ]] || continue
  echo "gpu-check: $t --gtest_filter=$filter"
  "$t" --gtest_filter="$filter" || fails=$((fails + 1))
done
stage "CUDA tests done, $fails binaries failed"

stage "agave_trainer, CIFAR-default model, cluster.backend=nccl, cuda:0, batch 64, $steps steps"
work=$(mktemp -d)
if [[ -f .device/cifar-mini/data_batch_1.bin ]]; then
  mpirun -np 1 build-gpu/bin/agave_trainer configs/cifar10_agave.yaml \
    --set data.source="$PWD/.device/cifar-mini" --set data.shards="$work/shards" \
    --set run.output_dir="$work/runs" --set run.name=gpu --set cluster.backend=nccl \
    --set train.batch_size=64 --set "train.phases=[{name: joint, steps: $((steps + 5))}]" \
    --set monitoring.log_every=5 --set monitoring.prometheus=false --set monitoring.progress=plain \
    --set eval.subset=64 --set eval.final_subset=64 --set eval.sample_images=0 --set eval.importance_samples=1 \
    --set checkpoint.every=0 --set checkpoint.keep=1 2>&1 | tail -20 || fails=$((fails + 1))
  python3 - "$work/runs/gpu/metrics.jsonl" <<'PY' | tee "$out/trainer.txt" || fails=$((fails + 1))
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows = [r for r in rows if r.get("event") == "train"][1:]
print(f"gpu-check: agave_trainer (NCCL) images/s: {sum(r['images_per_second'] for r in rows) / len(rows):.1f}")
PY
else
  echo "gpu-check: no .device/cifar-mini (run scripts/gpu-deps.sh here and carry .device)"
  fails=$((fails + 1))
fi

stage "bare step: agave vs PyTorch eager and torch.compile, batch 64, $steps steps"
build-gpu/bin/bench_train_step --config configs/cifar10_agave.yaml --device cuda --batch 64 \
  --steps "$steps" | tee "$out/agave.txt"
"$py" bench/torch_reference.py --device cuda --batch 64 --steps "$steps" | tee "$out/eager.txt"
"$py" bench/torch_reference.py --device cuda --batch 64 --steps "$steps" --compile \
  | tee "$out/compiled.txt"
python3 - "$out/agave.txt" "$out/eager.txt" "$out/compiled.txt" <<'PY'
import re, sys
def ips(path):
    m = re.findall(r"([0-9.]+) images/s|images/s: ([0-9.]+)", open(path).read())
    m = [a or b for a, b in m]
    return float(m[-1]) if m else float("nan")
a, e, c = (ips(p) for p in sys.argv[1:4])
print(f"gpu-check: agave {a:.1f} images/s; PyTorch eager {e:.1f} (agave/eager {a / e:.2f}); "
      f"torch.compile {c:.1f} (agave/compiled {a / c:.2f})")
PY
stage "done, $fails failure(s)"
exit $(( fails > 0 ))
