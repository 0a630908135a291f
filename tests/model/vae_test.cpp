#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/vae.h"
#include "model/vae_iaf.h"
#include "tests/model/tiny.h"

namespace agave::model {
namespace {

VaeOptions small_vae() {
  return VaeOptions().depth(3).width(16).latent_channels(4).latent_resolution(4);
}

TEST(Vae, ShapesAndFiniteValues) {
  torch::manual_seed(0);
  Vae vae(small_vae(), 3, 8, 8);
  auto x = torch::randint(0, 256, {5, 3, 8, 8}).to(torch::kByte);
  auto out = vae->forward(x);
  EXPECT_EQ(out.fz.sizes(), (std::vector<int64_t>{5, 3, 8, 8}));
  EXPECT_EQ(out.fz.scalar_type(), torch::kFloat);
  for (const auto& t : {out.log_q, out.log_p, out.kl, out.kl_train}) {
    EXPECT_EQ(t.sizes(), (std::vector<int64_t>{5}));
    EXPECT_TRUE(torch::isfinite(t).all().item<bool>());
  }
  ASSERT_EQ(out.z.size(), 3u);
  EXPECT_EQ(out.z[0].sizes(), (std::vector<int64_t>{5, 4, 4, 4}));
  EXPECT_TRUE(torch::allclose(out.kl, out.log_q - out.log_p));
  EXPECT_EQ(vae->y_log_scale().sizes(), (std::vector<int64_t>{3}));
}

TEST(Vae, ResolutionsUpAndDown) {
  torch::manual_seed(0);
  // 28 → 7 in the stem (two stride-2 convs), 7 → 14 in the decoder (one transposed conv).
  Vae up(VaeOptions().depth(1).width(8).latent_channels(2).latent_resolution(7), 1, 28, 14);
  EXPECT_EQ(up->forward(torch::zeros({2, 1, 28, 28})).fz.sizes(),
            (std::vector<int64_t>{2, 1, 14, 14}));
  // 32 → 16, then 16 → 8 with a stride-2 conv.
  Vae down(VaeOptions().depth(1).width(8).latent_channels(2).latent_resolution(16), 3, 32, 8);
  EXPECT_EQ(down->forward(torch::zeros({2, 3, 32, 32})).fz.sizes(),
            (std::vector<int64_t>{2, 3, 8, 8}));
  // Same resolution everywhere.
  Vae same(VaeOptions().depth(1).width(8).latent_channels(2).latent_resolution(8), 3, 8, 8);
  EXPECT_EQ(same->forward(torch::zeros({2, 3, 8, 8})).fz.sizes(),
            (std::vector<int64_t>{2, 3, 8, 8}));
}

TEST(Vae, RejectsNonPowerOfTwoResolutions) {
  EXPECT_THROW(Vae(VaeOptions().latent_resolution(12), 3, 32, 32), c10::Error);
  EXPECT_THROW(Vae(VaeOptions().latent_resolution(8), 3, 32, 12), c10::Error);
  EXPECT_THROW(Vae(VaeOptions().latent_resolution(64), 3, 32, 32), c10::Error);
}

TEST(Vae, DecodeOfTheDrawnZReproducesFz) {
  torch::manual_seed(1);
  Vae vae(small_vae().iaf_steps(1), 3, 8, 4);
  auto x = torch::randint(0, 256, {3, 3, 8, 8});
  auto out = vae->forward(x);
  auto again = vae->decode(out.z);
  EXPECT_TRUE(torch::allclose(again.fz, out.fz, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(again.log_p, out.log_p, 1e-4, 1e-4));
}

TEST(Vae, KlIsNonNegativeOnAverage) {
  torch::manual_seed(2);
  for (int64_t iaf : {0, 2}) {
    Vae vae(small_vae().iaf_steps(iaf), 3, 8, 4);
    // One image, many posterior draws: the Monte-Carlo mean estimates KL(q‖p) ≥ 0.
    auto x = torch::randint(0, 256, {1, 3, 8, 8}).expand({512, 3, 8, 8});
    torch::NoGradGuard no_grad;
    auto kl = vae->forward(x).kl;
    auto se = kl.std().item<double>() / std::sqrt(512.0);
    EXPECT_GT(kl.mean().item<double>(), -3.0 * se) << "iaf_steps=" << iaf;
  }
}

TEST(Vae, FreeBitsChangeTrainingKlOnly) {
  const auto x = torch::randint(0, 256, {4, 3, 8, 8});
  torch::manual_seed(3);
  Vae plain(small_vae(), 3, 8, 4);
  torch::manual_seed(3);
  Vae small_fb(small_vae().free_bits(1e-6), 3, 8, 4);
  torch::manual_seed(3);
  Vae big_fb(small_vae().free_bits(1e4), 3, 8, 4);

  torch::manual_seed(4);
  auto a = plain->forward(x);
  torch::manual_seed(4);
  auto b = big_fb->forward(x);
  torch::manual_seed(4);
  auto c = small_fb->forward(x);
  EXPECT_TRUE(torch::allclose(a.kl, b.kl));
  EXPECT_TRUE(torch::allclose(a.kl_train, a.kl, 1e-4, 1e-4));
  // Every channel is below a huge kl_min: each costs kl_min (depth 3 × 4 channels).
  EXPECT_TRUE(torch::allclose(b.kl_train, torch::full({4}, 3 * 4 * 1e4)));
  // A tiny kl_min leaves channels whose batch-mean KL is above it untouched, so the batch
  // mean equals Σ_c max(mean_n KL_nc, kl_min) ≥ the plain KL mean.
  EXPECT_GE(c.kl_train.mean().item<double>(), c.kl.mean().item<double>() - 1e-4);
  // The clamped channels get no gradient through kl_train.
  // (kl_train alone is a constant here; the kl term only gives the backward a graph.)
  (b.kl_train.sum() + 0.0 * b.kl.sum()).backward();
  for (const auto& p : big_fb->named_parameters()) {
    if (p.value().grad().defined()) {
      EXPECT_EQ(p.value().grad().abs().max().item<double>(), 0.0) << p.key();
    }
  }
}

TEST(Vae, SamplePriorHasNoPosteriorTerms) {
  torch::manual_seed(5);
  Vae vae(small_vae(), 1, 8, 8);
  auto out = vae->sample_prior(6);
  EXPECT_EQ(out.fz.sizes(), (std::vector<int64_t>{6, 1, 8, 8}));
  EXPECT_FALSE(out.log_q.defined());
  EXPECT_TRUE(torch::isfinite(out.log_p).all().item<bool>());
}

TEST(VaeIaf, MaskedNetworkIsAutoregressive) {
  torch::manual_seed(6);
  const int64_t zc = 4, r = 4;
  IafStep step(zc, 8);
  auto z = torch::randn({1, zc, r, r}, torch::requires_grad());
  auto context = torch::randn({1, 8, r, r});
  for (int64_t c = 0; c < zc; ++c) {
    for (int64_t pos = 0; pos < r * r; ++pos) {
      const int64_t i = pos / r, j = pos % r;
      auto [shift, log_scale] = step->forward(z, context);
      auto out = shift[0][c][i][j] + log_scale[0][c][i][j];
      auto g = torch::autograd::grad({out}, {z})[0][0];
      // Allowed: positions after (i, j) in raster order (any channel) and channels < c at (i, j).
      for (int64_t cc = 0; cc < zc; ++cc) {
        for (int64_t q = 0; q <= pos; ++q) {
          const bool allowed = q == pos && cc < c;
          if (!allowed) {
            EXPECT_EQ(g[cc][q / r][q % r].item<float>(), 0.f)
                << "output c=" << c << " pos=" << pos << " input c=" << cc << " pos=" << q;
          }
        }
      }
    }
  }
}

TEST(VaeIaf, FlowTermsEnterLogQ) {
  torch::manual_seed(7);
  Vae vae(small_vae().iaf_steps(2), 3, 8, 4);
  auto x = torch::randint(0, 256, {4, 3, 8, 8});
  auto out = vae->forward(x);
  EXPECT_TRUE(torch::isfinite(out.kl).all().item<bool>());
  out.kl_train.sum().backward();
  bool flow_has_grad = false;
  for (const auto& p : vae->named_parameters()) {
    if (p.key().find(".iaf.") != std::string::npos && p.value().grad().defined() &&
        p.value().grad().abs().sum().item<double>() > 0) {
      flow_has_grad = true;
    }
  }
  EXPECT_TRUE(flow_has_grad);
}

}  // namespace
}  // namespace agave::model
