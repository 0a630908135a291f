#pragma once
// Inverse autoregressive flow on one latent layer (Kingma et al. 2016): masked convolutions
// make the shift and log-scale of every latent unit depend only on units earlier in a fixed
// order, so the Jacobian is triangular and its log-determinant is a plain sum.
#include <torch/torch.h>

#include <utility>

namespace agave::model {

// Masked convolution, autoregressive over space and over a `latent`-long channel order.
// Channel i of a layer with n channels has degree i*latent/n (so latent-sized layers are
// ordered by index and hidden layers repeat every degree). Spatially a unit sees its own
// position and those after it in raster order; at its own position it sees inputs of degree
// <= its own, or < with `zero_diagonal` (the output layer of a MADE).
struct ArConv2dOptions {
  ArConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t latent)
      : in_channels_(in_channels), out_channels_(out_channels), latent_(latent) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, latent);
  TORCH_ARG(int64_t, kernel_size) = 3;
  TORCH_ARG(bool, zero_diagonal) = false;
  TORCH_ARG(double, init_scale) = 1.0;  // multiplies the default initial weights
};

class ArConv2dImpl : public torch::nn::Module {
 public:
  explicit ArConv2dImpl(ArConv2dOptions options);
  torch::Tensor forward(const torch::Tensor& x);

  ArConv2dOptions options;
  torch::Tensor weight;  // out × in × k × k, masked on use
  torch::Tensor bias;
  torch::Tensor mask;  // buffer, same shape as weight
};
TORCH_MODULE(ArConv2d);

// One IAF step: a two-hidden-layer masked network on z (plus the layer's context after the
// first hidden layer) giving the shift and log-scale of the flow, both scaled by 0.1 so the
// flow starts close to the identity.
class IafStepImpl : public torch::nn::Module {
 public:
  IafStepImpl(int64_t latent_channels, int64_t hidden_channels);
  // Returns (shift, log_scale) in fp32.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& z,
                                                  const torch::Tensor& context);

 private:
  ArConv2d hidden0_{nullptr}, hidden1_{nullptr}, shift_{nullptr}, log_scale_{nullptr};
};
TORCH_MODULE(IafStep);

}  // namespace agave::model
