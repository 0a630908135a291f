#include "model/ema.h"

#include <algorithm>

namespace agave::model {
namespace {

size_t index_of(const torch::OrderedDict<std::string, torch::Tensor>& live,
                const std::string& name) {
  for (size_t i = 0; i < live.size(); ++i) {
    if (live[i].key() == name) return i;
  }
  TORCH_CHECK(false, "Ema: no parameter '", name, "'");
  return live.size();
}

}  // namespace

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
  updates_.assign(live_.size(), 0);
}

int64_t Ema::num_updates() const {
  return updates_.empty() ? 0 : *std::max_element(updates_.begin(), updates_.end());
}

int64_t Ema::num_updates(const std::string& name) const { return updates_[index_of(live_, name)]; }

void Ema::set_num_updates(int64_t n) { updates_.assign(live_.size(), n); }

void Ema::set_num_updates(const std::string& name, int64_t n) {
  updates_[index_of(live_, name)] = n;
}

double Ema::decay_at(int64_t t) const {
  if (!warmup_) return decay_;
  return std::min(decay_, (1.0 + static_cast<double>(t)) / (10.0 + static_cast<double>(t)));
}

void Ema::update(Scope scope) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < live_.size(); ++i) {
    const auto& item = live_[i];
    const auto& p = item.value();
    if (scope == Scope::kStepped && !p.grad().defined()) continue;
    const double d = decay_at(updates_[i]++);
    auto& s = shadow_[item.key()];
    // The shadow follows the live weights across devices and dtypes (Module::to).
    if (s.device() != p.device() || s.scalar_type() != p.scalar_type()) s = s.to(p.options());
    s.lerp_(p.detach(), 1.0 - d);
  }
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
