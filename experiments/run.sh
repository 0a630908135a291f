#!/usr/bin/env bash
# experiments/run.sh NAME [--scale cpu|paper] [--np N] [--seeds N] [--list] [-- agave_trainer arguments...]
# Runs one of the paper's experiments (experiments/NAME*.SCALE.yaml, one or more configs) and
# writes its table (sweep.csv) and plots (sweep.png; Appendix C also kl_curve.png) beside the
# runs, under runs/experiments/. NAME: fig4_lambda, fig5_bins (Fig. 5: color bins),
# aux_resolution (§4.2's text: 16×16 and 8×8 against 32×32 at λ = 12), appendix_c (the Eq. (6)
# arm and its control), table1 (VAE alone, PixelCNN++ alone at AGAVE's updates and at its
# wall-clock time, AGAVE; at paper scale also AGAVE with free bits). A NAME may also be one
# config of a family (table1_pixelcnn_equal_time). docs/results.md reports them.
# --seeds N runs every config N times, with run.seed, run.seed + 1, ... (each seed's runs under
# <experiment folder>/seed=S/), evaluates each run's final checkpoint image by image on the
# final evaluation's test images (agave_eval --per-image), and writes beside them the paired
# comparison of the arms (the sweep's points or the configs): paired.md, paired.csv, arms.csv,
# paired.png (agave_compare; docs/metrics.md), and commands.txt: every command run and the CPU.
# One arm alone (one config, one run) is evaluated but not compared.
# CIFAR-10 comes from data.source (default data/cifar10; AGAVE_CIFAR10=DIR overrides).
# --list prints the configs NAME runs, one a line, and runs nothing; --list alone prints every
# NAME with the configs it runs at each scale.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n 2,18p "$0" | sed 's/^# \{0,1\}//'; }
# The experiments, as the paper reports them (docs/results.md).
names=(fig4_lambda fig5_bins aux_resolution appendix_c table1)
# NAME.SCALE.yaml alone, or the NAME_*.SCALE.yaml family (table1: three single-run configs); a
# plain path survives nullglob, so each candidate is checked.
configs_of() {
  shopt -s nullglob
  local candidate
  for candidate in experiments/"$1".$2.yaml experiments/"$1"_*.$2.yaml; do
    [ -f "$candidate" ] && echo "$candidate"
  done
  return 0
}
list_all() {
  local name scale
  for name in "${names[@]}"; do
    for scale in cpu paper; do
      echo "$name --scale $scale: $(configs_of "$name" $scale | tr '\n' ' ')"
    done
  done
}
[ $# -ge 1 ] || { usage; exit 2; }
case "$1" in
  -h|--help) usage; exit 0 ;;
  --list) list_all; exit 0 ;;
esac
name=$1
shift
scale=cpu
np=${AGAVE_NP:-2}
seeds=""  # none: each config once, with its own run.seed, in its own folder
extra=()
list=0
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=${2:?--scale needs cpu or paper}; shift 2 ;;
    --np) np=${2:?--np needs a number}; shift 2 ;;
    --seeds) seeds=${2:?--seeds needs a number}; shift 2 ;;
    --list) list=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "experiments/run.sh: unexpected argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$scale" in cpu|paper) ;; *) echo "experiments/run.sh: --scale must be cpu or paper" >&2; exit 2 ;; esac
case "$seeds" in
  '') ;;
  *[!0-9]*|0*) echo "experiments/run.sh: --seeds needs a number from 1, got '$seeds'" >&2; exit 2 ;;
