// trainer::TrainStep in process, on one rank (an MPI singleton: the bucketed all-reduce and the
// decision all-reduce really run, over one rank).
#include "trainer/train_step.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <memory>

#include "cluster/communicator.h"
#include "cluster/mpi_runtime.h"
#include "model/autocast.h"
#include "model/example_random.h"
#include "trainer/precision.h"

extern agave::cluster::MpiRuntime* g_mpi;

namespace agave::trainer {
namespace {

constexpr uint64_t kSeed = 7;
constexpr double kLambda = 2.0;

// The joint phase with λ = kLambda, no free bits.
PhaseSpec joint() {
  return phase_spec({PhaseKind::kJoint, 1}, LossOptions{kLambda}, 0.0, model::ModelKind::kAgave);
}

model::AgaveOptions tiny() {
  return model::AgaveOptions()
      .image_channels(3)
      .image_size(8)
      .vae(model::VaeOptions().depth(2).width(16).latent_channels(4).latent_resolution(4))
      .pixelcnn(
          model::PixelCnnOptions().nr_resnet(1).nr_filters(16).nr_logistic_mix(3).dropout(0.5))
      .aux(model::AuxOptions().resolution(4).color_bins(64));
}

// A model, its EMA and optimizer, built identically each time (same seed, same init batch).
struct Replica {
  model::Agave model{nullptr};
  std::unique_ptr<model::Ema> ema;
  std::unique_ptr<optim::Adamax> optimizer;

  Replica(const torch::Tensor& images, const torch::Tensor& indices,
          const model::AgaveOptions& options = tiny()) {
    torch::manual_seed(3);
    model = model::Agave(options);
    {
      torch::NoGradGuard no_grad;
      model::ExampleRandomScope rng(model::example_keys(kSeed, -1, indices));
      model->data_init(images);
    }
    ema = std::make_unique<model::Ema>(*model, 0.9);
    optimizer = std::make_unique<optim::Adamax>(model->parameters(), optim::AdamaxOptions(0.01));
  }
};

torch::Tensor images() {
  torch::manual_seed(11);
  return torch::randint(0, 256, {6, 3, 8, 8}, torch::TensorOptions().dtype(torch::kUInt8));
}

torch::Tensor indices() { return torch::arange(100, 106, torch::kInt64); }

std::vector<torch::Tensor> snapshot(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

double max_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  }
  return worst;
}

class TrainStepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = cluster::make_mpi_communicator(g_mpi->world().comm(), 60);
    x_ = images();
    ids_ = indices();
  }

  std::unique_ptr<TrainStep> make_step(Replica& r, std::shared_ptr<FaultHooks> faults = nullptr,
                                       double grad_clip = 0,
                                       const std::atomic<bool>* stop = nullptr) {
    TrainStepOptions o;
    o.stop = stop;
    o.seed = kSeed;
    o.grad_clip = grad_clip;
    o.buckets = {0.002, 0.001, true};  // several small buckets, launched from backward hooks
    return std::make_unique<TrainStep>(r.model, *r.optimizer, *r.ema, *comm_, o, faults);
  }

  std::unique_ptr<cluster::Communicator> comm_;
  torch::Tensor x_, ids_;
};

// The fp32 reference: the paper's loss, plain backward, optim::Adamax, EMA, with the same
// per-example random streams.
double reference_step(Replica& r, const torch::Tensor& x, const torch::Tensor& ids, int64_t step) {
  const model::LossSelection all{true, true, true};
  r.optimizer->zero_grad();
  model::LossTerms terms;
  torch::Tensor loss;
  {
    model::ExampleRandomScope rng(model::example_keys(kSeed, step, ids));
    terms = r.model->forward(x, all);
    loss = model::AgaveImpl::loss(terms, kLambda, all);
  }
  loss.backward();
  r.optimizer->step();
  r.ema->update();
  return loss.item<double>();
}

TEST_F(TrainStepTest, MatchesTheFp32ReferenceStepForStep) {
  Replica trained(x_, ids_), reference(x_, ids_);
  auto step = make_step(trained);
  step->set_phase(joint());
  for (int64_t s = 0; s < 3; ++s) {
    const auto out = step->run(x_, ids_, s);
    const double want = reference_step(reference, x_, ids_, s);
    ASSERT_TRUE(out.applied) << out.skip_reason;
    EXPECT_EQ(out.images, 6);
    EXPECT_NEAR(out.loss_sum / out.images, want, 1e-5 * std::abs(want)) << "step " << s;
    EXPECT_LT(max_difference(snapshot(*trained.model), snapshot(*reference.model)), 1e-5)
        << "step " << s;
  }
  std::vector<torch::Tensor> ema_a, ema_b;
  for (const auto& kv : trained.ema->shadow()) ema_a.push_back(kv.value());
  for (const auto& kv : reference.ema->shadow()) ema_b.push_back(kv.value());
  EXPECT_LT(max_difference(ema_a, ema_b), 1e-5);
  // The terms add up to the joint loss: pixel + aux + λ·KL (no free bits here).
  const auto out = step->run(x_, ids_, 3);
  EXPECT_NEAR(out.loss_sum, out.pixel_sum + out.aux_sum + kLambda * out.kl_sum,
              1e-4 * std::abs(out.loss_sum));
}

