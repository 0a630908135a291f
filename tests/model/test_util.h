#pragma once
// Helpers shared by the model tests.
#include <torch/torch.h>

namespace agave::model::testing {

inline bool all_finite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

}  // namespace agave::model::testing
