// The step record's JSON and its one line: every field once, the new ones (time, lr, elapsed,
// ETA) included.
#include "monitoring/step_record.h"

#include <gtest/gtest.h>

#include <string>

namespace agave::monitoring {
namespace {

StepRecord record() {
  StepRecord r;
  r.step = 20;
  r.total_steps = 600;
  r.phase = "joint";
  r.loss_bpd = 3.4125;
  r.images_per_second = 123.45;
  r.allreduce_share = 0.031;
  r.lr = 0.002;
  r.time = "2026-01-02T03:04:05Z";
  r.elapsed_seconds = 245;
  r.eta_seconds = 3720;
  return r;
}

TEST(StepLine, EndsWithLrElapsedAndEta) {
  const std::string line = step_line(record());
  // The time leads the printed line (StepReport), not this part.
  EXPECT_EQ(line.rfind("step 20/600 joint  loss 3.413  ", 0), 0u) << line;
  EXPECT_NE(line.find("  123.5 img/s  comm 3.1%  data 0.0%  "), std::string::npos) << line;
  EXPECT_EQ(line.substr(line.find("  lr ")), "  lr 0.002  elapsed 4 min 05 s  ETA 1 h 02 min")
      << line;
}

TEST(StepLine, SmallLearningRatesAndUnknownEtaReadWell) {
  auto r = record();
  r.lr = 1e-5;
  r.eta_seconds = -1;
  const std::string line = step_line(r);
  EXPECT_NE(line.find("  lr 1e-05  "), std::string::npos) << line;
  EXPECT_NE(line.find("  ETA ?"), std::string::npos) << line;
}

// An ETA with a part not measured yet (a phase not run, an evaluation to come) says so.
TEST(StepLine, AnEstimatedEtaReadsApproximate) {
  auto r = record();
  r.eta_estimated = true;
  const std::string line = step_line(r);
  EXPECT_EQ(line.substr(line.find("  ETA ")), "  ETA ~1 h 02 min") << line;
  EXPECT_EQ(to_json(r).at("eta_estimated"), true);
  EXPECT_EQ(to_json(record()).at("eta_estimated"), false);
}

TEST(StepRecordJson, HasEveryNewFieldUnderItsName) {
  const auto j = to_json(record());
  EXPECT_EQ(j.at("time"), "2026-01-02T03:04:05Z");
  EXPECT_DOUBLE_EQ(j.at("lr").get<double>(), 0.002);
  EXPECT_DOUBLE_EQ(j.at("elapsed_seconds").get<double>(), 245);
  EXPECT_DOUBLE_EQ(j.at("eta_seconds").get<double>(), 3720);
  EXPECT_EQ(j.at("step"), 20);
}

}  // namespace
}  // namespace agave::monitoring
