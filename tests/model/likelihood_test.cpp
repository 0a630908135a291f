// Discretized logistic mixture (x) and binned discretized logistic (y): normalisation, closed
// forms, edge cases, gradients, sampling.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <tuple>

#include "model/autocast.h"
#include "model/likelihood.h"
#include "tests/model/test_util.h"

namespace agave::model {
namespace {

class Likelihood : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    torch::manual_seed(2);
  }
};

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }
double value(int k) { return k / 127.5 - 1.0; }

// Random mixture params for C channels, M components, H×W pixels.
torch::Tensor random_params(int64_t c, int64_t m, int64_t h, int64_t w, double min_log_scale,
                            double max_log_scale) {
  const int64_t per = c == 3 ? 3 : 2;
  auto logits = torch::randn({1, m, h, w}) * 2;
  std::vector<torch::Tensor> parts{logits};
  for (int64_t ch = 0; ch < c; ++ch) {
    parts.push_back(torch::rand({1, m, h, w}) * 2.4 - 1.2);  // means, some outside [−1, 1]
    parts.push_back(torch::rand({1, m, h, w}) * (max_log_scale - min_log_scale) + min_log_scale);
    if (per == 3) parts.push_back(torch::randn({1, m, h, w}) * 1.5);  // coupling
  }
  return torch::cat(parts, 1);
}

TEST_F(Likelihood, GraySubPixelSumsToOneOver256Values) {
  for (auto [lo, hi] : {std::pair<double, double>{-5, -3}, {-3, 0}, {-7, 1}}) {
    auto params = random_params(1, 5, 4, 5, lo, hi).expand({256, -1, -1, -1});
    auto x =
        torch::arange(256, torch::kFloat).view({256, 1, 1, 1}).expand({256, 1, 4, 5}) / 127.5 - 1;
    auto total =
        discretized_mix_logistic_log_prob_per_pixel(x, params).to(torch::kDouble).exp().sum(0);
    EXPECT_LT((total - 1).abs().max().item<double>(), 2e-4) << "log-scales in " << lo << ".." << hi;
  }
}

// Given R, the coupled G and B conditionals must each normalise, so summing the joint over all
// 256² (G, B) pairs gives the marginal of R, which is the plain mixture Σ_m π_m P_m(R). Each
// row of a 256×256 "image" holds one G value, each column one B value.
TEST_F(Likelihood, RgbPixelSumsOverGreenAndBlueToTheRedMarginal) {
  const int64_t m = 3;
  for (auto [lo, hi] : {std::pair<double, double>{-4, -2}, {-2.5, 0.5}}) {
    auto params = random_params(3, m, 1, 1, lo, hi);
    auto grid = torch::arange(256, torch::kFloat) / 127.5 - 1;
    auto g = grid.view({256, 1}).expand({256, 256});
    auto b = grid.view({1, 256}).expand({256, 256});
    auto full = params.expand({1, -1, 256, 256}).contiguous();
    auto pr = params.flatten().to(torch::kDouble);
    auto logits = pr.slice(0, 0, m);
    auto pi = (logits - logits.logsumexp(0)).exp();
    for (int r : {0, 77, 128, 255}) {
      auto x = torch::stack({torch::full({256, 256}, value(r)), g, b}).unsqueeze(0);
      auto p = discretized_mix_logistic_log_prob_per_pixel(x, full).to(torch::kDouble).exp();
      double expected = 0;
      for (int64_t k = 0; k < m; ++k) {
        const double mu = pr[m + k].item<double>(), s = std::exp(pr[2 * m + k].item<double>());
        const double hw = 1.0 / 255;
        const double up = r == 255 ? 1.0 : sigmoid((value(r) + hw - mu) / s);
        const double down = r == 0 ? 0.0 : sigmoid((value(r) - hw - mu) / s);
        expected += pi[k].item<double>() * (up - down);
      }
      EXPECT_NEAR(p.sum().item<double>() / expected, 1.0, 2e-4)
          << "R = " << r << ", log-scales in " << lo << ".." << hi << ", p(R) = " << expected;
    }
  }
}

