#pragma once
// Polyak / exponential-moving-average shadow weights, PixelCNN++'s evaluation weights:
//   shadow ← d_t·shadow + (1 − d_t)·param   after the parameter's update t (counted from 0), with
//   d_t = min(decay, (1 + t) / (10 + t)) when warming up (TensorFlow's ExponentialMovingAverage
//   with num_updates), else d_t = decay. Without the warm-up a decay of 0.9995 leaves the
//   shadow ~80 % the initial weights after 400 steps, so every short run evaluates a model
//   that has barely trained.
// t counts each parameter's own updates: a network frozen by a phase (the PixelCNN during
// pretrain_vae) neither moves its shadow nor advances its warm-up, so when it starts training
// its shadow follows it from the start instead of averaging in the frozen initial weights (with
// one global count, 1000 VAE steps then 400 joint ones left the PixelCNN's shadow 67 % initial).
// The shadow is keyed by the module's parameter names, so it checkpoints like the model.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace agave::model {

class Ema {
 public:
  // Starts the shadow at the module's current weights. The module must outlive the Ema and
  // keep its parameters (in-place updates and Module::to are fine; re-registering is not).
  Ema(const torch::nn::Module& module, double decay, bool warmup = true);

  enum class Scope {
    kAll,      // every parameter
    kStepped,  // the parameters with a gradient: those the optimizer has just stepped
  };
  // One averaging step from the module's current weights, of the parameters in `scope`.
  void update(Scope scope = Scope::kAll);
  // Writes the shadow into `module`'s parameters of the same names (all must exist).
  void copy_to(torch::nn::Module& module) const;
  // Exchanges the shadow and `module`'s weights: call before evaluation and again after.
  void swap(torch::nn::Module& module);
  // Restarts the shadow at the tracked module's current weights (e.g. after data init).
  void reset();

  double decay() const { return decay_; }
  // The decay of update number `t` (0-based).
  double decay_at(int64_t t) const;
  // Updates of the most-updated parameter, and of one parameter by name.
  int64_t num_updates() const;
  int64_t num_updates(const std::string& name) const;
  // A resumed run continues each parameter's warm-up where the checkpoint left it.
  void set_num_updates(int64_t n);
  void set_num_updates(const std::string& name, int64_t n);
  // Name → shadow tensor, for checkpoints; load by copying into these tensors.
  const torch::OrderedDict<std::string, torch::Tensor>& shadow() const { return shadow_; }
  torch::OrderedDict<std::string, torch::Tensor>& shadow() { return shadow_; }

 private:
  torch::OrderedDict<std::string, torch::Tensor> live_;  // aliases of the module's parameters
  torch::OrderedDict<std::string, torch::Tensor> shadow_;
  double decay_;
  bool warmup_;
  std::vector<int64_t> updates_;  // per entry of live_, in its order
};

}  // namespace agave::model
