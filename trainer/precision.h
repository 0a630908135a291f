#pragma once
// Which precision a run's forward pass uses: train.precision, resolved for a device.
#include <torch/torch.h>

#include "trainer/options.h"

namespace agave::trainer {

// True when the CPU has bf16 matrix units (AMX or AVX512-BF16), where bf16 autocast pays.
bool cpu_has_bf16_units();

// "bf16" / "fp32" as asked; "auto": bf16 on CUDA and on CPUs with bf16 units, fp32 elsewhere
// (docs/model.md: 1.6x the quickstart, 12x the CIFAR model on this AMX CPU).
bool use_bf16(Precision precision, const torch::Device& device);

// Weights in channels_last, so convolutions run on oneDNN's (and cuDNN's) fast NHWC kernels.
// nn::Module::to has no memory-format overload in LibTorch 1.13.
void to_channels_last(torch::nn::Module& module);

}  // namespace agave::trainer