// One component, one gray pixel: each branch against a double-precision closed form.
TEST_F(Likelihood, GrayBranchesMatchClosedForm) {
  const double mu = 0.13, ls = -2.5, s = std::exp(ls);
  auto params = torch::tensor({0.0, mu, ls}, torch::kFloat).view({1, 3, 1, 1});
  auto lp = [&](int k) {
    auto x = torch::full({1, 1, 1, 1}, value(k));
    return discretized_mix_logistic_log_prob(x, params).item<double>();
  };
  const double hw = 1.0 / 255;
  EXPECT_NEAR(lp(0), std::log(sigmoid((value(0) + hw - mu) / s)), 1e-5);
  EXPECT_NEAR(lp(255), std::log(1 - sigmoid((value(255) - hw - mu) / s)), 1e-4);
  for (int k : {100, 144, 200}) {
    const double mass = sigmoid((value(k) + hw - mu) / s) - sigmoid((value(k) - hw - mu) / s);
    EXPECT_NEAR(lp(k), std::log(mass), 1e-4 * std::max(1.0, std::abs(std::log(mass))));
  }
  // Far tail (mass < 1e-5): log density at the bin center minus log 127.5.
  const int far = 250;
  const double mid = (value(far) - mu) / s;
  const double log_pdf = mid - ls - 2 * std::log1p(std::exp(mid));
  const double mass = sigmoid((value(far) + hw - mu) / s) - sigmoid((value(far) - hw - mu) / s);
  ASSERT_LT(mass, 1e-5);
  EXPECT_NEAR(lp(far), log_pdf - std::log(127.5), 1e-3 * std::abs(log_pdf));
}

// One component, one RGB pixel: means of G and B shift with the true R (and G) values.
TEST_F(Likelihood, RgbCouplingMatchesClosedForm) {
  const double mu[3] = {0.1, -0.2, 0.3}, ls[3] = {-2.0, -2.5, -3.0}, co[3] = {0.7, -0.4, 0.9};
  std::vector<float> p{0.0f};
  for (int c = 0; c < 3; ++c) {
    p.push_back(mu[c]);
    p.push_back(ls[c]);
    p.push_back(co[c]);
  }
  auto params = torch::tensor(p).view({1, 10, 1, 1});
  const int k[3] = {140, 100, 170};
  auto x = torch::tensor({value(k[0]), value(k[1]), value(k[2])}, torch::kFloat).view({1, 3, 1, 1});
  const double xr = value(k[0]), xg = value(k[1]);
  const double means[3] = {mu[0], mu[1] + std::tanh(co[0]) * xr,
                           mu[2] + std::tanh(co[1]) * xr + std::tanh(co[2]) * xg};
  double expected = 0;
  for (int c = 0; c < 3; ++c) {
    const double s = std::exp(ls[c]), hw = 1.0 / 255;
    expected += std::log(sigmoid((value(k[c]) + hw - means[c]) / s) -
                         sigmoid((value(k[c]) - hw - means[c]) / s));
  }
  EXPECT_NEAR(discretized_mix_logistic_log_prob(x, params).item<double>(), expected, 1e-4);
}

TEST_F(Likelihood, ExtremeValuesAndScalesStayFiniteWithFiniteGradients) {
  // 2 × 2 pixels × M = 2: log-scales at −20 (clamped), −7 and +7, means far outside [−1, 1],
  // saturated logits; x holds the edge values 0 and 255 and interior values.
  const int64_t m = 2;
  for (int64_t c : {1, 3}) {
    for (double ls : {-20.0, -7.0, 7.0, 30.0}) {
      for (double mean : {-50.0, -1.0, 0.0, 1.0, 50.0}) {
        const int64_t per = c == 3 ? 3 : 2;
        auto params = torch::zeros({2, m + c * per * m, 2, 2});
        params.slice(1, 0, m).normal_().mul_(30);
        for (int64_t ch = 0; ch < c; ++ch) {
          const int64_t base = m + ch * per * m;
          params.slice(1, base, base + m).fill_(mean);
          params.slice(1, base + m, base + 2 * m).fill_(ls);
          if (per == 3) params.slice(1, base + 2 * m, base + 3 * m).fill_(5.0);
        }
        params.requires_grad_(true);
        auto x = torch::tensor({0, 255, 1, 254, 127, 128, 0, 255}, torch::kFloat)
                     .repeat({c})
                     .slice(0, 0, 8 * c)
                     .view({2, c, 2, 2});
        x = x / 127.5 - 1;
        auto lp = discretized_mix_logistic_log_prob(x, params);
        ASSERT_TRUE(testing::all_finite(lp)) << c << " " << ls << " " << mean;
        EXPECT_TRUE((lp <= 1e-6).all().item<bool>());
        lp.sum().backward();
        ASSERT_TRUE(testing::all_finite(params.grad())) << c << " " << ls << " " << mean;
      }
    }
  }
  // Log-scales below −7 are clamped: −20 scores exactly like −7.
  auto p7 = torch::tensor({0.0f, 0.3f, -7.0f}).view({1, 3, 1, 1});
  auto p20 = torch::tensor({0.0f, 0.3f, -20.0f}).view({1, 3, 1, 1});
  auto x = torch::full({1, 1, 1, 1}, value(166));
  EXPECT_EQ(discretized_mix_logistic_log_prob(x, p7).item<double>(),
            discretized_mix_logistic_log_prob(x, p20).item<double>());
}

