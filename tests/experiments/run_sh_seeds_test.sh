#!/usr/bin/env bash
# experiments/run.sh fig4_lambda --seeds 2 on a tiny model (CIFAR-10 from ../shared/data/cifar10)
# and a two-point grid (λ 1 and 12): each seed's runs in a folder of their own (seed=1, seed=2,
# each run with its own seed), each run's final checkpoint evaluated image by image on the same
# test images, the paired comparison of the points (paired.md, paired.csv, arms.csv, paired.png)
# and commands.txt (every command and the CPU) beside them.
# Exit 77 (CTest's skip) without the CIFAR-10 batches or gnuplot.
set -euo pipefail
. "$(dirname "$0")/setup.sh"

if "$src/experiments/run.sh" fig4_lambda --seeds 0 >"$tmp/log" 2>&1; then
  fail "--seeds 0 must be refused"
fi
grep -q "^experiments/run.sh: --seeds needs a number from 1, got '0'$" "$tmp/log" ||
  fail "--seeds 0: $(cat "$tmp/log")"

"$src/experiments/run.sh" fig4_lambda --scale cpu --np 1 --seeds 2 -- \
  --set run.output_dir="$tmp/runs" --set data.shards="$tmp/cifar10" \
  --set 'sweep.grid={loss.lambda: [1, 12]}' \
  "${tiny_run[@]}" \
  > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "run.sh --seeds 2 failed"; }

exp=$tmp/runs/fig4_lambda_cpu
for seed in 1 2; do
  for point in lambda=1 lambda=12; do
    run=$exp/seed=$seed/fig4_lambda_cpu/$point
    [ -f "$run/summary.json" ] || fail "no run $run: $(find "$tmp/runs" -maxdepth 4)"
    grep -q "^  seed: $seed$" "$run/config.yaml" || fail "$run was not trained with seed $seed"
    rows=$run/per_image.csv
    [ -f "$rows" ] || fail "no $rows"
    grep -q "^# importance_samples=2$" "$rows" || fail "$rows: not K = 2: $(head -8 "$rows")"
    [ "$(grep -v '^#' "$rows" | cut -d, -f1 | tr '\n' ' ')" = "index 0 1 2 3 4 5 " ] ||
      fail "$rows: not the final evaluation's 6 test images in order: $(cat "$rows")"
  done
  [ -f "$exp/seed=$seed/fig4_lambda_cpu/sweep.csv" ] || fail "no sweep.csv for seed $seed"
done
grep -q "^### lambda=12 − lambda=1$" "$exp/paired.md" || fail "paired.md: $(cat "$exp/paired.md")"
grep -q "2 arms × 2 seed(s), the same 6 test images, IW bound K = 2" "$exp/paired.md" ||
  fail "paired.md: $(head -3 "$exp/paired.md")"
grep -q "^paired_seeds,lambda=12,lambda=1,all,elbo_bpd," "$exp/paired.csv" ||
  fail "paired.csv: $(cat "$exp/paired.csv")"
[ "$(wc -l < "$exp/arms.csv")" -eq 3 ] || fail "arms.csv: $(cat "$exp/arms.csv")"
[ "$(head -c 4 "$exp/paired.png" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "paired.png is not a PNG"
# The commands that made it, and the hardware, for docs/results.md to cite.
c=$exp/commands.txt
grep -q "^# experiments/run.sh fig4_lambda --scale cpu --np 1 --seeds 2 -- " "$c" || fail "$(cat "$c")"
grep -q "^# CPU: .*cores" "$c" || fail "no CPU in commands.txt: $(cat "$c")"
[ "$(grep -c "agave_trainer experiments/fig4_lambda.cpu.yaml .*run.seed=2" "$c")" -eq 1 ] ||
  fail "commands.txt lacks seed 2's training: $(cat "$c")"
[ "$(grep -c "agave_eval --checkpoint .* --per-image " "$c")" -eq 4 ] ||
  fail "commands.txt should hold four evaluations: $(cat "$c")"
grep -q "agave_compare --arm lambda=1 .*seed=1.*seed=2.* --arm lambda=12 " "$c" ||
  fail "commands.txt lacks the comparison: $(cat "$c")"

# One config alone (Table 1's equal-time row, to be compared with table1's arms by hand): its
# runs evaluated image by image, and no comparison of one arm with itself.
"$src/experiments/run.sh" table1_pixelcnn_equal_time --np 1 --seeds 1 -- \
  --set run.output_dir="$tmp/one" --set data.shards="$tmp/cifar10" "${tiny_run[@]}" \
  --set 'model.pixelcnn={nr_resnet: 1, nr_filters: 8, nr_logistic_mix: 2, dropout: 0.0}' \
  > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "run.sh table1_pixelcnn_equal_time failed"; }
grep -qx "experiments/run.sh: one arm (pixelcnn_equal_time): per-image files written, no comparison" \
  "$tmp/log" || fail "one arm: $(tail -5 "$tmp/log")"
[ -f "$tmp/one/seed=1/pixelcnn_equal_time/per_image.csv" ] || fail "one arm: $(find "$tmp/one")"
[ ! -e "$tmp/one/paired.md" ] || fail "one arm compared with itself: $(cat "$tmp/one/paired.md")"
grep -q "^# finished " "$tmp/one/commands.txt" || fail "$(cat "$tmp/one/commands.txt")"
echo "experiments/run.sh fig4_lambda --seeds 2, table1_pixelcnn_equal_time --seeds 1: ok"
