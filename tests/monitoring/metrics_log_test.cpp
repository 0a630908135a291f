// metrics.jsonl: one JSON object a line, every event stamped with one time format (issue 30).
#include "monitoring/metrics_log.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "tests/common/test_files.h"

namespace agave::monitoring {
namespace {

TEST(IsoUtc, IsIso8601InUtcToTheMillisecond) {
  using namespace std::chrono;
  const system_clock::time_point t = system_clock::from_time_t(1796625178) + milliseconds(5);
  EXPECT_EQ(iso_utc(t), "2026-12-07T06:32:58.005Z");
  EXPECT_EQ(iso_utc(system_clock::from_time_t(0)), "1970-01-01T00:00:00.000Z");
}

// Every event gets the same "time", whatever the record carried before (a train event's step
// record has its own; eval and checkpoint events once had Unix seconds).
TEST(MetricsLog, StampsEveryLineWithOneTimeFormat) {
  agave::testing::TempDir dir;
  const std::string path = (dir.path() / "metrics.jsonl").string();
  {
    MetricsLog log(path);
    log.write({{"event", "train"}, {"time", "2026-01-02T03:04:05Z"}});
    log.write({{"event", "eval"}, {"time", 1796625178.9}});
    log.write({{"event", "checkpoint"}});
  }
  std::ifstream in(path);
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const auto j = nlohmann::json::parse(line);
    ASSERT_TRUE(j.at("time").is_string()) << line;
    EXPECT_TRUE(std::regex_match(j.at("time").get<std::string>(), iso)) << line;
  }
  EXPECT_EQ(lines, 3);
}

}  // namespace
}  // namespace agave::monitoring