TEST_F(Likelihood, LikelihoodIsFp32UnderAutocastAndForBf16Inputs) {
  auto params = random_params(3, 4, 4, 4, -4, 0);
  auto x = (torch::randint(0, 256, {1, 3, 4, 4}).to(torch::kFloat) / 127.5 - 1);
  auto params_bf = params.to(torch::kBFloat16);
  auto ref = discretized_mix_logistic_log_prob(x, params_bf.to(torch::kFloat));
  AutocastGuard autocast(/*enabled=*/true, /*cuda=*/false);
  auto lp = discretized_mix_logistic_log_prob(x, params_bf);
  EXPECT_EQ(lp.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(lp, ref));
}

// ---- y: discretized logistic with b bins ---------------------------------------------------

TEST_F(Likelihood, BinnedLogisticSumsToOneOverBins) {
  for (int64_t bins : {256, 64, 32, 2}) {
    const double width = 256.0 / bins;
    // Every bin as a batch entry; 3 channels × 2 × 3 positions with means inside and far
    // outside [0, 255], one log-scale per channel (narrow, medium, wide).
    auto y =
        (torch::arange(bins, torch::kFloat) * width).view({bins, 1, 1, 1}).expand({bins, 3, 2, 3});
    auto mean = (torch::rand({1, 3, 2, 3}) * 400 - 72).expand({bins, 3, 2, 3});
    auto log_scale = torch::tensor({-1.0f, 2.0f, 5.0f});
    auto lp = discretized_logistic_binned_log_prob_per_element(y, mean, log_scale, bins);
    auto total = lp.to(torch::kDouble).exp().sum(0);
    EXPECT_LT((total - 1).abs().max().item<double>(), 1e-5) << bins << " bins";
    // Every value inside a bin scores like the bin's lowest value.
    auto y_top = y + (width - 1);
    EXPECT_TRUE(torch::allclose(
        discretized_logistic_binned_log_prob_per_element(y_top, mean, log_scale, bins), lp));
  }
}

TEST_F(Likelihood, BinnedLogisticMatchesEq8) {
  const int64_t bins = 32;  // c = 8
  const double mu = 101.3, ls = 1.7, s = std::exp(ls);
  auto lp = [&](double y) {
    return discretized_logistic_binned_log_prob(torch::full({1, 1, 1, 1}, y),
                                                torch::full({1, 1, 1, 1}, mu), torch::full({1}, ls),
                                                bins)
        .item<double>();
  };
  // y = 99 lies in the bin [96, 104).
  EXPECT_NEAR(lp(99), std::log(sigmoid((104 - mu) / s) - sigmoid((96 - mu) / s)), 1e-5);
  EXPECT_NEAR(lp(3), std::log(sigmoid((8 - mu) / s)), 1e-4);          // lowest bin: (−∞, 8)
  EXPECT_NEAR(lp(250), std::log(1 - sigmoid((248 - mu) / s)), 1e-4);  // highest: [248, +∞)
  // Per image = sum over all elements.
  auto y = torch::randint(0, 256, {2, 3, 4, 4}).to(torch::kFloat);
  auto mean = torch::rand({2, 3, 4, 4}) * 255;
  auto log_scale = torch::tensor({0.5f, 1.0f, 1.5f});
  EXPECT_TRUE(torch::allclose(
      discretized_logistic_binned_log_prob(y, mean, log_scale, 64),
      discretized_logistic_binned_log_prob_per_element(y, mean, log_scale, 64).sum({1, 2, 3})));
}

