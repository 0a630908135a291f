#include "optim/adamax.h"

#include <ATen/Parallel.h>

#include <cmath>

namespace agave::optim {
namespace {

// The update as one pass over p, g, m and u when all four are fp32 on the CPU and share one
// dense layout: the tensor-op form below makes seven passes (mul_, add_, mul_, abs, add_,
// maximum, addcdiv_) over every weight each step, whatever the batch.
bool fused_update_applies(const torch::Tensor& p, const torch::Tensor& g, const AdamaxState& s) {
  for (const auto* t : {&p, &g, &s.exp_avg, &s.exp_inf}) {
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat ||
        !t->is_non_overlapping_and_dense() || t->strides() != p.strides()) {
      return false;
    }
  }
  return true;
}

// The same arithmetic as the tensor ops, element by element (scalars in fp32 as ATen uses them).
void fused_update(torch::Tensor& p, const torch::Tensor& g, AdamaxState& s, const AdamaxOptions& o,
                  double step_size) {
  float* pd = p.data_ptr<float>();
  const float* gd = g.data_ptr<float>();
  float* m = s.exp_avg.data_ptr<float>();
  float* u = s.exp_inf.data_ptr<float>();
  const auto b1 = static_cast<float>(o.beta1()), c1 = static_cast<float>(1.0 - o.beta1());
  const auto b2 = static_cast<float>(o.beta2()), eps = static_cast<float>(o.eps());
  const auto rate = static_cast<float>(-step_size);
  at::parallel_for(0, p.numel(), 32768, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      m[i] = m[i] * b1 + c1 * gd[i];
      // torch::maximum's rule: a NaN on either side wins.
      const float decayed = u[i] * b2, fresh = std::abs(gd[i]) + eps;
      u[i] = (decayed > fresh || decayed != decayed) ? decayed : fresh;
      pd[i] = pd[i] + rate * m[i] / u[i];
    }
  });
}

}  // namespace

Adamax::Adamax(std::vector<torch::Tensor> params, AdamaxOptions options)
    : torch::optim::Optimizer({torch::optim::OptimizerParamGroup(std::move(params))},
                              std::make_unique<AdamaxOptions>(options)) {
  TORCH_CHECK(options.lr() > 0, "Adamax: lr must be > 0, got ", options.lr());
  TORCH_CHECK(options.beta1() >= 0 && options.beta1() < 1, "Adamax: beta1 must be in [0, 1)");
  TORCH_CHECK(options.beta2() >= 0 && options.beta2() < 1, "Adamax: beta2 must be in [0, 1)");
  states_.resize(flat_params().size());
}

const AdamaxOptions& Adamax::options() const {
  return static_cast<const AdamaxOptions&>(param_groups_.front().options());
}

std::vector<torch::Tensor> Adamax::flat_params() const {
  std::vector<torch::Tensor> out;
  for (const auto& g : param_groups_)
    for (const auto& p : g.params()) out.push_back(p);
  return out;
}

torch::Tensor Adamax::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable(true);
    loss = closure();
  }
  size_t k = 0;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const AdamaxOptions&>(group.options());
    for (auto& p : group.params()) {
      AdamaxState& s = states_[k++];
      if (!p.grad().defined()) continue;
      const auto& g = p.grad();
      if (!s.exp_avg.defined()) {
        s.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
        s.exp_inf = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      }
      ++s.step;
      const double step_size = o.lr() / (1.0 - std::pow(o.beta1(), static_cast<double>(s.step)));
      if (fused_update_applies(p, g, s)) {
        fused_update(p, g, s, o, step_size);
        continue;
      }
      s.exp_avg.mul_(o.beta1()).add_(g, 1.0 - o.beta1());
      // u_t = max(beta2 * u_{t-1}, |g_t| + eps): eps inside keeps the division finite.
      s.exp_inf.mul_(o.beta2());
      torch::maximum_out(s.exp_inf, s.exp_inf, g.abs().add_(o.eps()));
      p.addcdiv_(s.exp_avg, s.exp_inf, -step_size);
    }
  }
  return loss;
}

void Adamax::save(torch::serialize::OutputArchive& archive) const {
  for (size_t k = 0; k < states_.size(); ++k) {
    const auto& s = states_[k];
    archive.write(std::to_string(k) + ".step", torch::tensor(s.step));
    if (s.exp_avg.defined()) {
      archive.write(std::to_string(k) + ".exp_avg", s.exp_avg, /*is_buffer=*/true);
      archive.write(std::to_string(k) + ".exp_inf", s.exp_inf, /*is_buffer=*/true);
    }
  }
}

void Adamax::load(torch::serialize::InputArchive& archive) {
  for (size_t k = 0; k < states_.size(); ++k) {
    auto& s = states_[k];
    torch::Tensor step;
    archive.read(std::to_string(k) + ".step", step);
    s.step = step.item<int64_t>();
    torch::Tensor m, u;
    if (archive.try_read(std::to_string(k) + ".exp_avg", m, true)) {
      archive.read(std::to_string(k) + ".exp_inf", u, true);
      s.exp_avg = m;
      s.exp_inf = u;
    }
  }
}

}  // namespace agave::optim
