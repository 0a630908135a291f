#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <string>

#include "model/agave.h"
#include "model/autocast.h"
#include "model/sampler.h"
#include "tests/model/tiny.h"

namespace agave::model {
namespace {

using testing::tiny_options;

TEST(Agave, ParameterNamesAreStableAndGrouped) {
  torch::manual_seed(0);
  Agave a(tiny_options());
  torch::manual_seed(1);
  Agave b(tiny_options());
  auto na = a->named_parameters(), nb = b->named_parameters();
  ASSERT_EQ(na.size(), nb.size());
  size_t vae = 0, pixelcnn = 0;
  for (size_t i = 0; i < na.size(); ++i) {
    const auto& key = na[i].key();
    EXPECT_EQ(key, nb[i].key());
    if (key.rfind("vae.", 0) == 0) {
      ++vae;
    } else if (key.rfind("pixelcnn.", 0) == 0) {
      ++pixelcnn;
    } else {
      ADD_FAILURE() << "unexpected parameter name " << key;
    }
  }
  const auto names = na.keys();
  std::set<std::string> keys(names.begin(), names.end());
  for (const char* expected :
       {"vae.h_top", "vae.log_scale", "vae.stem.0.v", "vae.stem.0.g", "vae.layers.0.up_conv1.v",
        "vae.layers.0.up_params.g", "vae.layers.1.down_conv2.b"}) {
    EXPECT_TRUE(keys.count(expected)) << expected;
  }
  auto groups = a->parameter_groups();
  EXPECT_EQ(groups.vae.size(), vae);
  EXPECT_EQ(groups.pixelcnn.size(), pixelcnn);
  EXPECT_GT(vae, 0u);
  EXPECT_GT(pixelcnn, 0u);
  // The groups alias the registered parameters (freezing one freezes the model's tensor).
  EXPECT_TRUE(groups.vae[0].is_same(a->vae->parameters()[0]));
}

// PixelCnnInput::kNone (the parallel schedule's PixelCNN pretraining): the pixel term reads
// neither the VAE nor the conditioning stream, and exactly the stream's parameters (the group
// pixelcnn_conditioning) get no gradient.
TEST(Agave, AnUnconditionedPixelTermReadsNoConditioning) {
  torch::manual_seed(4);
  Agave model(tiny_options());
  model->eval();  // no dropout: the passes below differ only in what they read
  auto x = torch::randint(0, 256, {2, 3, 8, 8}).to(torch::kByte);
  const model::LossSelection pixel{/*pixel=*/true, /*aux=*/false, /*kl=*/false};
  auto before = model->forward(x, pixel, PixelCnnInput::kNone).x_nll;
  EXPECT_TRUE(torch::isfinite(before).all().item<bool>());
  EXPECT_TRUE(
      torch::equal(model->forward(x, pixel, PixelCnnInput::kNone).y_nll, torch::zeros({2})));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->vae->parameters()) p.add_(1.0);
    for (auto& p : model->parameter_groups().pixelcnn_conditioning) p.add_(1.0);
  }
  auto after = model->forward(x, pixel, PixelCnnInput::kNone).x_nll;
  EXPECT_TRUE(torch::equal(before, after));
  // Conditioned on f(z), the same weights give another pixel term.
  EXPECT_FALSE(torch::allclose(model->forward(x, pixel).x_nll, after));

