#pragma once
// The weight-normalised kernel W = g · V / ‖V‖ (norm per output channel, dim 0 of a conv kernel)
// as one autograd node with hand-fused CPU loops, forward and backward.
//
// Why: written as tensor ops (pow, sum, sqrt, div, mul, then autocast's cast to bf16) the
// kernel costs about seven full passes over V forward and fifteen backward (PowBackward,
// MulBackward, the bf16 → fp32 copy of dW, gradient accumulation), each over every weight of the
// network, every step, whatever the batch: at the PixelCNN++'s 54 M weights and batch 8 that was
// the largest element-wise cost of the step. Here each output channel's block (in·kh·kw values,
// contiguous in both the contiguous and the channels_last layout, and small enough for L1/L2)
// is read once forward, producing W directly in the dtype the convolution runs in, and once
// backward:
//     dL/dg = (dW · V) / ‖V‖,    dL/dV = (g / ‖V‖) (dW − (dW · V) V / ‖V‖²).
// Each channel's sums run in one thread in a fixed order, so the result does not depend on the
// thread count.
#include <torch/torch.h>

namespace agave::model {

// True when `v` (fp32, on the CPU, 4-D, each output channel's values one contiguous block, as
// in a contiguous or channels_last conv kernel) can take the fused path.
bool fused_weight_norm_applies(const torch::Tensor& v);

// W = g · V / ‖V‖ in dtype `out` (fp32, or bf16 for a convolution under bf16 autocast), with W
// laid out like V. Differentiable in V and g. Requires fused_weight_norm_applies(v).
torch::Tensor fused_weight_norm(const torch::Tensor& v, const torch::Tensor& g,
                                c10::ScalarType out);

}  // namespace agave::model
