#include "launcher/sweep_plan.h"

#include <gtest/gtest.h>

#include <set>

#include "launcher/config_error.h"

namespace agave::launcher {
namespace {

std::vector<RunSpec> runs(int n, int64_t ranks_per_run, int64_t batch = 32) {
  std::vector<RunSpec> out;
  for (int i = 0; i < n; ++i) {
    RunSpec r;
    r.name = "r" + std::to_string(i);
    r.output_dir = "out/" + r.name;
    r.config.sweep.ranks_per_run = ranks_per_run;
    r.config.train.batch_size = batch;
    r.config.train.steps = 10;
    out.push_back(r);
  }
  return out;
}

TEST(SweepPlan, GroupsTakeRunsInTurnAndCoverEachOnce) {
  for (int world : {1, 2, 3, 4, 6, 8}) {
    for (int per : {1, 2}) {
      if (world % per) continue;
      const auto rs = runs(5, per);
      const SweepPlan plan = plan_sweep(rs, world);
      ASSERT_EQ(plan.groups.size(), static_cast<size_t>(world / per));
      std::multiset<size_t> seen;
      for (const auto& g : plan.groups) {
        EXPECT_EQ(g.size, per);
        EXPECT_EQ(g.first_rank, g.index * per);
        for (size_t k = 0; k < g.runs.size(); ++k) {
          EXPECT_EQ(g.runs[k] % plan.groups.size(), static_cast<size_t>(g.index));
          if (k) {
            EXPECT_LT(g.runs[k - 1], g.runs[k]);
          }
          seen.insert(g.runs[k]);
        }
      }
      EXPECT_EQ(seen.size(), 5u);
      for (size_t i = 0; i < 5; ++i) EXPECT_EQ(seen.count(i), 1u);
      for (int r = 0; r < world; ++r) EXPECT_EQ(plan.group_of(r), r / per);
    }
  }
}

TEST(SweepPlan, ZeroRanksPerRunMeansTheWholeWorld) {
  const SweepPlan plan = plan_sweep(runs(3, 0), 4);
  ASSERT_EQ(plan.groups.size(), 1u);
  EXPECT_EQ(plan.ranks_per_run, 4);
  EXPECT_EQ(plan.groups[0].runs, (std::vector<size_t>{0, 1, 2}));
}

TEST(SweepPlan, RejectsRankCountsThatDoNotFit) {
  EXPECT_THROW(plan_sweep(runs(2, 2), 3), ConfigError);
  EXPECT_THROW(plan_sweep(runs(2, 4), 2), ConfigError);
  // The global batch of every run must split evenly over its ranks.
  try {
    plan_sweep(runs(2, 0, 32), 3);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.batch_size = 32"), std::string::npos) << e.what();
  }
}

TEST(SweepPlan, DescribesIdleGroupsAndOutputFolders) {
  const auto rs = runs(1, 1);
  const std::string text = describe_plan(plan_sweep(rs, 2), rs);
  EXPECT_NE(text.find("run 0: r0  ranks 0-0 (group 0)"), std::string::npos) << text;
  EXPECT_NE(text.find("output out/r0"), std::string::npos) << text;
  EXPECT_NE(text.find("group 1: idle"), std::string::npos) << text;
}

}  // namespace
}  // namespace agave::launcher
