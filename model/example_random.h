#pragma once
// Per-example random numbers: every random number the model draws for an example during
// training (z ~ q(z|x), dropout masks) is a pure function of (seed, step, example id, draw),
// computed by a counter-based hash with tensor ops on the example's device. So a step gives the
// same result whether its batch is split over 1, 2 or N ranks, in any order, on CPU or GPU: the
// numbers follow the example, not the rank, the batch position or a generator's state.
//
// While an ExampleRandomScope is alive on a thread, DiagonalGaussian::sample() and the
// PixelCNN's dropout draw from it; the k-th draw of a forward pass is stream k for every
// example (the model's code path fixes the order of draws). Outside a scope they use torch's
// generator as usual (sampling, evaluation).
#include <torch/torch.h>

#include <cstdint>

namespace agave::model {

// One 32-bit key per example (int64 tensor on CPU, values in [0, 2³²)), from the run's seed,
// the step and each example's id (its index in the split). `step` may be negative for draws
// outside training steps (data-dependent init).
torch::Tensor example_keys(uint64_t seed, int64_t step, const torch::Tensor& example_ids);

class ExampleRandomScope {
 public:
  // keys: int64 [N], one per example of the batch about to run, on the batch's device.
  explicit ExampleRandomScope(torch::Tensor keys);
  ~ExampleRandomScope();
  ExampleRandomScope(const ExampleRandomScope&) = delete;
  ExampleRandomScope& operator=(const ExampleRandomScope&) = delete;

  // The innermost live scope of this thread, or nullptr.
  static ExampleRandomScope* current();

  // Standard normal draws shaped like `like` (N first), fp32, on like's device.
  torch::Tensor normal_like(const torch::Tensor& like);
  // Uniform [0, 1) draws with 24-bit resolution, fp32.
  torch::Tensor uniform_like(const torch::Tensor& like);
  // Bernoulli(1 − p) keep mask (bool) shaped and laid out (channels_last or not) like `like`.
  torch::Tensor keep_mask_like(const torch::Tensor& like, double p);
  // Inverted dropout's multiplier: the keep mask of the same draw as a tensor of like's dtype
  // and layout, 1 / (kept fraction) where kept and 0 elsewhere; equal to
  // keep_mask_like(like, p).to(dtype) * (1 / kept fraction), in one pass on CPU.
  torch::Tensor dropout_scale_like(const torch::Tensor& like, double p);

  int64_t draws() const { return next_stream_; }

 private:
  // 32-bit hashes (int64 tensor, values in [0, 2³²)) of (example key, stream, element index)
  // for a logical shape N×M, one row per example.
  torch::Tensor hashes(const torch::Tensor& like, int64_t stream, int64_t salt) const;

  torch::Tensor keys_;
  int64_t next_stream_ = 0;
  ExampleRandomScope* previous_;
};

// Standard normal noise like `like`: from the current ExampleRandomScope, else torch::randn_like.
torch::Tensor example_normal_like(const torch::Tensor& like);

}  // namespace agave::model
