// Arms × seeds compared image by image on hand-made files: the means, the paired differences
// and their spread across seeds, the reports, and the refusals that name the files.
#include "analysis/comparison.h"

#include <gtest/gtest.h>

#include <cmath>

#include "analysis/report.h"
#include "tests/analysis/test_files.h"

namespace agave::analysis {
namespace {

using testing::file;

// Two arms, two seeds, three images; arm b is arm a plus {0.1, 0.2, 0.3} (seed 1) and
// {0.3, 0.3, 0.3} (seed 2) in column x; column y is equal in both.
std::vector<Arm> two_arms() {
  return {
      {"a",
       {file("a1", {4, 5, 6}, {"x", "y"}, {{1, 2, 3}, {0, 0, 0}}, 1),
        file("a2", {4, 5, 6}, {"x", "y"}, {{2, 2, 2}, {0, 0, 0}}, 2)}},
      {"b",
       {file("b1", {4, 5, 6}, {"x", "y"}, {{1.1, 2.2, 3.3}, {0, 0, 0}}, 1),
        file("b2", {4, 5, 6}, {"x", "y"}, {{2.3, 2.3, 2.3}, {0, 0, 0}}, 2)}},
  };
}

TEST(Compare, PairsSeedBySeedAndSummarizesAcrossSeeds) {
  const auto c = compare(two_arms());
  ASSERT_EQ(c.columns, (std::vector<std::string>{"x", "y"}));
  ASSERT_EQ(c.means.size(), 4u);
  EXPECT_DOUBLE_EQ(c.means[0].columns[0].mean, 2.0);  // a, seed 1, x
  // Arm a's x across seeds: seed means 2 and 2.
  EXPECT_DOUBLE_EQ(c.spread(0, 0).across.mean, 2.0);
  EXPECT_DOUBLE_EQ(c.spread(0, 0).across.stderr_of_mean, 0.0);
  ASSERT_EQ(c.pairs.size(), 2u);  // (a, b) × {x, y}
  const auto& x = c.pairs[0];
  EXPECT_EQ(x.column, "x");
  // Seed 1: differences 0.1, 0.2, 0.3: mean 0.2, se √(0.02/2/3) = 0.0577…; seed 2: 0.3 ± 0.
  EXPECT_NEAR(x.per_seed[0].mean, 0.2, 1e-12);
  EXPECT_NEAR(x.per_seed[0].stderr_of_mean, std::sqrt(0.02 / 2 / 3), 1e-12);
  EXPECT_NEAR(x.per_seed[1].mean, 0.3, 1e-12);
  EXPECT_NEAR(x.per_seed[1].stderr_of_mean, 0.0, 1e-12);
  // Across seeds: 0.2 and 0.3, mean 0.25, se √(0.005/2) = 0.05, both positive.
  EXPECT_NEAR(x.seeds.across.mean, 0.25, 1e-12);
  EXPECT_NEAR(x.seeds.across.stderr_of_mean, 0.05, 1e-12);
  EXPECT_NEAR(x.seeds.min, 0.2, 1e-12);
  EXPECT_NEAR(x.seeds.max, 0.3, 1e-12);
  EXPECT_EQ(x.seeds.agreeing, 2);
  EXPECT_EQ(c.pairs[1].seeds.agreeing, 0);  // y: no difference, no sign
}

TEST(Compare, ReportsEveryNumberInMarkdownAndCsv) {
  const auto c = compare(two_arms());
  const auto md = markdown(c);
  EXPECT_NE(md.find("2 arms × 2 seed(s), the same 3 test images, IW bound K = 8, ema weights"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("### b − a"), std::string::npos) << md;
  EXPECT_NE(md.find("| x | +0.2000 ± 0.0577 | +0.3000 ± 0.0000 | +0.2500 ± 0.0500 (+0.2000 .. "
                    "+0.3000) | 2 of 2 |"),
            std::string::npos)
      << md;
  const auto csv = long_csv(c);
  EXPECT_NE(csv.find("\npaired,b,a,1,x,0.2,0.057735026"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\npaired_seeds,b,a,all,x,0.25,0.05,2,0.2,0.3,2,2\n"), std::string::npos)
      << csv;
  EXPECT_NE(csv.find("\nmean,a,,2,x,2,0,3,,,,\n"), std::string::npos) << csv;
  EXPECT_EQ(arms_csv(c), "arm,x,x_stderr,y,y_stderr\na,2,0,0,0\nb,2.25,0.05,0,0\n");
}

// The message `arms` are refused with.
std::string refusal(std::vector<Arm> arms) {
  try {
    compare(std::move(arms));
  } catch (const PairingError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(Compare, RefusesFilesOfOtherImagesOrBoundsNamingThem) {
  auto arms = two_arms();
  arms[1].seeds[1].index = {4, 7, 6};
  EXPECT_EQ(
      refusal(arms),
      "cannot pair a1 and b2: row 2 is test image 5 in one, 7 in the other (other test images)");
  arms = two_arms();
  arms[1].seeds[0] = file("b1", {4, 5}, {"x", "y"}, {{1, 2}, {0, 0}});
  EXPECT_EQ(refusal(arms), "cannot pair a1 and b1: 3 and 2 test images (another test subset)");
  arms = two_arms();
  arms[1].seeds[0].meta.importance_samples = 150;
  EXPECT_EQ(refusal(arms), "cannot pair a1 and b1: IW bounds with K = 8 and K = 150");
  arms = two_arms();
  arms[0].seeds[1].meta.weights = "live";
  EXPECT_EQ(refusal(arms), "cannot pair a1 and a2: ema and live weights");
  arms = two_arms();
  arms[0].seeds[1].meta.test_split = 10000;
  EXPECT_EQ(refusal(arms),
            "cannot pair a1 and a2: test splits of 100 and 10000 images (other data)");
  arms = two_arms();
  arms[1].seeds.pop_back();
  EXPECT_EQ(refusal(arms),
            "arm a has 2 seed(s), arm b 1: seed i of one arm is paired with seed i of the other");
  EXPECT_EQ(refusal({two_arms()[0]}), "a comparison needs two arms or more");
  arms = two_arms();
  EXPECT_THROW(compare(arms, {"x", "z"}), PairingError);
}

// One checkpoint evaluated with K = 8 (arm a) and K = 150 (arm b): paired only when asked, the
// report naming each arm's K; within an arm the K must still be one.
TEST(Compare, PairsArmsOfOtherKOnlyWhenAskedAndNamesEachArmsK) {
  auto arms = two_arms();
  for (auto& f : arms[1].seeds) f.meta.importance_samples = 150;
  EXPECT_EQ(refusal(arms), "cannot pair a1 and b1: IW bounds with K = 8 and K = 150");
  const auto c = compare(arms, {}, KPairing::kAcrossArms);
  EXPECT_NEAR(c.pairs[0].seeds.across.mean, 0.25, 1e-12);
  const auto md = markdown(c);
  EXPECT_NE(md.find("the same 3 test images, IW bound K = 8 / 150 (per arm), ema weights"),
            std::string::npos)
      << md;
  EXPECT_NE(markdown(compare(two_arms())).find("IW bound K = 8, ema"), std::string::npos);
  arms[1].seeds[1].meta.importance_samples = 1;
  try {
    compare(arms, {}, KPairing::kAcrossArms);
    ADD_FAILURE() << "an arm of two Ks was paired";
  } catch (const PairingError& e) {
    EXPECT_STREQ(e.what(), "cannot pair b1 and b2: IW bounds with K = 150 and K = 1");
  }
}

TEST(Compare, UsesTheColumnsEveryFileHas) {
  auto arms = two_arms();
  arms[1].seeds[1] = file("b2", {4, 5, 6}, {"x"}, {{2.3, 2.3, 2.3}}, 2);
  EXPECT_EQ(compare(arms).columns, std::vector<std::string>{"x"});
}

}  // namespace
}  // namespace agave::analysis
