// The statistics of a paired comparison on numbers small enough to check by hand.
#include "analysis/paired_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace agave::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(MeanError, IsTheMeanAndTheSampleStandardDeviationOverRootN) {
  // 1, 2, 3, 6: mean 3, squared deviations 4 + 1 + 0 + 9 = 14, variance 14/3, se √(14/3/4).
  const auto m = mean_error({1, 2, 3, 6});
  EXPECT_DOUBLE_EQ(m.mean, 3.0);
  EXPECT_DOUBLE_EQ(m.stderr_of_mean, std::sqrt(14.0 / 3.0 / 4.0));
  EXPECT_EQ(m.n, 4);
}

TEST(MeanError, SkipsNumbersAnImageDoesNotHave) {
  const auto m = mean_error({1, kNaN, 3});
  EXPECT_DOUBLE_EQ(m.mean, 2.0);
  EXPECT_DOUBLE_EQ(m.stderr_of_mean, 1.0);  // deviations ±1: variance 2, se √(2/2)
  EXPECT_EQ(m.n, 2);
  EXPECT_EQ(mean_error({5}).stderr_of_mean, 0.0);
  EXPECT_TRUE(std::isnan(mean_error({kNaN}).mean));
  EXPECT_EQ(mean_error({}).n, 0);
}

TEST(MeanError, KeepsItsDigitsForLargeValuesWithSmallDifferences) {
  // 1e9 + {1, 2, 3}: a sum of squares would cancel to nothing; the deviations give se √(1/3).
  const auto m = mean_error({1e9 + 1, 1e9 + 2, 1e9 + 3});
  EXPECT_NEAR(m.stderr_of_mean, std::sqrt(1.0 / 3.0), 1e-6);
}

TEST(PairedDifference, IsTheErrorOfTheDifferencesNotOfEitherArm) {
  // The images vary a lot (1 … 4) but b is a + {0.1, 0.3, 0.1, 0.3}: differences with mean 0.2,
  // deviations ±0.1, variance 0.04/3, se √(0.04/3/4) = 0.0577…; far below either arm's own error.
  const std::vector<double> a = {1, 2, 3, 4}, b = {1.1, 2.3, 3.1, 4.3};
  const auto d = paired_difference(a, b);
  EXPECT_NEAR(d.mean, 0.2, 1e-12);
  EXPECT_NEAR(d.stderr_of_mean, std::sqrt(0.04 / 3 / 4), 1e-12);
  EXPECT_EQ(d.n, 4);
  EXPECT_GT(mean_error(a).stderr_of_mean, 10 * d.stderr_of_mean);
  EXPECT_NEAR(paired_difference(b, a).mean, -0.2, 1e-12);  // b − a: the order matters
}

TEST(PairedDifference, UsesTheImagesBothArmsHave) {
  const auto d = paired_difference({1, kNaN, 3}, {2, 5, 5});
  EXPECT_DOUBLE_EQ(d.mean, 1.5);
  EXPECT_EQ(d.n, 2);
  EXPECT_THROW(paired_difference({1, 2}, {1}), std::invalid_argument);
}

TEST(AcrossSeeds, GivesTheMeanItsErrorTheSpreadAndTheSeedsThatAgree) {
  // Seeds' differences 0.1, 0.3, −0.1: mean 0.1, deviations 0, 0.2, −0.2, variance 0.04,
  // se √(0.04/3); min −0.1, max 0.3; two of three are positive like the mean.
  const auto s = across_seeds({0.1, 0.3, -0.1});
  EXPECT_NEAR(s.across.mean, 0.1, 1e-12);
  EXPECT_NEAR(s.across.stderr_of_mean, std::sqrt(0.04 / 3), 1e-12);
  EXPECT_EQ(s.across.n, 3);
  EXPECT_DOUBLE_EQ(s.min, -0.1);
  EXPECT_DOUBLE_EQ(s.max, 0.3);
  EXPECT_EQ(s.agreeing, 2);
  EXPECT_EQ(across_seeds({-1, -2, 0}).agreeing, 2);  // a zero agrees with no sign
  EXPECT_EQ(across_seeds({0.5}).across.stderr_of_mean, 0.0);
}

}  // namespace
}  // namespace agave::analysis
