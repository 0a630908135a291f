#pragma once
// Adamax (Kingma & Ba 2015, §7.1), the optimizer of the AGAVE, IAF-VAE and PixelCNN++ papers.
// LibTorch has none. State is kept per parameter in order (not in Optimizer::state_, whose key
// type changed between LibTorch 1.x and 2.x) and exposed by name for sharded checkpoints.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace agave::optim {

struct AdamaxOptions : public torch::optim::OptimizerCloneableOptions<AdamaxOptions> {
  AdamaxOptions(double lr = 0.002) : lr_(lr) {}
  TORCH_ARG(double, lr) = 0.002;
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.999;
  TORCH_ARG(double, eps) = 1e-8;

 public:
  double get_lr() const override { return lr_; }
  void set_lr(const double lr) override { lr_ = lr; }
};

// One parameter's moments: m (exp_avg), u (exp_inf, the infinity norm), and the step count.
struct AdamaxState {
  torch::Tensor exp_avg;
  torch::Tensor exp_inf;
  int64_t step = 0;
};

class Adamax : public torch::optim::Optimizer {
 public:
  Adamax(std::vector<torch::Tensor> params, AdamaxOptions options);

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // State tensors by "<index>.exp_avg", "<index>.exp_inf", "<index>.step" (step as an int64
  // scalar tensor), for checkpoints that store them under the parameter's name.
  std::vector<AdamaxState>& states() { return states_; }
  const std::vector<AdamaxState>& states() const { return states_; }
  const AdamaxOptions& options() const;

 private:
  std::vector<torch::Tensor> flat_params() const;
  std::vector<AdamaxState> states_;
};

}  // namespace agave::optim
