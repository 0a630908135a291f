#pragma once
// The engine of SamplerKind::kCached (model/sampler.h; "fast PixelCNN++", Ramachandran et al.
// 2017): the same parameters as a full PixelCNN pass at each raster step, but computing only what
// the new pixel changes. Users sample through model/sampler.h; this is for the sampler and tests.
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

#include "model/pixelcnn.h"

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

}  // namespace agave::model
