#!/usr/bin/env bash
# Configures and builds agave (Release) into build/; AGAVE_BUILD_DIR and CMAKE_ARGS override.
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
echo "build: building $build_dir with $(nproc) jobs"
cmake --build "$build_dir" -j "$(nproc)"
