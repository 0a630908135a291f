# Sourced by the run.sh tests: the source and build folders, CIFAR-10 (../shared/data/cifar10
# unless AGAVE_CIFAR10) and gnuplot, or exit 77 (CTest's skip) without them; a temporary folder
# $tmp removed at exit, and fail().
src=${AGAVE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export AGAVE_BIN_DIR=${AGAVE_BIN_DIR:-$src/build/bin}
export AGAVE_CIFAR10=${AGAVE_CIFAR10:-$src/../shared/data/cifar10}
[ -d "$AGAVE_CIFAR10" ] || { echo "SKIPPED: no CIFAR-10 at $AGAVE_CIFAR10"; exit 77; }
command -v gnuplot >/dev/null || { echo "SKIPPED: gnuplot is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
