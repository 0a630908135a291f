#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "model/agave.h"
#include "tests/model/tiny.h"

namespace agave::model {
namespace {

class AgaveBound : public ::testing::TestWithParam<int64_t> {};

TEST_P(AgaveBound, SingleSampleEqualsElbo) {
  torch::manual_seed(0);
  Agave model(testing::tiny_options().vae(
      VaeOptions().depth(2).width(16).latent_channels(4).latent_resolution(4).iaf_steps(
          GetParam())));
  auto x = testing::structured_images(6, 3, 8);
  model->data_init(x);
  model->eval();
  torch::manual_seed(42);
  auto t = model->forward(x);
  auto elbo = -(t.x_nll + t.kl);
  torch::manual_seed(42);
  auto iw1 = model->importance_weighted_bound(x, 1, /*chunk=*/64);
  EXPECT_TRUE(torch::allclose(iw1, elbo.detach(), 1e-4, 1e-3)) << iw1 << "\nvs\n" << elbo;
  EXPECT_FALSE(model->is_training());
}

TEST_P(AgaveBound, ImportanceSamplingTightensTheBound) {
  torch::manual_seed(1);
  Agave model(testing::tiny_options().vae(
      VaeOptions().depth(2).width(16).latent_channels(4).latent_resolution(4).iaf_steps(
          GetParam())));
  auto x = testing::structured_images(8, 3, 8);
  model->data_init(x);
  model->train();
  // Mean single-sample ELBO over many draws vs the K = 16 bound (chunk not dividing N·K).
  torch::manual_seed(2);
  auto elbo = torch::zeros({8});
  const int64_t draws = 16;
  for (int64_t d = 0; d < draws; ++d) elbo += model->importance_weighted_bound(x, 1, 8);
  elbo /= draws;
  auto iw16 = model->importance_weighted_bound(x, 16, /*chunk=*/37);
  EXPECT_TRUE(model->is_training());  // restored
  EXPECT_EQ(iw16.sizes(), (std::vector<int64_t>{8}));
  EXPECT_TRUE(torch::isfinite(iw16).all().item<bool>());
  EXPECT_GT(iw16.mean().item<double>(), elbo.mean().item<double>());
  // A bound on ln p(x): never above 0 nats for a discrete x.
  EXPECT_LT(iw16.max().item<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(IafSteps, AgaveBound, ::testing::Values(0, 1));

TEST(AgaveBoundChunks, OneRowPerPassAndArgumentChecks) {
  torch::manual_seed(3);
  Agave model(testing::tiny_options());
  auto x = testing::structured_images(2, 3, 8);
  model->data_init(x);
  auto b = model->importance_weighted_bound(x, 4, 1);  // chunk 1: one row per pass
  EXPECT_TRUE(torch::isfinite(b).all().item<bool>());
  EXPECT_EQ(b.sizes(), (std::vector<int64_t>{2}));
  EXPECT_THROW(model->importance_weighted_bound(x, 0, 4), c10::Error);
  EXPECT_THROW(model->importance_weighted_bound(x, 2, 0), c10::Error);
}

}  // namespace
}  // namespace agave::model
