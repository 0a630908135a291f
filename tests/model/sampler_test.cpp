#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/agave.h"
#include "model/likelihood.h"
#include "model/sampler.h"
#include "tests/model/tiny.h"

namespace agave::model {
namespace {

TEST(Sampler, PriorSamplesHaveShapeTypeAndSpread) {
  for (int64_t c : {1, 3}) {
    torch::manual_seed(0);
    Agave model(testing::tiny_options(c, 8, 4, 4));
    model->data_init(testing::structured_images(4, c, 8));
    model->train();
    auto s = sample(model, 3);
    EXPECT_TRUE(model->is_training());  // mode restored
    EXPECT_EQ(s.x.sizes(), (std::vector<int64_t>{3, c, 8, 8}));
    EXPECT_EQ(s.x.scalar_type(), torch::kByte);
    EXPECT_EQ(s.fz.sizes(), (std::vector<int64_t>{3, c, 4, 4}));
    EXPECT_EQ(s.fz.scalar_type(), torch::kByte);
    // An untrained model spreads its samples over many values, not a constant image.
    EXPECT_GT(torch::bincount(s.x.flatten().to(torch::kLong)).gt(0).sum().item<int64_t>(), 20);
  }
}

TEST(Sampler, SameSeedSameSamples) {
  torch::manual_seed(1);
  Agave model(testing::tiny_options());
  torch::manual_seed(7);
  auto a = sample(model, 2);
  torch::manual_seed(7);
  auto b = sample(model, 2);
  EXPECT_TRUE(torch::equal(a.x, b.x));
}

TEST(Sampler, ReconstructionKeepsShape) {
  torch::manual_seed(2);
  Agave model(testing::tiny_options());
  auto x = testing::structured_images(3, 3, 8);
  auto r = reconstruct(model, x);
  EXPECT_EQ(r.x.sizes(), x.sizes());
  EXPECT_EQ(r.x.scalar_type(), torch::kByte);
  EXPECT_EQ(r.fz.sizes(), (std::vector<int64_t>{3, 3, 4, 4}));
}

TEST(Sampler, SampledPixelsFollowTheModel) {
  // Each drawn pixel must be a draw from the parameters the PixelCNN gives for it given the
  // pixels already drawn: the final image scores far better under the model than the same
  // pixels in shuffled order would (a sampler that ignores the context fails this).
  torch::manual_seed(3);
  Agave model(testing::tiny_options());
  auto x = testing::structured_images(4, 3, 8);
  model->data_init(x);
  torch::optim::Adam opt(model->parameters(), 1e-2);
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    AgaveImpl::loss(model->forward(x), 1.0).backward();
    opt.step();
  }
  model->eval();
  torch::NoGradGuard no_grad;
  auto fz = model->vae->sample_prior(4).fz;
  auto scored = [&](const torch::Tensor& img) {
    return -discretized_mix_logistic_log_prob(AgaveImpl::scale_pixels(img),
                                              model->pixel_params(img, fz))
                .mean()
                .item<double>();
  };
  for (SamplerKind kind : {SamplerKind::kCached, SamplerKind::kNaive}) {
    auto drawn = sample_pixels(model, fz, kind);
    auto perm = torch::randperm(64);
    auto shuffled = drawn.flatten(2).index_select(2, perm).view(drawn.sizes());
    EXPECT_LT(scored(drawn), scored(shuffled)) << "kind " << static_cast<int>(kind);
  }
}

}  // namespace
}  // namespace agave::model
