#pragma once
// Weight-normalised convolutions (Salimans & Kingma 2016) with data-dependent initialisation,
// the building block of every conv / transposed conv / nin in the PixelCNN++.
//
// Parameters (checkpoint keys, stable): `v` (direction), `g` (per-output-channel gain), `b`
// (bias). The effective kernel is W = g · V / ‖V‖, the norm taken per output channel.
#include <torch/torch.h>

#include <cstdint>
#include <functional>

namespace agave::model {

struct WeightNormConv2dOptions {
  WeightNormConv2dOptions(int64_t in_channels, int64_t out_channels,
                          torch::ExpandingArray<2> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(torch::ExpandingArray<2>, kernel_size);
  TORCH_ARG(torch::ExpandingArray<2>, stride) = 1;
  // A transposed convolution (kernel V stored as in × out × kh × kw, like torch ConvTranspose).
  TORCH_ARG(bool, transposed) = false;
  // Zero padding applied to the input of a (non-transposed) conv: {left, right, top, bottom}.
  // Asymmetric padding is what makes the shifted (causal) convolutions.
  TORCH_ARG(torch::ExpandingArray<4>, pad) = 0;
  // Columns / rows removed from the output of a transposed conv: {left, right, top, bottom}.
  TORCH_ARG(torch::ExpandingArray<4>, crop) = 0;
  // Data-dependent init makes the output's per-channel std equal to this (0.1 for the second
  // conv of a gated resnet, as in PixelCNN++, so residual branches start small).
  TORCH_ARG(double, init_scale) = 1.0;
};

// Conv, transposed conv or nin (1×1 conv) with weight normalisation. Works with NCHW and
// channels_last inputs and under autocast (the weight is formed in the parameters' dtype).
class WeightNormConv2dImpl : public torch::nn::Module {
 public:
  explicit WeightNormConv2dImpl(const WeightNormConv2dOptions& options);
  void reset();
  torch::Tensor forward(const torch::Tensor& x);

  // The effective kernel g · V / ‖V‖.
  torch::Tensor weight() const;
  // When set, the next forward sets g and b from that batch's per-channel moments (zero mean,
  // std = init_scale) and returns the output recomputed with the new g, b; the flag then
  // clears itself, so each layer initialises once per init pass.
  void set_data_init(bool on) { data_init_pending_ = on; }
  bool data_init_pending() const { return data_init_pending_; }

  WeightNormConv2dOptions options;
  torch::Tensor v, g, b;

 private:
  torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias);
  // weight() as the convolution of `x` will use it: on the CPU one fused node
  // (model/weight_norm_kernel.h) that already has the convolution's dtype.
  torch::Tensor kernel_for(const torch::Tensor& x) const;
  bool data_init_pending_ = false;
};
TORCH_MODULE(WeightNormConv2d);

// Turns the data-dependent-init flag on/off for every WeightNormConv2d under `module`.
void set_data_init(torch::nn::Module& module, bool on);

// Runs `forward` once with every WeightNormConv2d under `module` in init mode and without
// autograd: each layer, in execution order, normalises its pre-activations on the batch that
// actually reaches it (the previous layers already re-normalised), as PixelCNN++ does.
void data_dependent_init(torch::nn::Module& module, const std::function<void()>& forward);

}  // namespace agave::model