esac
shopt -s nullglob
mapfile -t configs < <(configs_of "$name" "$scale")
if [ ${#configs[@]} -eq 0 ]; then
  echo "experiments/run.sh: no experiments/$name*.$scale.yaml; experiments:" >&2
  printf '  %s\n' "${names[@]}" >&2
  exit 2
fi
if [ "$list" = 1 ]; then
  printf '%s\n' "${configs[@]}"
  exit 0
fi
bin=${AGAVE_BIN_DIR:-build/bin}
[ -x "$bin/agave_trainer" ] || scripts/build.sh
. scripts/mpi-env.sh
data=()
[ -n "${AGAVE_CIFAR10:-}" ] && data=(--set "data.source=$AGAVE_CIFAR10")

# commands.txt, when --seeds writes one: every command below is appended to it as it runs.
commands=""
record() {
  if [ -n "$commands" ]; then
    printf '%q ' "$@" >> "$commands"
    echo >> "$commands"
  fi
  "$@"
}

# A config's runs as the dry run prints them ("run I: NAME ... seed S  output DIR"): "S DIR" a
# line. Arguments after the config: more agave_trainer arguments (a seed's overrides).
runs_of() {
  "$bin/agave_trainer" "$1" --dry-run "${data[@]}" "${extra[@]}" "${@:2}" |
    sed -n 's/^run [0-9]*: .*  seed \([0-9]*\)  output \(.*\)$/\1 \2/p'
}
# The output folder of a config's first run.
first_output() { runs_of "$@" | sed -n 1p | cut -d' ' -f2-; }

# Trains one config (arguments after it: more agave_trainer arguments), then writes its table
# (sweep.csv, sweep.png) and, for appendix_c, each run's KL curve.
train_config() {
  local cfg=$1
  shift
  echo "== $cfg ($np ranks, $(date -u +%FT%TZ))"
  local start run_dir table_dir
  start=$(date +%s)
  record mpirun --oversubscribe --allow-run-as-root -np "$np" "$bin/agave_trainer" "$cfg" \
    "${data[@]}" "${extra[@]}" "$@"
  echo "== $cfg took $(( $(date +%s) - start )) s"
  run_dir=$(first_output "$cfg" "$@")
  # A sweep's runs are folders of its own folder; table1's and appendix_c's single runs share a
  # parent.
  table_dir=$(dirname "$run_dir")
  record "$bin/agave_sweep_plot" "$table_dir"
  column -s, -t < "$table_dir/sweep.csv"
  if [ "$name" = appendix_c ] && command -v gnuplot >/dev/null; then
    # The training KL against the step: Appendix C's curve (KL falls after the aux loss goes).
    python3 - "$run_dir/metrics.jsonl" > "$run_dir/kl_curve.dat" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "train":
        print(e["step"], e["kl_bpd"], e["phase"])
PY
    gnuplot -e "set terminal png size 800,450; set output '$run_dir/kl_curve.png';
      set xlabel 'step'; set ylabel 'training KL (bits/dim)'; set key off; set grid;
      plot '$run_dir/kl_curve.dat' using 1:2 with lines lw 2"
    echo "$run_dir/kl_curve.png"
  fi
}

if [ -z "$seeds" ]; then
  for cfg in "${configs[@]}"; do train_config "$cfg"; done
  exit 0
fi

# --seeds N. The experiment's folder (a sweep's folder, or the folder the configs' runs share)
# holds a folder per seed, seed=S, with that seed's runs as they would be without --seeds, and
# the comparison across seeds.
exp_dir=$(dirname "$(first_output "${configs[0]}")")
mkdir -p "$exp_dir"
commands=$exp_dir/commands.txt
{
  printf '# %s\n' "$(printf '%q ' experiments/run.sh "$name" --scale "$scale" --np "$np" \
    --seeds "$seeds" -- "${extra[@]}")"
  echo "# started $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores" \
    "($(lscpu | sed -n 's/^Socket(s): *//p' | head -1) socket(s))"
  echo "# $("$bin/agave_trainer" --version | head -1)"
} > "$commands"

# Evaluates a run's final checkpoint image by image as its final evaluation did (the same test
# images, K and weights, from its summary.json): <run>/per_image.csv and <run>/eval.json.
evaluate() {
  local run_dir=$1 images k weights
  read -r images k weights < <(python3 - "$run_dir/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(s["test_images"], s["importance_samples"], s.get("test_weights", "ema"))
PY
  )
  local live=()
  [ "$weights" = live ] && live=(--no-ema)
  record mpirun --oversubscribe --allow-run-as-root -np "$np" "$bin/agave_eval" \
    --checkpoint "$run_dir" --limit "$images" --samples "$k" "${live[@]}" \
    --per-image "$run_dir/per_image.csv" --json "$run_dir/eval.json"
}

# The arms are the runs of one seed (a sweep's points, or the configs), by folder name; seed i of
# every arm is paired.
arm_names=()
declare -A files_of
for ((i = 0; i < seeds; i++)); do
  for cfg in "${configs[@]}"; do
    seed=$(( $(runs_of "$cfg" | sed -n 1p | cut -d' ' -f1) + i ))
    overrides=(--set "run.seed=$seed" --set "run.output_dir=$exp_dir/seed=$seed")
    train_config "$cfg" "${overrides[@]}"
    # Read whole first: mpirun would take the rest of a loop's standard input.
    mapfile -t runs < <(runs_of "$cfg" "${overrides[@]}" | cut -d' ' -f2-)
    for run_dir in "${runs[@]}"; do
      evaluate "$run_dir"
      arm=$(basename "$run_dir")
      [ -n "${files_of[$arm]+x}" ] || arm_names+=("$arm")
      files_of[$arm]+="$run_dir/per_image.csv"$'\n'
    done
  done
done

if [ ${#arm_names[@]} -lt 2 ]; then
  # One config of one run (e.g. table1_pixelcnn_equal_time alone): its per-image files are
  # what the comparison with another experiment's arms needs (agave_compare, docs/metrics.md).
  echo "experiments/run.sh: one arm (${arm_names[0]}): per-image files written, no comparison"
  echo "# finished $(date -u +%FT%TZ)" >> "$commands"
  exit 0
fi
compare=("$bin/agave_compare")
for arm in "${arm_names[@]}"; do
  mapfile -t files <<<"${files_of[$arm]%$'\n'}"
  compare+=(--arm "$arm" "${files[@]}")
done
record "${compare[@]}" --markdown "$exp_dir/paired.md" --csv "$exp_dir/paired.csv" \
  --arms-csv "$exp_dir/arms.csv"
if command -v gnuplot >/dev/null; then
  # Each arm's bits/dim and their decomposition (mean over seeds ± standard error across seeds).
  arms_csv=$exp_dir/arms.csv
  record gnuplot -e "set datafile separator ','; set terminal png size 1200,450 noenhanced;
    set output '$exp_dir/paired.png'; set multiplot layout 1,2 title '$name: mean over $seeds seed(s) ± standard error across seeds';
    set offsets 0.3, 0.3, 0, 0; set grid; set xtics rotate by -30; set ylabel 'bits/dim'; set key top left;
    plot '$arms_csv' using 0:'elbo_bpd':'elbo_bpd_stderr':xtic(1) with yerrorlines title 'ELBO',
      '' using 0:'iw_bpd':'iw_bpd_stderr' with yerrorlines title 'IW bound',
      '' using 0:'pixel_bpd':'pixel_bpd_stderr' with yerrorlines title 'pixel term (matched z)',
      '' using 0:'aux_bpd':'aux_bpd_stderr' with yerrorlines title 'aux term';
    plot '$arms_csv' using 0:'kl_bpd':'kl_bpd_stderr':xtic(1) with yerrorlines title 'KL',
      '' using 0:'latent_use_bpd':'latent_use_bpd_stderr' with yerrorlines title 'latent use (shuffled - matched z)';
    unset multiplot"
  echo "$exp_dir/paired.png"
else
  echo "experiments/run.sh: gnuplot is not installed: no $exp_dir/paired.png" >&2
fi
echo "# finished $(date -u +%FT%TZ)" >> "$commands"
echo "$exp_dir/paired.md"
