# Sourced by the scripts: lets Open MPI's mpirun run as root (CI and containers run as root)
# and on more ranks than cores (a 2-core machine running a 3-rank test).
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