  after.sum().backward();
  const auto groups = model->parameter_groups();
  ASSERT_FALSE(groups.pixelcnn_conditioning.empty());
  std::set<const void*> conditioning;
  for (const auto& p : groups.pixelcnn_conditioning) conditioning.insert(p.unsafeGetTensorImpl());
  for (const auto& kv : model->pixelcnn->named_parameters()) {
    const bool of_stream = conditioning.count(kv.value().unsafeGetTensorImpl()) > 0;
    EXPECT_EQ(kv.value().grad().defined(), !of_stream) << kv.key();
  }
  for (const auto& p : model->vae->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Agave, ForwardTermsArePerImageAndFinite) {
  torch::manual_seed(2);
  Agave model(tiny_options());
  auto x = torch::randint(0, 256, {4, 3, 8, 8}).to(torch::kByte);
  auto t = model->forward(x);
  for (const auto& v : {t.x_nll, t.y_nll, t.kl, t.kl_train}) {
    EXPECT_EQ(v.sizes(), (std::vector<int64_t>{4}));
    EXPECT_EQ(v.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::isfinite(v).all().item<bool>());
  }
  EXPECT_GT(t.x_nll.min().item<double>(), 0.0);
  EXPECT_GT(t.y_nll.min().item<double>(), 0.0);
  // Float input holding the same pixel values gives the same terms under the same seed.
  torch::manual_seed(3);
  auto u = model->forward(x);
  torch::manual_seed(3);
  auto f = model->forward(x.to(torch::kFloat));
  EXPECT_TRUE(torch::allclose(u.x_nll, f.x_nll));
  EXPECT_TRUE(torch::allclose(u.y_nll, f.y_nll));
}

TEST(Agave, SkippedTermsAreZero) {
  torch::manual_seed(4);
  Agave model(tiny_options());
  auto x = torch::randint(0, 256, {2, 3, 8, 8});
  LossSelection vae_only;
  vae_only.pixel = false;
  auto t = model->forward(x, vae_only);
  EXPECT_EQ(t.x_nll.abs().sum().item<double>(), 0.0);
  EXPECT_GT(t.y_nll.min().item<double>(), 0.0);
  // Without the pixel term the PixelCNN gets no gradient at all.
  AgaveImpl::loss(t, 1.0, vae_only).backward();
  for (const auto& p : model->pixelcnn->parameters()) EXPECT_FALSE(p.grad().defined());
}

// Table 1's baselines (model.kind). PixelCNN++ alone has no latents: KL and the aux term are 0,
// no VAE parameter gets a gradient, and the IW bound is the exact log-likelihood for any K.
TEST(Agave, PixelCnnOnlyIsUnconditionalAndExact) {
  torch::manual_seed(5);
  Agave model(tiny_options().kind(ModelKind::kPixelCnnOnly));
  auto x = torch::randint(0, 256, {3, 3, 8, 8});
  auto t = model->forward(x);
  EXPECT_EQ(t.kl.abs().sum().item<double>(), 0.0);
  EXPECT_EQ(t.y_nll.abs().sum().item<double>(), 0.0);
  EXPECT_GT(t.x_nll.min().item<double>(), 0.0);
  AgaveImpl::loss(t, 12.0).backward();
  for (const auto& p : model->vae->parameters()) EXPECT_FALSE(p.grad().defined());
  // Salimans et al.'s network: no conditioning stream, no cond_conv in any gated resnet.
  EXPECT_EQ(model->pixelcnn->cond_channels(), 0);
  for (const auto& p : model->pixelcnn->named_parameters()) {
    EXPECT_EQ(p.key().find("cond"), std::string::npos) << p.key();
  }
  EXPECT_TRUE(model->cond_features(model->no_latent(x)).empty());
  const auto drawn = sample_pixels(model, model->no_latent(x.slice(0, 0, 1)), SamplerKind::kCached);
  EXPECT_EQ(drawn.sizes(), torch::IntArrayRef({1, 3, 8, 8}));
  const auto iw = model->importance_weighted_bound(x, 4, 5);
  EXPECT_TRUE(torch::allclose(iw, -t.x_nll, 1e-4, 1e-3)) << iw << t.x_nll;
  // The same images in another order give the same per-image values: nothing conditions them.
  const auto perm = torch::tensor({2, 0, 1});
  EXPECT_TRUE(torch::allclose(model->forward(x.index_select(0, perm)).x_nll,
                              t.x_nll.index_select(0, perm), 1e-5, 1e-4));
}

// The VAE alone: its decoder's −ln p(x|z) is the likelihood (x_nll), the PixelCNN is never
// run (no gradient), and a mismatched aux image is refused.
TEST(Agave, VaeOnlyUsesTheDecoderAsTheLikelihood) {
  torch::manual_seed(6);
  Agave model(tiny_options(3, 8, 4, /*aux_res=*/8).kind(ModelKind::kVaeOnly));
  auto x = torch::randint(0, 256, {2, 3, 8, 8});
  auto t = model->forward(x);
  EXPECT_GT(t.x_nll.min().item<double>(), 0.0);
  EXPECT_EQ(t.y_nll.abs().sum().item<double>(), 0.0);
  EXPECT_GT(t.kl.min().item<double>(), 0.0);
  AgaveImpl::loss(t, 1.0).backward();
  for (const auto& p : model->pixelcnn->parameters()) EXPECT_FALSE(p.grad().defined());
  // The ELBO's likelihood is the decoder's: recompute it from the same draw.
  torch::manual_seed(7);
  auto a = model->forward(x);
  torch::manual_seed(7);
  auto v = model->vae->forward(x);
  EXPECT_TRUE(torch::allclose(a.x_nll, -model->decoder_log_prob(x, v.fz), 1e-5, 1e-4));
  EXPECT_THROW(Agave(tiny_options(3, 8, 4, 4).kind(ModelKind::kVaeOnly)), c10::Error);
}

// Callers ask a kind what it has rather than naming it; the VAE decoder's own term is y_nll,
// or x_nll where the decoder models x itself.
TEST(Agave, EachKindSaysWhatItHas) {
  constexpr auto agave = ModelKind::kAgave, vae = ModelKind::kVaeOnly,
                 pixelcnn = ModelKind::kPixelCnnOnly;
  EXPECT_TRUE(has_latents(agave) && has_pixelcnn(agave) && has_aux_term(agave));
  EXPECT_FALSE(decoder_models_x(agave));
  EXPECT_TRUE(has_latents(vae) && decoder_models_x(vae));
  EXPECT_FALSE(has_pixelcnn(vae) || has_aux_term(vae));
  EXPECT_TRUE(has_pixelcnn(pixelcnn));
  EXPECT_FALSE(has_latents(pixelcnn) || decoder_models_x(pixelcnn) || has_aux_term(pixelcnn));
  LossTerms t;
  t.x_nll = torch::tensor({1.0f});
  t.y_nll = torch::tensor({2.0f});
  EXPECT_TRUE(torch::equal(Agave(tiny_options())->decoder_nll(t), t.y_nll));
  EXPECT_TRUE(torch::equal(Agave(tiny_options(3, 8, 4, 8).kind(vae))->decoder_nll(t), t.x_nll));
  const Agave alone(tiny_options().kind(pixelcnn));
  EXPECT_FALSE(alone->has_latents() || alone->decoder_models_x() || alone->has_aux_term());
  EXPECT_TRUE(alone->has_pixelcnn());
}

TEST(Agave, LossWeightsTheTerms) {
  LossTerms t;
  t.x_nll = torch::tensor({1.0f, 3.0f});
  t.y_nll = torch::tensor({10.0f, 20.0f});
  t.kl = torch::tensor({0.5f, 0.5f});
  t.kl_train = torch::tensor({100.0f, 300.0f});
  EXPECT_FLOAT_EQ(AgaveImpl::loss(t, 1.0).item<float>(), 2.0f + 15.0f + 200.0f);
  EXPECT_FLOAT_EQ(AgaveImpl::loss(t, 12.0).item<float>(), 2.0f + 15.0f + 12.0f * 200.0f);
  LossSelection no_aux;
  no_aux.aux = false;
  EXPECT_FLOAT_EQ(AgaveImpl::loss(t, 2.0, no_aux).item<float>(), 2.0f + 400.0f);
  LossSelection pixel_only;
  pixel_only.aux = false;
  pixel_only.kl = false;
  EXPECT_FLOAT_EQ(AgaveImpl::loss(t, 2.0, pixel_only).item<float>(), 2.0f);
}

TEST(Agave, BitsPerDimUseTheDimensionsOfX) {
  Agave rgb(tiny_options(3, 8, 4, 4));
  const double dims = 3 * 8 * 8;
  EXPECT_EQ(rgb->dims_per_image(), 192);
  EXPECT_NEAR(rgb->bits_per_dim(dims * std::log(2.0)), 1.0, 1e-12);
  EXPECT_NEAR(rgb->bits_per_dim(dims * std::log(256.0)), 8.0, 1e-12);
  auto t = rgb->bits_per_dim(torch::tensor({dims * std::log(2.0), 0.0}));
  EXPECT_NEAR(t[0].item<double>(), 1.0, 1e-6);
  // The y term (at 4×4) is still divided by x's 8×8×3 dimensions.
  Agave gray(tiny_options(1, 8, 4, 2));
  EXPECT_NEAR(gray->bits_per_dim(64 * std::log(2.0)), 1.0, 1e-12);
}

TEST(Agave, AuxTargetIsRoundedAveragePool) {
  Agave model(tiny_options(1, 8, 4, 4));
  auto x = torch::zeros({1, 1, 8, 8});
  x[0][0][0][0] = 255;  // block (0,0) mean 63.75 → 64
  x[0][0][0][2] = 2;    // block (0,1) mean 0.5 → 0 (round half to even)
  x[0][0][2][0] = 6;    // block (1,0) mean 1.5 → 2
  auto y = model->aux_target(x);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 1, 4, 4}));
  EXPECT_EQ(y[0][0][0][0].item<float>(), 64.f);
  EXPECT_EQ(y[0][0][0][1].item<float>(), 0.f);
  EXPECT_EQ(y[0][0][1][0].item<float>(), 2.f);
  Agave full(tiny_options(1, 8, 4, 8));
  EXPECT_TRUE(torch::equal(full->aux_target(x), x));
}

