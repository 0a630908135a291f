#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "model/agave.h"
#include "model/ema.h"
#include "tests/model/tiny.h"

namespace agave::model {
namespace {

TEST(Ema, MovesTowardTheWeightsWithTheDecay) {
  torch::nn::Linear net(3, 2);
  torch::NoGradGuard no_grad;
  net->weight.fill_(1.0);
  net->bias.fill_(0.0);
  Ema ema(*net, 0.9, /*warmup=*/false);
  net->weight.fill_(3.0);
  net->bias.fill_(10.0);
  ema.update();
  EXPECT_NEAR(ema.shadow()["weight"][0][0].item<double>(), 0.9 * 1.0 + 0.1 * 3.0, 1e-6);
  EXPECT_NEAR(ema.shadow()["bias"][0].item<double>(), 1.0, 1e-6);
  ema.update();
  EXPECT_NEAR(ema.shadow()["weight"][0][0].item<double>(), 0.9 * 1.2 + 0.1 * 3.0, 1e-6);
  EXPECT_EQ(ema.num_updates(), 2);
  // The live weights are untouched by update().
  EXPECT_EQ(net->weight[0][0].item<double>(), 3.0);
}

// The warm-up decay min(decay, (1 + t) / (10 + t)): the shadow follows the live weights
// closely at first, so a short run's EMA is a trained model, then settles at `decay`.
TEST(Ema, WarmUpDecayFollowsTheWeightsEarlyAndSettlesAtTheDecay) {
  torch::nn::Linear net(1, 1);
  torch::NoGradGuard no_grad;
  net->weight.fill_(0.0);
  Ema ema(*net, 0.999);
  EXPECT_NEAR(ema.decay_at(0), 0.1, 1e-12);
  EXPECT_NEAR(ema.decay_at(90), 91.0 / 100.0, 1e-12);
  EXPECT_EQ(ema.decay_at(100000), 0.999);
  net->weight.fill_(1.0);
  ema.update();  // 0.1 · 0 + 0.9 · 1
  EXPECT_NEAR(ema.shadow()["weight"][0][0].item<double>(), 0.9, 1e-6);
  // 400 steps of a weight moving linearly from 0 to 1: the warmed-up shadow lags by a few
  // steps, the plain one is still mostly the start.
  Ema plain(*net, 0.9995, false), warm(*net, 0.9995, true);
  net->weight.fill_(0.0);
  plain.reset();
  warm.reset();
  for (int t = 1; t <= 400; ++t) {
    net->weight.fill_(t / 400.0);
    plain.update();
    warm.update();
  }
  EXPECT_GT(warm.shadow()["weight"][0][0].item<double>(), 0.85);
  EXPECT_LT(plain.shadow()["weight"][0][0].item<double>(), 0.15);
  // A resumed run continues the warm-up from the checkpoint's step.
  warm.set_num_updates(5);
  EXPECT_EQ(warm.num_updates(), 5);
}

// Phases freeze one network while the other trains: under Scope::kStepped a parameter without
// a gradient keeps its shadow and its warm-up count, so when it starts training its shadow
// follows it from the start (decay 0.1 at its first update), not at the global step's decay.
TEST(Ema, FrozenParametersKeepTheirShadowAndTheirWarmUp) {
  torch::nn::Linear net(1, 1);
  net->weight.data().fill_(0.0);
  net->bias.data().fill_(0.0);
  Ema ema(*net, 0.999);
  // 1000 steps in which only the weight trains.
  net->weight.mutable_grad() = torch::ones_like(net->weight);
  for (int t = 0; t < 1000; ++t) {
    net->weight.data().fill_(1.0);
    net->bias.data().fill_(5.0);  // moved, but not by the optimizer: not averaged in
    ema.update(Ema::Scope::kStepped);
  }
  EXPECT_EQ(ema.num_updates("weight"), 1000);
  EXPECT_EQ(ema.num_updates("bias"), 0);
  EXPECT_EQ(ema.num_updates(), 1000);
  EXPECT_EQ(ema.shadow()["bias"][0].item<double>(), 0.0);
  // Then the bias trains too: its first update uses decay 0.1, not 0.999.
  net->bias.mutable_grad() = torch::ones_like(net->bias);
  ema.update(Ema::Scope::kStepped);
  EXPECT_NEAR(ema.shadow()["bias"][0].item<double>(), 0.9 * 5.0, 1e-5);
  EXPECT_EQ(ema.num_updates("bias"), 1);
  ema.set_num_updates("bias", 7);
  EXPECT_EQ(ema.num_updates("bias"), 7);
  EXPECT_THROW(ema.num_updates("no_such"), c10::Error);
  // Scope::kAll (the default) averages every parameter.
  net->bias.mutable_grad() = torch::Tensor();
  ema.update();
  EXPECT_EQ(ema.num_updates("bias"), 8);
}

TEST(Ema, SwapTwiceRestoresAndCopyToWrites) {
  torch::nn::Linear net(2, 2);
  torch::NoGradGuard no_grad;
  net->weight.fill_(1.0);
  Ema ema(*net, 0.5, /*warmup=*/false);
  net->weight.fill_(5.0);
  ema.update();  // shadow 3
  ema.swap(*net);
  EXPECT_EQ(net->weight[0][0].item<double>(), 3.0);
  EXPECT_EQ(ema.shadow()["weight"][0][0].item<double>(), 5.0);
  ema.swap(*net);
  EXPECT_EQ(net->weight[0][0].item<double>(), 5.0);
  torch::nn::Linear other(2, 2);
  ema.copy_to(*other);
  EXPECT_EQ(other->weight[1][1].item<double>(), 3.0);
  EXPECT_THROW(ema.copy_to(*torch::nn::Conv2d(1, 1, 1)), c10::Error);
}

TEST(Ema, TracksTheAgaveModelByName) {
  torch::manual_seed(0);
  Agave model(testing::tiny_options());
  auto x = testing::structured_images(2, 3, 8);
  model->data_init(x);
  Ema ema(*model, 0.99, /*warmup=*/false);
  EXPECT_EQ(ema.shadow().size(), model->named_parameters().size());
  EXPECT_TRUE(ema.shadow().contains("vae.h_top"));
  EXPECT_TRUE(ema.shadow().contains("pixelcnn.out.v"));
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : model->named_parameters()) before[p.key()] = p.value().detach().clone();
  torch::optim::Adam opt(model->parameters(), 1e-2);
  opt.zero_grad();
  AgaveImpl::loss(model->forward(x), 1.0).backward();
  opt.step();
  ema.update();
  int64_t moved = 0;
  for (const auto& p : model->named_parameters()) {
    auto expected = 0.99 * before[p.key()] + 0.01 * p.value().detach();
    EXPECT_TRUE(torch::allclose(ema.shadow()[p.key()], expected, 1e-5, 1e-6)) << p.key();
    moved += !torch::equal(ema.shadow()[p.key()], before[p.key()]);
  }
  EXPECT_GT(moved, 0);
}

}  // namespace
}  // namespace agave::model
