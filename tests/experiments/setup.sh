# Sourced by the run.sh tests: the source and build folders, CIFAR-10 (../shared/data/cifar10
# unless AGAVE_CIFAR10) and gnuplot, or exit 77 (CTest's skip) without them; a temporary folder
# $tmp removed at exit, fail(), and tiny_run: agave_trainer arguments that make an experiment's
# config a two-step run of a tiny model, evaluated with K = 2 on the first 6 test images.
src=${AGAVE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export AGAVE_BIN_DIR=${AGAVE_BIN_DIR:-$src/build/bin}
export AGAVE_CIFAR10=${AGAVE_CIFAR10:-$src/../shared/data/cifar10}
[ -d "$AGAVE_CIFAR10" ] || { echo "SKIPPED: no CIFAR-10 at $AGAVE_CIFAR10"; exit 77; }
command -v gnuplot >/dev/null || { echo "SKIPPED: gnuplot is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
tiny_run=(
  --set 'model.vae={depth: 1, width: 8, latent_channels: 2, latent_resolution: 8}'
  --set 'model.pixelcnn={nr_resnet: 1, nr_filters: 8, nr_logistic_mix: 2, dropout: 0.0, conditioning: per_layer}'
  --set train.batch_size=4 --set 'train.phases=[{name: joint, steps: 2}]'
  --set eval.importance_samples=2 --set eval.subset=4 --set eval.final_subset=6
  --set eval.batch_size=4 --set eval.sample_images=2 --set eval.samples_per_latent=2
  --set monitoring.prometheus=false --set cluster.threads_per_rank=1
)