TEST(Agave, RejectsBadOptionsAndInputs) {
  EXPECT_THROW(Agave(tiny_options().aux(AuxOptions().resolution(4).color_bins(100))), c10::Error);
  EXPECT_THROW(Agave(tiny_options(3, 8, 4, 3)), c10::Error);
  EXPECT_THROW(Agave(tiny_options(2, 8, 4, 4)), c10::Error);
  Agave model(tiny_options());
  EXPECT_THROW(model->forward(torch::zeros({1, 3, 16, 16})), c10::Error);
}

TEST(Agave, ColorBinsLowerTheAuxCost) {
  // Coarser bins hold more mass each, so the same f(z) scores y better.
  torch::manual_seed(5);
  Agave fine(tiny_options());
  torch::manual_seed(5);
  Agave coarse(tiny_options().aux(AuxOptions().resolution(4).color_bins(32)));
  auto x = torch::randint(0, 256, {3, 3, 8, 8});
  torch::manual_seed(6);
  auto a = fine->forward(x);
  torch::manual_seed(6);
  auto b = coarse->forward(x);
  EXPECT_TRUE((b.y_nll < a.y_nll).all().item<bool>());
  EXPECT_TRUE(torch::allclose(a.x_nll, b.x_nll));
}

TEST(Agave, DataInitNormalisesAndKeepsValuesFinite) {
  torch::manual_seed(7);
  Agave model(tiny_options());
  auto x = testing::structured_images(8, 3, 8);
  auto before = model->named_parameters()["vae.stem.0.g"].clone();
  model->data_init(x);
  EXPECT_FALSE(torch::equal(before, model->named_parameters()["vae.stem.0.g"]));
  // No gain blew up, in particular not where the input is the data-independent h_top.
  for (const auto& p : model->named_parameters()) {
    EXPECT_TRUE(torch::isfinite(p.value()).all().item<bool>()) << p.key();
    if (p.key().size() > 2 && p.key().substr(p.key().size() - 2) == ".g") {
      EXPECT_LT(p.value().abs().max().item<double>(), 1e3) << p.key();
    }
  }
  auto t = model->forward(x);
  EXPECT_TRUE(torch::isfinite(t.x_nll + t.y_nll + t.kl).all().item<bool>());
  EXPECT_TRUE(torch::autograd::GradMode::is_enabled());
}

TEST(Agave, Bf16AutocastAndChannelsLastStayCloseToFp32) {
  torch::manual_seed(8);
  Agave model(tiny_options());
  model->eval();
  auto x = testing::structured_images(4, 3, 8);
  model->data_init(x);
  torch::NoGradGuard no_grad;
  torch::manual_seed(9);
  auto ref = model->forward(x);
  auto low = [&] {
    AutocastGuard autocast(/*enabled=*/true, /*cuda=*/false);
    torch::manual_seed(9);
    return model->forward(x.contiguous(at::MemoryFormat::ChannelsLast));
  }();
  for (const auto& v : {low.x_nll, low.y_nll, low.kl}) {
    EXPECT_EQ(v.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::isfinite(v).all().item<bool>());
  }
  auto rel = ((low.x_nll - ref.x_nll).abs() / ref.x_nll).max().item<double>();
  EXPECT_LT(rel, 0.05);
}

}  // namespace
}  // namespace agave::model
