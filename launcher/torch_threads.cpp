#include "launcher/torch_threads.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace agave::launcher {

int64_t configure_torch_threads(int64_t requested, int64_t local_ranks) {
  int64_t n = requested;
  // Under Slurm the allocation says how many cores this task owns.
  if (n <= 0) {
    if (const char* cpus = std::getenv("SLURM_CPUS_PER_TASK")) n = std::atoll(cpus);
  }
  if (n <= 0) {
    const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
    n = std::max<int64_t>(1, cores / std::max<int64_t>(1, local_ranks));
  }
  torch::set_num_threads(static_cast<int>(n));
  return n;
}

}  // namespace agave::launcher
