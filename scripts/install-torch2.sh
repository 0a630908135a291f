#!/usr/bin/env bash
# Installs PyTorch 2.x with CUDA (pinned in scripts/torch2-requirements.txt) into a virtual
# environment inside the project (.venv-torch2/, git-ignored) and prints, as the last line on
# stdout, the CMake prefix of its LibTorch (torch.utils.cmake_prefix_path); everything else goes
# to stderr, so `prefix=$(scripts/install-torch2.sh)` works. Used by the second build
# configuration (`cmake --preset cuda`, scripts/build-cuda.sh), .ci/run, bench/run and
# scripts/gpu-check.sh. The README's two commands use Debian's LibTorch 1.13 and never run this.
#
# Why torch 2.11.0 and this CUDA pairing:
# - PyPI's torch 2.11.0 is built against CUDA 13.0 (torch.version.cuda == "13.0"). Its CMake
#   config (Caffe2's cuda.cmake) enables the CUDA language and stops unless nvcc's version equals
#   the toolkit's, so it needs an nvcc of the same major. /usr/local/cuda on these machines is
#   CUDA 13.0 (nvcc V13.0.88, the same build as the nvidia-cuda-nvrtc 13.0.88 wheel), so the
#   local toolkit configures cleanly and no nvcc wheel is needed. Newer torch (2.15.0) is
#   built against CUDA 13.2; its wheels would then disagree with the local nvcc.
# - The device machine's image has exactly torch 2.11.0+cu130 with nvcc 13.0, so the GPU check
#   builds and benchmarks against the same LibTorch that CI compiles against.
#
# Why the whole wheel set (cuDNN included, ~3 GB unpacked): libtorch_cuda.so has DT_NEEDED
# entries on cudart, cuBLAS(Lt), cuDNN, cuFFT, cuRAND, cuSPARSE, cuSPARSELt, cuFile, NCCL and
# libtorch_nvshmem.so (nvshmem), found through its RPATH $ORIGIN/../../nvidia/...; every agave
# binary links libtorch_cuda, so even the CPU tests cannot start without all of them. The local
# toolkit lacks cuSPARSELt, cuFile and nvshmem, and mixing two copies of one library is worse
# than the disk; the wheel folder below makes a rerun on the same machine download nothing.
#
# Idempotent: a stamp records the requirements file's checksum; when it matches and torch
# imports, nothing is installed. Where the interpreter already has the pinned torch with CUDA
# (the device machine, which has no network), the environment is a wrapper around that
# interpreter instead of a pip install.
#
# PyPI slowness: only the first run on a machine downloads (into the wheel folder, see below);
# pip retries each request (--retries 10, --timeout 60) and the whole download is retried twice
# more after a pause; exit code 3 means PyPI could not be reached at all, so a caller (.ci/run)
# can tell "no network" from a broken install (exit 1).
#
# Environment: AGAVE_TORCH2_ACCEPT_SYSTEM (see below), AGAVE_TORCH2_VENV (default <project>/.venv-torch2), PYTHON (default python3),
#              AGAVE_WHEEL_CACHE (default ~/.cache/agave-torch2-wheels).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${AGAVE_TORCH2_VENV:-$root/.venv-torch2}
req=$root/scripts/torch2-requirements.txt
python=${PYTHON:-python3}
stamp=$venv/.agave-torch2-stamp
want=$(sha256sum "$req" | cut -d' ' -f1)
torch_pin=$(sed -n 's/^torch==//p' "$req")
log() { echo "install-torch2: $*" >&2; }
start=$(date +%s)

# Prints torch's version, CUDA version and CMake prefix, or fails.
probe() {
  "$1" -c 'import torch, torch.utils; print(torch.__version__.split("+")[0], torch.version.cuda, torch.utils.cmake_prefix_path)' 2>/dev/null
}

