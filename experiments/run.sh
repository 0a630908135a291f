#!/usr/bin/env bash
# experiments/run.sh NAME [--scale cpu|paper] [--np N] [--list] [-- agave_trainer arguments...]
# Runs one of the paper's experiments (experiments/NAME*.SCALE.yaml, one or more configs) and
# writes its table (sweep.csv) and plots (sweep.png; Appendix C also kl_curve.png) beside the
# runs, under runs/experiments/. NAME: fig4_lambda, fig5_bins (Fig. 5: color bins),
# aux_resolution (§4.2's text: 16×16 and 8×8 against 32×32 at λ = 12), appendix_c (the Eq. (6)
# arm and its control), table1 (VAE alone, PixelCNN++ alone, AGAVE; at paper scale also AGAVE
# with free bits). docs/results.md reports them.
# CIFAR-10 comes from data.source (default data/cifar10; AGAVE_CIFAR10=DIR overrides).
# --list prints the configs NAME runs, one a line, and runs nothing; --list alone prints every
# NAME with the configs it runs at each scale.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n 2,11p "$0" | sed 's/^# \{0,1\}//'; }
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
extra=()
list=0
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=${2:?--scale needs cpu or paper}; shift 2 ;;
    --np) np=${2:?--np needs a number}; shift 2 ;;
    --list) list=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "experiments/run.sh: unexpected argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$scale" in cpu|paper) ;; *) echo "experiments/run.sh: --scale must be cpu or paper" >&2; exit 2 ;; esac
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

# The output folder of a config's first run, as the dry run prints it ("... output DIR").
first_output() {
  "$bin/agave_trainer" "$1" --dry-run "${data[@]}" "${extra[@]}" |
    sed -n 's/.* output \(.*\)$/\1/p' | head -1
}

for cfg in "${configs[@]}"; do
  echo "== $cfg ($np ranks, $(date -u +%FT%TZ))"
  start=$(date +%s)
  mpirun --oversubscribe --allow-run-as-root -np "$np" "$bin/agave_trainer" "$cfg" \
    "${data[@]}" "${extra[@]}"
  echo "== $cfg took $(( $(date +%s) - start )) s"
  run_dir=$(first_output "$cfg")
  # A sweep's runs are folders of its own folder; table1's and appendix_c's single runs share a
  # parent.
  table_dir=$(dirname "$run_dir")
  "$bin/agave_sweep_plot" "$table_dir"
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
done
