#pragma once
// Temporary, for trainer/trainer.cpp alone until issue 17's merge switches it to
// model/sampler.h (`model::sample_pixels(model, fz)`, cached by default); delete this file then.
// Everything else samples through model/sampler.h.
#include <torch/torch.h>

#include "model/agave.h"
#include "model/sampler.h"

namespace agave::model {

inline torch::Tensor sample_pixels_cached(Agave& model, const torch::Tensor& fz) {
  return sample_pixels(model, fz, SamplerKind::kCached);
}

}  // namespace agave::model
