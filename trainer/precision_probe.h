#pragma once
// `train.precision: auto` on a CPU, decided by measuring: one PixelCNN++-sized convolution's
// forward + backward, timed in fp32 and under bf16 autocast (channels_last, the layout a CPU
// run trains in), once per machine kind (trainer/precision_cache.h keeps the times).
#include <filesystem>
#include <optional>
#include <string>

#include "trainer/precision.h"

namespace agave::trainer {

// Times the probe in both precisions, interleaved so a busy machine slows both alike; the best
// pass of each (warm-ups excluded). About a second on a 2-core machine, never much over 2 s.
ProbeTimes time_probe_convolution();

// What the cache files the probe under: this CPU's model name, the LibTorch version and the
// probe's shape and layout (a changed probe measures anew).
std::string probe_key();

// train.precision resolved on this process: `auto` on a CPU reads the probe from `cache` (none:
// no cache) or measures it and stores it there. Never throws for the cache (a bad file is
// measured over) nor for the probe (a failed bf16 pass leaves fp32); `note` then says why.
Numerics resolve_numerics(Precision precision, const torch::Device& device,
                          const std::optional<std::filesystem::path>& cache,
                          std::string* note = nullptr);

// With the user's cache (PrecisionCache::default_file()).
Numerics resolve_numerics(Precision precision, const torch::Device& device,
                          std::string* note = nullptr);

}  // namespace agave::trainer