// fp32 with channels_last weights (a CPU run's layout in either precision) computes the contiguous
// fp32 loss and gradients within fp32 tolerance: the layout changes the convolution kernels, not
// the math or the per-example random draws. (Weights after an optim::Adamax step are no test: for a
// gradient near eps, lr·g/(|g| + eps) amplifies rounding.)
TEST_F(TrainStepTest, ChannelsLastWeightsGiveTheContiguousLossAndGradients) {
  Replica laid_out(x_, ids_), reference(x_, ids_);
  apply_layout(Numerics{false, true}, *laid_out.model);
  const model::LossSelection all{true, true, true};
  std::vector<double> losses;
  for (auto* r : {&laid_out, &reference}) {
    r->optimizer->zero_grad();
    model::ExampleRandomScope rng(model::example_keys(kSeed, 0, ids_));
    auto loss = model::AgaveImpl::loss(r->model->forward(x_, all), kLambda, all);
    loss.backward();
    losses.push_back(loss.item<double>());
  }
  EXPECT_NEAR(losses[0], losses[1], 1e-5 * std::abs(losses[1]));
  const auto a = laid_out.model->parameters(), b = reference.model->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].grad().defined(), b[i].grad().defined()) << "parameter " << i;
    if (!b[i].grad().defined()) continue;  // not in this loss (e.g. a prior's unused layer)
    const double scale = b[i].grad().abs().max().item<double>();
    EXPECT_LE((a[i].grad() - b[i].grad()).abs().max().item<double>(), 1e-4 * scale + 1e-7)
        << "parameter " << i;
  }
  int64_t channels_last = 0;  // the layout really differed
  for (const auto& p : a) channels_last += p.dim() == 4 && !p.is_contiguous();
  EXPECT_GT(channels_last, 10);
}

// Poisons the loss of one step, as a rank whose numbers overflow would.
class NanAtStep : public FaultHooks {
 public:
  explicit NanAtStep(int64_t step) : step_(step) {}
  void on_loss(int64_t step, int, torch::Tensor& loss) override {
    if (step == step_) loss = loss * std::numeric_limits<float>::quiet_NaN();
  }
  void after_checkpoint_shards(int64_t) override {}

 private:
  int64_t step_;
};

TEST_F(TrainStepTest, ANonFiniteLossSkipsTheStepAndLeavesWeightsEmaAndMomentsAlone) {
  Replica r(x_, ids_);
  auto step = make_step(r, std::make_shared<NanAtStep>(1));
  step->set_phase(joint());
  ASSERT_TRUE(step->run(x_, ids_, 0).applied);
  const auto weights = snapshot(*r.model);
  std::vector<torch::Tensor> ema;
  for (const auto& kv : r.ema->shadow()) ema.push_back(kv.value().clone());
  const int64_t adamax_steps = r.optimizer->states().front().step;

  const auto skipped = step->run(x_, ids_, 1);
  EXPECT_FALSE(skipped.applied);
  EXPECT_EQ(skipped.skip_reason, "non-finite loss on 1 rank(s)");
  EXPECT_EQ(skipped.images, 0);  // nothing of a skipped step enters the logged means
  EXPECT_EQ(max_difference(snapshot(*r.model), weights), 0.0);
  std::vector<torch::Tensor> ema_after;
  for (const auto& kv : r.ema->shadow()) ema_after.push_back(kv.value());
  EXPECT_EQ(max_difference(ema_after, ema), 0.0);
  EXPECT_EQ(r.optimizer->states().front().step, adamax_steps);

  EXPECT_TRUE(step->run(x_, ids_, 2).applied);  // the next step trains again
  EXPECT_GT(max_difference(snapshot(*r.model), weights), 0.0);
}

std::vector<torch::Tensor> clone_all(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> out;
  for (const auto& t : ts) out.push_back(t.detach().clone());
  return out;
}

TEST_F(TrainStepTest, FrozenGroupsStayFrozen) {
  Replica r(x_, ids_);
  auto step = make_step(r);
  const auto groups = r.model->parameter_groups();
  for (const auto kind : {PhaseKind::kPretrainVae, PhaseKind::kPretrainPixelCnn}) {
    const auto spec = phase_spec({kind, 2}, LossOptions{kLambda}, 0.0, model::ModelKind::kAgave);
    step->set_phase(spec);
    const auto vae = clone_all(groups.vae), pixelcnn = clone_all(groups.pixelcnn);
    for (int64_t s = 0; s < 2; ++s) ASSERT_TRUE(step->run(x_, ids_, s).applied);
    const double vae_moved = max_difference(clone_all(groups.vae), vae);
    const double pixelcnn_moved = max_difference(clone_all(groups.pixelcnn), pixelcnn);
    if (spec.train_vae) {
      EXPECT_GT(vae_moved, 0.0) << phase_name(kind);
    } else {
      EXPECT_EQ(vae_moved, 0.0) << phase_name(kind);
    }
    if (spec.train_pixelcnn) {
      EXPECT_GT(pixelcnn_moved, 0.0) << phase_name(kind);
    } else {
      EXPECT_EQ(pixelcnn_moved, 0.0) << phase_name(kind);
    }
    EXPECT_EQ(step->trainable().size(), (spec.train_vae ? groups.vae.size() : 0) +
                                            (spec.train_pixelcnn ? groups.pixelcnn.size() : 0));
  }
}

