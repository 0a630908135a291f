#!/usr/bin/env bash
# README command one: install what is missing, build agave_trainer alone (and the libraries it
# links; no tests, no benchmarks, no other executables), and train configs/quickstart.yaml to
# the end (600 steps) on the embedded default data set (Fashion-MNIST, Debian's
# dataset-fashion-mnist) with two MPI ranks. The trainer converts the data to shards itself,
# so agave_data is not built. Arguments go to agave_trainer (e.g. --set
# 'train.phases=[{name: joint, steps: 40}]' for a shorter run). Each stage prints the seconds
# since the start, so a slow stage shows which one it is.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp() { echo "quickstart: [${SECONDS} s] $*"; }
stamp "installing missing packages (scripts/install-deps.sh)"
scripts/install-deps.sh
stamp "building agave_trainer (scripts/build.sh agave_trainer)"
scripts/build.sh agave_trainer
. scripts/mpi-env.sh
export PATH="$PWD/build/bin:$PATH"
stamp "mpirun -np 2 agave_trainer configs/quickstart.yaml $*"
exec mpirun -np 2 agave_trainer configs/quickstart.yaml "$@"
