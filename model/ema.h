#pragma once
// Polyak / exponential-moving-average shadow weights, PixelCNN++'s evaluation weights:
//   shadow ← d_t·shadow + (1 − d_t)·param   after optimizer step t (counted from 0), with
//   d_t = min(decay, (1 + t) / (10 + t)) when warming up (TensorFlow's ExponentialMovingAverage
//   with num_updates), else d_t = decay. Without the warm-up a decay of 0.9995 leaves the
//   shadow ~80 % the initial weights after 400 steps, so every short run evaluates a model
//   that has barely trained.
// The shadow is keyed by the module's parameter names, so it checkpoints like the model.
#include <torch/torch.h>

#include <string>

namespace agave::model {

class Ema {
 public:
  // Starts the shadow at the module's current weights. The module must outlive the Ema and
  // keep its parameters (in-place updates and Module::to are fine; re-registering is not).
  Ema(const torch::nn::Module& module, double decay, bool warmup = true);

  // One averaging step from the module's current weights.
  void update();
  // Writes the shadow into `module`'s parameters of the same names (all must exist).
  void copy_to(torch::nn::Module& module) const;
  // Exchanges the shadow and `module`'s weights: call before evaluation and again after.
  void swap(torch::nn::Module& module);
  // Restarts the shadow at the tracked module's current weights (e.g. after data init).
  void reset();

  double decay() const { return decay_; }
  // The decay of update number `t` (0-based).
  double decay_at(int64_t t) const;
  int64_t num_updates() const { return num_updates_; }
  // A resumed run continues the warm-up where the checkpoint left it.
  void set_num_updates(int64_t n) { num_updates_ = n; }
  // Name → shadow tensor, for checkpoints; load by copying into these tensors.
  const torch::OrderedDict<std::string, torch::Tensor>& shadow() const { return shadow_; }
  torch::OrderedDict<std::string, torch::Tensor>& shadow() { return shadow_; }

 private:
  torch::OrderedDict<std::string, torch::Tensor> live_;  // aliases of the module's parameters
  torch::OrderedDict<std::string, torch::Tensor> shadow_;
  double decay_;
  bool warmup_;
  int64_t num_updates_ = 0;
};

}  // namespace agave::model
