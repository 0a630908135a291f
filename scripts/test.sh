#!/usr/bin/env bash
# README command two: install what is missing, build, run the whole test suite (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
. scripts/mpi-env.sh
build_dir=${AGAVE_BUILD_DIR:-build}
echo "test: ctest in $build_dir"
ctest --test-dir "$build_dir" --output-on-failure -j "${AGAVE_TEST_JOBS:-2}" "$@"
