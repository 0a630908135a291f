#include "model/ema.h"

#include <algorithm>

namespace agave::model {

Ema::Ema(const torch::nn::Module& module, double decay, bool warmup)
    : decay_(decay), warmup_(warmup) {
  TORCH_CHECK(decay >= 0.0 && decay <= 1.0, "Ema: decay must be in [0, 1], got ", decay);
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    live_.insert(item.key(), item.value());
  }
  reset();
}

void Ema::reset() {
  torch::NoGradGuard no_grad;
  shadow_.clear();
  for (const auto& item : live_) shadow_.insert(item.key(), item.value().detach().clone());
  num_updates_ = 0;
}

double Ema::decay_at(int64_t t) const {
  if (!warmup_) return decay_;
  return std::min(decay_, (1.0 + static_cast<double>(t)) / (10.0 + static_cast<double>(t)));
}

void Ema::update() {
  torch::NoGradGuard no_grad;
  const double d = decay_at(num_updates_);
  for (const auto& item : live_) {
    auto& s = shadow_[item.key()];
    const auto& p = item.value();
    // The shadow follows the live weights across devices and dtypes (Module::to).
    if (s.device() != p.device() || s.scalar_type() != p.scalar_type()) s = s.to(p.options());
    s.lerp_(p.detach(), 1.0 - d);
  }
  ++num_updates_;
}

void Ema::copy_to(torch::nn::Module& module) const {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const auto* s = shadow_.find(item.key());
    TORCH_CHECK(s != nullptr, "Ema: no shadow weight for parameter '", item.key(), "'");
    item.value().copy_(*s);
  }
}

void Ema::swap(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    auto* s = shadow_.find(item.key());
    TORCH_CHECK(s != nullptr, "Ema: no shadow weight for parameter '", item.key(), "'");
    auto live = item.value().detach().clone();
    item.value().copy_(*s);
    s->copy_(live);
  }
}

}  // namespace agave::model
