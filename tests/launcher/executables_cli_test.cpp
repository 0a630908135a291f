// Every executable as a user first meets it: `--version` names the build, `--help` prints the
// usage; both exit 0 and do nothing else (no MPI, no benchmark, no file written).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "tests/common/process.h"
#include "version/version.h"

namespace {

using agave::testing::sh;

struct Executable {
  const char* name;
  bool bench;  // built only with AGAVE_BUILD_BENCH
};

class Executables : public ::testing::TestWithParam<Executable> {
 protected:
  std::string path() const { return std::string(AGAVE_BIN_DIR) + "/" + GetParam().name; }
  void SetUp() override {
    if (GetParam().bench && !std::filesystem::exists(path())) {
      GTEST_SKIP() << path() << " is not built (AGAVE_BUILD_BENCH=OFF)";
    }
  }
};

TEST_P(Executables, VersionPrintsTheBuildAndExitsZero) {
  const auto r = sh(path() + " --version");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, agave::version::describe(GetParam().name) + "\n");
  const auto& b = agave::version::build_info();
  EXPECT_NE(r.output.find(std::string(GetParam().name) + " " + b.version + " (commit "),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("LibTorch " + b.torch), std::string::npos) << r.output;
}

TEST_P(Executables, HelpPrintsUsageAndExitsZero) {
  const auto r = sh(path() + " --help");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.rfind(GetParam().name, 0), 0u) << "usage should start with the name:\n"
                                                    << r.output;
  EXPECT_NE(r.output.find("Usage:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--version"), std::string::npos) << r.output;
  // The usage alone: a benchmark that ran would have printed its rates.
  for (const char* rate : {"img/s", "images/s", "MB/s"}) {
    EXPECT_EQ(r.output.find(rate), std::string::npos) << r.output;
  }
}

TEST_P(Executables, ArgumentErrorsExitNonZeroAndPointToHelp) {
  const auto r = sh(path() + " --no-such-option");
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Run with --help for more information."), std::string::npos) << r.output;
}

const Executable kExecutables[] = {
    {"agave_trainer", false},       {"agave_eval", false},    {"agave_data", false},
    {"agave_sweep_plot", false},    {"agave_elastic", false}, {"agave_compare", false},
    {"bench_checkpoint", true},     {"bench_eval", true},     {"bench_loader", true},
    {"bench_model_pixelcnn", true}, {"bench_sampling", true}, {"bench_train_step", true},
    {"bench_verify", true}};

INSTANTIATE_TEST_SUITE_P(All, Executables, ::testing::ValuesIn(kExecutables),
                         [](const auto& info) { return std::string(info.param.name); });

// build/bin, which users put on PATH, holds what agave ships and nothing else: every file there
// is covered above (agave_h5probe below), and the test binaries live in build/tests/bin.
TEST(BinFolder, HoldsOnlyTheExecutablesTestedHere) {
  std::set<std::string> covered = {"agave_h5probe"};
  for (const auto& e : kExecutables) covered.insert(e.name);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(AGAVE_BIN_DIR)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("fuzz_", 0) == 0) continue;  // a fuzzing build's (AGAVE_BUILD_FUZZ) targets
    ++files;
    EXPECT_TRUE(covered.count(name)) << entry.path() << ": not a tested executable";
    EXPECT_EQ(name.find("_test"), std::string::npos) << entry.path() << ": a test binary";
  }
  EXPECT_GE(files, 5);
}

TEST(SweepPlotCli, AMissingSweepFolderIsAUsageError) {
  const auto r = sh(std::string(AGAVE_BIN_DIR) + "/agave_sweep_plot /nonexistent/sweep");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("agave_sweep_plot: error: /nonexistent/sweep: no such folder"),
            std::string::npos)
      << r.output;
}

// agave_h5probe is started by the other executables, but a user may try it too.
TEST(H5probeCli, HelpAndVersionExitZeroAndMisuseIs64) {
  const std::string probe = std::string(AGAVE_BIN_DIR) + "/agave_h5probe";
  const auto help = sh(probe + " --help");
  EXPECT_EQ(help.code, 0) << help.output;
  EXPECT_NE(help.output.find("usage: agave_h5probe"), std::string::npos) << help.output;
  const auto version = sh(probe + " --version");
  EXPECT_EQ(version.code, 0) << version.output;
  EXPECT_NE(version.output.find("agave_h5probe "), std::string::npos) << version.output;
  EXPECT_EQ(sh(probe + " one-argument").code, 64);
}

// The commit is the checkout's: configure-time `git rev-parse --short HEAD`.
TEST(BuildInfo, CommitIsTheCheckoutsHead) {
  const auto git = sh("git -C " + std::string(AGAVE_SOURCE_DIR) + " rev-parse --short HEAD");
  if (git.code != 0) {
    EXPECT_EQ(agave::version::build_info().commit, "unknown");
    return;
  }
  EXPECT_EQ(agave::version::build_info().commit + "\n", git.output)
      << "configure again after a commit (cmake does when HEAD moved)";
}

}  // namespace
