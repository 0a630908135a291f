#!/usr/bin/env bash
# scripts/fuzz.sh TARGET [SECONDS]: fuzzes one parser of outside bytes with libFuzzer (clang,
# ASan + UBSan) for SECONDS (default 30), starting from its committed corpus fuzz/corpus/TARGET.
#   TARGET: shard manifest idx cifar tar config checkpoint_manifest, or `all` (each in turn)
# Builds only the fuzz targets, into build-fuzz/ (AGAVE_FUZZ_BUILD_DIR). New inputs that reach new
# code go to build-fuzz/corpus/TARGET (copy the interesting ones into fuzz/corpus/TARGET: the test
# suite replays that folder on every run); a crash, sanitizer report, leak, or allocation over
# -malloc_limit_mb is written to build-fuzz/crashes/TARGET/ and the script exits non-zero.
# docs/fuzzing.md has the details.
set -euo pipefail
cd "$(dirname "$0")/.."
targets="shard manifest idx cifar tar config checkpoint_manifest"
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS]   (TARGET: $targets, all)}
seconds=${2:-30}
if [ "$target" = all ]; then
  for t in $targets; do "$0" "$t" "$seconds"; done
  exit 0
fi
case " $targets " in *" $target "*) ;; *) echo "fuzz: unknown target '$target' ($targets)" >&2; exit 2 ;; esac

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: installing clang (libFuzzer)"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y -qq clang >/dev/null
fi
build_dir=${AGAVE_FUZZ_BUILD_DIR:-build-fuzz}
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DAGAVE_BUILD_FUZZ=ON \
    -DAGAVE_BUILD_TESTS=OFF -DAGAVE_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$build_dir" --target "fuzz_$target" -j "$(nproc)"

work="$build_dir/corpus/$target"
crashes="$build_dir/crashes/$target"
mkdir -p "$work" "$crashes"
# Inputs are small files; the largest seed (a shard) is about 10 KB.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
echo "fuzz: $target for ${seconds}s (corpus fuzz/corpus/$target, new inputs $work)"
"$build_dir/bin/fuzz_$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
  -rss_limit_mb=2048 -malloc_limit_mb=256 -print_final_stats=1 \
  -artifact_prefix="$crashes/" "$work" "fuzz/corpus/$target"
