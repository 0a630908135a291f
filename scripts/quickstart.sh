#!/usr/bin/env bash
# README command one: install what is missing, build, and run the main job on the embedded
# default data set (Fashion-MNIST) with two MPI ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
. scripts/mpi-env.sh
export PATH="$PWD/build/bin:$PATH"
echo "quickstart: mpirun -np 2 agave_trainer configs/quickstart.yaml $*"
exec mpirun -np 2 agave_trainer configs/quickstart.yaml "$@"
