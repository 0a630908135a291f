#pragma once
// Conditional PixelCNN++ (Salimans et al. 2017) with the AGAVE conditioning stream (Lucas &
// Verbeek 2018, §4.1): non-masked convolutions on the conditioning image h = f(z) whose maps
// each gated resnet adds, through a non-masked conv of its own (cond_conv), to its c2. The
// conditioning never sees x. Two streams (PixelCnnOptions::conditioning):
//
// per_layer (the paper's: "as many as there are pixelCNN layers", each PixelCNN layer taking
//   input from its own): a chain of plain 3×3 weight-normed convs, one per gated-resnet
//   position, that mirrors the PixelCNN's layer positions, so stream layer l has the resolution
//   of position l. Positions in execution order: up pass nr per scale at H, H/2, H/4; down pass
//   nr, nr + 1, nr + 1 at H/4, H/2, H. The u and the ul gated resnet of position l both use
//   map l. Layer 0 maps f(z) to the stream's width; a layer where the PixelCNN downsamples is
//   a stride-2 conv, one where it upsamples is nearest ×2 then a 3×3 conv (not a transposed
//   conv: a stride-2 3×3 transposed conv covers output pixels unevenly, the checkerboard of
//   Odena et al. 2016, and this keeps every stream layer the same plain_conv); every other
//   layer is residual, h + conv(elu(h)) with init_scale 0.1, as the shared stream's blocks: the
//   chain is 6·nr + 2 deep (32 at paper scale) and a residual one starts near the identity, so
//   f(z) reaches every position at initialisation.
// shared (agave's first stream): a stem and `blocks_per_scale` residual 3×3 convs per
//   resolution with a stride-2 conv between resolutions; its 3 maps (H, H/2, H/4) are shared
//   by every gated resnet of that resolution.
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

// Shape of the AGAVE conditioning stream. Defaults give the stream the PixelCNN's width and,
// for the shared stream, the depth of the PixelCNN's up pass.
struct PixelCnnConditioningOptions {
  TORCH_ARG(int64_t, filters) = 0;  // width of the stream; 0 = nr_filters
  // shared only: residual 3×3 blocks per resolution; −1 = nr_resnet.
  TORCH_ARG(int64_t, blocks_per_scale) = -1;
  TORCH_ARG(int64_t, projection_kernel) = 1;  // kernel of each gated resnet's conv of the map
};

// The conditioning feature maps. shared: one per resolution, finest first [H×W, H/2×W/2,
// H/4×W/4]; per_layer: one per gated-resnet position, in execution order (2·3·nr + 2 maps).
// Empty when the model is unconditional. PixelCnnImpl::cond_map picks a position's map.
using CondFeatures = std::vector<torch::Tensor>;

// The gated-resnet positions of a PixelCNN++ with nr_resnet = nr, in execution order: 3·nr in
// the up pass, 3·nr + 2 in the down pass (the u and ul resnets of a position share it).
int64_t gated_resnet_positions(int64_t nr);
// The resolution of position p as a scale s (H / 2^s).
int64_t position_scale(int64_t p, int64_t nr);

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
  // The map of `features` that the gated resnets of `position` read.
  const torch::Tensor& cond_map(const CondFeatures& features, int64_t position) const;
  // The scale (H / 2^s) of each map cond_features returns, in its order; empty when
  // unconditional.
  std::vector<int64_t> cond_feature_scales() const;

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
  // Conditioning stream (only registered when cond_channels > 0). shared:
  WeightNormConv2d cond_stem{nullptr};
  torch::nn::ModuleList cond_blocks{nullptr};      // 3 · blocks_per_scale, finest first
  torch::nn::ModuleList cond_downsample{nullptr};  // 2 stride-2 convs
  // per_layer: one WeightNormConv2d per gated-resnet position, in execution order.
  torch::nn::ModuleList cond_layers{nullptr};

 private:
  int64_t image_channels_;
  int64_t cond_channels_;
};
TORCH_MODULE(PixelCnn);

}  // namespace agave::model
