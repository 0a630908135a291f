// The arithmetic of an evaluation's latent-use numbers (trainer/latent_stats.h) on numbers
// chosen by hand, and their names in the one JSON form of an evaluation (trainer/evaluator.h).
#include "trainer/latent_stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <vector>

#include "trainer/evaluator.h"

namespace agave::trainer {
namespace {

TEST(Derangement, NoImageKeepsItsOwnZ) {
  for (int64_t n = 2; n <= 70; ++n) {
    for (uint64_t seed : {0ull, 1ull, 12345ull, 0x9E3779B97F4A7C15ull}) {
      const auto p = derangement(n, seed);
      ASSERT_EQ(static_cast<int64_t>(p.size()), n);
      std::vector<int64_t> sorted = p;
      std::sort(sorted.begin(), sorted.end());
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_EQ(sorted[static_cast<size_t>(i)], i) << "not a permutation, n " << n;
        EXPECT_NE(p[static_cast<size_t>(i)], i) << "fixed point " << i << ", n " << n;
      }
    }
  }
  EXPECT_EQ(derangement(1, 3), std::vector<int64_t>{0});  // no other image to pair with
  EXPECT_TRUE(derangement(0, 3).empty());
  EXPECT_THROW(derangement(-1, 3), std::invalid_argument);
}

TEST(Derangement, FixedBySeedAndNotARoll) {
  EXPECT_EQ(derangement(64, 5), derangement(64, 5));
  EXPECT_NE(derangement(64, 5), derangement(64, 6));
  std::set<std::vector<int64_t>> seen;
  for (uint64_t seed = 0; seed < 20; ++seed) seen.insert(derangement(5, seed));
  EXPECT_GT(seen.size(), 5u) << "5 images have 24 cyclic orders; the seeds should reach many";
}

// Sums over n images of given posterior means per unit, as the evaluator accumulates them.
struct Moments {
  std::vector<double> sum, sum_sq;
  explicit Moments(const std::vector<std::vector<double>>& means_per_image) {
    sum.assign(means_per_image.front().size(), 0.0);
    sum_sq = sum;
    for (const auto& m : means_per_image) {
      for (size_t u = 0; u < m.size(); ++u) {
        sum[u] += m[u];
        sum_sq[u] += m[u] * m[u];
      }
    }
  }
};

// Two images, means ±a around an offset: the covariance over x of each unit is a².
std::vector<std::vector<double>> two_images(const std::vector<double>& offset,
                                            const std::vector<double>& a) {
  std::vector<std::vector<double>> out(2, offset);
  for (size_t u = 0; u < a.size(); ++u) {
    out[0][u] += a[u];
    out[1][u] -= a[u];
  }
  return out;
}

TEST(ActiveChannels, BurdasCovarianceAboveOneHundredth) {
  // One position per channel: covariances 0.0121 (active), 0.0081 (not), 0 with a large mean (not:
  // a constant mean carries nothing about x), 0.25 (active).
  const Moments m(two_images({0, 0, 3, -1}, {0.11, 0.09, 0, 0.5}));
  EXPECT_EQ(active_channels(m.sum, m.sum_sq, 2, 1), 2);
  // The threshold is Burda et al.'s 0.01, and a caller may choose another.
  EXPECT_EQ(active_channels(m.sum, m.sum_sq, 2, 1, 0.1), 1);
  EXPECT_EQ(active_channels(m.sum, m.sum_sq, 0, 1), 0);  // no image evaluated
}

TEST(ActiveChannels, AChannelAveragesItsPositionsCovariances) {
  // Two channels of 4 positions. Channel 0 varies at one position only (0.0484 / 4 = 0.0121:
  // active, though its spatial mean varies little); channel 1 at one position with 0.0324 / 4 =
  // 0.0081 (not active, though that position alone would be).
  const Moments m(two_images({0, 0, 0, 0, 0, 0, 0, 0}, {0.22, 0, 0, 0, 0.18, 0, 0, 0}));
  EXPECT_EQ(active_channels(m.sum, m.sum_sq, 2, 4), 1);
  EXPECT_EQ(active_channels(m.sum, m.sum_sq, 2, 1), 2);  // per scalar: both varying units
  // A channel whose positions move against each other (spatial mean constant) stays active.
  const Moments opposite(two_images({0, 0}, {0.2, -0.2}));
  EXPECT_EQ(active_channels(opposite.sum, opposite.sum_sq, 2, 2), 1);
}

TEST(ActiveChannels, RejectsSumsThatAreNotWholeChannels) {
  EXPECT_THROW(active_channels({0, 0, 0}, {0, 0, 0}, 2, 2), std::invalid_argument);
  EXPECT_THROW(active_channels({0, 0}, {0}, 2, 1), std::invalid_argument);
  EXPECT_THROW(active_channels({0, 0}, {0, 0}, 2, 0), std::invalid_argument);
}

TEST(EvalJson, HasTheLatentUseUnderItsNames) {
  EvalResult r;
  r.pixel_bpd = 3.0;
  r.pixel_bpd_stderr = 0.1;
  r.pixel_shuffled_bpd = 3.25;
  r.pixel_shuffled_bpd_stderr = 0.11;
  r.latent_use_bpd = 0.25;
  r.latent_use_bpd_stderr = 0.01;
  r.latent_use_images = 99;
  r.kl_bpd_layers = {0.5, 0.125};
  r.active_latent_channels = 7;
  r.latent_channels = 16;
  const auto j = to_json(r, "test_");
  EXPECT_EQ(j.at("test_pixel_bpd"), 3.0);
  EXPECT_EQ(j.at("test_pixel_bpd_stderr"), 0.1);
  EXPECT_EQ(j.at("test_pixel_shuffled_bpd"), 3.25);
  EXPECT_EQ(j.at("test_pixel_shuffled_bpd_stderr"), 0.11);
  EXPECT_EQ(j.at("test_latent_use_bpd"), 0.25);
  EXPECT_EQ(j.at("test_latent_use_bpd_stderr"), 0.01);
  EXPECT_EQ(j.at("test_latent_use_images"), 99);
  EXPECT_EQ(j.at("test_kl_bpd_layers"), nlohmann::json::array({0.5, 0.125}));
  EXPECT_EQ(j.at("test_active_latent_channels"), 7);
  EXPECT_EQ(j.at("test_latent_channels"), 16);
  // NaN (pixelcnn_only) is written as null, as for aux_bpd.
  r.latent_use_bpd = std::nan("");
  EXPECT_EQ(to_json(r).at("latent_use_bpd").dump(), "null");
  EXPECT_NE(describe(r).find("7 of 16 latent channels active"), std::string::npos) << describe(r);
}

}  // namespace
}  // namespace agave::trainer
