#pragma once
// PixelCNN++ layers: shifted (causal) convolutions, shifts, concat_elu and the gated resnet.
// Shifted convs are WeightNormConv2d configured by the option factories below, so their
// parameters are the plain `v`, `g`, `b` of a weight-normalised conv.
//
// Causality (raster order, top-left first): a down-shifted conv's output at (i, j) sees input
// rows ≤ i; a down-right-shifted conv's output at (i, j) sees rows < i, or row i with columns
// ≤ j. Shifting with down_shift / right_shift afterwards makes the dependence strict.
#include <torch/torch.h>

#include <cstdint>

#include "model/weight_norm.h"

namespace agave::model {

// Conv with pad top kh−1, left/right (kw−1)/2: output (i, j) sees rows ≤ i. Stride 2 halves H, W.
WeightNormConv2dOptions down_shifted_conv(int64_t in, int64_t out,
                                          torch::ExpandingArray<2> kernel = {2, 3},
                                          torch::ExpandingArray<2> stride = 1);
// Conv with pad top kh−1, left kw−1: output (i, j) sees rows < i, and row i up to column j.
WeightNormConv2dOptions down_right_shifted_conv(int64_t in, int64_t out,
                                                torch::ExpandingArray<2> kernel = {2, 2},
                                                torch::ExpandingArray<2> stride = 1);
// Stride-2 transposed forms: H×W → 2H×2W, cropped so they keep the causal structure.
WeightNormConv2dOptions down_shifted_deconv(int64_t in, int64_t out,
                                            torch::ExpandingArray<2> kernel = {2, 3},
                                            torch::ExpandingArray<2> stride = 2);
WeightNormConv2dOptions down_right_shifted_deconv(int64_t in, int64_t out,
                                                  torch::ExpandingArray<2> kernel = {2, 2},
                                                  torch::ExpandingArray<2> stride = 2);
// 1×1 weight-normalised conv ("network in network").
WeightNormConv2dOptions nin(int64_t in, int64_t out);
// Ordinary same-size conv (odd kernel, symmetric padding): for the non-masked conditioning
// stream; stride 2 halves H, W.
WeightNormConv2dOptions plain_conv(int64_t in, int64_t out, int64_t kernel = 3, int64_t stride = 1);

// Drop the last row, insert a row of zeros on top (N×C×H×W).
torch::Tensor down_shift(const torch::Tensor& x);
// Drop the last column, insert a column of zeros on the left.
torch::Tensor right_shift(const torch::Tensor& x);
// elu(concat(x, −x)) along channels: C → 2C.
torch::Tensor concat_elu(const torch::Tensor& x);

// Element-wise dropout, ~5× faster than torch::dropout on this CPU: the keep mask comes from
// random bytes (four per generator call) instead of one Bernoulli draw per element, so the drop
// probability is p rounded to a multiple of 1/256 (exact for 0.5); survivors are scaled by the
// exact inverse keep probability. Uses the global generator. Identity when !training or p = 0.
torch::Tensor fast_dropout(const torch::Tensor& x, double p, bool training);

enum class ShiftedConv { kDown, kDownRight };

struct GatedResnetOptions {
  GatedResnetOptions(int64_t filters, ShiftedConv conv) : filters_(filters), conv_(conv) {}
  TORCH_ARG(int64_t, filters);            // F: input = output channels
  TORCH_ARG(ShiftedConv, conv);           // kDown: [2,3] down-shifted; kDownRight: [2,2]
  TORCH_ARG(int64_t, skip_channels) = 0;  // channels of the skip input `a`; 0 = none
  TORCH_ARG(int64_t, cond_channels) = 0;  // channels of the conditioning feature map; 0 = none
  TORCH_ARG(int64_t, cond_kernel) = 1;    // kernel of the non-masked conv of the conditioning
  TORCH_ARG(double, dropout) = 0.0;       // element-wise, on concat_elu(c1), training only
};

// x + a·σ(b) with (a, b) = split(c2), where
//   c1 = conv(concat_elu(x)) [+ nin(concat_elu(skip))];  c1 = dropout(concat_elu(c1));
//   c2 = conv(c1) → 2F channels [+ cond_conv(elu(h))].
// Submodules (checkpoint keys): conv1, nin_skip, conv2, cond_conv.
class GatedResnetImpl : public torch::nn::Module {
 public:
  explicit GatedResnetImpl(const GatedResnetOptions& options);
  // `skip` and `h` may be undefined tensors when the block was built without them. `h` is the
  // conditioning feature map at x's resolution; it never depends on x.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& skip = {},
                        const torch::Tensor& h = {});

  GatedResnetOptions options;
  WeightNormConv2d conv1{nullptr}, nin_skip{nullptr}, conv2{nullptr}, cond_conv{nullptr};
};
TORCH_MODULE(GatedResnet);

}  // namespace agave::model
