// Weight-normalised convs, data-dependent init, shifted convs and the gated resnet.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tuple>

#include "model/autocast.h"
#include "model/layers.h"
#include "model/weight_norm.h"
#include "tests/model/test_util.h"

namespace agave::model {
namespace {

class Layers : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    torch::manual_seed(0);
  }
};

// Per-channel mean and (biased) std over N, H, W.
std::pair<torch::Tensor, torch::Tensor> moments(const torch::Tensor& t) {
  return {t.mean(std::vector<int64_t>{0, 2, 3}),
          t.var(std::vector<int64_t>{0, 2, 3}, false).sqrt()};
}

TEST_F(Layers, WeightNormKernelHasNormGPerOutputChannel) {
  WeightNormConv2d conv(WeightNormConv2dOptions(5, 7, {2, 3}));
  torch::NoGradGuard no_grad;
  conv->g.uniform_(0.5, 2.0);
  auto norms = conv->weight().pow(2).sum({1, 2, 3}).sqrt();
  EXPECT_TRUE(torch::allclose(norms, conv->g, 1e-5, 1e-6));
  // Rescaling V must not change the layer: the kernel depends on V's direction only.
  auto x = torch::randn({2, 5, 6, 6});
  auto before = conv(x);
  conv->v.mul_(3.7);
  EXPECT_TRUE(torch::allclose(conv(x), before, 1e-4, 1e-5));

  WeightNormConv2d deconv(down_shifted_deconv(4, 6));
  deconv->g.uniform_(0.5, 2.0);
  auto dnorms =
      deconv->weight().pow(2).sum(std::vector<int64_t>{0, 2, 3}).sqrt();  // in × out × kh × kw
  EXPECT_TRUE(torch::allclose(dnorms, deconv->g, 1e-5, 1e-6));
}

TEST_F(Layers, ParameterNamesAreStable) {
  GatedResnet block(GatedResnetOptions(4, ShiftedConv::kDown).skip_channels(4).cond_channels(3));
  std::vector<std::string> names;
  for (const auto& p : block->named_parameters()) names.push_back(p.key());
  const std::vector<std::string> expected{
      "conv1.v", "conv1.g", "conv1.b", "nin_skip.v",  "nin_skip.g",  "nin_skip.b",
      "conv2.v", "conv2.g", "conv2.b", "cond_conv.v", "cond_conv.g", "cond_conv.b"};
  EXPECT_EQ(names, expected);
}

TEST_F(Layers, ShiftsMoveByOneAndInsertZeros) {
  auto x = torch::arange(1, 13, torch::kFloat).view({1, 1, 3, 4});
  auto d = down_shift(x);
  EXPECT_TRUE(torch::equal(d.select(2, 0), torch::zeros({1, 1, 4})));
  EXPECT_TRUE(torch::equal(d.slice(2, 1), x.slice(2, 0, 2)));
  auto r = right_shift(x);
  EXPECT_TRUE(torch::equal(r.select(3, 0), torch::zeros({1, 1, 3})));
  EXPECT_TRUE(torch::equal(r.slice(3, 1), x.slice(3, 0, 3)));
  auto c = concat_elu(torch::tensor({-1.0f, 2.0f}).view({1, 2, 1, 1}));
  auto expected = torch::tensor({std::expm1(-1.0f), 2.0f, 1.0f, std::expm1(-2.0f)});
  EXPECT_TRUE(torch::allclose(c.flatten(), expected));
}

// Which input positions the output at (i, j) depends on, as a boolean H×W map.
torch::Tensor dependence(WeightNormConv2d& conv, int64_t h, int64_t w, int64_t i, int64_t j) {
  auto x = torch::randn({1, conv->options.in_channels(), h, w}, torch::requires_grad());
  auto y = conv(x);
  y.select(2, i).select(2, j).sum().backward();
  return x.grad().abs().sum(std::vector<int64_t>{0, 1}) > 0;
}

TEST_F(Layers, ShiftedConvsSeeOnlyThePast) {
  const int64_t h = 6, w = 6;
  WeightNormConv2d down(down_shifted_conv(2, 3));
  WeightNormConv2d down_right(down_right_shifted_conv(2, 3));
  for (int64_t i = 0; i < h; ++i) {
    for (int64_t j = 0; j < w; ++j) {
      auto dep = dependence(down, h, w, i, j);
      EXPECT_FALSE(dep.slice(0, i + 1).any().item<bool>()) << i << "," << j;
      EXPECT_TRUE(dep[i][j].item<bool>());  // sees its own row: down_shift makes it strict
      auto dep_r = dependence(down_right, h, w, i, j);
      EXPECT_FALSE(dep_r.slice(0, i + 1).any().item<bool>());
      EXPECT_FALSE(dep_r[i].slice(0, j + 1).any().item<bool>());
      EXPECT_TRUE(dep_r[i][j].item<bool>());
    }
  }
}

