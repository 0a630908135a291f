#!/usr/bin/env bash
# scripts/sanitize.sh [CTEST_ARGS...]: builds the unit tests with AddressSanitizer and
# UndefinedBehaviorSanitizer (gcc, -O1 -g) into build-asan/ (AGAVE_ASAN_BUILD_DIR) and runs them
# under ctest. Without arguments it runs the suites that parse outside bytes and their neighbours
# (labels data, launcher and fuzz). AGAVE_ASAN_TARGETS names the targets to build
# (default: those suites' binaries; `all` for every target), e.g. AGAVE_ASAN_TARGETS=all
# scripts/sanitize.sh -R . for everything (docs/fuzzing.md). Not part of CI:
# a full sanitized build of the project takes about an hour on 2 cores (docs/fuzzing.md).
# Any sanitizer report fails the test that triggered it (halt_on_error).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${AGAVE_ASAN_BUILD_DIR:-build-asan}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DAGAVE_BUILD_BENCH=OFF
fi
# The executables the launcher tests run are built too (a stale one reports an old --version).
targets=${AGAVE_ASAN_TARGETS:-agave_data_tests agave_data_malformed_tests agave_data_cli_tests agave_launcher_tests agave_fuzz_replay_tests agave_data agave_trainer agave_eval agave_sweep_plot agave_h5probe}
if [ "$targets" = all ]; then
  cmake --build "$build_dir" -j "$(nproc)"
else
  # shellcheck disable=SC2086
  cmake --build "$build_dir" --target $targets -j "$(nproc)"
fi
. scripts/mpi-env.sh
# LibTorch and MPI are not instrumented: their one-time allocations at exit are not our leaks,
# and Open MPI's progress threads trip the ODR check of some libraries; protect_shadow_gap=0 lets
# CUDA-less LibTorch map what it wants.
# allocator_may_return_null + max_allocation_size_mb: an allocation past 2 GiB fails as
# bad_alloc, as the address-space cap agave_h5probe has outside ASan makes it fail.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:detect_odr_violation=0:protect_shadow_gap=0:halt_on_error=1:allocator_may_return_null=1:max_allocation_size_mb=2048}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
if [ $# -eq 0 ]; then set -- -L 'data|launcher|fuzz'; fi
ctest --test-dir "$build_dir" --output-on-failure -j "${AGAVE_TEST_JOBS:-2}" "$@"
