#pragma once
// The auxiliary image y of AGAVE (docs/MODEL.md, "Auxiliary image y"; docs/model.md): the one
// definition the model trains against and every other user must share.
#include <torch/torch.h>

#include <cstdint>

namespace agave::model {

// x: N×C×H×W pixel values 0..255 (uint8 or floating point); `resolution` must divide H and W.
// Returns float32 N×C×resolution×resolution: the mean of each (H/r)×(W/r) block, rounded half
// to even (torch::round). Half to even rather than half up because it is unbiased (a block of
// mean k + ½ goes up as often as down over k), and because it is what training has always
// used: changing it would change the y term, and so every trained checkpoint's loss and the
// tests' expected numbers. resolution == H returns x as float32, unchanged.
// Throws c10::Error for an x that is not 4-D or a resolution that does not divide H and W.
torch::Tensor aux_target(const torch::Tensor& x, int64_t resolution);

}  // namespace agave::model
