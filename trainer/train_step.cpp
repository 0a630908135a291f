#include "trainer/train_step.h"

#include <ATen/record_function.h>

#include <chrono>
#include <cmath>

#include "cluster/activity.h"
#include "model/autocast.h"
#include "model/example_random.h"

namespace agave::trainer {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Global L2 norm of the gradients (identical on every rank after the all-reduce), as a device
// scalar: the host reads it together with the step's other numbers.
torch::Tensor grad_norm(const std::vector<torch::Tensor>& params, const torch::Tensor& zero) {
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().norm());
  if (norms.empty()) return zero;
  return torch::stack(norms).norm().to(torch::kFloat64);
}

}  // namespace

TrainStep::TrainStep(model::Agave& model, optim::Adamax& optimizer, model::Ema& ema,
                     cluster::Communicator& comm, TrainStepOptions options,
                     std::shared_ptr<FaultHooks> faults)
    : model_(model),
      optimizer_(optimizer),
      ema_(ema),
      comm_(comm),
      options_(options),
      faults_(std::move(faults)),
      device_(model->parameters().front().device()),
      zero_(torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device_))) {}

void TrainStep::set_phase(const PhaseSpec& spec) {
  spec_ = spec;
  model_->set_free_bits(spec.free_bits);
  bucketer_.reset();  // its autograd hooks hold the old parameter list
  const auto groups = model_->parameter_groups();
  for (auto p : groups.vae) p.set_requires_grad(spec.train_vae);
  for (auto p : groups.pixelcnn) p.set_requires_grad(spec.train_pixelcnn);
  // Unconditioned, the conditioning stream gets no gradient: it waits, untouched, for f(z).
  if (spec.pixelcnn_input == model::PixelCnnInput::kNone) {
    for (auto p : groups.pixelcnn_conditioning) p.set_requires_grad(false);
  }
  trainable_.clear();
  for (auto& p : model_->parameters()) {
    p.mutable_grad() = torch::Tensor();
    if (p.requires_grad()) trainable_.push_back(p);
  }
  bucketer_ = std::make_unique<cluster::GradientBucketer>(trainable_, comm_, options_.buckets);
}

torch::Tensor TrainStep::forward_loss(const torch::Tensor& x, const torch::Tensor& keys,
                                      model::LossTerms& terms) {
  RECORD_USER_SCOPE("agave::forward");
  model::AutocastGuard autocast(options_.bf16, x.is_cuda());
  model::ExampleRandomScope rng(keys);
  // Free bits look at the global batch's KL per channel (see VaeImpl::set_batch_sum); set only
  // around the training forward, whose batch every rank runs.
  const bool global_kl = comm_.size() > 1 && model_->options().vae().free_bits() > 0;
  if (global_kl) {
    model_->vae->set_batch_sum([this](torch::Tensor t) {
      comm_.all_reduce(t);
      return t;
    });
  }
  terms = model_->forward(x, spec_.terms, spec_.pixelcnn_input);
  if (global_kl) model_->vae->set_batch_sum(nullptr);
  return model::AgaveImpl::loss(terms, spec_.lambda, spec_.terms);
}

void TrainStep::apply_update(double norm) {
  if (options_.grad_clip > 0 && norm > options_.grad_clip) {
    torch::NoGradGuard no_grad;
    for (auto& p : trainable_) p.grad().mul_(options_.grad_clip / norm);
  }
  RECORD_USER_SCOPE("agave::optimizer");  // optim::Adamax and the EMA, one class in profiles
  optimizer_.step();
  ema_.update(model::Ema::Scope::kStepped);
}

StepOutcome TrainStep::run(const torch::Tensor& images, const torch::Tensor& indices,
                           int64_t step) {
  TORCH_CHECK(bucketer_, "TrainStep::run before set_phase");
  // Pinned host batches copy without blocking the host (CUDA); a no-op on CPU.
  const auto x = images.to(device_, /*non_blocking=*/true);
  const auto keys = model::example_keys(options_.seed, step, indices).to(device_, true);

  const auto compute_start = Clock::now();
  cluster::ActivityScope named("step", step);
  bucketer_->prepare();
  model::LossTerms terms;
  auto loss = forward_loss(x, keys, terms);
  if (faults_) faults_->on_loss(step, comm_.rank(), loss);
  {
    RECORD_USER_SCOPE("agave::backward");
    loss.backward();
  }
  StepOutcome out;
  {
    RECORD_USER_SCOPE("agave::allreduce");  // what backward has not already overlapped
    out.allreduce_seconds = bucketer_->finish();
  }

  // Gradients are already averaged (equal on every rank); the loss is still per rank.
  // Everything the host needs leaves the device in one copy (one sync on a GPU, not one per
  // number), and one all-reduce carries every decision and the step's metrics.
  auto sum_of = [&](const torch::Tensor& v) {
    return v.defined() ? v.detach().sum().to(torch::kFloat64) : zero_;
  };
  const auto host = torch::stack({loss.detach().to(torch::kFloat64), grad_norm(trainable_, zero_),
                                  sum_of(terms.x_nll), sum_of(terms.y_nll), sum_of(terms.kl)})
                        .cpu();
  const double* h = host.data_ptr<double>();
  const double loss_v = h[0];
  const double n = static_cast<double>(x.size(0));
  cluster::ActivityScope decision("decision");
  const auto agreed =
      comm_.all_reduce_sum({std::isfinite(loss_v) ? 0.0 : 1.0, std::isfinite(h[1]) ? 0.0 : 1.0,
                            options_.stop != nullptr && options_.stop->load() ? 1.0 : 0.0, h[2],
                            h[3], h[4], loss_v * n, n});
  out.stop = agreed[2] > 0;
  out.grad_norm = h[1];
  if (agreed[0] > 0) {
    out.skip_reason =
        "non-finite loss on " + std::to_string(static_cast<int>(agreed[0])) + " rank(s)";
  } else if (agreed[1] > 0) {
    out.skip_reason = "non-finite gradient";
  } else {
    apply_update(h[1]);
    out.applied = true;
    out.pixel_sum = agreed[3];
    out.aux_sum = agreed[4];
    out.kl_sum = agreed[5];
    out.loss_sum = agreed[6];
    out.images = agreed[7];
  }
  out.compute_seconds = seconds_since(compute_start) - out.allreduce_seconds;
  return out;
}

}  // namespace agave::trainer
