#pragma once
// Sampling from AGAVE: z → f(z) → x pixel by pixel in raster order, all images of the batch at
// once; f(z) and the PixelCNN's conditioning features are computed once per image. The one
// header for anything that samples.
//
// Two implementations of the pixel loop make the same draws in the same order from the same
// generator, so a seed gives the same images with either (tested): kCached is the one to use,
// kNaive is the reference it is checked against (and the baseline of bench/bench_sampling.cpp).
#include <torch/torch.h>

#include <cstdint>

#include "model/agave.h"

namespace agave::model {

enum class SamplerKind {
  // "Fast PixelCNN++" (model/cached_pixelcnn.h): each raster step computes only what the new
  // pixel changes; memory grows with the batch (docs/model.md, "Fast sampling").
  kCached,
  // One full PixelCNN pass per pixel (H·W passes): slow, but obviously the model's distribution.
  kNaive,
};

struct Samples {
  torch::Tensor x;   // N×C×H×W uint8: the PixelCNN's images
  torch::Tensor fz;  // N×C×r×r uint8: f(z) as the y mean in pixel units, rounded
};

// All three run in eval mode (dropout off: samples come from the model being evaluated) without
// autograd, restore the model's mode, and draw from the global generator (torch::manual_seed).

// z ~ p(z) → f(z) → x ~ p(x | f(z)).
Samples sample(Agave& model, int64_t n, SamplerKind kind = SamplerKind::kCached);
// z ~ q(z | x) → f(z) → x' ~ p(x | f(z)); x as in Agave::forward.
Samples reconstruct(Agave& model, const torch::Tensor& x, SamplerKind kind = SamplerKind::kCached);
// The PixelCNN part alone: x ~ p(x | f(z)) for given f(z) (aux resolution, [−1, 1] units);
// N×C×H×W uint8.
torch::Tensor sample_pixels(Agave& model, const torch::Tensor& fz,
                            SamplerKind kind = SamplerKind::kCached);

}  // namespace agave::model
