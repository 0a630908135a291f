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

}  // namespace

ThreadChoice choose_torch_threads(int64_t requested, int64_t local_ranks) {
  ThreadChoice c;
  const int64_t node = std::max<int64_t>(1, std::thread::hardware_concurrency());
  c.cpus_bound = affinity_cpus();
  if (c.cpus_bound <= 0) c.cpus_bound = node;
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

}  // namespace agave::launcher
