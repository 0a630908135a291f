#!/usr/bin/env bash
# experiments/run.sh appendix_c on a tiny model (CIFAR-10 from ../shared/data/cifar10): it must
# train both arms (Eq. (6) and its control) and both phases (the no_aux one as Eq. (6): λ 1,
# free bits 0), write one table (sweep.csv with the VAE-bound column and the weights used) and
# each arm's KL curve (kl_curve.png, a PNG).
# Exit 77 (CTest's skip) without the CIFAR-10 batches or gnuplot.
set -euo pipefail
. "$(dirname "$0")/setup.sh"
# Experiments that are families of configs (table1, fig5) resolve to their members.
[ "$("$src/experiments/run.sh" table1 --list | tr '\n' ' ')" = \
  "experiments/table1_agave.cpu.yaml experiments/table1_pixelcnn.cpu.yaml experiments/table1_pixelcnn_equal_time.cpu.yaml experiments/table1_vae.cpu.yaml " ] ||
  { echo "FAILED: run.sh table1 --list: $("$src/experiments/run.sh" table1 --list 2>&1)"; exit 1; }
[ "$("$src/experiments/run.sh" fig5 --scale paper --list)" = experiments/fig5_bins.paper.yaml ] ||
  { echo "FAILED: run.sh fig5 --list should name fig5_bins alone (Fig. 5 is color bins)"; exit 1; }
[ "$("$src/experiments/run.sh" aux_resolution --scale paper --list)" = \
  experiments/aux_resolution.paper.yaml ] || { echo "FAILED: run.sh aux_resolution --list"; exit 1; }
[ "$("$src/experiments/run.sh" appendix_c --list | tr '\n' ' ')" = \
  "experiments/appendix_c.cpu.yaml experiments/appendix_c_control.cpu.yaml " ] ||
  { echo "FAILED: run.sh appendix_c --list should name the Eq. (6) arm and its control"; exit 1; }
[ "$("$src/experiments/run.sh" fig4_lambda --list)" = experiments/fig4_lambda.cpu.yaml ] ||
  { echo "FAILED: run.sh fig4_lambda --list"; exit 1; }
# --list alone: every experiment, at both scales, with its configs.
all=$("$src/experiments/run.sh" --list) || { echo "FAILED: run.sh --list exits non-zero"; exit 1; }
grep -q "^table1 --scale paper: .*experiments/table1_vae.paper.yaml" <<<"$all" ||
  { echo "FAILED: run.sh --list: $all"; exit 1; }
[ "$(grep -c -- "--scale" <<<"$all")" -eq 10 ] || { echo "FAILED: run.sh --list: $all"; exit 1; }
if "$src/experiments/run.sh" no_such_experiment --list >/dev/null 2>&1; then
  echo "FAILED: an unknown experiment must exit non-zero"; exit 1
fi

"$src/experiments/run.sh" appendix_c --scale cpu --np 1 -- \
  --set run.output_dir="$tmp/runs" --set data.shards="$tmp/cifar10" \
  --set 'model.vae={depth: 1, width: 8, latent_channels: 2, latent_resolution: 8}' \
  --set 'model.pixelcnn={nr_resnet: 1, nr_filters: 8, nr_logistic_mix: 2, dropout: 0.0, conditioning: per_layer}' \
  --set train.batch_size=4 \
  --set 'train.phases=[{name: joint, steps: 4}, {name: no_aux, steps: 4}]' \
  --set eval.every=4 --set eval.importance_samples=2 --set eval.subset=4 \
  --set eval.final_subset=8 --set eval.batch_size=4 --set eval.sample_images=2 \
  --set eval.samples_per_latent=2 --set monitoring.log_every=1 --set monitoring.prometheus=false \
  --set cluster.threads_per_rank=1 > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "run.sh failed"; }

# Both arms ran (the phases given here replace each arm's own; the arms' last phases are checked
# by ShippedExperiments.LoadAndSetWhatThePaperFixes) into one folder and one table.
grep -q "phase no_aux: steps 4-7, .* on pixel + KL, λ 1, free bits 0" "$tmp/log" ||
  { cat "$tmp/log"; fail "no Eq. (6) phase line"; }
head -1 "$tmp/runs/sweep.csv" | grep -q "test_vae_bpd" || fail "sweep.csv lacks test_vae_bpd"
[ "$(wc -l < "$tmp/runs/sweep.csv")" -eq 3 ] ||
  fail "sweep.csv should have the two arms: $(cat "$tmp/runs/sweep.csv")"
grep -q ",ema," "$tmp/runs/sweep.csv" || fail "sweep.csv does not say the EMA weights were used"
for run in "$tmp/runs/appendix_c_cpu" "$tmp/runs/appendix_c_control_cpu"; do
  [ -f "$run/summary.json" ] || fail "no summary.json in $run"
  [ "$(head -c 4 "$run/kl_curve.png" | od -An -c | tr -d ' ')" = "211PNG" ] ||
    fail "$run/kl_curve.png is not a PNG"
  [ "$(wc -l < "$run/kl_curve.dat")" -eq 8 ] || fail "$run/kl_curve.dat should hold 8 logged steps"
  [ -f "$run/samples-step-00000004.png" ] && [ -f "$run/samples-step-00000008.png" ] ||
    fail "no picture sheets at the evaluations in $run"
done
echo "experiments/run.sh appendix_c: ok"
