#pragma once
#include <cstdint>
#include <string>

namespace agave::launcher {

// How many LibTorch threads a rank runs, and why.
struct ThreadChoice {
  int64_t threads = 1;
  int64_t cpus_bound = 1;  // CPUs in this process's affinity mask
  int64_t node_share = 1;  // the node's CPUs (Slurm's allocation there) per node-local rank
  std::string source;      // threads_per_rank | SLURM_CPUS_PER_TASK | OMP_NUM_THREADS | affinity
};

// Picks the intra-op thread count from what the rank is given, strongest first: an explicit
// `requested` (> 0), SLURM_CPUS_PER_TASK, OMP_NUM_THREADS, else the CPUs of the affinity mask
// (sched_getaffinity; shared evenly by the node's `local_ranks` when the mask is the whole
// node, i.e. the ranks are not bound). hardware_concurrency() ignores binding: two threads
// spinning on the one core mpirun bound a rank to ran 18x slower.
ThreadChoice choose_torch_threads(int64_t requested, int64_t local_ranks);

// Sets LibTorch's intra-op thread count explicitly (Debian's build defaults to 1) from
// choose_torch_threads; returns the choice.
ThreadChoice configure_torch_threads(int64_t requested, int64_t local_ranks);

// "host h, rank r: 1 CPU bound (0), 1 thread (affinity)" plus a warning when threads exceed
// the CPUs bound.
std::string describe(const ThreadChoice& c, const std::string& host, int rank);

// A warning when the rank is bound to fewer CPUs than its share of the node (Open MPI binds
// each rank to one core by default: one rank on a 32-core node trains on one), naming the
// mpirun flags that lift it; "" otherwise.
std::string binding_warning(const ThreadChoice& c);

}  // namespace agave::launcher
