#pragma once
// How a run's forward pass computes: train.precision resolved for a device into a dtype rule
// (bf16 autocast or fp32) and a weight layout (channels_last or not). On a CPU, `auto` follows
// a measurement (trainer/precision_probe.h): whether oneDNN's bf16 convolutions outrun its fp32
// ones depends on the CPU and the oneDNN version, not on a flag one can read (an Intel CPU with
// AVX512-BF16 and no AMX ran them at half the fp32 speed, an AMD one with the same flags at
// 1.8 times it: docs/performance.md).
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "trainer/options.h"

namespace agave::trainer {

// One probe convolution's forward + backward, timed in each precision.
struct ProbeTimes {
  double fp32_ms = 0;
  double bf16_ms = 0;
  bool cached = false;  // read from the precision cache, not measured by this process
};

struct Numerics {
  bool bf16 = false;           // bf16 autocast over the forward pass (likelihoods stay fp32)
  bool channels_last = false;  // 4-d weights (and so activations) in channels_last
  std::optional<ProbeTimes> probe = std::nullopt;  // what decided `auto` on a CPU
};

// "bf16" / "fp32" as asked; "auto": bf16 on CUDA; on a CPU the precision that ran the probe
// faster (fp32 on a tie, or without a probe: the safe numerics). channels_last on every CPU
// (oneDNN's fp32 kernels gain from it too) and on CUDA with bf16 (tensor cores).
Numerics choose_numerics(Precision precision, const torch::Device& device,
                         const std::optional<ProbeTimes>& probe);

// "bf16 autocast + channels_last", "fp32 + channels_last" or "fp32".
std::string describe(const Numerics& numerics);

// describe() and, where a probe decided, its two times: "fp32 + channels_last (auto: probe
// convolution forward + backward fp32 20.1 ms, bf16 31.7 ms, cached)".
std::string describe_choice(const Numerics& numerics);

// The form ranks agree on and summary.json records; from_json reads it back.
nlohmann::json to_json(const Numerics& numerics);
Numerics numerics_from_json(const nlohmann::json& j);

// Puts the module's 4-d weights in the layout `numerics` asks for (no-op when not channels_last).
// nn::Module::to has no memory-format overload in LibTorch 1.13.
void apply_layout(const Numerics& numerics, torch::nn::Module& module);

}  // namespace agave::trainer
