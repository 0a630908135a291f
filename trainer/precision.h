#pragma once
// How a run's forward pass computes: train.precision resolved for a device and this CPU into a
// dtype rule (bf16 autocast or fp32) and a weight layout (channels_last or not).
#include <torch/torch.h>

#include <string>

#include "trainer/options.h"

namespace agave::trainer {

// The CPU features the rule depends on, from /proc/cpuinfo's first "flags" line.
struct CpuFeatures {
  bool amx_bf16 = false;     // bf16 matrix tiles: oneDNN's bf16 convolutions far outrun fp32
  bool avx512_bf16 = false;  // bf16 dot products only: oneDNN 2.6's bf16 convolutions lose to fp32

  static CpuFeatures from_flags(const std::string& flags_line);
  static CpuFeatures of_this_machine();
};

struct Numerics {
  bool bf16 = false;           // bf16 autocast over the forward pass (likelihoods stay fp32)
  bool channels_last = false;  // 4-d weights (and so activations) in channels_last
};

// "bf16" / "fp32" as asked; "auto": bf16 on CUDA and on CPUs with AMX, fp32 elsewhere. Why not
// on AVX512-BF16 alone: oneDNN runs bf16 convolutions there at about half its fp32 speed, so the
// step is slower in bf16 (docs/performance.md, "Precision on CPUs without AMX"). channels_last
// on every CPU (oneDNN's fp32 kernels gain from it too) and on CUDA with bf16 (tensor cores).
Numerics choose_numerics(Precision precision, const torch::Device& device, const CpuFeatures& cpu);
Numerics choose_numerics(Precision precision, const torch::Device& device);

// "bf16 autocast + channels_last", "fp32 + channels_last" or "fp32".
std::string describe(const Numerics& numerics);

// Puts the module's 4-d weights in the layout `numerics` asks for (no-op when not channels_last).
// nn::Module::to has no memory-format overload in LibTorch 1.13.
void apply_layout(const Numerics& numerics, torch::nn::Module& module);

}  // namespace agave::trainer