TEST_F(Likelihood, BinnedLogisticExtremesStayFiniteWithFiniteGradients) {
  for (int64_t bins : {256, 32, 2}) {
    for (double ls : {-30.0, -7.0, 0.0, 7.0, 40.0}) {
      for (double mu : {-1e4, 0.0, 127.5, 255.0, 1e4}) {
        auto y = torch::tensor({0.0f, 255.0f, 1.0f, 128.0f}).view({1, 1, 2, 2});
        auto mean = torch::full({1, 1, 2, 2}, mu, torch::requires_grad());
        auto log_scale = torch::full({1}, ls, torch::requires_grad());
        auto lp = discretized_logistic_binned_log_prob(y, mean, log_scale, bins);
        ASSERT_TRUE(testing::all_finite(lp)) << bins << " " << ls << " " << mu;
        EXPECT_LE(lp.item<double>(), 1e-6);
        lp.backward();
        ASSERT_TRUE(testing::all_finite(mean.grad())) << bins << " " << ls << " " << mu;
        ASSERT_TRUE(testing::all_finite(log_scale.grad())) << bins << " " << ls << " " << mu;
        if (mu == 1e4 && ls == 0.0) {
          // Far above every target: the gradient pulls the mean down, it does not vanish.
          EXPECT_LT(mean.grad().sum().item<double>(), -1e-3);
        }
      }
    }
  }
}

// ---- sampling -------------------------------------------------------------------------------

// Empirical frequencies of many draws against exp(log-prob) for the same params.
TEST_F(Likelihood, GraySamplesFollowTheLikelihood) {
  const int64_t n = 40000, m = 3;
  auto params = random_params(1, m, 1, 1, -3.5, -2.0);
  auto samples = sample_from_discretized_mix_logistic(params.expand({n, -1, -1, -1}), m);
  ASSERT_EQ(samples.sizes(), (std::vector<int64_t>{n, 1, 1, 1}));
  EXPECT_LE(samples.abs().max().item<double>(), 1.0);
  auto k = ((samples + 1) * 127.5).flatten();
  EXPECT_TRUE(torch::allclose(k, k.round(), 0, 1e-3));  // on the bin centers
  auto counts = torch::bincount(k.round().to(torch::kLong), {}, 256).to(torch::kDouble) / n;
  auto grid = (torch::arange(256, torch::kFloat) / 127.5 - 1).view({256, 1, 1, 1});
  auto probs = discretized_mix_logistic_log_prob_per_pixel(grid, params.expand({256, -1, -1, -1}))
                   .flatten()
                   .to(torch::kDouble)
                   .exp();
  const double tv = 0.5 * (counts - probs).abs().sum().item<double>();
  EXPECT_LT(tv, 0.03);
}

TEST_F(Likelihood, RgbSamplesFollowTheCoupledLikelihood) {
  const int64_t n = 40000, m = 2;
  auto params = random_params(3, m, 1, 1, -3.0, -2.5);
  auto samples = sample_from_discretized_mix_logistic(params.expand({n, -1, -1, -1}), m);
  ASSERT_EQ(samples.sizes(), (std::vector<int64_t>{n, 3, 1, 1}));
  auto k = ((samples + 1) * 127.5).round().to(torch::kLong).view({n, 3});
  std::map<std::tuple<int64_t, int64_t, int64_t>, int64_t> counts;
  auto acc = k.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i) ++counts[{acc[i][0], acc[i][1], acc[i][2]}];
  // The 8 most frequent colors: their frequency matches the model's probability.
  std::vector<std::pair<int64_t, std::tuple<int64_t, int64_t, int64_t>>> top;
  for (const auto& [color, count] : counts) top.push_back({count, color});
  std::sort(top.rbegin(), top.rend());
  ASSERT_GE(top.size(), 8u);
  for (size_t t = 0; t < 8; ++t) {
    auto [r, g, b] = top[t].second;
    auto x = torch::tensor({value(r), value(g), value(b)}, torch::kFloat).view({1, 3, 1, 1});
    const double p = std::exp(discretized_mix_logistic_log_prob(x, params).item<double>());
    const double freq = static_cast<double>(top[t].first) / n;
    EXPECT_NEAR(freq, p, 4 * std::sqrt(p / n) + 1e-3) << r << "," << g << "," << b;
  }
}

TEST_F(Likelihood, SamplingIsSeededAndRejectsWrongShapes) {
  auto params = random_params(3, 4, 2, 2, -3, 0);
  torch::manual_seed(7);
  auto a = sample_from_discretized_mix_logistic(params, 4);
  torch::manual_seed(7);
  auto b = sample_from_discretized_mix_logistic(params, 4);
  EXPECT_TRUE(torch::equal(a, b));
  auto cont = sample_from_discretized_mix_logistic(params, 4, /*quantize=*/false);
  EXPECT_LE(cont.abs().max().item<double>(), 1.0);
  EXPECT_THROW(sample_from_discretized_mix_logistic(params, 3), c10::Error);
}

}  // namespace
}  // namespace agave::model
