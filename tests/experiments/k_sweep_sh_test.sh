#!/usr/bin/env bash
# experiments/k_sweep.sh on a tiny run (CIFAR-10 from ../shared/data/cifar10): its final
# checkpoint evaluated image by image with K = 1 and K = 4 on the same test images, the Ks
# compared (agave_compare --across-k) and every command kept; bad arguments refused.
# Exit 77 (CTest's skip) without the CIFAR-10 batches or gnuplot.
set -euo pipefail
. "$(dirname "$0")/setup.sh"
. "$src/scripts/mpi-env.sh"

refused() {  # refused EXPECTED-LINE ARGS...: exit 2 and that line, nothing written
  local want=$1 rc=0
  shift
  "$src/experiments/k_sweep.sh" "$@" >"$tmp/log" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || fail "k_sweep.sh $*: exit $rc, want 2: $(cat "$tmp/log")"
  grep -qxF "$want" "$tmp/log" || fail "k_sweep.sh $*: $(cat "$tmp/log")"
}
refused "experiments/k_sweep.sh: $tmp/none/summary.json: no such file (not a finished run folder)" \
  "$tmp/none"
refused "experiments/k_sweep.sh: --k needs two K or more, got '8'" "$tmp/none" --k 8
refused "experiments/k_sweep.sh: '0' is not a number from 1" "$tmp/none" --k "0 8"

mpirun --oversubscribe --allow-run-as-root -np 1 "$AGAVE_BIN_DIR/agave_trainer" \
  "$src/experiments/table1_agave.cpu.yaml" --set run.output_dir="$tmp/runs" \
  --set data.source="$AGAVE_CIFAR10" --set data.shards="$tmp/cifar10" \
  "${tiny_run[@]}" \
  > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "training the tiny run failed"; }
run=$tmp/runs/agave
"$src/experiments/k_sweep.sh" "$run" --k "1 4" --images 6 --np 1 > "$tmp/log" 2>&1 ||
  { cat "$tmp/log"; fail "k_sweep.sh failed"; }

out=$run/k_sweep
for k in 1 4; do
  rows=$out/K=$k.csv
  grep -q "^# importance_samples=$k$" "$rows" || fail "$rows: not K = $k: $(head -8 "$rows")"
  [ "$(grep -v '^#' "$rows" | cut -d, -f1 | tr '\n' ' ')" = "index 0 1 2 3 4 5 " ] ||
    fail "$rows: not the first 6 test images in order: $(cat "$rows")"
done
grep -q "the same 6 test images, IW bound K = 1 / 4 (per arm), ema weights" "$out/paired.md" ||
  fail "paired.md: $(head -3 "$out/paired.md")"
grep -q "^### K=4 − K=1$" "$out/paired.md" || fail "paired.md: $(cat "$out/paired.md")"
# One evaluation seed: the first batch's z is drawn before its IW samples, so the first image's
# ELBO agrees to the digit in both files (later batches' z follow K's draws), its IW does not.
python3 - "$out/K=1.csv" "$out/K=4.csv" <<'PY' || fail "the ELBO depends on K, or the IW does not"
import csv, sys
def rows(path):
    return list(csv.DictReader(l for l in open(path) if not l.startswith("#")))
k1, k4 = rows(sys.argv[1]), rows(sys.argv[2])
assert len(k1) == len(k4) == 6, (k1, k4)
assert k1[0]["elbo_bpd"] == k4[0]["elbo_bpd"], (k1[0], k4[0])
assert [r["iw_bpd"] for r in k1] != [r["iw_bpd"] for r in k4], (k1, k4)
PY
[ "$(wc -l < "$out/arms.csv")" -eq 3 ] || fail "arms.csv: $(cat "$out/arms.csv")"
c=$out/commands.txt
grep -q "^# experiments/k_sweep.sh .* --k 1\\\\ 4 --images 6 --np 1 $" "$c" || fail "$(cat "$c")"
grep -q "^# CPU: .*cores" "$c" || fail "no CPU in commands.txt: $(cat "$c")"
[ "$(grep -c "agave_eval --checkpoint .* --per-image " "$c")" -eq 2 ] ||
  fail "commands.txt should hold two evaluations: $(cat "$c")"
grep -q "agave_compare --across-k --arm K=1 .* --arm K=4 " "$c" || fail "$(cat "$c")"
echo "experiments/k_sweep.sh: ok"
