#!/usr/bin/env bash
# Configures and builds agave (Release) into build/; AGAVE_BUILD_DIR and CMAKE_ARGS override.
#   scripts/build.sh                  every target: libraries, executables, tests, benchmarks
#   scripts/build.sh agave_trainer    only these targets and what they need (the quickstart)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${AGAVE_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  echo "build: configuring $build_dir"
  # shellcheck disable=SC2086
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-}
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
echo "build: building ${*:-every target} in $build_dir with $(nproc) jobs"
cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"
