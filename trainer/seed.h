#pragma once
// The one formula for a rank's own generator seed. Training steps draw per example
// (model/example_random.h) and do not use it; evaluation, sampling and anything else random
// after the shared initialisation do, so ranks must not share it, and a resume on another rank
// count restarts each rank's stream at a point that depends on the step.
#include <cstdint>

namespace agave::trainer {

constexpr uint64_t rank_seed(uint64_t run_seed, int rank, int64_t step = 0) {
  return run_seed * 1000003ULL + static_cast<uint64_t>(step) * 7919ULL +
         static_cast<uint64_t>(rank) + 1;
}

}  // namespace agave::trainer
