#pragma once
// Cached ("fast PixelCNN++", Ramachandran et al. 2017) AGAVE sampler: the same samples as the
// naive sampler (model/sampler.h) for the same random numbers, but each raster step computes
// only what the new pixel changes instead of a full PixelCNN pass.
//
// Every activation of the PixelCNN (each stream's output after every layer, and each gated
// resnet's concat_elu(c1)) is kept in a full-size cache. Because the network is causal, the
// value at a position never changes once the pixels it depends on are drawn, so:
//   - the u (vertical) stream depends only on the rows above: once per image row, every u layer
//     computes one row at its resolution (scale s runs on the rows i with i % 2^s == 0);
//   - the ul (horizontal) stream is computed at one position per layer per pixel (scale s on
//     the pixels with i, j both divisible by 2^s; an upsampling layer fills a 2×2 block);
//   - the conditioning features and each gated resnet's projection of them are computed once
//     per image.
// Results equal the full forward up to fp32 summation order (the window convolutions reduce in
// a different order); see docs/model.md, "Fast sampling".
#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "model/agave.h"
#include "model/pixelcnn.h"
#include "model/sampler.h"

namespace agave::model {

// Incremental evaluation of a PixelCnn in raster order for a batch of n images of h×w. The
// PixelCNN's weights are read once, at construction, and always with dropout off (eval
// semantics), whatever the module's mode. Holds no reference to `net`.
class CachedPixelCnn {
 public:
  // features: net.cond_features(cond) for the n images (empty when unconditional).
  CachedPixelCnn(PixelCnnImpl& net, const CondFeatures& features, int64_t n, int64_t height,
                 int64_t width);
  ~CachedPixelCnn();
  CachedPixelCnn(CachedPixelCnn&&) noexcept;
  CachedPixelCnn& operator=(CachedPixelCnn&&) noexcept;

  // Mixture parameters of pixel (i, j), N×out×1×1: what forward_with_features gives at (i, j)
  // for any canvas holding the pixels set so far. Pixels go in raster order: (i, j) must be the
  // pixel after the last one set (callable more than once).
  torch::Tensor params_at(int64_t i, int64_t j);
  // Sets pixel (i, j) (N×C×1×1, [−1, 1] units) after params_at(i, j); advances to the next one.
  void set_pixel(int64_t i, int64_t j, const torch::Tensor& value);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Same contract and same random-number use as sample_pixels (model/sampler.h): x ~ p(x | f(z))
// for f(z) at the aux resolution in [−1, 1] units; N×C×H×W uint8. Eval mode, no autograd.
torch::Tensor sample_pixels_cached(Agave& model, const torch::Tensor& fz);
// sample / reconstruct (model/sampler.h) with the cached pixel sampler.
Samples sample_cached(Agave& model, int64_t n);
Samples reconstruct_cached(Agave& model, const torch::Tensor& x);

}  // namespace agave::model
