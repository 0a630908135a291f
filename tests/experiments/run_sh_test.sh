#!/usr/bin/env bash
# experiments/run.sh appendix_c on a tiny model (CIFAR-10 from ../shared/data/cifar10): it must
# train both phases (the no_aux one as Eq. (6): λ 1, free bits 0), write the table (sweep.csv
# with the VAE-bound column and the weights used) and the KL curve (kl_curve.png, a PNG).
# Exit 77 (CTest's skip) without the CIFAR-10 batches or gnuplot.
set -euo pipefail
src=${AGAVE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export AGAVE_BIN_DIR=${AGAVE_BIN_DIR:-$src/build/bin}
export AGAVE_CIFAR10=${AGAVE_CIFAR10:-$src/../shared/data/cifar10}
[ -d "$AGAVE_CIFAR10" ] || { echo "SKIPPED: no CIFAR-10 at $AGAVE_CIFAR10"; exit 77; }
command -v gnuplot >/dev/null || { echo "SKIPPED: gnuplot is not installed"; exit 77; }
# Experiments that are families of configs (table1, fig5) resolve to their members.
[ "$("$src/experiments/run.sh" table1 --list | tr '\n' ' ')" = \
  "experiments/table1_agave.cpu.yaml experiments/table1_pixelcnn.cpu.yaml experiments/table1_vae.cpu.yaml " ] ||
  { echo "FAILED: run.sh table1 --list: $("$src/experiments/run.sh" table1 --list 2>&1)"; exit 1; }
[ "$("$src/experiments/run.sh" fig5 --scale paper --list | wc -l)" -eq 2 ] ||
  { echo "FAILED: run.sh fig5 --list should name fig5_bins and fig5_resolution"; exit 1; }
[ "$("$src/experiments/run.sh" fig4_lambda --list)" = experiments/fig4_lambda.cpu.yaml ] ||
  { echo "FAILED: run.sh fig4_lambda --list"; exit 1; }
if "$src/experiments/run.sh" no_such_experiment --list >/dev/null 2>&1; then
  echo "FAILED: an unknown experiment must exit non-zero"; exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }

"$src/experiments/run.sh" appendix_c --scale cpu --np 1 -- \
  --set run.output_dir="$tmp/runs" --set data.shards="$tmp/cifar10" \
  --set 'model.vae={depth: 1, width: 8, latent_channels: 2, latent_resolution: 8}' \
  --set 'model.pixelcnn={nr_resnet: 1, nr_filters: 8, nr_logistic_mix: 2, dropout: 0.0}' \
  --set train.batch_size=4 \
  --set 'train.phases=[{name: joint, steps: 4}, {name: no_aux, steps: 4}]' \
  --set eval.every=4 --set eval.importance_samples=2 --set eval.subset=4 \
  --set eval.final_subset=8 --set eval.batch_size=4 --set eval.sample_images=2 \
  --set eval.samples_per_latent=2 --set monitoring.log_every=1 --set monitoring.prometheus=false \
  --set cluster.threads_per_rank=1 > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "run.sh failed"; }

run=$tmp/runs/appendix_c_cpu
grep -q "phase no_aux: steps 4-7, .* on pixel + KL, λ 1, free bits 0" "$tmp/log" ||
  { cat "$tmp/log"; fail "no Eq. (6) phase line"; }
[ -f "$run/summary.json" ] || fail "no summary.json"
head -1 "$tmp/runs/sweep.csv" | grep -q "test_vae_bpd" || fail "sweep.csv lacks test_vae_bpd"
[ "$(wc -l < "$tmp/runs/sweep.csv")" -eq 2 ] || fail "sweep.csv should have one run: $(cat "$tmp/runs/sweep.csv")"
grep -q ",ema," "$tmp/runs/sweep.csv" || fail "sweep.csv does not say the EMA weights were used"
[ "$(head -c 4 "$run/kl_curve.png" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "kl_curve.png is not a PNG"
[ "$(wc -l < "$run/kl_curve.dat")" -eq 8 ] || fail "kl_curve.dat should hold 8 logged steps"
[ -f "$run/samples-step-00000004.png" ] && [ -f "$run/samples-step-00000008.png" ] ||
  fail "no picture sheets at the evaluations"
echo "experiments/run.sh appendix_c: ok"
