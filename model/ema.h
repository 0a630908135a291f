#pragma once
// Polyak / exponential-moving-average shadow weights, PixelCNN++'s evaluation weights:
//   shadow ← decay·shadow + (1 − decay)·param   after every optimizer step.
// The shadow is keyed by the module's parameter names, so it checkpoints like the model.
#include <torch/torch.h>

#include <string>

namespace agave::model {

class Ema {
 public:
  // Starts the shadow at the module's current weights. The module must outlive the Ema and
  // keep its parameters (in-place updates and Module::to are fine; re-registering is not).
  Ema(const torch::nn::Module& module, double decay);

  // One averaging step from the module's current weights.
  void update();
  // Writes the shadow into `module`'s parameters of the same names (all must exist).
  void copy_to(torch::nn::Module& module) const;
  // Exchanges the shadow and `module`'s weights: call before evaluation and again after.
  void swap(torch::nn::Module& module);
  // Restarts the shadow at the tracked module's current weights (e.g. after data init).
  void reset();

  double decay() const { return decay_; }
  int64_t num_updates() const { return num_updates_; }
  // Name → shadow tensor, for checkpoints; load by copying into these tensors.
  const torch::OrderedDict<std::string, torch::Tensor>& shadow() const { return shadow_; }
  torch::OrderedDict<std::string, torch::Tensor>& shadow() { return shadow_; }

 private:
  torch::OrderedDict<std::string, torch::Tensor> live_;  // aliases of the module's parameters
  torch::OrderedDict<std::string, torch::Tensor> shadow_;
  double decay_;
  int64_t num_updates_ = 0;
};

}  // namespace agave::model
