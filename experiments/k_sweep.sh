#!/usr/bin/env bash
# experiments/k_sweep.sh RUN [--k "1 8 150"] [--images N] [--np N]
# Has the importance-weighted bound converged? Evaluates RUN's final checkpoint (a run folder,
# as experiments/run.sh leaves it; its weights as its final evaluation used them) image by image
# on the first N test images (default 200) once per K, and compares the Ks on those images
# (agave_compare --across-k): RUN/k_sweep/K=<K>.csv (agave_eval --per-image), paired.md,
# paired.csv, arms.csv and commands.txt (every command run and the CPU). docs/results.md reports
# it. The ELBO column does not depend on K; the IW column should fall with K and level off.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n 2,9p "$0" | sed 's/^# \{0,1\}//'; }
[ $# -ge 1 ] || { usage; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; esac
run=$1
shift
ks="1 8 150"
images=200
np=${AGAVE_NP:-2}
while [ $# -gt 0 ]; do
  case "$1" in
    --k) ks=${2:?--k needs a list of K, e.g. \"1 8 150\"}; shift 2 ;;
    --images) images=${2:?--images needs a number}; shift 2 ;;
    --np) np=${2:?--np needs a number}; shift 2 ;;
    *) echo "experiments/k_sweep.sh: unexpected argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
read -r -a k_list <<<"$ks"
[ ${#k_list[@]} -ge 2 ] || { echo "experiments/k_sweep.sh: --k needs two K or more, got '$ks'" >&2; exit 2; }
for k in "${k_list[@]}" "$images"; do
  case "$k" in
    *[!0-9]*|0*) echo "experiments/k_sweep.sh: '$k' is not a number from 1" >&2; exit 2 ;;
  esac
done
summary=$run/summary.json
[ -f "$summary" ] || { echo "experiments/k_sweep.sh: $summary: no such file (not a finished run folder)" >&2; exit 2; }
weights=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("test_weights", "ema"))' "$summary")
live=()
[ "$weights" = live ] && live=(--no-ema)

bin=${AGAVE_BIN_DIR:-build/bin}
[ -x "$bin/agave_eval" ] || scripts/build.sh
. scripts/mpi-env.sh
out=$run/k_sweep
mkdir -p "$out"
commands=$out/commands.txt
{
  printf '# %s\n' "$(printf '%q ' experiments/k_sweep.sh "$run" --k "$ks" --images "$images" --np "$np")"
  echo "# started $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
  echo "# $("$bin/agave_eval" --version | head -1)"
} > "$commands"
record() {
  printf '%q ' "$@" >> "$commands"
  echo >> "$commands"
  "$@"
}

compare=("$bin/agave_compare" --across-k)
for k in "${k_list[@]}"; do
  start=$(date +%s)
  record mpirun --oversubscribe --allow-run-as-root -np "$np" "$bin/agave_eval" \
    --checkpoint "$run" --limit "$images" --samples "$k" "${live[@]}" \
    --per-image "$out/K=$k.csv" --json "$out/K=$k.json" < /dev/null
  echo "# K = $k took $(( $(date +%s) - start )) s" >> "$commands"
  compare+=(--arm "K=$k" "$out/K=$k.csv")
done
record "${compare[@]}" --markdown "$out/paired.md" --csv "$out/paired.csv" \
  --arms-csv "$out/arms.csv"
echo "# finished $(date -u +%FT%TZ)" >> "$commands"
echo "$out/paired.md"
