#pragma once
// Conditional PixelCNN++ (Salimans et al. 2017) with the AGAVE conditioning stream (Lucas &
// Verbeek 2018, §4.1): a stack of non-masked convolutions on the conditioning image h = f(z)
// gives one feature map per resolution (H, H/2, H/4), and every gated resnet adds a non-masked
// conv of the map at its resolution to its c2. The conditioning never sees x.
//
// Input x: float in [−1, 1], N×C×H×W, C ∈ {1, 3}, H and W divisible by 4.
// Output: the parameters of the discretized logistic mixture (see model/likelihood.h),
// N×(10·M)×H×W for C = 3 and N×(3·M)×H×W for C = 1; those at pixel (i, j) depend only on the
// pixels before (i, j) in raster order (all channels) and on h.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/layers.h"
#include "model/options.h"
#include "model/weight_norm.h"

namespace agave::model {

// Shape of the AGAVE conditioning stream. Defaults give a stream as deep as the PixelCNN's up
// pass, with the PixelCNN's width.
struct PixelCnnConditioningOptions {
  TORCH_ARG(int64_t, filters) = 0;            // width of the stream; 0 = nr_filters
  TORCH_ARG(int64_t, blocks_per_scale) = -1;  // residual 3×3 blocks per resolution; −1 = nr_resnet
  TORCH_ARG(int64_t, projection_kernel) = 1;  // kernel of each gated resnet's conv of the map
};

// The conditioning feature maps, finest first: [H×W, H/2×W/2, H/4×W/4]. Empty when
// the model is unconditional.
using CondFeatures = std::vector<torch::Tensor>;

// Number of output channels for `image_channels` ∈ {1, 3} and `nr_mix` components.
int64_t mixture_param_channels(int64_t image_channels, int64_t nr_mix);

class PixelCnnImpl : public torch::nn::Module {
 public:
  // cond_channels = 0 builds an unconditional PixelCNN++ (no conditioning parameters).
  PixelCnnImpl(const PixelCnnOptions& options, int64_t image_channels, int64_t cond_channels,
               const PixelCnnConditioningOptions& cond_options = {});

  // x: N×C×H×W in [−1, 1]; cond: N×Ch×H×W (f(z) upsampled to x's size), or undefined when
  // unconditional. Returns the mixture parameters N×out×H×W.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cond = {});

  // The conditioning stream alone: compute once per f(z) and reuse over the sequential
  // sampling passes. Returns an empty vector when unconditional.
  CondFeatures cond_features(const torch::Tensor& cond);
  torch::Tensor forward_with_features(const torch::Tensor& x, const CondFeatures& features);

  // Data-dependent initialisation of every weight-normalised layer (conditioning stream
  // included) on one batch; call once before training. Dropout follows the module's mode.
  void data_init(const torch::Tensor& x, const torch::Tensor& cond = {});

  int64_t image_channels() const { return image_channels_; }
  int64_t cond_channels() const { return cond_channels_; }
  int64_t output_channels() const {
    return mixture_param_channels(image_channels_, options.nr_logistic_mix());
  }

  PixelCnnOptions options;
  PixelCnnConditioningOptions cond_options;

  // Submodules (checkpoint keys are their registered names).
  WeightNormConv2d u_init{nullptr}, ul_init_down{nullptr}, ul_init_right{nullptr};
  torch::nn::ModuleList up_u, up_ul, down_u, down_ul;  // GatedResnet, 3·nr / 3·nr+2 each
  torch::nn::ModuleList u_downsample, ul_downsample, u_upsample, ul_upsample;  // 2 each
  WeightNormConv2d out{nullptr};
  // Conditioning stream (only registered when cond_channels > 0).
  WeightNormConv2d cond_stem{nullptr};
  torch::nn::ModuleList cond_blocks{nullptr};      // 3 · blocks_per_scale, finest first
  torch::nn::ModuleList cond_downsample{nullptr};  // 2 stride-2 convs

 private:
  int64_t image_channels_;
  int64_t cond_channels_;
};
TORCH_MODULE(PixelCnn);

}  // namespace agave::model