finish() {  # finish PYTHON
  local info version cuda prefix
  info=$(probe "$1") || { log "torch does not import with $1"; exit 1; }
  read -r version cuda prefix <<<"$info"
  if [[ $version != "$torch_pin" || $cuda = None ]]; then
    log "expected torch $torch_pin with CUDA, found $version (CUDA $cuda)"
    exit 1
  fi
  log "torch $version, CUDA $cuda, in $venv ($(( $(date +%s) - start )) s)"
  echo "$prefix"
}

if [[ -f $stamp && $(cat "$stamp") = "$want" ]] && probe "$venv/bin/python" >/dev/null; then
  log "already installed"
  finish "$venv/bin/python"
  exit 0
fi

# The device machine: its python3 already holds this torch with CUDA, and nothing can be
# downloaded there. A wrapper keeps `$venv/bin/python` the one name every caller uses.
# AGAVE_TORCH2_ACCEPT_SYSTEM=1 (scripts/gpu-check.sh) accepts any torch 2.x with CUDA there, so
# a newer device image costs a version mismatch in the log rather than the session.
if info=$(probe "$python") && [[ $(cut -d' ' -f2 <<<"$info") != None ]] &&
   [[ ${info%% *} = "$torch_pin" || ( ${AGAVE_TORCH2_ACCEPT_SYSTEM:-0} = 1 && ${info%% *} = 2.* ) ]]; then
  real=$("$python" -c 'import sys; print(sys.executable)')
  torch_pin=${info%% *}
  log "using the torch $torch_pin (pinned: $(sed -n 's/^torch==//p' "$req")) already installed for $real"
  rm -rf "$venv"
  mkdir -p "$venv/bin"
  printf '#!/bin/sh\nexec %q "$@"\n' "$real" >"$venv/bin/python"
  chmod +x "$venv/bin/python"
  echo "$want" >"$stamp"
  finish "$venv/bin/python"
  exit 0
fi

if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "$venv"
  log "creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv"
fi
rm -f "$stamp"

# Wheels are kept in a folder of our own outside the clone (AGAVE_WHEEL_CACHE, default
# ~/.cache/agave-torch2-wheels) rather than relying on pip's HTTP cache: the PyPI mirror here
# answers without Cache-Control or validators, so pip caches nothing and every run would fetch
# the ~2.9 GB again. Installing from that folder with --no-index needs no network at all, so a
# rerun on the same machine (CI's case) does not depend on PyPI being up or fast.
# --no-compile: byte-compiling torch's ~20k modules would double the install time on 2 cores;
# Python compiles what is imported on first use. --only-binary: never build anything here.
wheels=${AGAVE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/agave-torch2-wheels}
mkdir -p "$wheels"
install_args=(install --no-index --find-links "$wheels" --only-binary=:all: --no-compile
              --disable-pip-version-check --progress-bar off -r "$req")
if "$venv/bin/python" -m pip "${install_args[@]}" >/dev/null 2>&1; then
  echo "$want" >"$stamp"
  log "installed from $wheels"
  finish "$venv/bin/python"
  exit 0
fi
download_args=(download --only-binary=:all: --disable-pip-version-check --retries 10
               --timeout 60 --progress-bar off --dest "$wheels" -r "$req")
for attempt in 1 2 3; do
  log "pip download into $wheels (attempt $attempt)"
  if "$venv/bin/python" -m pip "${download_args[@]}" >&2; then
    log "downloaded in $(( $(date +%s) - start )) s; installing"
    "$venv/bin/python" -m pip "${install_args[@]}" >&2
    echo "$want" >"$stamp"
    finish "$venv/bin/python"
    exit 0
  fi
  [[ $attempt = 3 ]] && break
  log "pip download failed; retrying in $((30 * attempt)) s"
  sleep $((30 * attempt))
done
if ! "$venv/bin/python" -m pip download --no-deps --no-cache-dir --dest "$(mktemp -d)" \
    --timeout 30 --retries 2 "typing_extensions==$(sed -n 's/^typing_extensions==//p' "$req")" \
    >/dev/null 2>&1; then
  log "PyPI is not reachable"
  exit 3
fi
log "pip download failed 3 times"
exit 1
