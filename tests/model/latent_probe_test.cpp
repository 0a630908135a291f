// model::probe_latents: the per-image numbers behind an evaluation's latent use (issue 33).
#include "model/latent_probe.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "tests/model/tiny.h"

namespace agave::model {
namespace {

constexpr int64_t kImages = 6;

Agave tiny_model(int64_t iaf_steps, ModelKind kind = ModelKind::kAgave) {
  torch::manual_seed(7);
  auto o = testing::tiny_options().vae(
      VaeOptions().depth(2).width(16).latent_channels(4).latent_resolution(4).iaf_steps(iaf_steps));
  if (kind == ModelKind::kVaeOnly) o.aux(AuxOptions().resolution(8).color_bins(256));
  Agave model(o.kind(kind));
  model->data_init(testing::structured_images(kImages, 3, 8));
  model->eval();
  return model;
}

// Image i lends its z to image i + 1 (mod n): no image keeps its own.
torch::Tensor roll_by_one(int64_t n) { return torch::arange(n, torch::kLong).roll(1); }

class LatentProbeTest : public ::testing::TestWithParam<int64_t> {};

// The probe's terms are forward()'s for the same draw: keeping the means changes no number.
TEST_P(LatentProbeTest, TermsAreForwardsForTheSameDraw) {
  auto model = tiny_model(GetParam());
  const auto x = testing::structured_images(kImages, 3, 8);
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  const auto want = model->forward(x);
  torch::manual_seed(3);
  const auto p = probe_latents(*model, x, roll_by_one(kImages));
  EXPECT_TRUE(torch::equal(p.terms.x_nll, want.x_nll));
  EXPECT_TRUE(torch::equal(p.terms.y_nll, want.y_nll));
  EXPECT_TRUE(torch::equal(p.terms.kl, want.kl));
}

TEST_P(LatentProbeTest, LayerKlsSumToTheTotalKl) {
  auto model = tiny_model(GetParam());
  torch::NoGradGuard no_grad;
  const auto p =
      probe_latents(*model, testing::structured_images(kImages, 3, 8), roll_by_one(kImages));
  ASSERT_EQ(p.kl_layers.size(), 2u);
  auto sum = torch::zeros({kImages});
  for (const auto& kl : p.kl_layers) {
    ASSERT_EQ(kl.sizes(), (std::vector<int64_t>{kImages}));
    sum += kl;
  }
  EXPECT_TRUE(torch::allclose(sum, p.terms.kl, 1e-5, 1e-3)) << sum << "\nvs\n" << p.terms.kl;
  // Both layers carry some KL at init: a sum that dropped one would differ.
  EXPECT_GT(p.kl_layers[0].abs().sum().item<double>(), 1e-3);
  EXPECT_GT(p.kl_layers[1].abs().sum().item<double>(), 1e-3);
}

// Paired with itself (the identity), an image scores exactly its matched term; paired with
// another image's z, a likelihood of x that reads z scores it differently.
void expect_partners_choose_whose_z(Agave& model) {
  const auto x = testing::structured_images(kImages, 3, 8);
  torch::NoGradGuard no_grad;
  const auto same = probe_latents(*model, x, torch::arange(kImages, torch::kLong));
  EXPECT_TRUE(torch::allclose(same.x_nll_other, same.terms.x_nll, 1e-6, 1e-4));
  const auto other = probe_latents(*model, x, roll_by_one(kImages));
  EXPECT_GT((other.x_nll_other - other.terms.x_nll).abs().max().item<double>(), 1e-3);
  // x_nll_given with the probe's own f(z) is the matched term.
  EXPECT_TRUE(torch::allclose(x_nll_given(*model, x, other.fz), other.terms.x_nll, 1e-6, 1e-4));
}

TEST_P(LatentProbeTest, PartnersChooseWhoseZScoresEachImage) {
  auto model = tiny_model(GetParam());
  expect_partners_choose_whose_z(model);
  const auto x = testing::structured_images(kImages, 3, 8);
  torch::NoGradGuard no_grad;
  EXPECT_THROW(probe_latents(*model, x, torch::arange(kImages - 1, torch::kLong)), c10::Error);
}

// A PixelCNN whose conditioning weights are zero ignores z: another image's z scores every image
// as its own does, so the latent use is 0.
TEST_P(LatentProbeTest, APixelCnnThatIgnoresZTakesNothingFromIt) {
  auto model = tiny_model(GetParam());
  {
    torch::NoGradGuard no_grad;
    for (const auto& kv : model->pixelcnn->named_parameters()) {
      const std::string name = kv.key();
      // Weight-normed layers: w = g·v/|v| + b, so g = b = 0 silences them (v = 0 would be 0/0).
      const bool direction = name.size() > 2 && name.compare(name.size() - 2, 2, ".v") == 0;
      if (name.find("cond_") != std::string::npos && !direction) kv.value().zero_();
    }
  }
  const auto x = testing::structured_images(kImages, 3, 8);
  torch::NoGradGuard no_grad;
  const auto p = probe_latents(*model, x, roll_by_one(kImages));
  EXPECT_TRUE(torch::allclose(p.x_nll_other, p.terms.x_nll, 1e-6, 1e-4))
      << p.x_nll_other << "\nvs\n"
      << p.terms.x_nll;
}

TEST_P(LatentProbeTest, PosteriorMeansHaveOneMapPerLayer) {
  auto model = tiny_model(GetParam());
  torch::NoGradGuard no_grad;
  const auto x = testing::structured_images(kImages, 3, 8);
  const auto p = probe_latents(*model, x, roll_by_one(kImages));
  ASSERT_EQ(p.z_mean.size(), 2u);
  for (const auto& m : p.z_mean) {
    EXPECT_EQ(m.sizes(), (std::vector<int64_t>{kImages, 4, 4, 4}));
    EXPECT_TRUE(torch::isfinite(m).all().item<bool>());
  }
  // Training's forward does not compute them.
  EXPECT_TRUE(model->vae->forward(x).z_mean.empty());
}

INSTANTIATE_TEST_SUITE_P(IafSteps, LatentProbeTest, ::testing::Values(0, 1));

// Without IAF the top layer's posterior is a Gaussian that depends on x alone, and z_mean is its
// mean: the average of many draws of one image's z comes within a few standard errors of it (the
// prior's mean, or a draw, would not). The layers below are conditional on the draw above.
TEST(LatentProbe, PosteriorMeanIsTheMeanOfTheDraws) {
  auto model = tiny_model(0);
  torch::NoGradGuard no_grad;
  const int64_t draws = 4000;
  const auto x = testing::structured_images(1, 3, 8).expand({draws, 3, 8, 8}).contiguous();
  const auto v = model->vae->forward(x, PosteriorMean::kKeep);
  const auto& z = v.z.back();
  const auto mean_of_draws = z.mean(0);
  const auto stderr_of_draws = z.std(0) / std::sqrt(static_cast<double>(draws));
  const auto off = ((mean_of_draws - v.z_mean.back()[0]).abs() / stderr_of_draws).max();
  EXPECT_LT(off.item<double>(), 5.0);
  // The draws spread: the check can tell a mean from a draw.
  EXPECT_GT(z.std(0).mean().item<double>(), 0.05);
}

TEST(LatentProbe, PixelCnnOnlyHasNoLatentsToProbe) {
  torch::manual_seed(7);
  Agave model(testing::tiny_options().kind(ModelKind::kPixelCnnOnly));
  model->eval();
  torch::NoGradGuard no_grad;
  const auto p =
      probe_latents(*model, testing::structured_images(kImages, 3, 8), roll_by_one(kImages));
  EXPECT_TRUE(torch::equal(p.x_nll_other, p.terms.x_nll));
  EXPECT_TRUE(p.kl_layers.empty());
  EXPECT_TRUE(p.z_mean.empty());
  EXPECT_FALSE(p.fz.defined());
}

// vae_only: the decoder is the likelihood of x, and it is what another image's z is tried on.
TEST(LatentProbe, VaeOnlyPairsThroughTheDecoder) {
  auto model = tiny_model(0, ModelKind::kVaeOnly);
  expect_partners_choose_whose_z(model);
}

}  // namespace
}  // namespace agave::model
