#pragma once
// The auxiliary image y of AGAVE (docs/MODEL.md, "Auxiliary image y"): x average-pooled to the
// aux resolution and rounded to integers, and the colour-bin index of y for b bins. Plain
// LibTorch ops, so they run on whatever device x is on.
#include <torch/torch.h>

#include <cstdint>

namespace agave::data {

// x: N×C×H×W, uint8 or floating point holding pixel values in [0, 255]. H and W must be
// multiples of `resolution`. Each output pixel is the mean of its (H/r)×(W/r) block rounded half
// up (floor(mean + 1/2), exact for integer inputs). The result has x's dtype; resolution == H
// returns x unchanged (rounded, for floating-point input).
torch::Tensor downsample_average(const torch::Tensor& x, int64_t resolution);

// y: integer pixel values in [0, 255] (any dtype). bins must divide 256. Returns int64
// floor(y / (256 / bins)), in [0, bins).
torch::Tensor color_bin_index(const torch::Tensor& y, int64_t bins);

}  // namespace agave::data
