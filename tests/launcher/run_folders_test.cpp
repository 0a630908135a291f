// One run, one folder (issue 13): sweep points that would share a folder are refused at config
// time naming both; explicit checkpoint folders are per point; a locked run folder refuses a
// second holder naming the first.
#include "launcher/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "launcher/config_error.h"
#include "launcher/run_lock.h"
#include "tests/common/test_files.h"
#include "tests/common/tiny_config.h"

namespace agave::launcher {
namespace {

using agave::testing::TempDir;
using agave::testing::TinyConfig;

class RunFolders : public ::testing::Test {
 protected:
  std::vector<RunSpec> load(const std::string& sweep, const std::string& name = "r") {
    const std::string file = dir_.write(
        "c.yaml", TinyConfig(name, (dir_.path() / "runs").string(), "shards").append(sweep).yaml());
    return load_runs(file, {});
  }
  std::string error_of(const std::string& sweep, const std::string& name = "r") {
    try {
      load(sweep, name);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }
  TempDir dir_;
};

TEST_F(RunFolders, RefusesAValueListedTwiceNamingBothPoints) {
  const std::string e = error_of("sweep: {grid: {loss.lambda: [1.0, 2.0, 4.0, 2.0]}}\n");
  EXPECT_NE(e.find("sweep points 1 {lambda: 2.0} and 3 {lambda: 2.0} would both write to"),
            std::string::npos)
      << e;
}

TEST_F(RunFolders, RefusesValuesThatCollideOnceMadeFolderNames) {
  const std::string e = error_of("sweep: {grid: {data.shards: [a/b, a_b]}}\n");
  EXPECT_NE(e.find("sweep points 0 {shards: a/b} and 1 {shards: a_b}"), std::string::npos) << e;
}

TEST_F(RunFolders, RefusesRunNamesThatLeaveTheOutputFolder) {
  for (const std::string name : {"..", "."}) {
    EXPECT_NE(error_of("", name).find("run.name = '" + name + "'"), std::string::npos) << name;
  }
  EXPECT_NE(error_of("sweep: {grid: {checkpoint.dir: ['', x]}}\n").find("is empty"),
            std::string::npos);
}

TEST_F(RunFolders, GivesEachPointItsOwnCheckpointFolder) {
  const auto runs = load("checkpoint: {dir: /ckpt}\nsweep: {grid: {loss.lambda: [1.0, 2.0]}}\n");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].config.checkpoint.dir, "/ckpt/lambda=1.0");
  EXPECT_EQ(runs[1].config.checkpoint.dir, "/ckpt/lambda=2.0");
  // A single run keeps the folder it was given.
  EXPECT_EQ(load("checkpoint: {dir: /ckpt}\n").front().config.checkpoint.dir, "/ckpt");
}

TEST(RunLock, SecondHolderIsRefusedNamingTheFirstUntilItLetsGo) {
  TempDir dir;
  const std::string run = (dir.path() / "run").string();
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  {
    launcher::RunLock first(run);
    try {
      launcher::RunLock second(run);
      FAIL() << "a second lock on one run folder was granted";
    } catch (const RunLockError& e) {
      EXPECT_NE(std::string(e.what()).find("(" + std::string(host) + " pid " +
                                           std::to_string(getpid()) + ")"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_NO_THROW(launcher::RunLock again(run));
}

}  // namespace
}  // namespace agave::launcher
