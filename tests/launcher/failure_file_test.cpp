// The trainer's failure report: on a collective timeout each rank that saw it names the ranks and
// hosts that did not answer, where agave_elastic told it to ($AGAVE_FAILURE_DIR).
#include "launcher/failure_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

#include "cluster/activity.h"
#include "elastic/failure_report.h"
#include "tests/common/test_files.h"

namespace {

using agave::testing::TempDir;

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const char* kLine =
    "rank 0 (host-a), rank 0 of 3 of its run: collective timeout: bucket 1/2 all-reduce did not "
    "complete within 5.0 s; did not arrive: rank 2 (host-c) (no answer: stopped or hung); 1 other "
    "rank(s) waiting in it too; aborting the job";

TEST(RecordFailure, WritesTheStepTheCollectiveAndTheSilentRanks) {
  TempDir dir;
  setenv(agave::elastic::kFailureDirVariable, dir.path().c_str(), 1);
  {
    agave::cluster::ActivityScope step("training step", 23);
    agave::launcher::record_failure(kLine);
  }
  unsetenv(agave::elastic::kFailureDirVariable);
  // Outside an MPI job this process is rank 0.
  const auto r = agave::elastic::parse_failure_report(read(dir.path() / "failure-rank-0.json"));
  EXPECT_EQ(r.reporter, 0);
  EXPECT_EQ(r.step, 23);
  EXPECT_EQ(r.collective, "bucket 1/2 all-reduce");
  EXPECT_EQ(r.ranks, std::vector<int>{2});
  EXPECT_EQ(r.hosts, std::vector<std::string>{"host-c"});
  EXPECT_EQ(r.line, kLine);
}

TEST(RecordFailure, WritesNothingWithoutTheVariable) {
  TempDir dir;
  unsetenv(agave::elastic::kFailureDirVariable);
  agave::launcher::record_failure(kLine);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
