#pragma once
// Diagonal Gaussian over a latent layer, parameterised by mean and log standard deviation.
// The math runs in fp32 even under bf16 autocast: KL terms are sums of many small differences
// and bf16 would swamp them with rounding noise.
#include <torch/torch.h>

#include "model/example_random.h"

namespace agave::model {

struct DiagonalGaussian {
  torch::Tensor mean;
  torch::Tensor logsd;

  DiagonalGaussian(torch::Tensor mean_, torch::Tensor logsd_)
      : mean(std::move(mean_).to(torch::kFloat)), logsd(std::move(logsd_).to(torch::kFloat)) {}

  // Reparameterised draw, so gradients reach mean and logsd. Per-example noise inside an
  // ExampleRandomScope (training steps), torch's generator elsewhere.
  torch::Tensor sample() const { return mean + torch::exp(logsd) * example_normal_like(mean); }

  // Elementwise ln N(z; mean, exp(logsd)^2); the caller sums over the axes it needs.
  torch::Tensor log_prob(const torch::Tensor& z) const {
    constexpr double kHalfLog2Pi = 0.91893853320467274178;  // ½·ln(2π)
    auto zf = z.to(torch::kFloat);
    auto t = (zf - mean) * torch::exp(-logsd);
    return -0.5 * t * t - logsd - kHalfLog2Pi;
  }
};

}  // namespace agave::model
