// Weight-normalised convs, data-dependent init, shifted convs and the gated resnet.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <tuple>

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
    testing::CpuAutocast autocast;
    bf = block(x.contiguous(at::MemoryFormat::ChannelsLast),
               a.contiguous(at::MemoryFormat::ChannelsLast));
  }
  auto err = (bf.to(torch::kFloat) - ref).abs().max().item<double>();
  EXPECT_LT(err, 0.05 * ref.abs().max().item<double>());
}

// A random incoming gradient for y laid out the other way (NCHW for channels_last and back), as
// convolutions may send them: the fused backwards must not assume the output's layout.
torch::Tensor gradient_in_the_other_layout(const torch::Tensor& y) {
  const auto other =
      y.is_contiguous() ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  return torch::randn(y.sizes()).to(y.scalar_type()).contiguous(other);
}

// The fused CPU concat_elu against the three ATen ops, forward and backward, in both layouts
// and both dtypes the model trains in, over values from -100 (exp underflows) through 0 to 30.
TEST_F(Layers, FusedConcatEluMatchesTheAtenOps) {
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (const auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
      SCOPED_TRACE(std::string(c10::toString(dtype)) +
                   (format == at::MemoryFormat::Contiguous ? " NCHW" : " channels_last"));
      auto base = torch::randn({3, 5, 7, 9}) * 4;
      base.view(-1).slice(0, 0, 4) = torch::tensor({-100.0F, -87.5F, 0.0F, 30.0F});
      auto make = [&] { return base.to(dtype).contiguous(format).detach().requires_grad_(true); };
      auto x = make(), x_ref = make();
      auto y = concat_elu(x), y_ref = concat_elu_reference(x_ref);
      ASSERT_EQ(y.sizes(), y_ref.sizes());
      EXPECT_EQ(y.scalar_type(), dtype);
      EXPECT_TRUE(y.is_contiguous(format));
      auto g = gradient_in_the_other_layout(y);
      y.backward(g);
      y_ref.backward(g);
      const double tol = dtype == torch::kFloat ? 1e-6 : 1.0 / 128;
      EXPECT_TRUE(torch::allclose(y.to(torch::kFloat), y_ref.to(torch::kFloat), tol, 1e-7))
          << (y.to(torch::kFloat) - y_ref.to(torch::kFloat)).abs().max();
      // The gradient against float math on the same (rounded) inputs. The fused backward takes
      // elu' from the saved output (o + 1 where o <= 0, as the ATen op does), so the output's
      // rounding costs up to half an ulp of 1 times the incoming gradient; then it rounds the sum
      // once (the ATen ops round each term, then the sum, and differ more where they cancel).
      auto xf = x.detach().to(torch::kFloat).requires_grad_(true);
      auto gf = g.to(torch::kFloat);
      auto yf = concat_elu_reference(xf);
      yf.backward(gf);
      const int64_t c = x.size(1);
      const auto yd = yf.detach();
      auto terms = (gf * torch::where(yd.gt(0), torch::ones_like(yd), yd + 1)).abs() + gf.abs();
      auto bound = (terms.narrow(1, 0, c) + terms.narrow(1, c, c)) *
                       (dtype == torch::kFloat ? 1e-6 : 1.0 / 256) +
                   1e-6;
      auto err = (x.grad().to(torch::kFloat) - xf.grad()).abs();
      EXPECT_TRUE(err.le(bound).all().item<bool>()) << (err - bound).max();
      EXPECT_TRUE(torch::allclose(x_ref.grad().to(torch::kFloat), xf.grad(), 0.05, 0.05));
    }
  }
  // A NaN stays a NaN in both halves.
  auto nan = concat_elu(torch::full({1, 1, 1, 1}, std::nanf("")).to(torch::kBFloat16));
  EXPECT_TRUE(torch::isnan(nan).all().item<bool>());
}

// The fused CPU gate x + a·sigmoid(b) against double math on the same inputs (bfloat16 rounds
// once, at the end) and against the ATen ops, forward and backward, both layouts and dtypes.
TEST_F(Layers, FusedGateMatchesFloatMath) {
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (const auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
      SCOPED_TRACE(std::string(c10::toString(dtype)) +
                   (format == at::MemoryFormat::Contiguous ? " NCHW" : " channels_last"));
      auto x0 = torch::randn({2, 6, 5, 7}).to(dtype).contiguous(format);
      auto ab_values = torch::randn({2, 12, 5, 7}) * 6;
      ab_values.view(-1).slice(0, 0, 2) = torch::tensor({-100.0F, 100.0F});
      auto ab0 = ab_values.to(dtype).contiguous(format);
      auto leaf = [](const torch::Tensor& t, torch::Dtype d) {
        return t.to(d).detach().requires_grad_(true);
      };
      auto x = leaf(x0, dtype), ab = leaf(ab0, dtype);
      auto xf = leaf(x0, torch::kDouble), abf = leaf(ab0, torch::kDouble);
      auto xr = leaf(x0, dtype), abr = leaf(ab0, dtype);
      auto y = gated_residual(x, ab);
      auto yf = gated_residual_reference(xf, abf);
      auto yr = gated_residual_reference(xr, abr);
      EXPECT_EQ(y.scalar_type(), dtype);
      EXPECT_TRUE(y.is_contiguous(format));
      auto g = gradient_in_the_other_layout(y);
      y.backward(g);
      yf.backward(g.to(torch::kDouble));
      yr.backward(g);
      const double rtol = dtype == torch::kFloat ? 1e-5 : 1.0 / 200;
      auto close = [&](const torch::Tensor& got, const torch::Tensor& truth, const char* what) {
        auto err = (got.to(torch::kDouble) - truth).abs();
        auto bound = truth.abs() * rtol + 1e-5;
        EXPECT_TRUE(err.le(bound).all().item<bool>()) << what << ": " << (err - bound).max();
      };
      close(y, yf.detach(), "output");
      close(x.grad(), xf.grad(), "dx");
      close(ab.grad(), abf.grad(), "d(a, b)");
      // The ATen ops in bfloat16 round sigmoid, 1 - s and each product (1 - s is 0 or 2^-8 where
      // s nears 1), so only in float are they a second reference for the gradient.
      EXPECT_TRUE(torch::allclose(y.to(torch::kFloat), yr.to(torch::kFloat), 0.02, 0.02));
      if (dtype == torch::kFloat) {
        EXPECT_TRUE(torch::allclose(ab.grad(), abr.grad(), 1e-4, 1e-5));
      }
    }
  }
}
}  // namespace
}  // namespace agave::model
