#include "model/vae_iaf.h"

namespace agave::model {

ArConv2dImpl::ArConv2dImpl(ArConv2dOptions opts) : options(std::move(opts)) {
  const int64_t in = options.in_channels(), out = options.out_channels();
  const int64_t k = options.kernel_size(), latent = options.latent();
  TORCH_CHECK(k % 2 == 1, "ArConv2d: kernel size must be odd, got ", k);
  TORCH_CHECK(latent > 0 && in > 0 && out > 0, "ArConv2d: channel counts must be positive");

  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).padding(k / 2));
  weight = register_parameter("weight", conv->weight.detach().clone() * options.init_scale());
  bias = register_parameter("bias", torch::zeros({out}));

  auto m = torch::zeros({out, in, k, k});
  const int64_t c = k / 2;
  // Positions after the centre in raster order are fully connected.
  m.slice(2, c + 1).fill_(1.0);
  m.select(2, c).slice(2, c + 1).fill_(1.0);
  auto centre = m.select(2, c).select(2, c);  // out × in view
  for (int64_t o = 0; o < out; ++o) {
    const int64_t deg_out = o * latent / out;
    for (int64_t i = 0; i < in; ++i) {
      const int64_t deg_in = i * latent / in;
      const bool connected = options.zero_diagonal() ? deg_in < deg_out : deg_in <= deg_out;
      if (connected) centre[o][i] = 1.0;
    }
  }
  mask = register_buffer("mask", m);
}

torch::Tensor ArConv2dImpl::forward(const torch::Tensor& x) {
  return torch::conv2d(x, weight * mask, bias, /*stride=*/1, /*padding=*/options.kernel_size() / 2);
}

IafStepImpl::IafStepImpl(int64_t latent_channels, int64_t hidden_channels) {
  const int64_t z = latent_channels, h = hidden_channels;
  hidden0_ = register_module("hidden0", ArConv2d(ArConv2dOptions(z, h, z)));
  hidden1_ = register_module("hidden1", ArConv2d(ArConv2dOptions(h, h, z)));
  shift_ = register_module("shift",
                           ArConv2d(ArConv2dOptions(h, z, z).zero_diagonal(true).init_scale(0.1)));
  log_scale_ = register_module(
      "log_scale", ArConv2d(ArConv2dOptions(h, z, z).zero_diagonal(true).init_scale(0.1)));
}

std::pair<torch::Tensor, torch::Tensor> IafStepImpl::forward(const torch::Tensor& z,
                                                             const torch::Tensor& context) {
  auto h = torch::elu(hidden0_(z) + context);
  h = torch::elu(hidden1_(h));
  return {0.1 * shift_(h).to(torch::kFloat), 0.1 * log_scale_(h).to(torch::kFloat)};
}

}  // namespace agave::model
