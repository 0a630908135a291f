#pragma once
// Naive AGAVE sampler: one full PixelCNN pass per pixel (H·W passes), all images of the batch
// at once. f(z) and the PixelCNN's conditioning features are computed once per image.
#include <torch/torch.h>

#include <cstdint>

#include "model/agave.h"

namespace agave::model {

struct Samples {
  torch::Tensor x;   // N×C×H×W uint8: the PixelCNN's images
  torch::Tensor fz;  // N×C×r×r uint8: f(z) as the y mean in pixel units, rounded
};

// z ~ p(z) → f(z) → x ~ p(x | f(z)). Uses the global generator (torch::manual_seed).
Samples sample(Agave& model, int64_t n);
// z ~ q(z | x) → f(z) → x' ~ p(x | f(z)); x as in Agave::forward.
Samples reconstruct(Agave& model, const torch::Tensor& x);
// The PixelCNN part alone: x ~ p(x | f(z)) for given f(z) (aux resolution, [−1, 1] units).
torch::Tensor sample_pixels(Agave& model, const torch::Tensor& fz);

}  // namespace agave::model
