#pragma once
#include <cstdint>

namespace agave::launcher {

// Sets LibTorch's intra-op thread count explicitly (Debian's build defaults to 1).
// requested > 0 wins; otherwise the node's cores are shared evenly by its local ranks.
// Returns the count that was set.
int64_t configure_torch_threads(int64_t requested, int64_t local_ranks);

}  // namespace agave::launcher