// Table 1's baselines leave one half of the model unused: it must get no gradient (nothing to
// all-reduce), no optim::Adamax state and no update, while the half in use trains.
TEST_F(TrainStepTest, BaselinesStepOnlyTheHalfTheyUse) {
  for (const auto kind : {model::ModelKind::kPixelCnnOnly, model::ModelKind::kVaeOnly}) {
    auto options = tiny().kind(kind);
    if (kind == model::ModelKind::kVaeOnly) options.aux(model::AuxOptions().resolution(8));
    Replica r(x_, ids_, options);
    auto step = make_step(r);
    step->set_phase(phase_spec({PhaseKind::kJoint, 2}, LossOptions{kLambda}, 0.0, kind));
    const auto groups = r.model->parameter_groups();
    const bool alone = kind == model::ModelKind::kPixelCnnOnly;
    const auto& used = alone ? groups.pixelcnn : groups.vae;
    const auto& unused = alone ? groups.vae : groups.pixelcnn;
    const auto used_before = clone_all(used), unused_before = clone_all(unused);
    for (int64_t s = 0; s < 2; ++s) ASSERT_TRUE(step->run(x_, ids_, s).applied);
    const auto name = model::model_kind_name(kind);
    EXPECT_GT(max_difference(clone_all(used), used_before), 0.0) << name;
    EXPECT_EQ(max_difference(clone_all(unused), unused_before), 0.0) << name;
    EXPECT_EQ(step->trainable().size(), used.size()) << name;
    for (const auto& p : unused) EXPECT_FALSE(p.grad().defined()) << name;
    size_t stepped = 0;
    for (const auto& st : r.optimizer->states()) stepped += st.exp_avg.defined() ? 1 : 0;
    EXPECT_EQ(stepped, used.size()) << name;
  }
}

bool cpu_autocast_on() {
#if AGAVE_DEVICE_AUTOCAST_API
  return at::autocast::is_autocast_enabled(at::kCPU);
#else
  return at::autocast::is_cpu_enabled();
#endif
}

// bf16 autocast covers the training forward and nothing after it: what runs next on the thread
// (the evaluation, pictures) computes in fp32, so test bits/dim of a bf16 run are fp32 numbers.
TEST_F(TrainStepTest, Bf16AutocastCoversTheTrainingForwardOnly) {
  Replica trained(x_, ids_), reference(x_, ids_);
  TrainStepOptions o;
  o.seed = kSeed;
  o.bf16 = true;
  TrainStep step(trained.model, *trained.optimizer, *trained.ema, *comm_, o);
  step.set_phase(joint());
  const auto out = step.run(x_, ids_, 0);
  EXPECT_FALSE(cpu_autocast_on());
  const double want = reference_step(reference, x_, ids_, 0);
  const double got = out.loss_sum / out.images;
  EXPECT_NE(got, want);                           // the forward did run in bf16
  EXPECT_NEAR(got, want, 0.01 * std::abs(want));  // bf16 rounding, not another loss
}

TEST_F(TrainStepTest, AStopRequestIsAgreedAndTheStepStillTrains) {
  Replica r(x_, ids_);
  std::atomic<bool> stop{false};
  auto step = make_step(r, nullptr, 0, &stop);
  step->set_phase(joint());
  EXPECT_FALSE(step->run(x_, ids_, 0).stop);
  stop = true;
  const auto out = step->run(x_, ids_, 1);
  EXPECT_TRUE(out.stop);
  EXPECT_TRUE(out.applied);
}

TEST_F(TrainStepTest, GradientsAreClippedToTheGlobalNorm) {
  Replica clipped(x_, ids_), free(x_, ids_);
  auto a = make_step(clipped, nullptr, /*grad_clip=*/1e-3);
  auto b = make_step(free);
  a->set_phase(joint());
  b->set_phase(joint());
  const auto oa = a->run(x_, ids_, 0);
  b->run(x_, ids_, 0);
  ASSERT_GT(oa.grad_norm, 1e-3);  // so the clip applies
  double norm = 0;
  for (const auto& p : a->trainable()) norm += p.grad().pow(2).sum().item<double>();
  EXPECT_NEAR(std::sqrt(norm), 1e-3, 1e-6);
  // optim::Adamax normalises the step size, so clipping shows in the moments, not the first update.
  EXPECT_LT(clipped.optimizer->states().back().exp_avg.abs().max().item<double>(),
            free.optimizer->states().back().exp_avg.abs().max().item<double>());
}

}  // namespace
}  // namespace agave::trainer