TEST_F(Layers, StridedShiftedConvsHalveAndDeconvsDoubleTheSize) {
  auto x = torch::randn({2, 4, 8, 12});
  EXPECT_EQ(WeightNormConv2d(down_shifted_conv(4, 5, {2, 3}, 2))(x).sizes(),
            (std::vector<int64_t>{2, 5, 4, 6}));
  EXPECT_EQ(WeightNormConv2d(down_right_shifted_conv(4, 5, {2, 2}, 2))(x).sizes(),
            (std::vector<int64_t>{2, 5, 4, 6}));
  EXPECT_EQ(WeightNormConv2d(down_shifted_deconv(4, 5))(x).sizes(),
            (std::vector<int64_t>{2, 5, 16, 24}));
  EXPECT_EQ(WeightNormConv2d(down_right_shifted_deconv(4, 5))(x).sizes(),
            (std::vector<int64_t>{2, 5, 16, 24}));
  EXPECT_EQ(WeightNormConv2d(plain_conv(4, 5, 3, 2))(x).sizes(),
            (std::vector<int64_t>{2, 5, 4, 6}));
}

// Transposed convs run as a conv plus pixel shuffle; they must equal conv_transpose2d.
TEST_F(Layers, TransposedConvMatchesConvTranspose2d) {
  for (auto [kh, kw, s] : {std::tuple<int64_t, int64_t, int64_t>{2, 3, 2},
                           {2, 2, 2},
                           {3, 3, 2},
                           {1, 1, 1},
                           {2, 3, 1},
                           {4, 4, 2},
                           {3, 2, 3}}) {
    WeightNormConv2d conv(WeightNormConv2dOptions(5, 7, {kh, kw}).stride(s).transposed(true));
    torch::NoGradGuard no_grad;
    conv->g.uniform_(0.5, 2.0);
    conv->b.uniform_(-1.0, 1.0);
    auto x = torch::randn({2, 5, 6, 7});
    auto ref = torch::conv_transpose2d(x, conv->weight(), conv->b, s);
    auto y = conv(x);
    ASSERT_EQ(y.sizes(), ref.sizes()) << kh << "x" << kw << " stride " << s;
    EXPECT_TRUE(torch::allclose(y, ref, 1e-4, 1e-5)) << kh << "x" << kw << " stride " << s;
    auto y_cl = conv(x.contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_TRUE(torch::allclose(y_cl, ref, 1e-4, 1e-5)) << kh << "x" << kw << " stride " << s;
  }
}

TEST_F(Layers, DataInitNormalisesPreActivations) {
  auto x = torch::randn({16, 6, 8, 8}) * 3.0 + 1.5;
  for (double scale : {1.0, 0.1}) {
    for (auto opts : {down_shifted_conv(6, 10), down_right_shifted_deconv(6, 10), nin(6, 10)}) {
      WeightNormConv2d conv(opts.init_scale(scale));
      torch::Tensor init_out;
      data_dependent_init(*conv, [&] { init_out = conv(x); });
      EXPECT_FALSE(conv->data_init_pending());
      torch::NoGradGuard no_grad;
      auto [mean, std] = moments(conv(x));
      EXPECT_LT(mean.abs().max().item<double>(), 1e-4 * scale * 10);
      EXPECT_NEAR(std.min().item<double>(), scale, 1e-3 * scale);
      EXPECT_NEAR(std.max().item<double>(), scale, 1e-3 * scale);
      // The init pass returns the output recomputed with the new g, b.
      EXPECT_TRUE(torch::allclose(init_out, conv(x), 1e-4, 1e-5));
    }
  }
}

// A constant batch (zero variance per channel) must not produce a gain of 1/sqrt(1e-10).
TEST_F(Layers, DataInitOnAConstantBatchKeepsAFiniteGain) {
  WeightNormConv2d conv(nin(3, 4).init_scale(0.5));
  auto x = torch::ones({4, 3, 8, 8});
  torch::Tensor out;
  data_dependent_init(*conv, [&] { out = conv(x); });
  EXPECT_TRUE(torch::allclose(conv->g, torch::full({4}, 0.5)));
  EXPECT_LT(out.abs().max().item<double>(), 1e-5);  // the mean is still removed
}

// Two stacked layers: the second must initialise on the first's re-normalised output, so after
// the init pass both pre-activations are standardised on the init batch.
TEST_F(Layers, DataInitRecomputeFeedsTheNextLayer) {
  struct TwoLayers : torch::nn::Module {
    WeightNormConv2d a{down_shifted_conv(3, 8)}, b{down_right_shifted_conv(8, 8)};
    TwoLayers() {
      register_module("a", a);
      register_module("b", b);
    }
    torch::Tensor forward(const torch::Tensor& x) { return b(torch::elu(a(x))); }
  };
  auto net = std::make_shared<TwoLayers>();
  auto x = torch::randn({32, 3, 8, 8}) * 5.0 - 2.0;
  data_dependent_init(*net, [&] { net->forward(x); });
  torch::NoGradGuard no_grad;
  auto pre_a = net->a(x);
  auto pre_b = net->b(torch::elu(pre_a));
  for (const auto& t : {pre_a, pre_b}) {
    auto [mean, std] = moments(t);
    EXPECT_LT(mean.abs().max().item<double>(), 1e-4);
    EXPECT_NEAR(std.min().item<double>(), 1.0, 1e-3);
    EXPECT_NEAR(std.max().item<double>(), 1.0, 1e-3);
  }
}

TEST_F(Layers, GatedResnetUsesSkipAndConditioning) {
  GatedResnet block(
      GatedResnetOptions(4, ShiftedConv::kDownRight).skip_channels(6).cond_channels(3));
  auto x = torch::randn({2, 4, 8, 8});
  auto a = torch::randn({2, 6, 8, 8}, torch::requires_grad());
  auto h = torch::randn({2, 3, 8, 8}, torch::requires_grad());
  auto y = block(x, a, h);
  ASSERT_EQ(y.sizes(), x.sizes());
  y.sum().backward();
  EXPECT_GT(a.grad().abs().sum().item<double>(), 0.0);
  EXPECT_GT(h.grad().abs().sum().item<double>(), 0.0);
  EXPECT_THROW(block(x), c10::Error);  // built with a skip input, so it requires one
}

TEST_F(Layers, FastDropoutDropsAtRateAndKeepsTheMean) {
  auto x = torch::ones({4, 16, 32, 32});
  for (double p : {0.5, 0.3}) {
    for (auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
      auto y = fast_dropout(x.contiguous(format), p, /*training=*/true);
      const double dropped = (y == 0).to(torch::kDouble).mean().item<double>();
      EXPECT_NEAR(dropped, std::round(p * 256) / 256, 0.01);
      EXPECT_NEAR(y.mean().item<double>(), 1.0, 0.02);  // survivors rescaled
      // Independent across channels at one pixel (a layout bug would repeat the mask).
      auto per_pixel = (y == 0).to(torch::kDouble).mean(1);
      EXPECT_GT(per_pixel.std().item<double>(), 0.05);
    }
  }
  EXPECT_TRUE(torch::equal(fast_dropout(x, 0.5, /*training=*/false), x));
  torch::manual_seed(3);
  auto a = fast_dropout(x, 0.5, true);
  torch::manual_seed(3);
  EXPECT_TRUE(torch::equal(fast_dropout(x, 0.5, true), a));
}

TEST_F(Layers, ChannelsLastAndAutocastMatchFp32) {
  GatedResnet block(GatedResnetOptions(32, ShiftedConv::kDown).skip_channels(32));
  auto x = torch::randn({2, 32, 8, 8});
  auto a = torch::randn({2, 32, 8, 8});
  torch::NoGradGuard no_grad;
  auto ref = block(x, a);
  auto cl = block(x.contiguous(at::MemoryFormat::ChannelsLast),
                  a.contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::allclose(cl, ref, 1e-4, 1e-5));
  torch::Tensor bf;
  {
    AutocastGuard autocast(/*enabled=*/true, /*cuda=*/false);
    bf = block(x.contiguous(at::MemoryFormat::ChannelsLast),
               a.contiguous(at::MemoryFormat::ChannelsLast));
  }
  auto err = (bf.to(torch::kFloat) - ref).abs().max().item<double>();
  EXPECT_LT(err, 0.05 * ref.abs().max().item<double>());
}

}  // namespace
}  // namespace agave::model
