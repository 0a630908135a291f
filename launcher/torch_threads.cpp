#include "launcher/torch_threads.h"

#include <sched.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace agave::launcher {
namespace {

// A positive integer from the environment, or 0.
int64_t env_count(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return 0;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  return end != v && n > 0 ? n : 0;
}

int64_t affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  return CPU_COUNT(&set);
}

// What the node offers its ranks: Slurm's CPUs on this node when under Slurm (the rest of the
// node belongs to other jobs), else every online CPU.
int64_t node_cpus(int64_t hardware) {
  if (const int64_t slurm = env_count("SLURM_CPUS_ON_NODE")) return slurm;
  return hardware;
}

}  // namespace

ThreadChoice choose_torch_threads(int64_t requested, int64_t local_ranks) {
  ThreadChoice c;
  const int64_t node = std::max<int64_t>(1, std::thread::hardware_concurrency());
  c.cpus_bound = affinity_cpus();
  if (c.cpus_bound <= 0) c.cpus_bound = node;
  c.node_share = std::max<int64_t>(1, node_cpus(node) / std::max<int64_t>(1, local_ranks));
  if (requested > 0) {
    c.threads = requested;
    c.source = "threads_per_rank";
  } else if (const int64_t slurm = env_count("SLURM_CPUS_PER_TASK")) {
    c.threads = slurm;
    c.source = "SLURM_CPUS_PER_TASK";
  } else if (const int64_t omp = env_count("OMP_NUM_THREADS")) {
    c.threads = omp;
    c.source = "OMP_NUM_THREADS";
  } else {
    // An unbound rank sees the whole node, which its node's ranks share.
    const bool whole_node = c.cpus_bound >= node;
    c.threads = whole_node ? std::max<int64_t>(1, c.cpus_bound / std::max<int64_t>(1, local_ranks))
                           : c.cpus_bound;
    c.source = "affinity";
  }
  return c;
}

ThreadChoice configure_torch_threads(int64_t requested, int64_t local_ranks) {
  const auto c = choose_torch_threads(requested, local_ranks);
  torch::set_num_threads(static_cast<int>(c.threads));
  return c;
}

std::string describe(const ThreadChoice& c, const std::string& host, int rank) {
  std::string s = "host " + host + ", rank " + std::to_string(rank) + ": " +
                  std::to_string(c.cpus_bound) + " CPU(s) bound, " + std::to_string(c.threads) +
                  " thread(s) (" + c.source + ")";
  if (c.threads > c.cpus_bound) {
    s += "; warning: more threads than CPUs bound: they will time-share (bind fewer ranks per "
         "core, e.g. mpirun --map-by socket:PE=" +
         std::to_string(c.threads) + " --bind-to core, or mpirun --bind-to none)";
  }
  return s;
}

std::string binding_warning(const ThreadChoice& c) {
  if (c.cpus_bound >= c.node_share) return "";
  const std::string share = std::to_string(c.node_share);
  return "warning: this rank is bound to " + std::to_string(c.cpus_bound) + " CPU(s) of the " +
         share + " per rank this node offers; mpirun binds each rank to " +
         "one core unless told otherwise: run mpirun --bind-to none, or --map-by slot:PE=" + share +
         " to bind " + share + " cores to each rank";
}

}  // namespace agave::launcher
