// Causality of the whole AGAVE model: with z fixed, the PixelCNN's parameters for pixel p
// depend on x only through the pixels before p in raster order (all channels), while f(z),
// which in training depends on x through q(z|x), enters only through the conditioning path;
// with either conditioning stream.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "model/agave.h"
#include "tests/model/tiny.h"

namespace agave::model {
namespace {

void expect_causal(const AgaveOptions& options, const std::vector<int64_t>& positions) {
  torch::manual_seed(0);
  Agave model(options);
  model->eval();
  const int64_t c = options.image_channels(), s = options.image_size();
  auto x0 = torch::randint(0, 256, {2, c, s, s});
  model->data_init(x0);
  // A z drawn from q(z|x0) and then held fixed: f(z) no longer depends on the x we probe.
  auto z = model->vae->forward(x0).z;
  for (auto& t : z) t = t.detach();
  auto fz = model->vae->decode(z).fz.detach();

  auto x = x0.to(torch::kFloat).requires_grad_(true);
  for (int64_t p : positions) {
    const int64_t i = p / s, j = p % s;
    auto params = model->pixel_params(x, fz);
    auto g = torch::autograd::grad({params.select(2, i).select(2, j).sum()}, {x})[0];
    auto flat = g.abs().sum(1).view({2, s * s});  // per-pixel, all channels
    EXPECT_EQ(flat.slice(1, p).max().item<float>(), 0.f)
        << "pixel " << p << " sees itself or a later pixel";
    if (p > 0) {
      EXPECT_GT(flat.slice(1, 0, p).sum().item<float>(), 0.f)
          << "pixel " << p << " sees none of the earlier pixels";
    }
  }
  // The conditioning path: the parameters at the first pixel see no x at all, yet they do
  // depend on f(z).
  auto fz_var = fz.clone().requires_grad_(true);
  auto first = model->pixel_params(x, fz_var).select(2, 0).select(2, 0).sum();
  auto grads = torch::autograd::grad({first}, {x, fz_var});
  EXPECT_EQ(grads[0].abs().max().item<float>(), 0.f);
  EXPECT_GT(grads[1].abs().sum().item<float>(), 0.f);
}

// Both conditioning streams: changing x_i changes no output for pixels ≤ i with either.
class AgaveCausality : public ::testing::TestWithParam<PixelCnnConditioning> {
 protected:
  AgaveOptions options(int64_t c, int64_t s, int64_t latent, int64_t aux) const {
    auto o = testing::tiny_options(c, s, latent, aux);
    o.pixelcnn().conditioning(GetParam());
    return o;
  }
};

TEST_P(AgaveCausality, Rgb8x8AllPixels) {
  std::vector<int64_t> all(64);
  for (int64_t p = 0; p < 64; ++p) all[p] = p;
  expect_causal(options(3, 8, 4, 4), all);
}

TEST_P(AgaveCausality, Gray28x28) {
  // Fashion-MNIST shape: 28 → 14 → 7 in the PixelCNN, aux at 14×14.
  expect_causal(options(1, 28, 7, 14), {0, 1, 27, 28, 29, 300, 405, 783});
}

TEST_P(AgaveCausality, Rgb32x32) {
  expect_causal(options(3, 32, 16, 16), {0, 1, 31, 32, 33, 500, 1023});
}

INSTANTIATE_TEST_SUITE_P(Streams, AgaveCausality,
                         ::testing::Values(PixelCnnConditioning::kPerLayer,
                                           PixelCnnConditioning::kShared),
                         [](const auto& info) {
                           return std::string(pixelcnn_conditioning_name(info.param));
                         });

}  // namespace
}  // namespace agave::model
