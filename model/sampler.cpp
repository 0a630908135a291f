#include "model/sampler.h"

#include "model/cached_pixelcnn.h"
#include "model/likelihood.h"

namespace agave::model {
namespace {

torch::Tensor to_uint8(const torch::Tensor& pixels) {
  return torch::round(pixels).clamp(0, 255).to(torch::kByte);
}

// Both loops below start from the same canvas and draw each pixel with the same call in the
// same raster order: that is what makes the two kinds give the same images for one seed.

torch::Tensor naive_pixels(Agave& model, const torch::Tensor& fz) {
  auto& pixelcnn = model->pixelcnn;
  const int64_t n = fz.size(0), c = model->options().image_channels();
  const int64_t s = model->options().image_size();
  const int64_t nr_mix = pixelcnn->options.nr_logistic_mix();
  auto features = model->cond_features(fz);
  // Unvisited pixels are never seen by the pixels being drawn (causality), so any value works.
  auto canvas = torch::zeros({n, c, s, s}, fz.options().dtype(torch::kFloat));
  using torch::indexing::Slice;
  for (int64_t i = 0; i < s; ++i) {
    for (int64_t j = 0; j < s; ++j) {
      auto params = pixelcnn->forward_with_features(canvas, features);
      // Sample only this pixel; the mixture couples its colors R → G → B internally.
      auto p = params.index({Slice(), Slice(), Slice(i, i + 1), Slice(j, j + 1)}).to(torch::kFloat);
      auto drawn = sample_from_discretized_mix_logistic(p, nr_mix, /*quantize=*/true);
      canvas.index_put_({Slice(), Slice(), Slice(i, i + 1), Slice(j, j + 1)}, drawn);
    }
  }
  return to_uint8((canvas + 1.0) * 127.5);
}

torch::Tensor cached_pixels(Agave& model, const torch::Tensor& fz) {
  auto& pixelcnn = model->pixelcnn;
  const int64_t n = fz.size(0), c = model->options().image_channels();
  const int64_t s = model->options().image_size();
  const int64_t nr_mix = pixelcnn->options.nr_logistic_mix();
  CachedPixelCnn net(*pixelcnn, model->cond_features(fz), n, s, s);
  auto canvas = torch::zeros({n, c, s, s}, fz.options().dtype(torch::kFloat));
  using torch::indexing::Slice;
  for (int64_t i = 0; i < s; ++i) {
    for (int64_t j = 0; j < s; ++j) {
      auto p = net.params_at(i, j).to(torch::kFloat);
      auto drawn = sample_from_discretized_mix_logistic(p, nr_mix, /*quantize=*/true);
      canvas.index_put_({Slice(), Slice(), Slice(i, i + 1), Slice(j, j + 1)}, drawn);
      net.set_pixel(i, j, drawn);
    }
  }
  return to_uint8((canvas + 1.0) * 127.5);
}

Samples finish(Agave& model, const torch::Tensor& fz, SamplerKind kind) {
  return {sample_pixels(model, fz, kind), to_uint8(VaeImpl::y_mean(fz))};
}

}  // namespace

torch::Tensor sample_pixels(Agave& model, const torch::Tensor& fz, SamplerKind kind) {
  torch::NoGradGuard no_grad;
  ScopedEval eval(*model);
  switch (kind) {
    case SamplerKind::kCached:
      return cached_pixels(model, fz);
    case SamplerKind::kNaive:
      return naive_pixels(model, fz);
  }
  TORCH_CHECK(false, "sample_pixels: unknown SamplerKind ", static_cast<int>(kind));
}

Samples sample(Agave& model, int64_t n, SamplerKind kind) {
  TORCH_CHECK(n >= 1, "sample: n must be >= 1, got ", n);
  torch::NoGradGuard no_grad;
  ScopedEval eval(*model);
  return finish(model, model->vae->sample_prior(n).fz, kind);
}

Samples reconstruct(Agave& model, const torch::Tensor& x, SamplerKind kind) {
  torch::NoGradGuard no_grad;
  ScopedEval eval(*model);
  return finish(model, model->vae->forward(x).fz, kind);
}

}  // namespace agave::model
